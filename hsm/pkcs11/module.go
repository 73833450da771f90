package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/cardperso/perso"
	p11 "github.com/miekg/pkcs11"
)

// Module is a PKCS#11 token used as the security module of both sides of
// personalization: it implements [perso.KeyDeriver], [perso.Certifier],
// [perso.Protector] and [perso.Translator].
//
// A Module is safe for concurrent use by any number of goroutines. It
// holds a pool of Config.Sessions PKCS#11 sessions; every operation takes
// one session for its whole duration (PKCS#11 sessions must not be shared
// between threads, v2.40 section 5.1.4), so at most that many operations
// run in the token at once and the others wait for a free session. Close
// waits for operations in progress and must not be called concurrently
// with new ones.
type Module struct {
	c11   *crypto11.Context // login and the persistent session, issuer key lookups
	ctx   *p11.Ctx
	slot  uint
	token string // token label, for messages and Capabilities

	pool    chan *session
	size    int // sessions configured
	opened  int // sessions in the pool, which Close collects
	wait    time.Duration
	closed  atomic.Bool
	done    chan struct{} // closed by Close, to release waiting operations
	closing sync.Once

	keys   keyCache
	copier session    // holds the session copies of token keys; zero with NoKeyCopies
	copyMu sync.Mutex // serializes key lookups that copy, and the copier session
	pubs   sync.Map   // KeyRef -> *rsa.PublicKey of issuer keys

	feat features
	caps perso.Capabilities
}

// session is one PKCS#11 session of the pool. dead marks a session that
// failed with an error that invalidates it; it is reopened before reuse.
type session struct {
	h    p11.SessionHandle
	dead bool
}

// Compile-time checks of the contracts the Module fulfils.
var (
	_ perso.KeyDeriver = (*Module)(nil)
	_ perso.Certifier  = (*Module)(nil)
	_ perso.Protector  = (*Module)(nil)
	_ perso.Translator = (*Module)(nil)
)

// Open loads the PKCS#11 library, finds the token, logs in, opens the
// session pool and probes what the token can do (see [Module.Capabilities]).
//
// The library is initialized and the user logged in through crypto11,
// which keeps one session open for the Module's lifetime so that the login
// state persists; the pool's sessions are opened on the same library
// instance, where a second C_Initialize answers
// CKR_CRYPTOKI_ALREADY_INITIALIZED and a second C_Login
// CKR_USER_ALREADY_LOGGED_IN, both of which mean success here.
func Open(cfg Config) (*Module, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, err
	}
	c11, err := crypto11.Configure(&crypto11.Config{
		Path:        cfg.Path,
		TokenLabel:  cfg.TokenLabel,
		TokenSerial: cfg.TokenSerial,
		SlotNumber:  cfg.Slot,
		Pin:         pin,
		MaxSessions: 2, // the persistent session and one for crypto11's own lookups
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open %s: %w", cfg.Path, err)
	}
	m := &Module{c11: c11, size: cfg.sessions(), wait: cfg.SessionWait, done: make(chan struct{})}
	if err := m.open(cfg, pin); err != nil {
		m.release()
		return nil, err
	}
	if err := m.probe(); err != nil {
		m.release()
		return nil, err
	}
	return m, nil
}

// open loads the library a second time for direct calls, finds the slot
// and fills the session pool.
func (m *Module) open(cfg Config, pin string) error {
	m.ctx = p11.New(cfg.Path)
	if m.ctx == nil {
		return fmt.Errorf("pkcs11: cannot load %s", cfg.Path)
	}
	if err := m.ctx.Initialize(); err != nil && !isCKR(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fmt.Errorf("pkcs11: C_Initialize: %w", err)
	}
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("pkcs11: C_GetSlotList: %w", err)
	}
	found := false
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			return fmt.Errorf("pkcs11: C_GetTokenInfo(slot %d): %w", s, err)
		}
		if (cfg.TokenLabel != "" && ti.Label == cfg.TokenLabel) ||
			(cfg.TokenSerial != "" && ti.SerialNumber == cfg.TokenSerial) ||
			(cfg.Slot != nil && uint(*cfg.Slot) == s) {
			m.slot, m.token, found = s, ti.Label, true
			break
		}
	}
	if !found {
		return fmt.Errorf("pkcs11: token not found in %s", cfg.Path)
	}
	if !cfg.NoKeyCopies {
		if err := m.reopen(&m.copier); err != nil {
			return err
		}
	}
	m.pool = make(chan *session, m.size)
	for i := 0; i < m.size; i++ {
		s := &session{}
		if err := m.reopen(s); err != nil {
			return err
		}
		m.pool <- s
		m.opened++
	}
	// The user is logged in already through crypto11; logging in again on
	// a pool session confirms the PIN is right for this slot.
	s := <-m.pool
	err = m.ctx.Login(s.h, p11.CKU_USER, pin)
	m.pool <- s
	if err != nil && !isCKR(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
		return fmt.Errorf("pkcs11: C_Login: %w", err)
	}
	return nil
}

// reopen opens a fresh read-write session in place of s.
func (m *Module) reopen(s *session) error {
	if s.h != 0 {
		_ = m.ctx.CloseSession(s.h)
		s.h = 0
	}
	h, err := m.ctx.OpenSession(m.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		s.dead = true
		return fmt.Errorf("pkcs11: C_OpenSession: %w", err)
	}
	s.h, s.dead = h, false
	return nil
}

// Close waits for operations in progress, closes the sessions and unloads
// the library when no other Module uses it. It is safe to call more than
// once.
func (m *Module) Close() error {
	m.closing.Do(func() {
		m.closed.Store(true)
		close(m.done)
		m.release()
	})
	return nil
}

// release frees whatever Open got as far as acquiring.
func (m *Module) release() {
	if m.pool != nil {
		for i := 0; i < m.opened; i++ {
			s := <-m.pool
			if s.h != 0 {
				_ = m.ctx.CloseSession(s.h)
			}
		}
	}
	if m.copier.h != 0 {
		_ = m.ctx.CloseSession(m.copier.h) // destroys the key copies
	}
	if m.ctx != nil {
		// crypto11 owns C_Finalize: it calls it when its last Context on
		// this library closes. Destroy only drops this handle on the
		// library.
		m.ctx.Destroy()
	}
	if m.c11 != nil {
		_ = m.c11.Close()
	}
}

// errClosed is returned for operations on a closed Module.
var errClosed = errors.New("pkcs11: module is closed")

// acquire takes a session from the pool, waiting for ctx, the configured
// SessionWait, or Close.
func (m *Module) acquire(ctx context.Context) (*session, error) {
	if m.closed.Load() {
		return nil, errClosed
	}
	select {
	case s := <-m.pool:
		return s, nil
	default:
	}
	var timeout <-chan time.Time
	if m.wait > 0 {
		t := time.NewTimer(m.wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case s := <-m.pool:
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pkcs11: waiting for a session: %w", ctx.Err())
	case <-timeout:
		return nil, fmt.Errorf("pkcs11: no session free after %v", m.wait)
	case <-m.done:
		return nil, errClosed
	}
}

// do runs fn with a session of its own. It reopens a session that a
// token error invalidated, and retries fn once when a cached object
// handle turned out stale (the token was reset or the object replaced).
func (m *Module) do(ctx context.Context, fn func(*session) error) error {
	s, err := m.acquire(ctx)
	if err != nil {
		return err
	}
	defer func() { m.pool <- s }()
	if m.closed.Load() {
		return errClosed
	}
	if s.dead {
		if err := m.reopen(s); err != nil {
			return err
		}
	}
	err = fn(s)
	if isCKR(err, p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_KEY_HANDLE_INVALID) {
		m.refresh()
		err = fn(s)
	}
	if isCKR(err, p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED,
		p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_DEVICE_ERROR) {
		m.refresh()
		_ = m.reopen(s)
	}
	return err
}

// refresh forgets the keys found so far, and reopens the session that
// holds their copies when it was lost with them.
func (m *Module) refresh() {
	m.resetKeys()
	m.copyMu.Lock()
	defer m.copyMu.Unlock()
	if m.copier.h != 0 {
		if _, err := m.ctx.GetSessionInfo(m.copier.h); err != nil {
			_ = m.reopen(&m.copier)
		}
	}
}

// isCKR reports whether err carries one of the PKCS#11 return values.
func isCKR(err error, codes ...uint) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if uint(e) == c {
			return true
		}
	}
	return false
}

// fail wraps a token error for operation op, adding the perso sentinel
// that the return value means: ErrUnsupported when the token refuses the
// mechanism or the key's use, ErrBadInput when the input does not decrypt
// or has the wrong length. Other errors are failures of the module that
// a caller may retry.
func fail(op string, err error) error {
	var ckr p11.Error
	if err == nil || !errors.As(err, &ckr) {
		return err // nil, or an error of this package that says enough
	}
	switch {
	case isCKR(err, p11.CKR_MECHANISM_INVALID, p11.CKR_MECHANISM_PARAM_INVALID,
		p11.CKR_KEY_TYPE_INCONSISTENT, p11.CKR_KEY_FUNCTION_NOT_PERMITTED,
		p11.CKR_KEY_NOT_WRAPPABLE, p11.CKR_KEY_SIZE_RANGE, p11.CKR_FUNCTION_NOT_SUPPORTED,
		p11.CKR_TEMPLATE_INCONSISTENT, p11.CKR_ATTRIBUTE_VALUE_INVALID):
		return fmt.Errorf("pkcs11: %s: %w: %w", op, perso.ErrUnsupported, err)
	case isCKR(err, p11.CKR_WRAPPED_KEY_INVALID, p11.CKR_WRAPPED_KEY_LEN_RANGE,
		p11.CKR_ENCRYPTED_DATA_INVALID, p11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		p11.CKR_DATA_LEN_RANGE, p11.CKR_DATA_INVALID):
		return fmt.Errorf("pkcs11: %s: %w: %w", op, perso.ErrBadInput, err)
	}
	return fmt.Errorf("pkcs11: %s: %w", op, err)
}
