package pkcs11

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"
)

// Environment variables that [ConfigFromEnv] reads.
const (
	EnvModule   = "PERSO_PKCS11_MODULE"   // path of the PKCS#11 library
	EnvToken    = "PERSO_PKCS11_TOKEN"    // token label
	EnvPIN      = "PERSO_PKCS11_PIN"      // user PIN
	EnvSessions = "PERSO_PKCS11_SESSIONS" // session count (optional)
)

// Config selects a PKCS#11 token and says how to use it, in the manner of
// crypto11.Config: the library path, exactly one way to select the token
// (label, serial number or slot), the user PIN, and the size of the
// session pool.
//
// A Config prints no PIN.
type Config struct {
	// Path is the PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so.
	Path string

	// TokenLabel, TokenSerial and Slot select the token; set exactly one.
	TokenLabel  string
	TokenSerial string
	Slot        *int

	// PIN is the user PIN. PINFunc, when set, is called once by Open
	// instead, so that the PIN can come from a prompt, a vault or the
	// environment without sitting in the Config.
	PIN     string
	PINFunc func() (string, error)

	// Sessions is the number of sessions the module keeps open and the
	// number of operations that run in the token at the same time. Zero
	// means runtime.NumCPU(): one per pipeline worker.
	Sessions int

	// SessionWait bounds how long an operation waits for a free session
	// when all are busy. Zero means it waits until its context is done.
	SessionWait time.Duration

	// NoKeyCopies makes the module use token keys directly instead of
	// session copies of them (see Module.findKey): for tokens whose
	// policy forbids copies, or to measure the difference.
	NoKeyCopies bool
}

// PINFromEnv returns a PINFunc that reads the PIN from the environment
// variable name when Open runs, and fails if it is unset or empty.
func PINFromEnv(name string) func() (string, error) {
	return func() (string, error) {
		pin, ok := os.LookupEnv(name)
		if !ok || pin == "" {
			return "", fmt.Errorf("pkcs11: %s is not set", name)
		}
		return pin, nil
	}
}

// ErrNotConfigured is returned by [ConfigFromEnv] when the environment
// names no PKCS#11 library or token.
var ErrNotConfigured = errors.New("pkcs11: no PKCS#11 module configured")

// ConfigFromEnv builds a Config from PERSO_PKCS11_MODULE,
// PERSO_PKCS11_TOKEN, PERSO_PKCS11_PIN (read when Open runs) and, if set,
// PERSO_PKCS11_SESSIONS. It returns an error that wraps [ErrNotConfigured]
// when the library path or token label is missing.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Path:       os.Getenv(EnvModule),
		TokenLabel: os.Getenv(EnvToken),
		PINFunc:    PINFromEnv(EnvPIN),
	}
	if c.Path == "" || c.TokenLabel == "" {
		return Config{}, fmt.Errorf("%w: set %s and %s", ErrNotConfigured, EnvModule, EnvToken)
	}
	if s := os.Getenv(EnvSessions); s != "" {
		var n int
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 {
			return Config{}, fmt.Errorf("pkcs11: %s=%q is not a positive number", EnvSessions, s)
		}
		c.Sessions = n
	}
	return c, nil
}

// pin returns the PIN to log in with.
func (c *Config) pin() (string, error) {
	if c.PINFunc != nil {
		return c.PINFunc()
	}
	return c.PIN, nil
}

// sessions returns the configured pool size.
func (c *Config) sessions() int {
	if c.Sessions > 0 {
		return c.Sessions
	}
	return runtime.NumCPU()
}

// check reports a Config that cannot select a token.
func (c *Config) check() error {
	if c.Path == "" {
		return errors.New("pkcs11: config has no library path")
	}
	n := 0
	if c.TokenLabel != "" {
		n++
	}
	if c.TokenSerial != "" {
		n++
	}
	if c.Slot != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("pkcs11: config selects the token %d ways; set exactly one of TokenLabel, TokenSerial, Slot", n)
	}
	if c.Sessions < 0 {
		return fmt.Errorf("pkcs11: config asks for %d sessions", c.Sessions)
	}
	return nil
}

// String describes the Config without its PIN.
func (c Config) String() string {
	tok := "label " + c.TokenLabel
	switch {
	case c.TokenSerial != "":
		tok = "serial " + c.TokenSerial
	case c.Slot != nil:
		tok = fmt.Sprintf("slot %d", *c.Slot)
	}
	return fmt.Sprintf("pkcs11 config (%s, token %s, %d sessions)", c.Path, tok, c.sessions())
}

// GoString is String, so %#v shows no PIN.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Config) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue keeps slog from printing the PIN.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
