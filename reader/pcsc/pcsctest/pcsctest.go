// Package pcsctest sets up the PC/SC tests of the module: it finds pcscd
// and the readers of vsmartcard's vpcd driver, skips a test with a clear
// message when there are none, and keeps tests of different packages,
// which go test runs as parallel processes, from using the vpcd readers at
// the same time.
//
// Where the environment says PC/SC must work (PERSO_PCSC=1, which
// scripts/test sets once pcscd is up), a missing pcscd or reader fails the
// test instead of skipping it.
package pcsctest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardperso/perso/reader/pcsc"
	"github.com/cardperso/perso/reader/vcard"
)

// Reader is a vpcd reader: its PC/SC name and the address of its card
// socket.
type Reader struct {
	Name string
	Addr string
}

// vpcdPrefix begins the names pcsc-lite gives the vpcd readers: the
// driver's FRIENDLYNAME, then the reader and slot numbers in hex
// ("Virtual PCD 00 01"). Slot i's card socket is port VPCDPort+i.
const vpcdPrefix = "Virtual PCD "

// Required reports whether the environment says PC/SC must work.
func Required() bool { return os.Getenv("PERSO_PCSC") == "1" }

// unavailable skips the test, or fails it where PC/SC is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("PERSO_PCSC=1 but %s", msg)
	}
	t.Skipf("skipping the PC/SC test: %s (run ./scripts/test, which starts pcscd with vsmartcard's vpcd reader driver)", msg)
}

// VPCD returns the first n vpcd readers, in slot order, after taking the
// machine-wide lock on them until the test ends. It skips (or fails, see
// [Required]) the test when pcscd is not reachable or has fewer than n
// vpcd readers.
func VPCD(t testing.TB, n int) []Reader {
	t.Helper()
	c, err := pcsc.Open()
	if err != nil {
		unavailable(t, "no pcscd: %v", err)
	}
	defer c.Close()
	var names []string
	// pcscd lists the readers of its configuration a moment after it
	// starts.
	for i := 0; i < 20; i++ {
		all, err := c.Readers()
		if err == nil {
			names = vpcdReaders(all)
			if len(names) >= n {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(names) < n {
		unavailable(t, "pcscd has %d vpcd readers, the test needs %d", len(names), n)
	}
	lock(t, filepath.Join(os.TempDir(), "perso-vpcd.lock"))
	out := make([]Reader, n)
	for i, name := range names[:n] {
		slot, _ := strconv.ParseUint(name[strings.LastIndexByte(name, ' ')+1:], 16, 8)
		out[i] = Reader{Name: name, Addr: vcard.VPCDAddr(int(slot))}
		// The last test's card may be leaving yet: pcscd sees a removal
		// at its next poll.
		if err := waitEmpty(c, name, 5*time.Second); err != nil {
			t.Fatalf("pcsctest: %s still holds a card (one not taken out, or another program's): %v", name, err)
		}
	}
	return out
}

// waitEmpty waits until pcscd sees the reader empty.
func waitEmpty(c *pcsc.Context, name string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s, err := c.State(name)
	for err == nil && s.Flags&pcsc.StatePresent != 0 {
		s, err = c.Wait(ctx, s)
	}
	return err
}

// vpcdReaders returns the vpcd readers of the first vpcd driver entry
// among names, sorted by slot.
func vpcdReaders(names []string) []string {
	var out []string
	for _, n := range names {
		f := strings.Fields(strings.TrimPrefix(n, vpcdPrefix))
		if !strings.HasPrefix(n, vpcdPrefix) || len(f) != 2 || f[0] != "00" {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 16, 8); err == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TakeOut takes the card out of the vpcd reader r, if there is one, and
// waits until pcscd sees the reader empty, so that what comes next starts
// from an empty reader: pcscd notices a removal only when it next polls
// the reader.
func TakeOut(t testing.TB, r Reader, v *vcard.VPCD) {
	t.Helper()
	v.Remove()
	c, err := pcsc.Open()
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	if err := waitEmpty(c, r.Name, 5*time.Second); err != nil {
		t.Errorf("pcsctest: waiting for %s to be empty: %v", r.Name, err)
	}
}
