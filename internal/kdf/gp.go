package kdf

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
)

// GlobalPlatform card key selectors: the key identifiers ('01' S-ENC,
// '02' S-MAC, '03' DEK) that the diversification data carries, with the
// same values as the module's GPKey.
const (
	ENC = 1
	MAC = 2
	DEK = 3
)

// kddLen is the length of the key diversification data: the first 10
// bytes of the INITIALIZE UPDATE response (KEYDATA in EMV CPS).
const kddLen = 10

func checkKDD(kdd []byte, key int) error {
	if len(kdd) != kddLen {
		return fmt.Errorf("kdf: key diversification data is %d bytes, want %d", len(kdd), kddLen)
	}
	if key < ENC || key > DEK {
		return fmt.Errorf("kdf: card key selector %d, want 1 (ENC), 2 (MAC) or 3 (DEK)", key)
	}
	return nil
}

// kmcCipher returns the triple-DES cipher of a 16-byte KMC for the
// byte-slice forms of the diversifications ([crypt.DES2]).
func kmcCipher(kmc []byte) (cipher.Block, error) {
	if len(kmc) != 16 {
		return nil, fmt.Errorf("kdf: KMC is %d bytes, want 16 (double-length DES)", len(kmc))
	}
	return crypt.NewDES2(kmc)
}

// diversifyDES returns 3DES(KMC)[id || F0 || k] || 3DES(KMC)[id || 0F || k]
// with odd parity, for the KMC's cipher, the six bytes id the layout takes
// from the KDD, and the key selector k.
func diversifyDES(kmc cipher.Block, id [6]byte, key int) ([]byte, error) {
	dd := make([]byte, 16)
	for h, tag := range [2]byte{0xF0, 0x0F} {
		b := dd[8*h : 8*h+8]
		copy(b, id[:])
		b[6], b[7] = tag, byte(key)
	}
	if err := encryptKey16(kmc, dd); err != nil {
		return nil, err
	}
	return dd, nil
}

// DiversifyCPS derives a GlobalPlatform card key (key = [ENC], [MAC] or
// [DEK]) from the 16-byte KMC by EMV CPS v1.1 section 5.3.1: with the
// 10-byte KDD (KEYDATA) and k the key selector,
//
//	key = 3DES(KMC)[KDD[4..9] || F0 || k] || 3DES(KMC)[KDD[4..9] || 0F || k]
//
// with odd parity.
func DiversifyCPS(kmc, kdd []byte, key int) ([]byte, error) {
	b, err := kmcCipher(kmc)
	if err != nil {
		return nil, err
	}
	return DiversifyCPSCipher(b, kdd, key)
}

// DiversifyCPSCipher is [DiversifyCPS] under kmc, the triple-DES cipher of
// the 16-byte KMC, so that a module that diversifies the keys of many
// cards makes the KMC's key schedule once; see [OptionACipher].
func DiversifyCPSCipher(kmc cipher.Block, kdd []byte, key int) ([]byte, error) {
	if err := checkKDD(kdd, key); err != nil {
		return nil, err
	}
	return diversifyDES(kmc, [6]byte(kdd[4:10]), key)
}

// DiversifyVISA2 derives a GlobalPlatform card key from the 16-byte KMC
// with the VISA2 layout, which takes the IC serial number bytes of the
// KDD rather than the CPS ones:
//
//	key = 3DES(KMC)[KDD[0..1] || KDD[4..7] || F0 || k] ||
//	      3DES(KMC)[KDD[0..1] || KDD[4..7] || 0F || k]
//
// with odd parity.
func DiversifyVISA2(kmc, kdd []byte, key int) ([]byte, error) {
	b, err := kmcCipher(kmc)
	if err != nil {
		return nil, err
	}
	return DiversifyVISA2Cipher(b, kdd, key)
}

// DiversifyVISA2Cipher is [DiversifyVISA2] under kmc, the triple-DES
// cipher of the 16-byte KMC; see [DiversifyCPSCipher].
func DiversifyVISA2Cipher(kmc cipher.Block, kdd []byte, key int) ([]byte, error) {
	if err := checkKDD(kdd, key); err != nil {
		return nil, err
	}
	var id [6]byte
	copy(id[:], kdd[0:2])
	copy(id[2:], kdd[4:8])
	return diversifyDES(kmc, id, key)
}

// DiversifySCP03 derives an AES card key from an AES KMC (16, 24 or 32
// bytes) with the NIST SP 800-108 counter-mode KDF with AES-CMAC as PRF,
// an 8-bit counter i first, and the fixed input 00 00 00 k 00 || KDD:
// output block i (from 1) is
//
//	CMAC(KMC, i || 00 00 00 k 00 || KDD[0..9])
//
// and the key is the first len(kmc) bytes of the blocks. It is the AES
// counterpart of the CPS layout, commonly called KDF3.
func DiversifySCP03(kmc, kdd []byte, key int) ([]byte, error) {
	if err := checkKDD(kdd, key); err != nil {
		return nil, err
	}
	fixed := make([]byte, 5+kddLen)
	fixed[3] = byte(key)
	copy(fixed[5:], kdd)
	return counterCMAC(kmc, nil, fixed, len(kmc))
}

// counterCMAC is the NIST SP 800-108 KDF in counter mode (section 5.1)
// with AES-CMAC as PRF and an 8-bit counter between prefix and suffix:
// K(i) = CMAC(key, prefix || i || suffix) for i = 1, 2, ..., and the
// result is the first n bytes of K(1) || K(2) || ....
func counterCMAC(key, prefix, suffix []byte, n int) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kdf: AES key is %d bytes, want 16, 24 or 32", len(key))
	}
	if n <= 0 || n > 255*aes.BlockSize {
		return nil, fmt.Errorf("kdf: KDF output of %d bytes, want 1 to %d", n, 255*aes.BlockSize)
	}
	in := make([]byte, len(prefix)+1+len(suffix))
	copy(in, prefix)
	copy(in[len(prefix)+1:], suffix)
	out := make([]byte, 0, (n+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	for i := 1; len(out) < n; i++ {
		in[len(prefix)] = byte(i)
		k := crypt.CMAC(b, in)
		out = append(out, k...)
		crypt.Zero(k)
	}
	crypt.Zero(out[n:cap(out)])
	return out[:n:n], nil
}

// SCP02 session key derivation constants (GP Card Specification 2.2
// Appendix E.4.1).
const (
	SCP02ConstCMAC = 0x0101
	SCP02ConstRMAC = 0x0102
	SCP02ConstDEK  = 0x0181
	SCP02ConstENC  = 0x0182
)

// SCP02SessionKey derives an SCP02 session key from the 16-byte static
// card key (GP Card Specification 2.2 E.4.1): 3DES-CBC with a zero IV of
// constant || sequence counter || twelve zero bytes, where constant is
// one of the SCP02Const values and seq is the 2-byte sequence counter
// from INITIALIZE UPDATE. The result is the raw 16-byte cipher output.
func SCP02SessionKey(static []byte, constant uint16, seq []byte) ([]byte, error) {
	if len(static) != 16 {
		return nil, fmt.Errorf("kdf: SCP02 static key is %d bytes, want 16", len(static))
	}
	b, err := crypt.NewDES2(static)
	if err != nil {
		return nil, err
	}
	return SCP02SessionKeyCipher(b, constant, seq)
}

// SCP02SessionKeyCipher is [SCP02SessionKey] under static, the triple-DES
// cipher of the 16-byte static key, so that the C-MAC and R-MAC session
// keys, which come from the same static key, share its key schedule.
func SCP02SessionKeyCipher(static cipher.Block, constant uint16, seq []byte) ([]byte, error) {
	if static.BlockSize() != 8 {
		return nil, fmt.Errorf("kdf: SCP02 static key cipher has a %d-byte block, want triple DES", static.BlockSize())
	}
	if len(seq) != 2 {
		return nil, fmt.Errorf("kdf: SCP02 sequence counter is %d bytes, want 2", len(seq))
	}
	out := make([]byte, 16)
	out[0], out[1] = byte(constant>>8), byte(constant)
	copy(out[2:], seq)
	if err := crypt.EncryptCBC(static, nil, out, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SCP03 derivation constants (GP Card Specification 2.2 Amendment D
// section 4.1.5, table 4-1).
const (
	SCP03CardCryptogram = 0x00
	SCP03HostCryptogram = 0x01
	SCP03CardChallenge  = 0x02
	SCP03SENC           = 0x04
	SCP03SMAC           = 0x06
	SCP03SRMAC          = 0x07
)

// SCP03KDF is the data derivation function of GP Amendment D section
// 4.1.5: NIST SP 800-108 counter mode with AES-CMAC as PRF, where each
// block i (from 1) is
//
//	CMAC(key, label || 00 || L || i || context)
//
// with label eleven zero bytes and the derivation constant, L the output
// length in bits as 2 bytes, and i one byte. bits is the output length
// (64 for cryptograms and challenges, the key length for session keys),
// a positive multiple of 8 of at most 32640. key is 16, 24 or 32 bytes.
func SCP03KDF(key []byte, constant byte, context []byte, bits int) ([]byte, error) {
	if bits <= 0 || bits%8 != 0 || bits > 255*128 {
		return nil, fmt.Errorf("kdf: SCP03 KDF output of %d bits, want a positive multiple of 8 up to %d", bits, 255*128)
	}
	var prefix [16]byte // 11 zero bytes, constant, separator, L (2 bytes)
	prefix[11] = constant
	prefix[13], prefix[14] = byte(bits>>8), byte(bits)
	return counterCMAC(key, prefix[:15], context, bits/8)
}
