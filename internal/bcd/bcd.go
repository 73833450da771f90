// Package bcd encodes the numeric formats of EMV Book 3 section 4.3: n
// (BCD, right-justified, left-padded with 0) and cn (BCD, left-justified,
// right-padded with F).
package bcd

import "errors"

// ErrDigits is returned for input that is not decimal digits or does not fit.
var ErrDigits = errors.New("bcd: not decimal digits, or too long")

// N encodes digits as format n in size bytes (0 < size), left-padded with 0.
func N(digits string, size int) ([]byte, error) {
	if len(digits) > 2*size {
		return nil, ErrDigits
	}
	out := make([]byte, size)
	for i := 0; i < len(digits); i++ {
		d := digits[len(digits)-1-i]
		if d < '0' || d > '9' {
			return nil, ErrDigits
		}
		pos := size - 1 - i/2
		if i%2 == 0 {
			out[pos] |= d - '0'
		} else {
			out[pos] |= (d - '0') << 4
		}
	}
	return out, nil
}

// CN encodes digits as format cn, right-padded with F to a whole number of
// bytes (size 0), or to size bytes.
func CN(digits string, size int) ([]byte, error) {
	if size == 0 {
		size = (len(digits) + 1) / 2
	}
	if len(digits) > 2*size {
		return nil, ErrDigits
	}
	out := make([]byte, size)
	for i := range out {
		out[i] = 0xFF
	}
	for i := 0; i < len(digits); i++ {
		d := digits[i]
		if d < '0' || d > '9' {
			return nil, ErrDigits
		}
		if i%2 == 0 {
			out[i/2] = (d-'0')<<4 | 0x0F
		} else {
			out[i/2] = out[i/2]&0xF0 | (d - '0')
		}
	}
	return out, nil
}

// Digits decodes BCD to digits. An F nibble ends the digits (format cn);
// every nibble after it must be F too. Any other nibble over 9 fails.
func Digits(b []byte) (string, error) {
	out := make([]byte, 0, 2*len(b))
	pad := false
	for _, x := range b {
		for _, n := range [2]byte{x >> 4, x & 0x0F} {
			switch {
			case pad:
				if n != 0x0F {
					return "", ErrDigits
				}
			case n <= 9:
				out = append(out, '0'+n)
			case n == 0x0F:
				pad = true
			default:
				return "", ErrDigits
			}
		}
	}
	return string(out), nil
}
