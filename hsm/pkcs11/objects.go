package pkcs11

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cardperso/perso"
	p11 "github.com/miekg/pkcs11"
)

// keyInfo is a token key found by label: the handle to use (its session
// copy, or the token object itself), its PKCS#11 key type and, for secret
// keys, length in bytes.
type keyInfo struct {
	h      p11.ObjectHandle
	typ    uint
	length int
	copied bool // h is a session copy the module made
}

// keyCache remembers the keys found by class and label. Handles stay valid
// while the application has sessions open, which the Module's own sessions
// guarantee; a stale handle (the token was reinitialized, a session lost)
// makes Module.do reset the cache and try once more.
type keyCache struct {
	mu sync.RWMutex
	m  map[cacheKey]keyInfo
}

type cacheKey struct {
	class uint
	label string
}

func (c *keyCache) get(k cacheKey) (keyInfo, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ki, ok := c.m[k]
	return ki, ok
}

func (c *keyCache) put(k cacheKey, ki keyInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[cacheKey]keyInfo)
	}
	c.m[k] = ki
}

// reset empties the cache and returns what it held.
func (c *keyCache) reset() []keyInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []keyInfo
	for _, ki := range c.m {
		out = append(out, ki)
	}
	c.m = nil
	return out
}

// resetKeys empties the key cache and destroys the session copies it held.
func (m *Module) resetKeys() {
	m.copyMu.Lock()
	defer m.copyMu.Unlock()
	for _, ki := range m.keys.reset() {
		if ki.copied && m.copier.h != 0 {
			_ = m.ctx.DestroyObject(m.copier.h, ki.h)
		}
	}
}

// findKey returns the one token object of the class with the label. It
// returns an error that wraps perso.ErrNoSuchKey when there is none, and
// an error when the label is ambiguous.
//
// Unless Config.NoKeyCopies is set, the first lookup copies the key into a
// session object (C_CopyObject with CKA_TOKEN false, in a session the
// Module keeps for the purpose), which every later operation uses. PKCS#11
// lets a copy keep but never weaken CKA_SENSITIVE, CKA_EXTRACTABLE and the
// usage attributes, so the copy is as confined as the key; it spares a
// token with a file store (SoftHSM2) checking the key's file at every use,
// about half the cost of a derivation or a wrap there. A token that
// refuses the copy (CKA_COPYABLE or CKA_MODIFIABLE false) has its key used
// directly.
func (m *Module) findKey(s *session, class uint, label string) (keyInfo, error) {
	ck := cacheKey{class, label}
	if ki, ok := m.keys.get(ck); ok {
		return ki, nil
	}
	m.copyMu.Lock()
	defer m.copyMu.Unlock()
	if ki, ok := m.keys.get(ck); ok { // found by another operation meanwhile
		return ki, nil
	}
	hs, err := m.findObjects(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}, 2)
	if err != nil {
		return keyInfo{}, fail("find "+label, err)
	}
	switch len(hs) {
	case 0:
		return keyInfo{}, fmt.Errorf("pkcs11: %w: %s", perso.ErrNoSuchKey, label)
	case 1:
	default:
		return keyInfo{}, fmt.Errorf("pkcs11: label %s names more than one %s", label, className(class))
	}
	ki := keyInfo{h: hs[0]}
	got, err := m.ctx.GetAttributeValue(s.h, ki.h, []*p11.Attribute{p11.NewAttribute(p11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return keyInfo{}, fail("key type of "+label, err)
	}
	ki.typ = ulong(got[0].Value)
	switch ki.typ {
	case p11.CKK_DES2:
		ki.length = 16
	case p11.CKK_DES3:
		ki.length = 24
	case p11.CKK_AES, p11.CKK_GENERIC_SECRET:
		got, err := m.ctx.GetAttributeValue(s.h, ki.h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return keyInfo{}, fail("length of "+label, err)
		}
		ki.length = int(ulong(got[0].Value))
	}
	if m.copier.h != 0 {
		if h, err := m.ctx.CopyObject(m.copier.h, ki.h, []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false)}); err == nil {
			ki.h, ki.copied = h, true
		}
	}
	m.keys.put(ck, ki)
	return ki, nil
}

// findObjects returns up to max handles of objects that match template.
func (m *Module) findObjects(s *session, template []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	if err := m.ctx.FindObjectsInit(s.h, template); err != nil {
		return nil, err
	}
	hs, _, err := m.ctx.FindObjects(s.h, max)
	if ferr := m.ctx.FindObjectsFinal(s.h); err == nil {
		err = ferr
	}
	return hs, err
}

// className names an object class in messages.
func className(class uint) string {
	switch class {
	case p11.CKO_SECRET_KEY:
		return "secret key"
	case p11.CKO_PRIVATE_KEY:
		return "private key"
	case p11.CKO_PUBLIC_KEY:
		return "public key"
	}
	return fmt.Sprintf("object of class 0x%X", class)
}

// ulong decodes a CK_ULONG attribute value (native byte order, the size
// of a C unsigned long).
func ulong(b []byte) uint {
	switch len(b) {
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	}
	return 0
}

// masterKey finds the secret key that ref names and checks that it is a
// 3DES key (des) or an AES key (!des).
func (m *Module) masterKey(s *session, ref perso.KeyRef, des bool) (keyInfo, error) {
	ki, err := m.findKey(s, p11.CKO_SECRET_KEY, ref.String())
	if err != nil {
		return keyInfo{}, err
	}
	if isDES(ki.typ) != des {
		want := "a 3DES"
		if !des {
			want = "an AES"
		}
		return keyInfo{}, fmt.Errorf("pkcs11: %w: %s is a %s key; the method needs %s key", perso.ErrUnsupported, ref, keyTypeName(ki.typ), want)
	}
	return ki, nil
}

// kek finds the KEK that id names and checks that its type fits the
// scheme: AES for SchemeAESKW, double-length 3DES for SchemeDES3ECB. A
// KEK of the wrong type is reported as a missing key: the token holds no
// KEK for that identifier.
func (m *Module) kek(s *session, id perso.KEKID) (keyInfo, error) {
	if !id.Scheme.Valid() {
		return keyInfo{}, fmt.Errorf("pkcs11: %w: KEK %s has an unknown scheme", perso.ErrBadInput, id)
	}
	if id.Scheme == perso.SchemeDES3ECB && !m.feat.des3Wrap {
		return keyInfo{}, fmt.Errorf("pkcs11: %w: KEK %s: the token cannot wrap keys under a 3DES key (no CKM_DES3_ECB key wrap)", perso.ErrUnsupported, id)
	}
	ki, err := m.findKey(s, p11.CKO_SECRET_KEY, id.Label())
	if err != nil {
		return keyInfo{}, err
	}
	want := uint(p11.CKK_AES)
	if id.Scheme == perso.SchemeDES3ECB {
		want = p11.CKK_DES2
	}
	if ki.typ != want {
		return keyInfo{}, fmt.Errorf("pkcs11: %w: %s is a %s key, scheme %s needs %s", perso.ErrNoSuchKey, id.Label(), keyTypeName(ki.typ), id.Scheme, keyTypeName(want))
	}
	return ki, nil
}

func isDES(t uint) bool { return t == p11.CKK_DES2 || t == p11.CKK_DES3 }

func keyTypeName(t uint) string {
	switch t {
	case p11.CKK_DES:
		return "DES"
	case p11.CKK_DES2:
		return "DES2"
	case p11.CKK_DES3:
		return "DES3"
	case p11.CKK_AES:
		return "AES"
	case p11.CKK_GENERIC_SECRET:
		return "generic secret"
	case p11.CKK_RSA:
		return "RSA"
	}
	return fmt.Sprintf("key type 0x%X", t)
}

// ckKeyType returns the PKCS#11 key type of a perso key type.
func ckKeyType(t perso.KeyType) uint {
	if t.IsDES() {
		if t == perso.KeyDES3 {
			return p11.CKK_DES3
		}
		return p11.CKK_DES2
	}
	return p11.CKK_AES
}

// sessionKey returns the template of a session object that holds a card
// key, a MAC key or an intermediate value: sensitive, extractable only by
// wrapping, with the usages given. Session objects exist only in this
// application's sessions and are destroyed as soon as the operation that
// made them ends; they are not CKA_PRIVATE, which spares the token
// encrypting their attributes under the user's key for the microseconds
// they live (CKA_SENSITIVE still keeps the value in). length is set for
// AES and generic secret keys only.
func sessionKey(typ uint, length int, usage ...uint) []*p11.Attribute {
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, typ),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
	}
	if length > 0 && (typ == p11.CKK_AES || typ == p11.CKK_GENERIC_SECRET) {
		t = append(t, p11.NewAttribute(p11.CKA_VALUE_LEN, length))
	}
	for _, u := range usage {
		t = append(t, p11.NewAttribute(u, true))
	}
	return t
}

// with sets attribute typ of template t to v, replacing it or appending it.
func with(t []*p11.Attribute, typ uint, v any) []*p11.Attribute {
	a := p11.NewAttribute(typ, v)
	for i := range t {
		if t[i].Type == typ {
			t[i] = a
			return t
		}
	}
	return append(t, a)
}

// readable turns a session key template into one whose value the host
// may read: used only for the values that leave the token by design
// (secure channel session keys) and for the fallbacks Capabilities lists.
func readable(t []*p11.Attribute) []*p11.Attribute {
	return with(t, p11.CKA_SENSITIVE, false)
}

// value reads CKA_VALUE of a readable object.
func (m *Module) value(s *session, h p11.ObjectHandle) ([]byte, error) {
	got, err := m.ctx.GetAttributeValue(s.h, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if err != nil {
		return nil, err
	}
	return got[0].Value, nil
}

// destroy removes a session object. A failure leaves the object until the
// session closes; nothing can be done about it here.
func (m *Module) destroy(s *session, h p11.ObjectHandle) {
	if h != 0 {
		_ = m.ctx.DestroyObject(s.h, h)
	}
}
