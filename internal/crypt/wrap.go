package crypt

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnwrap is the error that Unwrap and UnwrapPad return, wrapped, when
// the integrity check of a wrapped key fails: a wrong KEK or tampered or
// corrupted ciphertext.
var ErrUnwrap = errors.New("crypt: key unwrap integrity check failed")

const (
	// wrapIV is the default initial value of RFC 3394 section 2.2.3.1.
	wrapIV = 0xA6A6A6A6A6A6A6A6
	// wrapPadIV is the high half of the alternative initial value of RFC
	// 5649 section 3; the low half is the message length indicator.
	wrapPadIV = 0xA65959A6
	// maxWrapPad is the longest plaintext RFC 5649 can wrap: MLI is 32 bits.
	maxWrapPad = 1<<32 - 1
)

// checkKEK checks that kek is a 128-bit block cipher (AES), as both RFCs
// require.
func checkKEK(kek cipher.Block) error {
	if kek.BlockSize() != 16 {
		return fmt.Errorf("crypt: key wrap needs a 128-bit block cipher, got a %d-bit one", kek.BlockSize()*8)
	}
	return nil
}

// wrapBlocks is the wrapping process W of RFC 3394 section 2.2.1 (index
// based form): it encrypts the 64-bit registers r (at least two) in place
// starting from the integrity value a and returns the final A. scratch is
// 16 bytes and ends up holding the last AES output.
func wrapBlocks(kek cipher.Block, a uint64, r, scratch []byte) uint64 {
	n := len(r) / 8
	for j := range 6 {
		for i := range n {
			ri := r[8*i : 8*i+8]
			binary.BigEndian.PutUint64(scratch, a)
			copy(scratch[8:], ri)
			kek.Encrypt(scratch, scratch)
			a = binary.BigEndian.Uint64(scratch) ^ uint64(n*j+i+1)
			copy(ri, scratch[8:])
		}
	}
	return a
}

// unwrapBlocks is the unwrapping process W^-1 of RFC 3394 section 2.2.2:
// it decrypts the registers r in place from the ciphertext's first block a
// and returns the recovered integrity value, which the caller checks.
func unwrapBlocks(kek cipher.Block, a uint64, r, scratch []byte) uint64 {
	n := len(r) / 8
	for j := 5; j >= 0; j-- {
		for i := n - 1; i >= 0; i-- {
			ri := r[8*i : 8*i+8]
			binary.BigEndian.PutUint64(scratch, a^uint64(n*j+i+1))
			copy(scratch[8:], ri)
			kek.Decrypt(scratch, scratch)
			a = binary.BigEndian.Uint64(scratch)
			copy(ri, scratch[8:])
		}
	}
	return a
}

// Wrap wraps plaintext (a key: a multiple of 8 bytes, at least 16) under
// the AES key-encryption key kek with the AES key wrap of RFC 3394 section
// 2.2.1 and the default initial value. The result is 8 bytes longer.
func Wrap(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	n := len(plaintext)
	if n < 16 || n%8 != 0 {
		return nil, fmt.Errorf("crypt: RFC 3394 plaintext is %d bytes, want a multiple of 8, at least 16", n)
	}
	return wrapRegisters(kek, wrapIV, plaintext, n), nil
}

// wrapRegisters returns C0 || C1..Cn: plaintext zero-padded to n bytes (a
// multiple of 8, at least 16) and wrapped from initial value a. It
// allocates once: the output and a scratch block behind it, which it
// clears.
func wrapRegisters(kek cipher.Block, a uint64, plaintext []byte, n int) []byte {
	buf := make([]byte, 8+n+16) // C0 || registers || scratch
	out, scratch := buf[:8+n:8+n], buf[8+n:]
	copy(out[8:], plaintext)
	binary.BigEndian.PutUint64(out, wrapBlocks(kek, a, out[8:], scratch))
	Zero(scratch)
	return out
}

// Unwrap recovers the key that [Wrap] wrapped under kek (RFC 3394 section
// 2.2.2) and checks its integrity value (section 2.2.3). ciphertext must
// be a multiple of 8 bytes, at least 24. On an integrity failure it
// returns an error wrapping [ErrUnwrap] and zeroes what it decrypted.
func Unwrap(kek cipher.Block, ciphertext []byte) ([]byte, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	n := len(ciphertext) - 8
	if n < 16 || n%8 != 0 {
		return nil, fmt.Errorf("crypt: RFC 3394 ciphertext is %d bytes, want a multiple of 8, at least 24", len(ciphertext))
	}
	return unwrap(kek, ciphertext, make([]byte, n+16))
}

// unwrap is Unwrap after the length checks, with buf (len(ciphertext)+8
// bytes) to hold the registers and a scratch block; it leaves buf zero
// except for a returned key.
func unwrap(kek cipher.Block, ciphertext, buf []byte) ([]byte, error) {
	n := len(ciphertext) - 8
	out, scratch := buf[:n:n], buf[n:]
	copy(out, ciphertext[8:])
	a := unwrapBlocks(kek, binary.BigEndian.Uint64(ciphertext), out, scratch)
	Zero(scratch)
	var want, got [8]byte
	binary.BigEndian.PutUint64(want[:], wrapIV)
	binary.BigEndian.PutUint64(got[:], a)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		Zero(out)
		return nil, fmt.Errorf("%w (RFC 3394, %d-byte ciphertext)", ErrUnwrap, len(ciphertext))
	}
	return out, nil
}

// WrapPad wraps plaintext of any length from 1 to 2^32-1 bytes under the
// AES key-encryption key kek with the key wrap with padding of RFC 5649
// section 4.1: zero padding to a multiple of 8 and the alternative initial
// value A65959A6 || 32-bit length. Eight bytes or fewer are encrypted as a
// single AES block. The result is the padded length plus 8.
func WrapPad(kek cipher.Block, plaintext []byte) ([]byte, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	m := len(plaintext)
	if m == 0 || uint64(m) > maxWrapPad {
		return nil, fmt.Errorf("crypt: RFC 5649 plaintext is %d bytes, want 1 to 2^32-1", m)
	}
	padded := (m + 7) / 8 * 8
	aiv := uint64(wrapPadIV)<<32 | uint64(m)
	if padded == 8 {
		out := make([]byte, 16)
		binary.BigEndian.PutUint64(out, aiv)
		copy(out[8:], plaintext)
		kek.Encrypt(out, out)
		return out, nil
	}
	return wrapRegisters(kek, aiv, plaintext, padded), nil
}

// UnwrapPad recovers the key that [WrapPad] wrapped under kek (RFC 5649
// section 4.2) and checks the alternative initial value, the length
// indicator and the zero padding (section 3). ciphertext must be a
// multiple of 8 bytes, at least 16. On an integrity failure it returns an
// error wrapping [ErrUnwrap] and zeroes what it decrypted.
func UnwrapPad(kek cipher.Block, ciphertext []byte) ([]byte, error) {
	if err := checkKEK(kek); err != nil {
		return nil, err
	}
	n := len(ciphertext) - 8
	if n < 8 || n%8 != 0 {
		return nil, fmt.Errorf("crypt: RFC 5649 ciphertext is %d bytes, want a multiple of 8, at least 16", len(ciphertext))
	}
	return unwrapPad(kek, ciphertext, make([]byte, n+16))
}

// unwrapPad is UnwrapPad after the length checks, with buf as for unwrap.
func unwrapPad(kek cipher.Block, ciphertext, buf []byte) ([]byte, error) {
	n := len(ciphertext) - 8
	out, scratch := buf[:n:n], buf[n:]
	var a uint64
	if n == 8 {
		kek.Decrypt(scratch, ciphertext)
		a = binary.BigEndian.Uint64(scratch)
		copy(out, scratch[8:])
	} else {
		copy(out, ciphertext[8:])
		a = unwrapBlocks(kek, binary.BigEndian.Uint64(ciphertext), out, scratch)
	}
	Zero(scratch)

	// Section 3: MSB32(A) = A65959A6, 8*(n-1) < MLI <= 8*n (in bytes:
	// n-8 < MLI <= n), and the padding bytes zero. The checks are folded so
	// that a failure does not tell which one failed.
	ok := subtle.ConstantTimeEq(int32(uint32(a>>32)^wrapPadIV), 0)
	mli := int(min(a&0xFFFFFFFF, uint64(n)+1)) // clamped: fits an int
	inRange := subtle.ConstantTimeLessOrEq(n-7, mli) & subtle.ConstantTimeLessOrEq(mli, n)
	ok &= inRange
	// Padding bytes: those of the last block from MLI on. When MLI is out
	// of range, check nothing more (ok is already 0) but do the same work.
	m := subtle.ConstantTimeSelect(inRange, mli, n)
	var pad byte
	for i := n - 8; i < n; i++ {
		inPad := subtle.ConstantTimeLessOrEq(m, i)
		pad |= out[i] & byte(-inPad)
	}
	ok &= subtle.ConstantTimeByteEq(pad, 0)
	if ok != 1 {
		Zero(out)
		return nil, fmt.Errorf("%w (RFC 5649, %d-byte ciphertext)", ErrUnwrap, len(ciphertext))
	}
	return out[:m:m], nil
}
