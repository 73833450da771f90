package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"
)

// NewDES3 returns a triple-DES (TDEA, EDE) block cipher. A 16-byte key is
// a double-length key K1 K2 used as K1 K2 K1 (keying option 2 of NIST SP
// 800-67); a 24-byte key is K1 K2 K3. Parity bits are ignored. The error
// names the length only.
func NewDES3(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 16:
		var k [24]byte
		copy(k[:], key)
		copy(k[16:], key[:8])
		b, err := des.NewTripleDESCipher(k[:])
		Zero(k[:])
		return b, err
	case 24:
		return des.NewTripleDESCipher(key)
	}
	return nil, fmt.Errorf("crypt: triple-DES key is %d bytes, want 16 or 24", len(key))
}

// NewDES returns a single-DES block cipher for an 8-byte key. Parity bits
// are ignored. The error names the length only.
func NewDES(key []byte) (cipher.Block, error) {
	if len(key) != 8 {
		return nil, fmt.Errorf("crypt: DES key is %d bytes, want 8", len(key))
	}
	return des.NewCipher(key)
}

// newDESKey returns single DES for 8 bytes and triple DES for 16 or 24,
// with the fewest key schedules: a 16-byte key is a [DES2].
func newDESKey(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		return NewDES2(key)
	case 24:
		return NewDES3(key)
	}
	return nil, fmt.Errorf("crypt: DES key is %d bytes, want 8, 16 or 24", len(key))
}

// SetOddParity sets the least significant bit of every byte of key so
// that each byte has an odd number of one bits (FIPS 46-3 section 3, the
// DES key parity convention).
func SetOddParity(key []byte) {
	for i, c := range key {
		key[i] = c&0xFE | ^parity7(c)&1
	}
}

// parity7 returns the parity (1 for odd) of the seven high bits of c.
func parity7(c byte) byte {
	c >>= 1
	c ^= c >> 4
	c ^= c >> 2
	c ^= c >> 1
	return c & 1
}

// HasOddParity reports whether every byte of key has odd parity. It runs
// in time that depends on len(key) only.
func HasOddParity(key []byte) bool {
	var bad byte
	for _, c := range key {
		c ^= c >> 4
		c ^= c >> 2
		c ^= c >> 1
		bad |= ^c & 1
	}
	return bad == 0
}

// EqualModParity reports whether a and b have the same length and differ
// at most in the parity bit (the least significant bit) of each byte. It
// compares in constant time for inputs of equal length.
func EqualModParity(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := range a {
		d |= (a[i] ^ b[i]) & 0xFE
	}
	return subtle.ConstantTimeByteEq(d, 0) == 1
}

// KCV returns the key check value of a DES key: the first three bytes of
// the key's encryption of eight zero bytes (single DES for 8 bytes,
// triple DES for 16 or 24 bytes), as payment HSMs and EMV CPS print it.
// A double-length key costs two DES key schedules ([DES2]), not three.
func KCV(key []byte) ([3]byte, error) {
	if len(key) == 16 { // the common case, without an interface value
		k, err := newDES2(key)
		if err != nil {
			return [3]byte{}, err
		}
		var buf [des.BlockSize]byte
		k.Encrypt(buf[:], buf[:])
		return [3]byte(buf[:3]), nil
	}
	b, err := newDESKey(key)
	if err != nil {
		return [3]byte{}, err
	}
	return kcv(b, 0x00), nil
}

// KCVAES returns the key check value of an AES key (16, 24 or 32 bytes):
// the first three bytes of AES-ECB of sixteen 0x01 bytes, the convention
// of GlobalPlatform Card Specification Amendment D (SCP03) for the key
// check values of PUT KEY.
func KCVAES(key []byte) ([3]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return [3]byte{}, fmt.Errorf("crypt: AES key is %d bytes, want 16, 24 or 32", len(key))
	}
	return kcv(b, 0x01), nil
}

func kcv(b cipher.Block, fill byte) [3]byte {
	buf := make([]byte, b.BlockSize())
	for i := range buf {
		buf[i] = fill
	}
	b.Encrypt(buf, buf)
	return [3]byte(buf)
}

// Equal reports whether a and b are equal, in time that depends on their
// lengths only (crypto/subtle). Use it for MACs and cryptograms.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
