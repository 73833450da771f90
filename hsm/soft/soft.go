package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/protect"
	"github.com/cardperso/perso/internal/rsax"
)

// ErrNotAcknowledged is returned by New without NotForProduction.
var ErrNotAcknowledged = errors.New("soft: the software security module keeps every key in process memory and is not for production; pass soft.NotForProduction() to use it")

// Option configures a Module.
type Option func(*config)

type config struct {
	ack  bool
	rand io.Reader
	name string
}

// NotForProduction acknowledges that the module keeps every key, master
// keys included, in process memory. New refuses to start without it.
func NotForProduction() Option { return func(c *config) { c.ack = true } }

// WithRand sets the randomness for key generation (default crypto/rand).
func WithRand(r io.Reader) Option { return func(c *config) { c.rand = r } }

// WithSeed makes key generation deterministic: the module draws its
// randomness from AES-256-CTR keyed with SHA-256(seed). For tests only.
func WithSeed(seed []byte) Option {
	return func(c *config) { c.rand = newSeededReader(seed) }
}

// WithName sets the module name that Capabilities reports.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// Module is the software security module. It is safe for concurrent use.
type Module struct {
	rand io.Reader
	name string
	// randMu serializes reads of a seeded reader, which is not safe for
	// concurrent use; crypto/rand does not need it but costs nothing here.
	randMu sync.Mutex

	mu   sync.RWMutex
	sym  map[perso.KeyRef]*symKey
	keks map[kekSlot]*kekEntry
	rsa  map[perso.KeyRef]*issuerKey
}

// kekSlot is where a KEK is kept: its issuer and version, as
// perso.KEKID.Label names it. The scheme is checked on use.
type kekSlot struct {
	issuer  perso.IssuerID
	version uint8
}

func slotOf(id perso.KEKID) kekSlot { return kekSlot{id.Issuer, id.Version} }

type issuerKey struct {
	key *rsa.PrivateKey
	raw *rsax.Private
}

type symKey struct {
	typ perso.KeyType
	b   []byte
	// des3 is the triple-DES cipher of a KeyDES2 key, its key schedules
	// made once at import for the derivations (nil for other types).
	des3 cipher.Block
}

type kekEntry struct {
	id  perso.KEKID
	kek *protect.KEK
	kcv [3]byte
	key []byte // kept only so that WriteKeyFile can save it
}

// New returns an empty module. It fails with ErrNotAcknowledged unless
// NotForProduction is among the options.
func New(opts ...Option) (*Module, error) {
	c := config{rand: rand.Reader, name: "soft"}
	for _, o := range opts {
		o(&c)
	}
	if !c.ack {
		return nil, ErrNotAcknowledged
	}
	return &Module{
		rand: c.rand,
		name: c.name,
		sym:  map[perso.KeyRef]*symKey{},
		keks: map[kekSlot]*kekEntry{},
		rsa:  map[perso.KeyRef]*issuerKey{},
	}, nil
}

// String names the module without any key.
func (m *Module) String() string {
	return fmt.Sprintf("soft security module %q (not for production)", m.name)
}

func (m *Module) readRand(b []byte) error {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	_, err := io.ReadFull(m.rand, b)
	return err
}

type lockedReader struct{ m *Module }

func (r lockedReader) Read(b []byte) (int, error) {
	if err := r.m.readRand(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// ImportKey stores a symmetric key (a master key, a KMC) under ref and
// returns its KCV. DES keys get odd parity.
func (m *Module) ImportKey(ref perso.KeyRef, t perso.KeyType, key []byte) ([3]byte, error) {
	if t.Len() == 0 || len(key) != t.Len() {
		return [3]byte{}, fmt.Errorf("soft: importing %s: a %s key is %d bytes, not %d", ref, t, t.Len(), len(key))
	}
	b := append([]byte(nil), key...)
	if t.IsDES() {
		crypt.SetOddParity(b)
	}
	kcv, err := protect.KCV(t, b)
	if err != nil {
		return kcv, err
	}
	k := &symKey{typ: t, b: b}
	if t == perso.KeyDES2 {
		if k.des3, err = crypt.NewDES3(b); err != nil {
			return kcv, fmt.Errorf("soft: importing %s: %w", ref, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.sym[ref]; ok {
		crypt.Zero(old.b)
	}
	m.sym[ref] = k
	return kcv, nil
}

// GenerateKey generates a random symmetric key under ref and returns its KCV.
func (m *Module) GenerateKey(ref perso.KeyRef, t perso.KeyType) ([3]byte, error) {
	b := make([]byte, t.Len())
	defer crypt.Zero(b)
	if len(b) == 0 {
		return [3]byte{}, fmt.Errorf("soft: generating %s: unknown key type %s", ref, t)
	}
	if err := m.readRand(b); err != nil {
		return [3]byte{}, fmt.Errorf("soft: generating %s: %w", ref, err)
	}
	return m.ImportKey(ref, t, b)
}

// kekType is the key type a scheme's KEK has.
func kekType(s perso.Scheme) perso.KeyType {
	if s == perso.SchemeDES3ECB {
		return perso.KeyDES2
	}
	return perso.KeyAES128
}

// ImportKEK stores a KEK and returns its KCV: a 16-byte AES key (or 24, 32)
// for SchemeAESKW, a 16-byte 3DES key for SchemeDES3ECB.
func (m *Module) ImportKEK(id perso.KEKID, key []byte) ([3]byte, error) {
	if !id.Scheme.Valid() {
		return [3]byte{}, fmt.Errorf("soft: importing KEK %s: %w: scheme", id, perso.ErrUnsupported)
	}
	b := append([]byte(nil), key...)
	defer crypt.Zero(b)
	t := kekType(id.Scheme)
	if t.IsDES() {
		crypt.SetOddParity(b)
	}
	k, err := protect.NewKEK(int(id.Scheme), b)
	if err != nil {
		return [3]byte{}, fmt.Errorf("soft: importing KEK %s: %w", id, err)
	}
	var kcv [3]byte
	if t.IsDES() {
		kcv, err = crypt.KCV(b)
	} else {
		kcv, err = crypt.KCVAES(b)
	}
	if err != nil {
		return kcv, err
	}
	m.mu.Lock()
	m.keks[slotOf(id)] = &kekEntry{id: id, kek: k, kcv: kcv, key: append([]byte(nil), b...)}
	m.mu.Unlock()
	return kcv, nil
}

// GenerateKEK generates a random KEK for id and returns its KCV.
func (m *Module) GenerateKEK(id perso.KEKID) ([3]byte, error) {
	b := make([]byte, 16)
	defer crypt.Zero(b)
	if err := m.readRand(b); err != nil {
		return [3]byte{}, err
	}
	return m.ImportKEK(id, b)
}

// KEKCheckValue returns the KCV of a KEK, which a batch header records
// and the Personalizer checks before the first record.
func (m *Module) KEKCheckValue(ctx context.Context, id perso.KEKID) ([3]byte, error) {
	e, err := m.kek(id)
	if err != nil {
		return [3]byte{}, err
	}
	return e.kcv, nil
}

// ImportRSAKey stores an RSA private key (an issuer key) under ref.
func (m *Module) ImportRSAKey(ref perso.KeyRef, k *rsa.PrivateKey) error {
	if k == nil || len(k.Primes) != 2 {
		return fmt.Errorf("soft: importing %s: want a two-prime RSA key", ref)
	}
	k.Precompute()
	raw, err := rsax.NewPrivate(k)
	if err != nil {
		return fmt.Errorf("soft: importing %s: %w", ref, err)
	}
	m.mu.Lock()
	m.rsa[ref] = &issuerKey{key: k, raw: raw}
	m.mu.Unlock()
	return nil
}

// GenerateRSAKey generates an RSA key pair under ref (an issuer or CA key)
// and returns its public key.
func (m *Module) GenerateRSAKey(ref perso.KeyRef, bits, e int) (*rsa.PublicKey, error) {
	k, err := rsax.GenerateKey(lockedReader{m}, bits, e)
	if err != nil {
		return nil, fmt.Errorf("soft: generating %s: %w", ref, err)
	}
	if err := m.ImportRSAKey(ref, k); err != nil {
		return nil, err
	}
	return &k.PublicKey, nil
}

func (m *Module) symmetric(ref perso.KeyRef) (*symKey, error) {
	m.mu.RLock()
	k, ok := m.sym[ref]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("soft: key %s: %w", ref, perso.ErrNoSuchKey)
	}
	return k, nil
}

func (m *Module) kek(id perso.KEKID) (*kekEntry, error) {
	m.mu.RLock()
	e, ok := m.keks[slotOf(id)]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("soft: KEK %s: %w", id.Label(), perso.ErrNoSuchKey)
	}
	if e.id.Scheme != id.Scheme {
		return nil, fmt.Errorf("soft: KEK %s is %s, not %s: %w", id.Label(), e.id.Scheme, id.Scheme, perso.ErrBadInput)
	}
	return e, nil
}

func (m *Module) private(ref perso.KeyRef) (*issuerKey, error) {
	m.mu.RLock()
	k, ok := m.rsa[ref]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("soft: RSA key %s: %w", ref, perso.ErrNoSuchKey)
	}
	return k, nil
}

// protectKey wraps a clear key under the KEK; it does not zero clear.
func (m *Module) protectKey(id perso.KEKID, t perso.KeyType, clear []byte) (perso.ProtectedKey, error) {
	e, err := m.kek(id)
	if err != nil {
		return perso.ProtectedKey{}, err
	}
	pk, err := e.kek.ProtectKey(id, t, clear)
	if err != nil {
		return perso.ProtectedKey{}, fmt.Errorf("soft: wrapping under %s: %w", id.Label(), err)
	}
	return pk, nil
}

// openKey unwraps a protected key and checks its KCV. The caller zeroes the result.
func (m *Module) openKey(k perso.ProtectedKey) ([]byte, error) {
	e, err := m.kek(k.KEK)
	if err != nil {
		return nil, err
	}
	clear, err := e.kek.OpenKey(k)
	if err != nil {
		return nil, fmt.Errorf("soft: opening a %s key under %s: %w: %w", k.Type, k.KEK.Label(), perso.ErrBadInput, err)
	}
	return clear, nil
}

// Derive implements perso.KeyDeriver.
func (m *Module) Derive(ctx context.Context, req perso.DeriveRequest) (perso.ProtectedKey, error) {
	if err := ctx.Err(); err != nil {
		return perso.ProtectedKey{}, err
	}
	mk, err := m.symmetric(req.Master)
	if err != nil {
		return perso.ProtectedKey{}, err
	}
	clear, t, err := derive(mk, req.Method, req.Data, req.Key)
	if err != nil {
		return perso.ProtectedKey{}, fmt.Errorf("soft: %s from %s: %w", req.Method, req.Master, err)
	}
	defer crypt.Zero(clear)
	return m.protectKey(req.KEK, t, clear)
}

// derive computes a derived key in clear. Errors wrap ErrBadInput or
// ErrUnsupported.
func derive(mk *symKey, method perso.Method, data []byte, key perso.GPKey) ([]byte, perso.KeyType, error) {
	needDES := method != perso.MethodSCP03KDF
	if needDES && mk.typ != perso.KeyDES2 {
		return nil, 0, fmt.Errorf("%w: the master key is %s, the method needs DES2", perso.ErrBadInput, mk.typ)
	}
	var (
		out []byte
		err error
	)
	switch method {
	case perso.MethodEMVOptionA, perso.MethodEMVOptionB:
		pan, psn, e := perso.SplitPANPSN(data)
		if e != nil {
			return nil, 0, e
		}
		if method == perso.MethodEMVOptionA {
			out, err = kdf.OptionACipher(mk.des3, pan, psn)
		} else {
			out, err = kdf.OptionBCipher(mk.des3, pan, psn)
		}
	case perso.MethodEncryptData:
		out, err = kdf.EncryptDataCipher(mk.des3, data)
	case perso.MethodCPS:
		out, err = kdf.DiversifyCPSCipher(mk.des3, data, int(key))
	case perso.MethodVISA2:
		out, err = kdf.DiversifyVISA2Cipher(mk.des3, data, int(key))
	case perso.MethodSCP03KDF:
		if mk.typ.IsDES() {
			return nil, 0, fmt.Errorf("%w: SCP03 diversification needs an AES master key", perso.ErrBadInput)
		}
		out, err = kdf.DiversifySCP03(mk.b, data, int(key))
		if err == nil {
			return out, mk.typ, nil
		}
	default:
		return nil, 0, fmt.Errorf("%w: method %s", perso.ErrUnsupported, method)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", perso.ErrBadInput, err)
	}
	return out, perso.KeyDES2, nil
}

// Cryptogram implements perso.KeyDeriver.
func (m *Module) Cryptogram(ctx context.Context, req perso.CryptogramRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mk, err := m.symmetric(req.Master)
	if err != nil {
		return nil, err
	}
	if req.Method != perso.MethodEMVOptionA && req.Method != perso.MethodEMVOptionB {
		return nil, fmt.Errorf("soft: cryptogram with %s: %w", req.Method, perso.ErrUnsupported)
	}
	udk, _, err := derive(mk, req.Method, perso.PANPSN(req.PAN, req.PSN), 0)
	if err != nil {
		return nil, fmt.Errorf("soft: cryptogram: %w", err)
	}
	defer crypt.Zero(udk)
	sk, err := kdf.SessionKey(udk, req.ATC)
	if err != nil {
		return nil, fmt.Errorf("soft: cryptogram: %w", err)
	}
	defer crypt.Zero(sk)
	if req.ARC != nil {
		return kdf.ARPC1(sk, req.Data, req.ARC)
	}
	return kdf.AC(sk, req.Data)
}

// Seal implements perso.Protector.
func (m *Module) Seal(ctx context.Context, id perso.KEKID, clear []byte) (perso.Sealed, error) {
	e, err := m.kek(id)
	if err != nil {
		return nil, err
	}
	w, err := e.kek.WrapValue(clear)
	if err != nil {
		return nil, fmt.Errorf("soft: sealing under %s: %w", id.Label(), err)
	}
	return perso.SealValueOf(w), nil
}

// macKeyType is the MAC key a scheme uses.
func macKeyType(s perso.Scheme) perso.KeyType {
	if s == perso.SchemeDES3ECB {
		return perso.KeyDES2
	}
	return perso.KeyAES128
}

// NewMACKey implements perso.Protector.
func (m *Module) NewMACKey(ctx context.Context, id perso.KEKID) (perso.ProtectedKey, error) {
	t := macKeyType(id.Scheme)
	b := make([]byte, t.Len())
	defer crypt.Zero(b)
	if err := m.readRand(b); err != nil {
		return perso.ProtectedKey{}, err
	}
	if t.IsDES() {
		crypt.SetOddParity(b)
	}
	return m.protectKey(id, t, b)
}

// MAC implements perso.Protector.
func (m *Module) MAC(ctx context.Context, key perso.ProtectedKey, data []byte) ([]byte, error) {
	if key.Type != macKeyType(key.KEK.Scheme) {
		return nil, fmt.Errorf("soft: a %s MAC key under a %s KEK: %w", key.Type, key.KEK.Scheme, perso.ErrBadInput)
	}
	clear, err := m.openKey(key)
	if err != nil {
		return nil, err
	}
	defer crypt.Zero(clear)
	return protect.MAC(int(key.KEK.Scheme), clear, data)
}

// VerifyMAC implements perso.Translator.
func (m *Module) VerifyMAC(ctx context.Context, key perso.ProtectedKey, data, mac []byte) error {
	want, err := m.MAC(ctx, key, data)
	if err != nil {
		return err
	}
	if !crypt.Equal(want, mac) {
		return fmt.Errorf("soft: application MAC: %w", perso.ErrBadMAC)
	}
	return nil
}

// GenerateCardKey implements perso.Certifier.
func (m *Module) GenerateCardKey(ctx context.Context, req perso.CardKeyRequest) (*perso.CardKey, error) {
	if req.Exponent != 3 && req.Exponent != 65537 {
		return nil, fmt.Errorf("soft: card key exponent %d: %w", req.Exponent, perso.ErrUnsupported)
	}
	if req.Bits < 512 || req.Bits > 1984 || req.Bits%8 != 0 {
		return nil, fmt.Errorf("soft: card key of %d bits: %w (EMV allows 512..1984, a multiple of 8)", req.Bits, perso.ErrUnsupported)
	}
	e, err := m.kek(req.KEK)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := rsax.GenerateKey(lockedReader{m}, req.Bits, req.Exponent)
	if err != nil {
		return nil, fmt.Errorf("soft: card key: %w", err)
	}
	crt, err := rsax.ExportCRT(k)
	if err != nil {
		return nil, fmt.Errorf("soft: card key: %w", err)
	}
	defer crt.Zero()
	out := &perso.CardKey{Public: &k.PublicKey}
	for i, c := range crt.CPS() {
		w, err := e.kek.WrapValue(c)
		if err != nil {
			return nil, fmt.Errorf("soft: sealing card key component: %w", err)
		}
		out.CRT[i] = perso.SealValueOf(w)
	}
	return out, nil
}

// PublicKey implements perso.Certifier.
func (m *Module) PublicKey(ctx context.Context, ref perso.KeyRef) (*rsa.PublicKey, error) {
	k, err := m.private(ref)
	if err != nil {
		return nil, err
	}
	return &k.key.PublicKey, nil
}

// SignRaw implements perso.Certifier.
func (m *Module) SignRaw(ctx context.Context, ref perso.KeyRef, block []byte) ([]byte, error) {
	k, err := m.private(ref)
	if err != nil {
		return nil, err
	}
	s, err := k.raw.Raw(block)
	if err != nil {
		return nil, fmt.Errorf("soft: signing with %s: %w", ref, err)
	}
	return s, nil
}

// SessionKeys implements perso.Translator.
func (m *Module) SessionKeys(ctx context.Context, req perso.SessionKeyRequest) (*perso.SessionKeys, error) {
	kmc, err := m.symmetric(req.KMC)
	if err != nil {
		return nil, err
	}
	var static [3][]byte
	defer func() {
		for _, s := range static {
			crypt.Zero(s)
		}
	}()
	for i, key := range []perso.GPKey{perso.GPKeyENC, perso.GPKeyMAC, perso.GPKeyDEK} {
		if req.Method == 0 {
			static[i] = append([]byte(nil), kmc.b...)
			continue
		}
		if static[i], _, err = derive(kmc, req.Method, req.KDD, key); err != nil {
			return nil, fmt.Errorf("soft: card keys from %s: %w", req.KMC, err)
		}
	}
	return SessionKeysFromStatic(req, static[0], static[1], static[2])
}

// SessionKeysFromStatic derives the session keys of req.SCP from a card's
// static ENC, MAC and DEK keys: GlobalPlatform Card Specification 2.3
// Appendix E.4.1 for SCP02 (3DES-CBC of constant || sequence counter), and
// Amendment D 6.2.1 for SCP03 (the KDF with constants 04, 06, 07 and the
// host || card challenge context). For SCP03 the DEK is the static DEK.
func SessionKeysFromStatic(req perso.SessionKeyRequest, enc, mac, dek []byte) (*perso.SessionKeys, error) {
	sk := &perso.SessionKeys{SCP: req.SCP}
	var err error
	switch req.SCP.Version {
	case 0x02:
		if len(req.Sequence) != 2 {
			return nil, fmt.Errorf("soft: SCP02 sequence counter of %d bytes: %w", len(req.Sequence), perso.ErrBadInput)
		}
		// Each static key is made ready once: MAC serves C-MAC and R-MAC.
		type step struct {
			dst  *[]byte
			cnst uint16
		}
		for _, g := range []struct {
			key   []byte
			steps []step
		}{
			{enc, []step{{&sk.ENC, kdf.SCP02ConstENC}}},
			{mac, []step{{&sk.MAC, kdf.SCP02ConstCMAC}, {&sk.RMAC, kdf.SCP02ConstRMAC}}},
			{dek, []step{{&sk.DEK, kdf.SCP02ConstDEK}}},
		} {
			b, err := crypt.NewDES2(g.key)
			if err != nil {
				sk.Zero()
				return nil, fmt.Errorf("soft: SCP02 session key: %w", err)
			}
			for _, s := range g.steps {
				if *s.dst, err = kdf.SCP02SessionKeyCipher(b, s.cnst, req.Sequence); err != nil {
					sk.Zero()
					return nil, fmt.Errorf("soft: SCP02 session key: %w", err)
				}
			}
		}
	case 0x03:
		bits := len(enc) * 8
		steps := []struct {
			dst  *[]byte
			key  []byte
			cnst byte
		}{{&sk.ENC, enc, 0x04}, {&sk.MAC, mac, 0x06}, {&sk.RMAC, mac, 0x07}}
		for _, s := range steps {
			if *s.dst, err = kdf.SCP03KDF(s.key, s.cnst, req.Context, bits); err != nil {
				sk.Zero()
				return nil, fmt.Errorf("soft: SCP03 session key: %w", err)
			}
		}
		sk.DEK = append([]byte(nil), dek...)
	default:
		return nil, fmt.Errorf("soft: %s: %w", req.SCP, perso.ErrUnsupported)
	}
	return sk, nil
}

// Open returns the clear value of a sealed secret: the value, the
// concatenated keys, or the RSA component. It exists for tests and for the
// bureau-side checks of a development setup; the caller zeroes the result.
func (m *Module) Open(ctx context.Context, id perso.KEKID, s perso.Sealed) ([]byte, error) {
	e, err := m.kek(id)
	if err != nil {
		return nil, err
	}
	v, err := e.kek.OpenSealed(s)
	if err != nil {
		return nil, fmt.Errorf("soft: opening a sealed value under %s: %w: %w", id.Label(), perso.ErrBadInput, err)
	}
	return v, nil
}

// OpenKey returns a protected key in clear, after checking its KCV. For tests.
func (m *Module) OpenKey(ctx context.Context, k perso.ProtectedKey) ([]byte, error) {
	return m.openKey(k)
}

// Translate implements perso.Translator.
func (m *Module) Translate(ctx context.Context, id perso.KEKID, s perso.Sealed, to *perso.SessionKeys) ([]byte, error) {
	if to == nil || len(to.DEK) == 0 {
		return nil, fmt.Errorf("soft: translate: no DEK in the session keys: %w", perso.ErrBadInput)
	}
	clear, err := m.Open(ctx, id, s)
	if err != nil {
		return nil, err
	}
	defer crypt.Zero(clear)
	return protect.ForCard(to.SCP.Version, to.DEK, clear)
}

// Capabilities implements perso.Translator. Everything happens "inside"
// the module, which is this process.
func (m *Module) Capabilities() perso.Capabilities {
	return perso.Capabilities{
		Module:            m.name + " (software, not for production)",
		DeriveInModule:    true,
		KeyGenInModule:    true,
		SignInModule:      true,
		MACInModule:       true,
		TranslateInModule: true,
		Schemes:           []perso.Scheme{perso.SchemeAESKW, perso.SchemeDES3ECB},
		Fallbacks:         []string{"every key, master keys included, is in host memory: the module is the host process"},
	}
}

// seededReader is AES-256-CTR keyed by SHA-256(seed): deterministic bytes.
type seededReader struct{ s cipher.Stream }

func newSeededReader(seed []byte) io.Reader {
	k := sha256.Sum256(seed)
	b, _ := aes.NewCipher(k[:])
	return &seededReader{s: cipher.NewCTR(b, make([]byte, 16))}
}

func (r *seededReader) Read(p []byte) (int, error) {
	clear(p)
	r.s.XORKeyStream(p, p)
	return len(p), nil
}

var (
	_ perso.KeyDeriver = (*Module)(nil)
	_ perso.Certifier  = (*Module)(nil)
	_ perso.Protector  = (*Module)(nil)
	_ perso.Translator = (*Module)(nil)
)
