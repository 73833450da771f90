package crypt

import (
	"crypto/subtle"
	"errors"
	"fmt"
)

// Padding is an ISO/IEC 9797-1:2011 padding method (section 6.3).
type Padding int

const (
	// PadNone adds nothing: the data must already be whole blocks.
	PadNone Padding = 0
	// Pad1 is padding method 1: zero bytes up to a multiple of the block
	// size, none if the data already is one; empty data becomes one block
	// of zeros.
	Pad1 Padding = 1
	// Pad2 is padding method 2: one 0x80 byte, then zero bytes up to a
	// multiple of the block size. It always adds at least one byte, so it
	// can be removed ([Unpad2]). EMV and GlobalPlatform use it.
	Pad2 Padding = 2
)

// String returns the method's name.
func (p Padding) String() string {
	switch p {
	case PadNone:
		return "no padding"
	case Pad1:
		return "ISO 9797-1 padding method 1"
	case Pad2:
		return "ISO 9797-1 padding method 2"
	}
	return fmt.Sprintf("Padding(%d)", int(p))
}

// Pad returns a new slice holding data padded to a multiple of bs bytes
// with method p; data is never modified. With PadNone it returns a copy of
// data unchanged. Pad panics if bs is not positive or p is unknown.
func Pad(data []byte, bs int, p Padding) []byte {
	n := paddedLen(len(data), bs, p)
	out := make([]byte, n)
	copy(out, data)
	if p == Pad2 {
		out[len(data)] = 0x80
	}
	return out
}

// paddedLen is the length of n bytes padded to blocks of bs with p.
func paddedLen(n, bs int, p Padding) int {
	if bs <= 0 {
		panic("crypt: block size must be positive")
	}
	switch p {
	case PadNone:
		return n
	case Pad1:
		if n == 0 {
			return bs
		}
		return (n + bs - 1) / bs * bs
	case Pad2:
		return (n/bs + 1) * bs
	}
	panic("crypt: unknown padding method " + p.String())
}

// errUnpad is the one error Unpad2 returns for bad padding, so that the
// error does not tell where the padding went wrong.
var errUnpad = errors.New("crypt: ISO 9797-1 padding method 2 not found in the last block")

// Unpad2 removes ISO/IEC 9797-1 padding method 2: data must be a non-empty
// multiple of bs bytes whose last block ends in 0x80 followed only by zero
// bytes. It returns a subslice of data. The scan of the last block takes
// the same time wherever the 0x80 is, so that decrypted data does not
// leak its length through timing.
func Unpad2(data []byte, bs int) ([]byte, error) {
	if bs <= 0 {
		return nil, fmt.Errorf("crypt: block size %d is not positive", bs)
	}
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, fmt.Errorf("crypt: padded data is %d bytes, want a non-zero multiple of %d", len(data), bs)
	}
	last := data[len(data)-bs:]
	// Scan from the end: while only zeros have been seen, the first
	// non-zero byte must be 0x80 and gives the data length.
	var (
		seen  = 0 // 1 once a non-zero byte has been met
		found = 0 // 1 if that byte was 0x80
		pos   = 0 // its index in last
	)
	for i := bs - 1; i >= 0; i-- {
		c := last[i]
		nz := 1 ^ subtle.ConstantTimeByteEq(c, 0)
		first := nz &^ seen
		pos = subtle.ConstantTimeSelect(first, i, pos)
		found = subtle.ConstantTimeSelect(first, subtle.ConstantTimeByteEq(c, 0x80), found)
		seen |= nz
	}
	if found != 1 {
		return nil, errUnpad
	}
	return data[:len(data)-bs+pos], nil
}
