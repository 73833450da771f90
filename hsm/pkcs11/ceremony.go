package pkcs11

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ThalesGroup/crypto11"
	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	p11 "github.com/miekg/pkcs11"
)

// Role says what a key created by the ceremony functions is for, which
// fixes its PKCS#11 usage attributes.
type Role uint8

const (
	// RoleMaster is an issuer master key (IMK-AC, IMK-SMI, IMK-SMC, KML,
	// KMU): CKA_DERIVE only.
	RoleMaster Role = iota + 1
	// RoleKMC is a GlobalPlatform key master key: CKA_DERIVE; an AES KMC
	// also has CKA_SIGN, because the SCP03 KDF runs as CKM_AES_CMAC, and
	// CKA_WRAP, because with Method 0 it is the card's static DEK itself.
	RoleKMC
)

// ErrExists is returned when a ceremony function finds its label taken.
var ErrExists = errors.New("pkcs11: a key with this label exists")

// CreateKey puts a symmetric master key or KMC on the token under
// ref.String(): imported from value (known test values) or, with value
// nil, generated in the token. The key is a token object that is
// private, sensitive and never extractable, with only the usages of its
// role. It stays modifiable (PKCS#11 still forbids making it extractable
// or readable) so that the Module can use a session copy of it. It returns the KCV, computed in the token (and, for
// an imported value, checked against the value's own).
func (m *Module) CreateKey(ctx context.Context, ref perso.KeyRef, role Role, typ perso.KeyType, value []byte) ([3]byte, error) {
	if typ.Len() == 0 || typ == perso.KeyDES3 && role == RoleKMC {
		return [3]byte{}, fmt.Errorf("pkcs11: %w: %s key for a %v", perso.ErrUnsupported, typ, role)
	}
	usage := []uint{p11.CKA_DERIVE}
	if role == RoleKMC && !typ.IsDES() {
		usage = append(usage, p11.CKA_SIGN, p11.CKA_WRAP)
	}
	return m.createSecret(ctx, ref.String(), typ, value, usage)
}

// CreateKEK puts a KEK on the token under id.Label(): AES-128 for
// SchemeAESKW, DES2 for SchemeDES3ECB; imported from value or generated
// when value is nil. It can wrap and unwrap and do nothing else, and
// never leaves the token. It returns the KCV.
func (m *Module) CreateKEK(ctx context.Context, id perso.KEKID, value []byte) ([3]byte, error) {
	typ := perso.KeyAES128
	switch id.Scheme {
	case perso.SchemeAESKW:
		if value != nil {
			var ok bool
			if typ, ok = aesKeyType(len(value)); !ok {
				return [3]byte{}, fmt.Errorf("pkcs11: %w: AES KEK of %d bytes", perso.ErrBadInput, len(value))
			}
		}
	case perso.SchemeDES3ECB:
		if !m.feat.des3Wrap {
			return [3]byte{}, fmt.Errorf("pkcs11: %w: the token cannot wrap under a 3DES KEK", perso.ErrUnsupported)
		}
		typ = perso.KeyDES2
	default:
		return [3]byte{}, fmt.Errorf("pkcs11: %w: KEK %s", perso.ErrBadInput, id)
	}
	return m.createSecret(ctx, id.Label(), typ, value, []uint{p11.CKA_WRAP, p11.CKA_UNWRAP})
}

func (m *Module) createSecret(ctx context.Context, label string, typ perso.KeyType, value []byte, usage []uint) ([3]byte, error) {
	if value != nil && len(value) != typ.Len() {
		return [3]byte{}, fmt.Errorf("pkcs11: %w: %s key value of %d bytes", perso.ErrBadInput, typ, len(value))
	}
	var kcv [3]byte
	err := m.do(ctx, func(s *session) error {
		if err := m.free(s, label); err != nil {
			return err
		}
		t := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, ckKeyType(typ)),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_ID, []byte(label)),
		}
		for _, a := range []uint{p11.CKA_ENCRYPT, p11.CKA_DECRYPT, p11.CKA_SIGN, p11.CKA_VERIFY, p11.CKA_WRAP, p11.CKA_UNWRAP, p11.CKA_DERIVE} {
			t = append(t, p11.NewAttribute(a, slices.Contains(usage, a)))
		}
		var h p11.ObjectHandle
		var err error
		if value == nil {
			gen := uint(p11.CKM_AES_KEY_GEN)
			switch typ {
			case perso.KeyDES2:
				gen = p11.CKM_DES2_KEY_GEN
			case perso.KeyDES3:
				gen = p11.CKM_DES3_KEY_GEN
			default:
				t = append(t, p11.NewAttribute(p11.CKA_VALUE_LEN, typ.Len()))
			}
			h, err = m.ctx.GenerateKey(s.h, mech(gen, nil), t)
		} else {
			h, err = m.ctx.CreateObject(s.h, append(t, p11.NewAttribute(p11.CKA_VALUE, value)))
		}
		if err != nil {
			return fail("creating "+label, err)
		}
		if kcv, err = m.tokenKCV(s, h, typ, usage); err != nil {
			m.destroy(s, h)
			return err
		}
		if value != nil {
			want, err := hostKCV(typ, value)
			if err != nil || want != kcv {
				m.destroy(s, h)
				return fmt.Errorf("pkcs11: %s: the token's KCV %X differs from the value's", label, kcv[:])
			}
		}
		return nil
	})
	return kcv, err
}

// tokenKCV computes the KCV of a token key with no encrypt permission,
// through the one operation its role allows: a derive key gives the
// encryption of the check block by CKM_*_ECB_ENCRYPT_DATA into a
// readable three-byte generic secret; a KEK wraps the check block (as a
// generic secret) with CKM_DES3_ECB or CKM_AES_CBC and a zero IV.
func (m *Module) tokenKCV(s *session, h p11.ObjectHandle, typ perso.KeyType, usage []uint) ([3]byte, error) {
	block, mk := make([]byte, 8), uint(p11.CKM_DES3_ECB_ENCRYPT_DATA)
	if !typ.IsDES() {
		block, mk = []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, p11.CKM_AES_ECB_ENCRYPT_DATA
	}
	var out []byte
	if slices.Contains(usage, p11.CKA_DERIVE) {
		d, err := m.deriveEncrypt(s, h, mk, block, readable(sessionKey(p11.CKK_GENERIC_SECRET, 3)))
		if err != nil {
			return [3]byte{}, fail("KCV by derivation", err)
		}
		defer m.destroy(s, d)
		if out, err = m.value(s, d); err != nil {
			return [3]byte{}, fail("KCV by derivation", err)
		}
	} else {
		c, err := m.importKey(s, p11.CKK_GENERIC_SECRET, block)
		if err != nil {
			return [3]byte{}, err
		}
		defer m.destroy(s, c)
		wm, iv := uint(p11.CKM_DES3_ECB), []byte(nil)
		if !typ.IsDES() {
			wm, iv = p11.CKM_AES_CBC, make([]byte, 16)
		}
		if out, err = m.ctx.WrapKey(s.h, mech(wm, iv), h, c); err != nil {
			return [3]byte{}, fail("KCV by wrapping", err)
		}
	}
	if len(out) < 3 {
		return [3]byte{}, fmt.Errorf("pkcs11: KCV of %d bytes", len(out))
	}
	return [3]byte(out), nil
}

func hostKCV(typ perso.KeyType, v []byte) ([3]byte, error) {
	if typ.IsDES() {
		return crypt.KCV(v)
	}
	return crypt.KCVAES(v)
}

// CreateIssuerKey generates an issuer RSA key pair in the token through
// crypto11, under ref.String() as both CKA_LABEL and CKA_ID: the private
// key sensitive, never extractable, able only to sign; the public key able
// only to verify. It returns the public key.
func (m *Module) CreateIssuerKey(ctx context.Context, ref perso.KeyRef, bits, exponent int) (*rsa.PublicKey, error) {
	if bits < 512 || bits > 4096 || bits%8 != 0 || (exponent != 3 && exponent != 65537) {
		return nil, fmt.Errorf("pkcs11: %w: issuer key of %d bits, e=%d", perso.ErrUnsupported, bits, exponent)
	}
	label := ref.String()
	if err := m.do(ctx, func(s *session) error { return m.free(s, label) }); err != nil {
		return nil, err
	}
	pub, err := crypto11.NewAttributeSetWithIDAndLabel([]byte(label), []byte(label))
	if err != nil {
		return nil, err
	}
	priv := pub.Copy()
	for _, a := range []*p11.Attribute{
		p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(exponent)).Bytes()),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_WRAP, false),
	} {
		pub[a.Type] = a
	}
	for _, a := range []*p11.Attribute{
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
	} {
		priv[a.Type] = a
	}
	k, err := m.c11.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generating issuer key %s: %w", ref, err)
	}
	pk, ok := k.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs11: issuer key %s is not RSA", ref)
	}
	m.pubs.Store(ref, pk)
	return pk, nil
}

// ImportIssuerKey puts a known issuer key pair on the token, for tests and
// examples that need fixed keys; a real issuer key is generated in the
// token (CreateIssuerKey) or imported under a KEK by the token's own tools.
func (m *Module) ImportIssuerKey(ctx context.Context, ref perso.KeyRef, key *rsa.PrivateKey) (*rsa.PublicKey, error) {
	if key == nil || len(key.Primes) != 2 {
		return nil, fmt.Errorf("pkcs11: %w: issuer key must be a two-prime RSA key", perso.ErrBadInput)
	}
	key.Precompute()
	label := ref.String()
	e := big.NewInt(int64(key.E)).Bytes()
	common := func(class uint) []*p11.Attribute {
		return []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, class),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_ID, []byte(label)),
			p11.NewAttribute(p11.CKA_MODULUS, key.N.Bytes()),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, e),
		}
	}
	err := m.do(ctx, func(s *session) error {
		if err := m.free(s, label); err != nil {
			return err
		}
		priv := append(common(p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_DECRYPT, false),
			p11.NewAttribute(p11.CKA_PRIVATE_EXPONENT, key.D.Bytes()),
			p11.NewAttribute(p11.CKA_PRIME_1, key.Primes[0].Bytes()),
			p11.NewAttribute(p11.CKA_PRIME_2, key.Primes[1].Bytes()),
			p11.NewAttribute(p11.CKA_EXPONENT_1, key.Precomputed.Dp.Bytes()),
			p11.NewAttribute(p11.CKA_EXPONENT_2, key.Precomputed.Dq.Bytes()),
			p11.NewAttribute(p11.CKA_COEFFICIENT, key.Precomputed.Qinv.Bytes()),
		)
		hPriv, err := m.ctx.CreateObject(s.h, priv)
		if err != nil {
			return fail("importing issuer key "+label, err)
		}
		pub := append(common(p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_ENCRYPT, false))
		if _, err := m.ctx.CreateObject(s.h, pub); err != nil {
			m.destroy(s, hPriv)
			return fail("importing issuer public key "+label, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pk := &rsa.PublicKey{N: new(big.Int).Set(key.N), E: key.E}
	m.pubs.Store(ref, pk)
	return pk, nil
}

// free fails with ErrExists when a token object has the label.
func (m *Module) free(s *session, label string) error {
	hs, err := m.findObjects(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}, 1)
	if err != nil {
		return fail("searching "+label, err)
	}
	if len(hs) > 0 {
		return fmt.Errorf("%w: %s", ErrExists, label)
	}
	return nil
}

// DestroyKeys removes every token object with the label (a retired key
// version, or the keys of a test) and returns how many it removed.
func (m *Module) DestroyKeys(ctx context.Context, label string) (int, error) {
	n := 0
	err := m.do(ctx, func(s *session) error {
		hs, err := m.findObjects(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_LABEL, label),
		}, 64)
		if err != nil {
			return fail("searching "+label, err)
		}
		for _, h := range hs {
			if err := m.ctx.DestroyObject(s.h, h); err != nil {
				return fail("destroying "+label, err)
			}
			n++
		}
		return nil
	})
	m.resetKeys()
	m.pubs.Range(func(k, _ any) bool {
		if k.(perso.KeyRef).String() == label {
			m.pubs.Delete(k)
		}
		return true
	})
	return n, err
}

// String names the role.
func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master key"
	case RoleKMC:
		return "KMC"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}
