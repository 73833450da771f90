package pkcs11

import (
	"context"
	"crypto/aes"
	"crypto/sha1"
	"fmt"
	"runtime"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	p11 "github.com/miekg/pkcs11"
)

// maxCDOL bounds the data of an application cryptogram: a CDOL's data is
// at most 252 bytes (EMV Book 3 5.4, one-byte length of GENERATE AC data).
const maxCDOL = 252

// derivation says how a card key comes out of its master key.
type derivation struct {
	// mech is CKM_DES3_ECB_ENCRYPT_DATA or CKM_AES_ECB_ENCRYPT_DATA; zero
	// for the SP 800-108 KDF, which runs as CKM_AES_CMAC signatures.
	mech uint
	// data is the block(s) to encrypt, or the KDF's fixed input after
	// the counter byte.
	data []byte
	out  perso.KeyType
}

// derivationFor returns the derivation that req asks for from a master key
// of the given family (3DES or AES). Derivation data is public (a PAN, a
// KDD), so this runs on the host; only the encryption under the master key
// runs in the token.
func derivationFor(req perso.DeriveRequest, des bool) (derivation, error) {
	badMaster := func() (derivation, error) {
		fam := "AES"
		if des {
			fam = "3DES"
		}
		return derivation{}, fmt.Errorf("pkcs11: %w: %s with a %s master key", perso.ErrUnsupported, req.Method, fam)
	}
	switch req.Method {
	case perso.MethodEMVOptionA, perso.MethodEMVOptionB:
		if !des {
			return badMaster()
		}
		pan, psn, err := perso.SplitPANPSN(req.Data)
		if err != nil {
			return derivation{}, err
		}
		var y [8]byte
		if req.Method == perso.MethodEMVOptionA {
			y, err = kdf.PANPSNBlock(pan, psn)
		} else {
			y, err = optionBBlock(pan, psn)
		}
		if err != nil {
			return derivation{}, fmt.Errorf("pkcs11: %w: %v", perso.ErrBadInput, err)
		}
		return derivation{mech: p11.CKM_DES3_ECB_ENCRYPT_DATA, data: blockAndComplement(y), out: perso.KeyDES2}, nil

	case perso.MethodEncryptData:
		if des {
			switch len(req.Data) {
			case 8:
				return derivation{mech: p11.CKM_DES3_ECB_ENCRYPT_DATA, data: blockAndComplement([8]byte(req.Data)), out: perso.KeyDES2}, nil
			case 16:
				return derivation{mech: p11.CKM_DES3_ECB_ENCRYPT_DATA, data: clone(req.Data), out: perso.KeyDES2}, nil
			}
			return derivation{}, fmt.Errorf("pkcs11: %w: encrypt-data derivation data is %d bytes, want 8 or 16", perso.ErrBadInput, len(req.Data))
		}
		out, ok := aesKeyType(len(req.Data))
		if !ok {
			return derivation{}, fmt.Errorf("pkcs11: %w: encrypt-data derivation data is %d bytes, want 16, 24 or 32 for an AES master key", perso.ErrBadInput, len(req.Data))
		}
		return derivation{mech: p11.CKM_AES_ECB_ENCRYPT_DATA, data: clone(req.Data), out: out}, nil

	case perso.MethodCPS, perso.MethodVISA2:
		if !des {
			return badMaster()
		}
		if err := checkKDD(req.Data, req.Key); err != nil {
			return derivation{}, err
		}
		return derivation{mech: p11.CKM_DES3_ECB_ENCRYPT_DATA, data: gpDiversificationData(req.Method, req.Data, req.Key), out: perso.KeyDES2}, nil

	case perso.MethodSCP03KDF:
		if des {
			return badMaster()
		}
		if err := checkKDD(req.Data, req.Key); err != nil {
			return derivation{}, err
		}
		// Fixed input of kdf.DiversifySCP03: 00 00 00 k 00 || KDD.
		fixed := make([]byte, 5+len(req.Data))
		fixed[3] = byte(req.Key)
		copy(fixed[5:], req.Data)
		return derivation{data: fixed}, nil // out is the KMC's type, set by the caller
	}
	return derivation{}, fmt.Errorf("pkcs11: %w: derivation method %s", perso.ErrUnsupported, req.Method)
}

// checkKDD checks GlobalPlatform diversification inputs: the 10-byte KDD
// from INITIALIZE UPDATE and a key selector ENC, MAC or DEK.
func checkKDD(kdd []byte, key perso.GPKey) error {
	if len(kdd) != 10 {
		return fmt.Errorf("pkcs11: %w: KDD is %d bytes, want 10", perso.ErrBadInput, len(kdd))
	}
	if key < perso.GPKeyENC || key > perso.GPKeyDEK {
		return fmt.Errorf("pkcs11: %w: card key selector %d, want ENC, MAC or DEK", perso.ErrBadInput, key)
	}
	return nil
}

// gpDiversificationData returns the 16 bytes that the KMC encrypts to
// give a GlobalPlatform card key (EMV CPS v1.1 5.3.1; the VISA2 layout
// takes bytes 0-1 and 4-7 of the KDD instead of 4-9):
//
//	ID || F0 || k || ID || 0F || k
func gpDiversificationData(m perso.Method, kdd []byte, key perso.GPKey) []byte {
	var id [6]byte
	if m == perso.MethodVISA2 {
		copy(id[:2], kdd[0:2])
		copy(id[2:], kdd[4:8])
	} else {
		copy(id[:], kdd[4:10])
	}
	d := make([]byte, 16)
	for h, tag := range [2]byte{0xF0, 0x0F} {
		b := d[8*h : 8*h+8]
		copy(b, id[:])
		b[6], b[7] = tag, byte(key)
	}
	return d
}

// blockAndComplement returns y || (y xor FF..FF), the data that EMV option
// A (Book 2 A1.4.1) encrypts to give the two halves of the key.
func blockAndComplement(y [8]byte) []byte {
	d := make([]byte, 16)
	copy(d, y[:])
	for i := range 8 {
		d[8+i] = ^y[i]
	}
	return d
}

// optionBBlock returns the 16-digit Y of EMV option B (Book 2 A1.4.2) for
// a PAN longer than 16 digits: SHA-1 of PAN || PSN in BCD (left-padded
// with a zero digit to whole bytes), decimalized: its decimal digits from
// the left, then, if fewer than 16, its digits A-F from the left as 0-5.
// For 16 digits or fewer it is option A's block.
func optionBBlock(pan string, psn uint8) ([8]byte, error) {
	if len(pan) <= 16 {
		return kdf.PANPSNBlock(pan, psn)
	}
	if _, err := kdf.PANPSNBlock(pan, psn); err != nil { // checks the digits
		return [8]byte{}, err
	}
	digits := append([]byte(pan), '0'+psn/10, '0'+psn%10)
	if len(digits)%2 == 1 {
		digits = append([]byte{'0'}, digits...)
	}
	x := make([]byte, len(digits)/2)
	for i := range x {
		x[i] = (digits[2*i]-'0')<<4 | (digits[2*i+1] - '0')
	}
	h := sha1.Sum(x)
	var y [8]byte
	n := 0
	for pass := 0; pass < 2 && n < 16; pass++ {
		for i := 0; i < 2*len(h) && n < 16; i++ {
			d := h[i/2] >> (4 * (1 - i%2)) & 0x0F
			if (pass == 0) != (d <= 9) {
				continue
			}
			if pass == 1 {
				d -= 10
			}
			y[n/2] |= d << (4 * (1 - n%2))
			n++
		}
	}
	return y, nil
}

// aesKeyType returns the AES key type of n bytes.
func aesKeyType(n int) (perso.KeyType, bool) {
	switch n {
	case 16:
		return perso.KeyAES128, true
	case 24:
		return perso.KeyAES192, true
	case 32:
		return perso.KeyAES256, true
	}
	return 0, false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Derive derives a card key from a master key inside the token and
// returns it wrapped under req.KEK:
//
//  1. C_DeriveKey with CKM_DES3_ECB_ENCRYPT_DATA (or
//     CKM_AES_ECB_ENCRYPT_DATA) from the master key, which needs only
//     CKA_DERIVE, to a session object that is sensitive and extractable
//     only by wrapping;
//  2. its KCV by C_Encrypt of the check block;
//  3. C_WrapKey under the KEK (CKM_AES_KEY_WRAP, RFC 3394, or
//     CKM_DES3_ECB);
//  4. C_DestroyObject.
//
// The clear key never reaches the host, with one exception that
// [Module.Capabilities] reports: MethodSCP03KDF, for which PKCS#11 tokens
// such as SoftHSM2 have no derivation mechanism, computes the NIST SP
// 800-108 KDF with CKM_AES_CMAC signatures, so the diversified key passes
// through the host before it is imported and wrapped; the host copy is
// zeroed at once.
func (m *Module) Derive(ctx context.Context, req perso.DeriveRequest) (perso.ProtectedKey, error) {
	var pk perso.ProtectedKey
	err := m.do(ctx, func(s *session) error {
		mk, err := m.findKey(s, p11.CKO_SECRET_KEY, req.Master.String())
		if err != nil {
			return err
		}
		d, err := derivationFor(req, isDES(mk.typ))
		if err != nil {
			return err
		}
		kek, err := m.kek(s, req.KEK)
		if err != nil {
			return err
		}
		h, typ, err := m.deriveCardKey(s, mk, d)
		if err != nil {
			return fmt.Errorf("%w (derive from %s by %s)", err, req.Master, req.Method)
		}
		defer m.destroy(s, h)
		pk, err = m.protectKey(s, kek, req.KEK, h, typ)
		return err
	})
	return pk, err
}

// deriveCardKey makes the session object of a derived card key, with
// CKA_ENCRYPT for its KCV.
func (m *Module) deriveCardKey(s *session, mk keyInfo, d derivation) (p11.ObjectHandle, perso.KeyType, error) {
	if d.mech == 0 {
		return m.kdfCMAC(s, mk, d.data, p11.CKA_ENCRYPT)
	}
	if !m.feat.has(d.mech) {
		return 0, 0, fmt.Errorf("pkcs11: %w: the token has no %s", perso.ErrUnsupported, mechName(d.mech))
	}
	h, err := m.deriveEncrypt(s, mk.h, d.mech, d.data, sessionKey(ckKeyType(d.out), aesLen(d.out), p11.CKA_ENCRYPT))
	return h, d.out, fail("C_DeriveKey", err)
}

// deriveEncrypt runs C_DeriveKey with an ECB_ENCRYPT_DATA mechanism.
func (m *Module) deriveEncrypt(s *session, base p11.ObjectHandle, mechanism uint, data []byte, template []*p11.Attribute) (p11.ObjectHandle, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	return m.ctx.DeriveKey(s.h, encryptDataMech(mechanism, &pin, data), base, template)
}

// aesLen is the CKA_VALUE_LEN to give a new key of type t: the length for
// AES keys, 0 (none) for 3DES keys, whose type fixes it.
func aesLen(t perso.KeyType) int {
	if t.IsDES() {
		return 0
	}
	return t.Len()
}

// kdfCMAC is the fallback for MethodSCP03KDF: the counter-mode KDF of
// kdf.DiversifySCP03 computed with CKM_AES_CMAC in the token, the result
// imported as a session key with the given usages and the host copy
// zeroed.
func (m *Module) kdfCMAC(s *session, kmc keyInfo, fixed []byte, usage ...uint) (p11.ObjectHandle, perso.KeyType, error) {
	typ, ok := aesKeyType(kmc.length)
	if !ok {
		return 0, 0, fmt.Errorf("pkcs11: %w: AES KMC of %d bytes", perso.ErrUnsupported, kmc.length)
	}
	in := make([]byte, 1+len(fixed))
	copy(in[1:], fixed)
	key, err := m.counterCMAC(s, kmc.h, in, 0, typ.Len())
	if err != nil {
		return 0, 0, err
	}
	defer crypt.Zero(key)
	h, err := m.importKey(s, p11.CKK_AES, key, usage...)
	return h, typ, err
}

// counterCMAC computes the NIST SP 800-108 counter-mode KDF with
// CKM_AES_CMAC as PRF: in holds the PRF input with the counter byte at
// offset at, which it sets to 1, 2, ... The result is n bytes; the caller
// zeroes it.
func (m *Module) counterCMAC(s *session, key p11.ObjectHandle, in []byte, at, n int) ([]byte, error) {
	if !m.feat.has(p11.CKM_AES_CMAC) {
		return nil, fmt.Errorf("pkcs11: %w: the token has no CKM_AES_CMAC", perso.ErrUnsupported)
	}
	out := make([]byte, 0, (n+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	for i := 1; len(out) < n; i++ {
		in[at] = byte(i)
		if err := m.ctx.SignInit(s.h, mech(p11.CKM_AES_CMAC, nil), key); err != nil {
			crypt.Zero(out)
			return nil, fail("C_SignInit(CKM_AES_CMAC)", err)
		}
		blk, err := m.ctx.Sign(s.h, in)
		if err != nil {
			crypt.Zero(out)
			return nil, fail("C_Sign(CKM_AES_CMAC)", err)
		}
		out = append(out, blk...)
		crypt.Zero(blk)
	}
	crypt.Zero(out[n:cap(out)])
	return out[:n:n], nil
}

// importKey creates a session key with a value the host holds, for the
// fallbacks that Capabilities lists. The caller zeroes value.
func (m *Module) importKey(s *session, typ uint, value []byte, usage ...uint) (p11.ObjectHandle, error) {
	t := append(sessionKey(typ, 0, usage...), p11.NewAttribute(p11.CKA_VALUE, value))
	h, err := m.ctx.CreateObject(s.h, t)
	return h, fail("C_CreateObject", err)
}

// protectKey returns the session key h as a ProtectedKey under the KEK:
// its KCV, computed in the token, and its wrapping.
func (m *Module) protectKey(s *session, kek keyInfo, id perso.KEKID, h p11.ObjectHandle, typ perso.KeyType) (perso.ProtectedKey, error) {
	kcv, err := m.kcv(s, h, typ.IsDES())
	if err != nil {
		return perso.ProtectedKey{}, err
	}
	w, err := m.ctx.WrapKey(s.h, mech(keyWrapMech(id.Scheme), nil), kek.h, h)
	if err != nil {
		return perso.ProtectedKey{}, fail("C_WrapKey under "+id.Label(), err)
	}
	return perso.ProtectedKey{KEK: id, Type: typ, KCV: kcv, Wrapped: w}, nil
}

// keyWrapMech is the mechanism that wraps a key under a KEK of the scheme.
func keyWrapMech(s perso.Scheme) uint {
	if s == perso.SchemeDES3ECB {
		return p11.CKM_DES3_ECB
	}
	return p11.CKM_AES_KEY_WRAP
}

// kcv returns the key check value of a session key with CKA_ENCRYPT: the
// first three bytes of 3DES-ECB of eight zero bytes, or of AES-ECB of
// sixteen 01 bytes.
func (m *Module) kcv(s *session, h p11.ObjectHandle, des bool) ([3]byte, error) {
	mk, block := uint(p11.CKM_AES_ECB), make([]byte, 16)
	if des {
		mk, block = p11.CKM_DES3_ECB, block[:8]
	} else {
		for i := range block {
			block[i] = 0x01
		}
	}
	out, err := m.encrypt(s, mk, nil, h, block)
	if err != nil {
		return [3]byte{}, fail("KCV", err)
	}
	return [3]byte(out), nil
}

// encrypt runs C_EncryptInit and C_Encrypt.
func (m *Module) encrypt(s *session, mechanism uint, param []byte, h p11.ObjectHandle, data []byte) ([]byte, error) {
	if err := m.ctx.EncryptInit(s.h, mech(mechanism, param), h); err != nil {
		return nil, err
	}
	return m.ctx.Encrypt(s.h, data)
}

// Cryptogram computes an EMV application cryptogram, or with req.ARC an
// ARPC, inside the token:
//
//  1. the ICC master key (EMV Book 2 A1.4) derived from the issuer master
//     key as a session object that can only derive;
//  2. the AC session key SK = SK_L || SK_R (A1.3.1, R = ATC || 00..00)
//     derived from it, and for an AC also SK_L || SK_L (the derivation of
//     F1 || F1), a double-length key with which 3DES is single DES under
//     SK_L: tokens such as SoftHSM2 refuse single-DES mechanisms;
//  3. for an AC, ISO/IEC 9797-1 MAC algorithm 3 with padding method 2
//     (Book 2 8.1.2): CBC under SK_L || SK_L over all but the last block
//     (CKM_DES3_CBC), then 3DES under SK of the last block xor that
//     chaining value (CKM_DES3_ECB), which equals the algorithm's last
//     iteration and output transformation; for an ARPC, method 1 (8.2.1):
//     3DES under SK of ARQC xor (ARC || 00..00).
//
// Only the CBC chaining value between steps 3's two calls passes through
// the host, never a key.
func (m *Module) Cryptogram(ctx context.Context, req perso.CryptogramRequest) ([]byte, error) {
	var y [8]byte
	var err error
	switch req.Method {
	case perso.MethodEMVOptionA:
		y, err = kdf.PANPSNBlock(req.PAN, req.PSN)
	case perso.MethodEMVOptionB:
		y, err = optionBBlock(req.PAN, req.PSN)
	default:
		return nil, fmt.Errorf("pkcs11: %w: cryptogram with ICC master key method %s", perso.ErrUnsupported, req.Method)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w: %v", perso.ErrBadInput, err)
	}
	arpc := req.ARC != nil
	switch {
	case arpc && (len(req.ARC) != 2 || len(req.Data) != 8):
		return nil, fmt.Errorf("pkcs11: %w: ARPC needs an 8-byte ARQC and a 2-byte ARC, got %d and %d bytes", perso.ErrBadInput, len(req.Data), len(req.ARC))
	case !arpc && (len(req.Data) == 0 || len(req.Data) > maxCDOL):
		return nil, fmt.Errorf("pkcs11: %w: cryptogram data of %d bytes, want 1 to %d", perso.ErrBadInput, len(req.Data), maxCDOL)
	}
	for _, mk := range []uint{p11.CKM_DES3_ECB_ENCRYPT_DATA, p11.CKM_DES3_ECB, p11.CKM_DES3_CBC} {
		if !m.feat.has(mk) {
			return nil, fmt.Errorf("pkcs11: %w: cryptograms need %s, which the token lacks", perso.ErrUnsupported, mechName(mk))
		}
	}
	var out []byte
	err = m.do(ctx, func(s *session) error {
		imk, err := m.masterKey(s, req.Master, true)
		if err != nil {
			return err
		}
		udkT := with(sessionKey(p11.CKK_DES2, 0, p11.CKA_DERIVE), p11.CKA_EXTRACTABLE, false)
		udk, err := m.deriveEncrypt(s, imk.h, p11.CKM_DES3_ECB_ENCRYPT_DATA, blockAndComplement(y), udkT)
		if err != nil {
			return fail("derive ICC master key", err)
		}
		defer m.destroy(s, udk)

		// F1 = R0 R1 F0 R3..R7, F2 = R0 R1 0F R3..R7 with R = ATC || 00..00.
		f := make([]byte, 16)
		f[0], f[1], f[2] = byte(req.ATC>>8), byte(req.ATC), 0xF0
		f[8], f[9], f[10] = byte(req.ATC>>8), byte(req.ATC), 0x0F
		sk, err := m.deriveEncrypt(s, udk, p11.CKM_DES3_ECB_ENCRYPT_DATA, f, sessionKey(p11.CKK_DES2, 0, p11.CKA_ENCRYPT))
		if err != nil {
			return fail("derive AC session key", err)
		}
		defer m.destroy(s, sk)

		if arpc {
			x := clone(req.Data)
			x[0] ^= req.ARC[0]
			x[1] ^= req.ARC[1]
			out, err = m.encrypt(s, p11.CKM_DES3_ECB, nil, sk, x)
			return fail("ARPC", err)
		}
		padded := crypt.Pad(req.Data, 8, crypt.Pad2)
		var left p11.ObjectHandle
		if len(padded) > 8 {
			ll := append(clone(f[:8]), f[:8]...)
			left, err = m.deriveEncrypt(s, udk, p11.CKM_DES3_ECB_ENCRYPT_DATA, ll, sessionKey(p11.CKK_DES2, 0, p11.CKA_ENCRYPT))
			if err != nil {
				return fail("derive AC session key left half", err)
			}
			defer m.destroy(s, left)
		}
		out, err = m.retailMAC(s, left, sk, padded)
		return err
	})
	return out, err
}

// retailMAC computes ISO/IEC 9797-1 MAC algorithm 3 with a zero initial
// value over padded (whole 8-byte blocks) in the token: CBC-MAC under
// left, the double-length key K1 || K1 (3DES with it is single DES under
// K1), over the blocks before the last, then 3DES-ECB under k = K1 || K2
// of the last block xor the chaining value: E_K1(D_K2(E_K1(h xor x_n)))
// is the algorithm's last iteration followed by output transformation 3.
// left may be zero for one block.
func (m *Module) retailMAC(s *session, left, k p11.ObjectHandle, padded []byte) ([]byte, error) {
	n := len(padded)
	if n == 0 || n%8 != 0 {
		return nil, fmt.Errorf("pkcs11: %w: MAC input of %d bytes is not whole blocks", perso.ErrBadInput, n)
	}
	x := clone(padded[n-8:])
	if n > 8 {
		ct, err := m.encrypt(s, p11.CKM_DES3_CBC, make([]byte, 8), left, padded[:n-8])
		if err != nil {
			return nil, fail("MAC chaining (CKM_DES3_CBC)", err)
		}
		for i := range x {
			x[i] ^= ct[len(ct)-8+i]
		}
	}
	mac, err := m.encrypt(s, p11.CKM_DES3_ECB, nil, k, x)
	return mac, fail("MAC output (CKM_DES3_ECB)", err)
}
