package pkcs11

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	p11 "github.com/miekg/pkcs11"
)

// maxSealValue bounds what Seal accepts: a secret DGI's value is at most
// 255 bytes (EMV CPS v1.1 section 4.3, the DGI length byte); the bound
// leaves room for the three-byte length form.
const maxSealValue = 4096

// Seal protects a clear value under the KEK (SealValue form): it imports
// the value as a session secret and wraps it, with CKM_AES_KEY_WRAP_PAD
// (RFC 5649) under an AES KEK, or with CKM_DES3_ECB after ISO/IEC 9797-1
// padding method 2 under a 3DES KEK. The session object is destroyed at
// once; clear is not retained.
func (m *Module) Seal(ctx context.Context, kek perso.KEKID, clear []byte) (perso.Sealed, error) {
	if len(clear) == 0 || len(clear) > maxSealValue {
		return nil, fmt.Errorf("pkcs11: %w: value of %d bytes to seal, want 1 to %d", perso.ErrBadInput, len(clear), maxSealValue)
	}
	var out perso.Sealed
	err := m.do(ctx, func(s *session) error {
		k, err := m.kek(s, kek)
		if err != nil {
			return err
		}
		w, err := m.wrapValue(s, k, kek.Scheme, clear)
		if err != nil {
			return err
		}
		out = perso.SealValueOf(w)
		return nil
	})
	return out, err
}

// wrapValue wraps a clear value as the scheme wraps values.
func (m *Module) wrapValue(s *session, kek keyInfo, scheme perso.Scheme, clear []byte) ([]byte, error) {
	if scheme == perso.SchemeAESKW && len(clear)%8 != 0 && !m.feat.kwpExact {
		return m.wrapPadEmulated(s, kek, clear)
	}
	mk, v := uint(p11.CKM_AES_KEY_WRAP_PAD), clear
	if scheme == perso.SchemeDES3ECB {
		mk, v = p11.CKM_DES3_ECB, crypt.Pad(clear, 8, crypt.Pad2)
		defer crypt.Zero(v)
	}
	h, err := m.importKey(s, p11.CKK_GENERIC_SECRET, v)
	if err != nil {
		return nil, err
	}
	defer m.destroy(s, h)
	w, err := m.ctx.WrapKey(s.h, mech(mk, nil), kek.h, h)
	return w, fail("C_WrapKey of a value", err)
}

// wrapPadEmulated computes RFC 5649 key wrap with padding for a value whose
// length is not a multiple of 8, for tokens whose CKM_AES_KEY_WRAP_PAD
// zero-pads the value before wrapping and so records the padded length
// (SoftHSM2 2.6: the result opens to the value followed by zero bytes).
// It runs the wrapping function of RFC 3394 section 2.2.1 with the
// alternative initial value of RFC 5649 section 3, A65959A6 || MLI, one
// AES block encryption under the KEK at a time: C_WrapKey with
// CKM_AES_CBC and a zero IV of a 16-byte secret is AES-ECB of it. Seal's
// value is clear on the host already; only the KEK stays in the token.
func (m *Module) wrapPadEmulated(s *session, kek keyInfo, clear []byte) ([]byte, error) {
	if !m.feat.aesCBC {
		return nil, fmt.Errorf("pkcs11: %w: the token's CKM_AES_KEY_WRAP_PAD is not RFC 5649 for a %d-byte value and it cannot wrap with CKM_AES_CBC", perso.ErrUnsupported, len(clear))
	}
	n := (len(clear) + 7) / 8
	out := make([]byte, 8*(n+1))
	copy(out, []byte{0xA6, 0x59, 0x59, 0xA6})
	binary.BigEndian.PutUint32(out[4:8], uint32(len(clear)))
	copy(out[8:], clear)
	block := make([]byte, 16)
	defer crypt.Zero(block)
	ecb := func() error { // block = AES(KEK, block)
		h, err := m.importKey(s, p11.CKK_GENERIC_SECRET, block)
		if err != nil {
			return err
		}
		defer m.destroy(s, h)
		w, err := m.ctx.WrapKey(s.h, mech(p11.CKM_AES_CBC, make([]byte, 16)), kek.h, h)
		if err != nil || len(w) != 16 {
			return fail("AES block under the KEK (CKM_AES_CBC wrap)", err)
		}
		copy(block, w)
		return nil
	}
	if n == 1 { // RFC 5649 section 4.1: one ECB block of AIV || P
		copy(block, out)
		if err := ecb(); err != nil {
			crypt.Zero(out)
			return nil, err
		}
		copy(out, block)
		return out, nil
	}
	a, r := out[:8], out[8:]
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(block, a)
			copy(block[8:], r[8*i:8*i+8])
			if err := ecb(); err != nil {
				crypt.Zero(out)
				return nil, err
			}
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(block[:8])^t)
			copy(r[8*i:8*i+8], block[8:])
		}
	}
	return out, nil
}

// NewMACKey generates a MAC key in the token (C_GenerateKey: AES-128 for
// SchemeAESKW, DES2 for SchemeDES3ECB) and returns it wrapped under the
// KEK with its KCV.
func (m *Module) NewMACKey(ctx context.Context, kek perso.KEKID) (perso.ProtectedKey, error) {
	var pk perso.ProtectedKey
	err := m.do(ctx, func(s *session) error {
		k, err := m.kek(s, kek)
		if err != nil {
			return err
		}
		gen, typ := uint(p11.CKM_AES_KEY_GEN), perso.KeyAES128
		if kek.Scheme == perso.SchemeDES3ECB {
			gen, typ = p11.CKM_DES2_KEY_GEN, perso.KeyDES2
		}
		h, err := m.ctx.GenerateKey(s.h, mech(gen, nil), sessionKey(ckKeyType(typ), aesLen(typ), p11.CKA_ENCRYPT))
		if err != nil {
			return fail("C_GenerateKey", err)
		}
		defer m.destroy(s, h)
		pk, err = m.protectKey(s, k, kek, h, typ)
		return err
	})
	return pk, err
}

// MAC computes the per-application MAC under a protected MAC key inside
// the token: the key is unwrapped into a session object, then AES-CMAC
// (CKM_AES_CMAC, NIST SP 800-38B) truncated to 8 bytes for SchemeAESKW,
// or ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 (see
// retailMAC) for SchemeDES3ECB.
func (m *Module) MAC(ctx context.Context, key perso.ProtectedKey, data []byte) ([]byte, error) {
	var out []byte
	err := m.do(ctx, func(s *session) error {
		var err error
		out, err = m.mac(s, key, data)
		return err
	})
	return out, err
}

// VerifyMAC checks mac over data under the protected MAC key, computing
// the MAC in the token and comparing in constant time.
func (m *Module) VerifyMAC(ctx context.Context, key perso.ProtectedKey, data, mac []byte) error {
	got, err := m.MAC(ctx, key, data)
	if err != nil {
		return err
	}
	if !crypt.Equal(got, mac) {
		return fmt.Errorf("pkcs11: %w (key KCV %X)", perso.ErrBadMAC, key.KCV[:])
	}
	return nil
}

func (m *Module) mac(s *session, key perso.ProtectedKey, data []byte) ([]byte, error) {
	kek, err := m.kek(s, key.KEK)
	if err != nil {
		return nil, err
	}
	if key.KEK.Scheme == perso.SchemeAESKW {
		if !m.feat.has(p11.CKM_AES_CMAC) {
			return nil, fmt.Errorf("pkcs11: %w: the token has no CKM_AES_CMAC", perso.ErrUnsupported)
		}
		h, err := m.unwrapKey(s, kek, key, p11.CKA_SIGN)
		if err != nil {
			return nil, err
		}
		defer m.destroy(s, h)
		if err := m.ctx.SignInit(s.h, mech(p11.CKM_AES_CMAC, nil), h); err != nil {
			return nil, fail("C_SignInit(CKM_AES_CMAC)", err)
		}
		full, err := m.ctx.Sign(s.h, data)
		if err != nil {
			return nil, fail("C_Sign(CKM_AES_CMAC)", err)
		}
		return full[:8], nil
	}
	if key.Type != perso.KeyDES2 {
		return nil, fmt.Errorf("pkcs11: %w: a %s MAC key under a 3DES KEK, want DES2", perso.ErrBadInput, key.Type)
	}
	k, err := m.unwrapKey(s, kek, key, p11.CKA_ENCRYPT)
	if err != nil {
		return nil, err
	}
	defer m.destroy(s, k)
	// Under 3DES-ECB the first 8 wrapped bytes are the left half alone, so
	// they unwrap twice over into K1 || K1 (see retailMAC).
	ll := append(clone(key.Wrapped[:8]), key.Wrapped[:8]...)
	left, err := m.unwrap(s, p11.CKM_DES3_ECB, kek, ll, sessionKey(p11.CKK_DES2, 0, p11.CKA_ENCRYPT), "the MAC key's left half")
	if err != nil {
		return nil, err
	}
	defer m.destroy(s, left)
	return m.retailMAC(s, left, k, crypt.Pad(data, 8, crypt.Pad2))
}

// unwrapKey unwraps a protected key into a session key with the given
// usages, after checking its type and wrapped length against its KEK's
// scheme. Under a 3DES KEK, whose wrapping has no integrity check, it
// also checks the key's KCV.
func (m *Module) unwrapKey(s *session, kek keyInfo, key perso.ProtectedKey, usage ...uint) (p11.ObjectHandle, error) {
	n := key.Type.Len()
	want := n + 8 // RFC 3394 adds one 8-byte block
	if key.KEK.Scheme == perso.SchemeDES3ECB {
		want = n
		if !key.Type.IsDES() {
			return 0, fmt.Errorf("pkcs11: %w: %s key under a 3DES KEK", perso.ErrBadInput, key.Type)
		}
	}
	if n == 0 || len(key.Wrapped) != want {
		return 0, fmt.Errorf("pkcs11: %w: wrapped %s key is %d bytes, want %d", perso.ErrBadInput, key.Type, len(key.Wrapped), want)
	}
	if key.KEK.Scheme == perso.SchemeDES3ECB && !slices.Contains(usage, p11.CKA_ENCRYPT) {
		usage = append(usage, p11.CKA_ENCRYPT)
	}
	h, err := m.unwrap(s, keyWrapMech(key.KEK.Scheme), kek, key.Wrapped, sessionKey(ckKeyType(key.Type), 0, usage...),
		fmt.Sprintf("a %s key under %s", key.Type, key.KEK.Label()))
	if err != nil {
		return 0, err
	}
	if key.KEK.Scheme == perso.SchemeDES3ECB {
		kcv, err := m.kcv(s, h, true)
		if err != nil || kcv != key.KCV {
			m.destroy(s, h)
			if err == nil {
				err = fmt.Errorf("pkcs11: %w: unwrapped key's KCV %X, want %X", perso.ErrBadInput, kcv[:], key.KCV[:])
			}
			return 0, err
		}
	}
	return h, nil
}

// unwrap runs C_UnwrapKey of caller-supplied data. A token that reports a
// failed integrity check as CKR_GENERAL_ERROR (SoftHSM2 does) has that
// error read as bad input, like CKR_WRAPPED_KEY_INVALID: the data does
// not open under the KEK.
func (m *Module) unwrap(s *session, mechanism uint, kek keyInfo, wrapped []byte, template []*p11.Attribute, what string) (p11.ObjectHandle, error) {
	if len(wrapped) == 0 { // miekg/pkcs11 indexes wrapped[0]
		return 0, fmt.Errorf("pkcs11: %w: %s: empty wrapped value", perso.ErrBadInput, what)
	}
	h, err := m.ctx.UnwrapKey(s.h, mech(mechanism, nil), kek.h, wrapped, template)
	if isCKR(err, p11.CKR_GENERAL_ERROR) {
		return 0, fmt.Errorf("pkcs11: C_UnwrapKey of %s: %w: it does not open under the KEK (%w)", what, perso.ErrBadInput, err)
	}
	return h, fail("C_UnwrapKey of "+what, err)
}
