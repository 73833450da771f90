package pkcs11

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/crypt/crypttest"
)

// The tests run against the token that PERSO_PKCS11_MODULE,
// PERSO_PKCS11_TOKEN and PERSO_PKCS11_PIN name (./scripts/test sets them
// for a SoftHSM2 token in a temporary directory). Without them, TestMain
// makes such a token itself when SoftHSM2 is installed. Only when no
// module can be found do the tests skip, and in CI (CI=true) they fail
// instead.

// skipReason is set when no PKCS#11 module could be found.
var skipReason string

// fx is the fixture every test shares: an open module and the keys the
// ceremony functions put on the token under labels unique to this test
// process, removed when it ends.
var fx *fixture

type fixture struct {
	m       *Module
	prefix  string
	labels  []string
	imk     perso.KeyRef // DES2 0123456789ABCDEFFEDCBA9876543210 (vectors.md, pyemv)
	kmc     perso.KeyRef // DES2 404142434445464748494A4B4C4D4E4F (GlobalPlatformPro)
	kmcAES  perso.KeyRef // AES-128 404142434445464748494A4B4C4D4E4F
	mkAES   perso.KeyRef // AES-256 master key for encrypt-data derivations
	issuer  perso.KeyRef // 1024-bit issuer key, e=3, generated in the token
	kek     perso.KEKID  // AES-128 KEK with the value kekValue
	kekDES  perso.KEKID  // a 3DES KEK identifier (the token offers no such scheme)
	kekMiss perso.KEKID  // a KEK that is not on the token
}

var (
	imkValue    = crypttest.MustHex("0123456789ABCDEFFEDCBA9876543210")
	kmcValue    = crypttest.MustHex("404142434445464748494A4B4C4D4E4F")
	mkAESValue  = crypttest.MustHex("603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4")
	kekValue    = crypttest.MustHex("000102030405060708090A0B0C0D0E0F")
	errNoModule = errors.New("no PKCS#11 module: set PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN and PERSO_PKCS11_PIN, install SoftHSM2, or run ./scripts/test")
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cleanup, err := ensureToken()
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "hsm/pkcs11: %v (CI=true: failing instead of skipping)\n", err)
			return 1
		}
		skipReason = err.Error()
		return m.Run()
	}
	f, err := newFixture()
	if f != nil {
		defer f.close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hsm/pkcs11: setting up the test token: %v\n", err)
		return 1
	}
	fx = f
	return m.Run()
}

// ensureToken makes a SoftHSM2 token in a temporary directory when the
// environment names no module, and points the environment at it.
func ensureToken() (func(), error) {
	if os.Getenv(EnvModule) != "" && os.Getenv(EnvToken) != "" {
		return nil, nil
	}
	lib := ""
	for _, c := range []string{
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/" + runtime.GOARCH + "-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
		"/opt/homebrew/lib/softhsm/libsofthsm2.so",
	} {
		if _, err := os.Stat(c); err == nil {
			lib = c
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if lib == "" || err != nil {
		return nil, errNoModule
	}
	dir, err := os.MkdirTemp("", "perso-pkcs11-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	conf := filepath.Join(dir, "softhsm2.conf")
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return cleanup, err
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return cleanup, err
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "perso-test", "--pin", "1234", "--so-pin", "12345678").CombinedOutput()
	if err != nil {
		return cleanup, fmt.Errorf("softhsm2-util: %v: %s", err, out)
	}
	os.Setenv(EnvModule, lib)
	os.Setenv(EnvToken, "perso-test")
	os.Setenv(EnvPIN, "1234")
	return cleanup, nil
}

func newFixture() (*fixture, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	m, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	prefix := fmt.Sprintf("T%X-", rnd)
	f := &fixture{
		m:       m,
		prefix:  prefix,
		imk:     perso.KeyRef{Label: prefix + "IMK", Version: 1},
		kmc:     perso.KeyRef{Label: prefix + "KMC", Version: 1},
		kmcAES:  perso.KeyRef{Label: prefix + "KMC-AES", Version: 1},
		mkAES:   perso.KeyRef{Label: prefix + "MK-AES", Version: 1},
		issuer:  perso.KeyRef{Label: prefix + "ISSUER", Version: 1},
		kek:     perso.KEKID{Issuer: perso.IssuerID(rnd), Version: 1, Scheme: perso.SchemeAESKW},
		kekDES:  perso.KEKID{Issuer: perso.IssuerID(rnd), Version: 2, Scheme: perso.SchemeDES3ECB},
		kekMiss: perso.KEKID{Issuer: perso.IssuerID(rnd), Version: 9, Scheme: perso.SchemeAESKW},
	}
	ctx := context.Background()
	steps := []struct {
		label string
		do    func() error
	}{
		{f.imk.String(), func() error {
			_, err := m.CreateKey(ctx, f.imk, RoleMaster, perso.KeyDES2, imkValue)
			return err
		}},
		{f.kmc.String(), func() error {
			_, err := m.CreateKey(ctx, f.kmc, RoleKMC, perso.KeyDES2, kmcValue)
			return err
		}},
		{f.kmcAES.String(), func() error {
			_, err := m.CreateKey(ctx, f.kmcAES, RoleKMC, perso.KeyAES128, kmcValue)
			return err
		}},
		{f.mkAES.String(), func() error {
			_, err := m.CreateKey(ctx, f.mkAES, RoleMaster, perso.KeyAES256, mkAESValue)
			return err
		}},
		{f.kek.Label(), func() error {
			_, err := m.CreateKEK(ctx, f.kek, kekValue)
			return err
		}},
		{f.issuer.String(), func() error {
			_, err := m.CreateIssuerKey(ctx, f.issuer, 1024, 3)
			return err
		}},
	}
	for _, st := range steps {
		f.labels = append(f.labels, st.label)
		if err := st.do(); err != nil {
			return f, fmt.Errorf("%s: %w", st.label, err)
		}
	}
	return f, nil
}

func (f *fixture) close() {
	for _, l := range f.labels {
		f.m.DestroyKeys(context.Background(), l)
	}
	f.m.Close()
}

// fixtureFor returns the shared fixture, or skips the test when no module
// could be found.
func fixtureFor(tb testing.TB) *fixture {
	tb.Helper()
	if fx == nil {
		tb.Skip("hsm/pkcs11: " + skipReason)
	}
	return fx
}

// openKey unwraps a protected key on the host with the fixture's test KEK,
// as a reference to compare the token's output with.
func openKey(tb testing.TB, pk perso.ProtectedKey) []byte {
	tb.Helper()
	b, err := aes.NewCipher(kekValue)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := crypt.Unwrap(b, pk.Wrapped)
	if err != nil {
		tb.Fatalf("unwrapping %v with the test KEK: %v", pk, err)
	}
	return k
}

// openValue unwraps a value wrapped with RFC 5649 under the test KEK.
func openValue(tb testing.TB, wrapped []byte) []byte {
	tb.Helper()
	b, err := aes.NewCipher(kekValue)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := crypt.UnwrapPad(b, wrapped)
	if err != nil {
		tb.Fatalf("unwrapping a value with the test KEK: %v", err)
	}
	return v
}

// sealKeysHost seals clear keys under the test KEK on the host, as an
// issuer's other security module would, for the bureau-side tests.
func sealKeysHost(tb testing.TB, typ perso.KeyType, keys ...[]byte) perso.Sealed {
	tb.Helper()
	b, _ := aes.NewCipher(kekValue)
	var pks []perso.ProtectedKey
	for _, k := range keys {
		w, err := crypt.Wrap(b, k)
		if err != nil {
			tb.Fatal(err)
		}
		kcv, err := hostKCV(typ, k)
		if err != nil {
			tb.Fatal(err)
		}
		pks = append(pks, perso.ProtectedKey{Type: typ, KCV: kcv, Wrapped: w})
	}
	s, err := perso.SealKeysOf(pks...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
