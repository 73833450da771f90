package pkcs11

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	p11 "github.com/miekg/pkcs11"
)

func TestConfigPrintsNoPIN(t *testing.T) {
	c := Config{Path: "/lib/p11.so", TokenLabel: "tok", PIN: "s3cr3t-pin", Sessions: 3}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "config", c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c), logged.String()} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("config prints its PIN: %s", s)
		}
	}
	if !strings.Contains(c.String(), "label tok") || !strings.Contains(c.String(), "3 sessions") {
		t.Errorf("config prints as %q", c.String())
	}
}

func TestConfigCheck(t *testing.T) {
	slot := 0
	for _, c := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"label", Config{Path: "x", TokenLabel: "t"}, true},
		{"serial", Config{Path: "x", TokenSerial: "s"}, true},
		{"slot", Config{Path: "x", Slot: &slot}, true},
		{"no path", Config{TokenLabel: "t"}, false},
		{"no token", Config{Path: "x"}, false},
		{"two ways", Config{Path: "x", TokenLabel: "t", Slot: &slot}, false},
		{"negative sessions", Config{Path: "x", TokenLabel: "t", Sessions: -1}, false},
	} {
		if err := c.cfg.check(); (err == nil) != c.ok {
			t.Errorf("%s: check = %v", c.name, err)
		}
	}
	if _, err := Open(Config{Path: "x"}); err == nil {
		t.Error("Open accepted a config with no token")
	}
	if _, err := Open(Config{Path: "x", TokenLabel: "t", PINFunc: func() (string, error) { return "", errors.New("no PIN today") }}); err == nil || !strings.Contains(err.Error(), "no PIN today") {
		t.Errorf("Open with a failing PINFunc: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(EnvModule, "/lib/p11.so")
	t.Setenv(EnvToken, "tok")
	t.Setenv(EnvPIN, "1234")
	t.Setenv(EnvSessions, "5")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := c.pin(); c.Path != "/lib/p11.so" || c.TokenLabel != "tok" || c.Sessions != 5 || pin != "1234" || err != nil {
		t.Errorf("ConfigFromEnv = %v (PIN %q, %v)", c, pin, err)
	}
	t.Setenv(EnvSessions, "zero")
	if _, err := ConfigFromEnv(); err == nil {
		t.Error("ConfigFromEnv accepted a bad session count")
	}
	t.Setenv(EnvSessions, "")
	os.Unsetenv(EnvPIN)
	c, _ = ConfigFromEnv()
	if _, err := c.pin(); err == nil {
		t.Error("PINFunc succeeded with no PIN in the environment")
	}
	t.Setenv(EnvToken, "")
	if _, err := ConfigFromEnv(); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("ConfigFromEnv without a token: %v, want ErrNotConfigured", err)
	}
}

// TestMechanismParams checks the C layout built for
// CK_KEY_DERIVATION_STRING_DATA and CK_DES_CBC_ENCRYPT_DATA_PARAMS.
func TestMechanismParams(t *testing.T) {
	var pin runtime.Pinner
	defer pin.Unpin()
	data := []byte("0123456789ABCDEF")
	m := encryptDataMech(0x1102, &pin, data)[0]
	if len(m.Parameter) != ptrSize+ulongSize {
		t.Fatalf("derivation string data is %d bytes, want %d", len(m.Parameter), ptrSize+ulongSize)
	}
	if got := readUint(m.Parameter, ptrSize); got != uint64(uintptr(unsafe.Pointer(&data[0]))) {
		t.Errorf("pData = %#x, want the data's address", got)
	}
	if got := readUint(m.Parameter[ptrSize:], ulongSize); got != uint64(len(data)) {
		t.Errorf("ulLen = %d, want %d", got, len(data))
	}
	iv := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	c := cbcEncryptDataMech(0x1103, &pin, iv, data)[0]
	if len(c.Parameter) != 8+ptrSize+ulongSize || string(c.Parameter[:8]) != string(iv) {
		t.Fatalf("CBC parameters %X", c.Parameter)
	}
	if got := readUint(c.Parameter[8+ptrSize:], ulongSize); got != uint64(len(data)) {
		t.Errorf("length = %d, want %d", got, len(data))
	}
}

func readUint(b []byte, n int) uint64 {
	if n == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}

// TestConcurrentUse runs many goroutines on a module with two sessions and
// checks every result against the reference.
func TestConcurrentUse(t *testing.T) {
	f := fixtureFor(t)
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sessions = 2
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				pan := fmt.Sprintf("47617390%08d", g*100+i)
				pk, err := m.Derive(context.Background(), perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(pan, 1), KEK: f.kek})
				if err != nil {
					errs <- err
					return
				}
				want, _ := kdf.OptionA(imkValue, pan, 1)
				if got := openKey(t, pk); !crypt.EqualModParity(got, want) {
					errs <- fmt.Errorf("PAN %s: wrong key", pan)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSessionWait checks that an operation waiting for a session gives up
// with its context or the configured wait, and that Close is final.
func TestSessionWait(t *testing.T) {
	f := fixtureFor(t)
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sessions, cfg.SessionWait = 1, 50*time.Millisecond
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: f.kek}
	s := <-m.pool // hold the only session
	if _, err := m.Derive(context.Background(), req); err == nil || !strings.Contains(err.Error(), "no session free") {
		t.Errorf("Derive with no free session: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Derive(ctx, req); !errors.Is(err, context.Canceled) {
		t.Errorf("Derive with a cancelled context: %v", err)
	}
	m.pool <- s
	if _, err := m.Derive(context.Background(), req); err != nil {
		t.Errorf("Derive with the session back: %v", err)
	}
	// An operation waiting for a session when Close comes is released.
	m.wait = 0
	s = <-m.pool
	waiting := make(chan error)
	go func() {
		_, err := m.Derive(context.Background(), req)
		waiting <- err
	}()
	time.Sleep(20 * time.Millisecond)
	go func() { time.Sleep(20 * time.Millisecond); m.pool <- s }()
	m.Close()
	if err := <-waiting; !errors.Is(err, errClosed) {
		t.Errorf("Derive waiting during Close: %v", err)
	}
	m.Close()
	if _, err := m.Derive(context.Background(), req); !errors.Is(err, errClosed) {
		t.Errorf("Derive after Close: %v", err)
	}
	// The shared fixture still works: the library stays loaded.
	if _, err := f.m.Derive(context.Background(), req); err != nil {
		t.Errorf("another module after Close: %v", err)
	}
}

// TestKeyCopies checks that operations give the same results with and
// without session copies, and that a copy lost behind the module's back
// (a stale handle) is made again.
func TestKeyCopies(t *testing.T) {
	f := fixtureFor(t)
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoKeyCopies = true
	direct, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx := context.Background()
	req := perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: f.kek}
	a, err := direct.Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.m.Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.KCV != b.KCV || !crypt.Equal(openKey(t, a), openKey(t, b)) {
		t.Error("derivations with and without key copies differ")
	}
	err = direct.do(ctx, func(s *session) error {
		k, err := direct.findKey(s, p11.CKO_SECRET_KEY, f.imk.String())
		if err == nil && k.copied {
			t.Error("NoKeyCopies: the key was copied")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Another module's session copy of the issuer key has its label: the
	// public key lookup finds the token's pair alone.
	block := make([]byte, 128)
	block[0] = 0x6A
	if _, err := f.m.SignRaw(ctx, f.issuer, block); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.PublicKey(ctx, f.issuer); err != nil {
		t.Errorf("PublicKey beside another module's key copy: %v", err)
	}

	// Destroy the fixture's copy of the IMK: the next derivation meets a
	// stale handle, refreshes and succeeds.
	err = f.m.do(ctx, func(s *session) error {
		k, err := f.m.findKey(s, p11.CKO_SECRET_KEY, f.imk.String())
		if err != nil {
			return err
		}
		if !k.copied {
			t.Skip("the token refuses key copies")
		}
		return f.m.ctx.DestroyObject(s.h, k.h)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.m.Derive(ctx, req); err != nil || c.KCV != b.KCV {
		t.Errorf("Derive after the copy was lost: %v", err)
	}
}
