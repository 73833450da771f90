// Package cli holds what the example programs share: opening a security
// module from flags, a progress line for terminals, and exit handling.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/soft"
)

// Module is a security module with every side the examples use.
type Module interface {
	perso.KeyDeriver
	perso.Certifier
	perso.Protector
	perso.Translator
}

// ModuleFlags selects the security module: the software module with a key
// file, or a PKCS#11 token (see OpenPKCS11).
type ModuleFlags struct {
	Keys   string
	PKCS11 bool
}

// Register adds -keys and -pkcs11 to fs.
func (m *ModuleFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&m.Keys, "keys", "", "software security module key file (development only)")
	fs.BoolVar(&m.PKCS11, "pkcs11", false, "use the PKCS#11 token named by PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN and PERSO_PKCS11_PIN")
}

// OpenPKCS11 opens a PKCS#11 module from the environment; examples that
// link the PKCS#11 backend set it.
var OpenPKCS11 func() (Module, func() error, error)

// Open opens the selected module and prints its capability report to w.
func (m *ModuleFlags) Open(w io.Writer) (Module, func() error, error) {
	switch {
	case m.PKCS11 && m.Keys != "":
		return nil, nil, errors.New("-keys and -pkcs11 exclude each other")
	case m.PKCS11:
		if OpenPKCS11 == nil {
			return nil, nil, errors.New("this program is built without PKCS#11 support")
		}
		mod, closer, err := OpenPKCS11()
		if err != nil {
			return nil, nil, err
		}
		Report(w, mod.Capabilities())
		return mod, closer, nil
	case m.Keys != "":
		mod, err := soft.New(soft.NotForProduction())
		if err != nil {
			return nil, nil, err
		}
		if err := mod.LoadKeyFile(m.Keys); err != nil {
			return nil, nil, err
		}
		Report(w, mod.Capabilities())
		return mod, func() error { return nil }, nil
	}
	return nil, nil, errors.New("name a security module: -keys FILE or -pkcs11")
}

// Report prints a capability report.
func Report(w io.Writer, c perso.Capabilities) {
	yes := func(b bool) string {
		if b {
			return "in the module"
		}
		return "ON THE HOST"
	}
	fmt.Fprintf(w, "security module: %s\n", c.Module)
	fmt.Fprintf(w, "  derivation %s, card keys %s, signing %s, MACs %s, translation %s\n",
		yes(c.DeriveInModule), yes(c.KeyGenInModule), yes(c.SignInModule), yes(c.MACInModule), yes(c.TranslateInModule))
	for _, f := range c.Fallbacks {
		fmt.Fprintf(w, "  fallback: %s\n", f)
	}
}

// IsTerminal reports whether f is a character device.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Bar draws a progress line on a terminal: a bar when the total is known.
type Bar struct {
	W     io.Writer
	Total int
	start time.Time
}

// Draw redraws the line.
func (b *Bar) Draw(done, bad int) {
	if b.start.IsZero() {
		b.start = time.Now()
	}
	rate := float64(done) / max(time.Since(b.start).Seconds(), 1e-9)
	if b.Total > 0 {
		const width = 30
		n := min(width, done*width/max(b.Total, 1))
		fmt.Fprintf(b.W, "\r[%s%s] %d/%d  %d rejected  %.0f/s ", strings.Repeat("#", n), strings.Repeat(".", width-n), done, b.Total, bad, rate)
		return
	}
	fmt.Fprintf(b.W, "\r%d done  %d rejected  %.0f/s ", done, bad, rate)
}

// End finishes the line.
func (b *Bar) End() { fmt.Fprintln(b.W) }
