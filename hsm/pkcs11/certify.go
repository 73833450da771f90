package pkcs11

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ThalesGroup/crypto11"
	"github.com/cardperso/perso"
	p11 "github.com/miekg/pkcs11"
)

// Card key sizes this backend generates: EMV Book 2 (5.1, 6.1) caps
// certificate-bearing keys at 1984 bits; 512 is the floor of any token.
const (
	minCardBits = 512
	maxCardBits = 1984
)

// CRT components in the order of DGIs 8201..8205 (EMV CPS v1.1 A.5):
// qinv, dq, dp, q, p, with the numbers SealRSAComponent carries and the
// PKCS#11 attributes that hold them.
var crtOrder = [5]struct {
	component uint8
	attr      uint
}{
	{5, p11.CKA_COEFFICIENT},
	{4, p11.CKA_EXPONENT_2},
	{3, p11.CKA_EXPONENT_1},
	{2, p11.CKA_PRIME_2},
	{1, p11.CKA_PRIME_1},
}

// GenerateCardKey generates a card RSA key pair in the token as session
// objects (C_GenerateKeyPair with CKA_PUBLIC_EXPONENT 3 or 65537), reads
// the public key, wraps the private key once under the KEK with
// CKM_AES_KEY_WRAP_PAD (RFC 5649 of its PKCS#8 encoding, from which the
// bureau side takes each CRT component), and destroys both objects. Each
// of the five CRT entries carries that wrapped key with its component
// number.
//
// A 3DES KEK cannot seal a private key: its scheme pads values with
// ISO/IEC 9797-1 method 2, which no PKCS#11 wrap mechanism does, so the
// request fails with ErrUnsupported.
func (m *Module) GenerateCardKey(ctx context.Context, req perso.CardKeyRequest) (*perso.CardKey, error) {
	if req.Bits < minCardBits || req.Bits > maxCardBits || req.Bits%8 != 0 {
		return nil, fmt.Errorf("pkcs11: %w: card key of %d bits, want a multiple of 8 from %d to %d", perso.ErrUnsupported, req.Bits, minCardBits, maxCardBits)
	}
	if req.Exponent != 3 && req.Exponent != 65537 {
		return nil, fmt.Errorf("pkcs11: %w: public exponent %d, want 3 or 65537", perso.ErrUnsupported, req.Exponent)
	}
	if req.KEK.Scheme == perso.SchemeDES3ECB {
		return nil, fmt.Errorf("pkcs11: %w: sealing a private key under a 3DES KEK", perso.ErrUnsupported)
	}
	var ck *perso.CardKey
	err := m.do(ctx, func(s *session) error {
		kek, err := m.kek(s, req.KEK)
		if err != nil {
			return err
		}
		pub, priv, err := m.ctx.GenerateKeyPair(s.h, mech(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
			[]*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
				p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
				p11.NewAttribute(p11.CKA_TOKEN, false),
				p11.NewAttribute(p11.CKA_PRIVATE, false),
				p11.NewAttribute(p11.CKA_MODULUS_BITS, req.Bits),
				p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(req.Exponent)).Bytes()),
			},
			cardPrivateKey(true))
		if err != nil {
			return fail(fmt.Sprintf("C_GenerateKeyPair(%d bits, e=%d)", req.Bits, req.Exponent), err)
		}
		defer m.destroy(s, pub)
		defer m.destroy(s, priv)
		pk, err := m.rsaPublic(s, pub)
		if err != nil {
			return err
		}
		if pk.N.BitLen() != req.Bits || pk.E != req.Exponent {
			return fmt.Errorf("pkcs11: token generated a %d-bit key with e=%d for a request of %d bits, e=%d", pk.N.BitLen(), pk.E, req.Bits, req.Exponent)
		}
		w, err := m.ctx.WrapKey(s.h, mech(p11.CKM_AES_KEY_WRAP_PAD, nil), kek.h, priv)
		if err != nil {
			return fail("C_WrapKey of the card private key under "+req.KEK.Label(), err)
		}
		ck = &perso.CardKey{Public: pk}
		for i, c := range crtOrder {
			if ck.CRT[i], err = perso.SealRSAComponentOf(c.component, pk.Size(), w); err != nil {
				return err
			}
		}
		return nil
	})
	return ck, err
}

// cardPrivateKey is the template of a card private key as a session
// object: sensitive (extractable only by wrapping) when it is generated,
// readable when the bureau side opens it for a CRT component.
func cardPrivateKey(sensitive bool) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, sensitive),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
	}
}

// rsaPublic reads an RSA public key object.
func (m *Module) rsaPublic(s *session, h p11.ObjectHandle) (*rsa.PublicKey, error) {
	got, err := m.ctx.GetAttributeValue(s.h, h, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_MODULUS, nil),
		p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, fail("reading an RSA public key", err)
	}
	e := new(big.Int).SetBytes(got[1].Value)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("pkcs11: RSA public exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(got[0].Value), E: int(e.Int64())}, nil
}

// PublicKey returns the public half of the issuer key pair labelled
// issuer.String(), found through crypto11 (which pairs the public key
// with the private one by CKA_ID and CKA_LABEL) and remembered.
func (m *Module) PublicKey(ctx context.Context, issuer perso.KeyRef) (*rsa.PublicKey, error) {
	if v, ok := m.pubs.Load(issuer); ok {
		return v.(*rsa.PublicKey), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.closed.Load() {
		return nil, errClosed
	}
	// Token objects only: the session copies that modules in this process
	// make (see findKey) carry the same label.
	attrs := crypto11.NewAttributeSet()
	if err := attrs.Set(crypto11.CkaLabel, issuer.String()); err != nil {
		return nil, err
	}
	if err := attrs.Set(crypto11.CkaToken, true); err != nil {
		return nil, err
	}
	pairs, err := m.c11.FindKeyPairsWithAttributes(attrs)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: finding issuer key %s: %w", issuer, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("pkcs11: %w: issuer key pair %s", perso.ErrNoSuchKey, issuer)
	}
	if len(pairs) > 1 {
		return nil, fmt.Errorf("pkcs11: label %s names more than one key pair", issuer)
	}
	pk, ok := pairs[0].Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs11: %w: %s is not an RSA key pair", perso.ErrNoSuchKey, issuer)
	}
	m.pubs.Store(issuer, pk)
	return pk, nil
}

// SignRaw applies the issuer's private key to block with CKM_RSA_X_509
// (raw RSA, EMV Book 2 A2.1) and checks the result with the public key,
// s^e mod n == block, before returning it, so that a token fault never
// yields a wrong certificate.
func (m *Module) SignRaw(ctx context.Context, issuer perso.KeyRef, block []byte) ([]byte, error) {
	pk, err := m.PublicKey(ctx, issuer)
	if err != nil {
		return nil, err
	}
	mb := new(big.Int).SetBytes(block)
	if len(block) != pk.Size() || mb.Cmp(pk.N) >= 0 {
		return nil, fmt.Errorf("pkcs11: %w: block of %d bytes for a %d-byte modulus, or not smaller than it", perso.ErrBadInput, len(block), pk.Size())
	}
	var sig []byte
	err = m.do(ctx, func(s *session) error {
		k, err := m.findKey(s, p11.CKO_PRIVATE_KEY, issuer.String())
		if err != nil {
			return err
		}
		if err := m.ctx.SignInit(s.h, mech(p11.CKM_RSA_X_509, nil), k.h); err != nil {
			return fail("C_SignInit(CKM_RSA_X_509) with "+issuer.String(), err)
		}
		sig, err = m.ctx.Sign(s.h, block)
		return fail("C_Sign(CKM_RSA_X_509) with "+issuer.String(), err)
	})
	if err != nil {
		return nil, err
	}
	if err := checkRaw(pk, block, sig); err != nil {
		return nil, fmt.Errorf("pkcs11: signature by %s: %w", issuer, err)
	}
	return leftPad(sig, pk.Size()), nil
}

// checkRaw checks that sig^e mod n equals block.
func checkRaw(pk *rsa.PublicKey, block, sig []byte) error {
	sm := new(big.Int).SetBytes(sig)
	if len(sig) > pk.Size() || sm.Cmp(pk.N) >= 0 {
		return errors.New("token returned a value not smaller than the modulus")
	}
	got := new(big.Int).Exp(sm, big.NewInt(int64(pk.E)), pk.N)
	if got.Cmp(new(big.Int).SetBytes(block)) != 0 {
		return errors.New("token returned a value that does not verify with the public key")
	}
	return nil
}

// leftPad returns b left-padded with zeros to n bytes.
func leftPad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}
