package kdf

import (
	"crypto/cipher"
	"crypto/sha1"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
)

// maxPAN is the longest PAN ISO/IEC 7812-1 allows (and EMV tag 5A holds).
const maxPAN = 19

// checkPAN checks that pan is 1 to 19 decimal digits and psn at most 99.
// The error names the offset of a bad digit, never the digit.
func checkPAN(pan string, psn uint8) error {
	if len(pan) == 0 || len(pan) > maxPAN {
		return fmt.Errorf("kdf: PAN is %d digits, want 1 to %d", len(pan), maxPAN)
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return fmt.Errorf("kdf: PAN has a non-digit at offset %d", i)
		}
	}
	if psn > 99 {
		return fmt.Errorf("kdf: PAN sequence number %d is not two decimal digits", psn)
	}
	return nil
}

// PANPSNBlock returns the derivation data of EMV option A (Book 2
// A1.4.1): the 16 rightmost digits of PAN || PSN (the PSN as two decimal
// digits, 00 when the card has none), left-padded with zeros to 16 digits
// and packed as BCD into 8 bytes. pan is 1 to 19 decimal digits.
func PANPSNBlock(pan string, psn uint8) ([8]byte, error) {
	var y [8]byte
	if err := checkPAN(pan, psn); err != nil {
		return y, err
	}
	// Digits of PAN || PSN from the right: the PSN's two, then the PAN's.
	digit := func(i int) byte { // i counts from the right, 0-based
		switch {
		case i == 0:
			return psn % 10
		case i == 1:
			return psn / 10
		case i-2 < len(pan):
			return pan[len(pan)-1-(i-2)] - '0'
		}
		return 0
	}
	for i := range 8 {
		y[7-i] = digit(2*i+1)<<4 | digit(2*i)
	}
	return y, nil
}

// OptionA derives an ICC master key from the 16-byte issuer master key
// imk by EMV option A (Book 2 A1.4.1): with Y = [PANPSNBlock](pan, psn),
// MK = 3DES(imk)[Y] || 3DES(imk)[Y xor FF..FF], with odd parity.
func OptionA(imk []byte, pan string, psn uint8) ([]byte, error) {
	b, err := masterCipher(imk)
	if err != nil {
		return nil, err
	}
	return OptionACipher(b, pan, psn)
}

// OptionACipher is [OptionA] under imk, the triple-DES cipher of the
// 16-byte issuer master key ([crypt.NewDES3] or [crypt.NewDES2]), so that
// a security module that derives many keys from one master key makes its
// key schedule once. The Cipher forms of this package check only that imk
// has the 8-byte DES block; the key behind it must be double-length.
func OptionACipher(imk cipher.Block, pan string, psn uint8) ([]byte, error) {
	y, err := PANPSNBlock(pan, psn)
	if err != nil {
		return nil, err
	}
	return encryptBlockAndComplement(imk, y)
}

// masterCipher returns the triple-DES cipher of the 16-byte master key mk
// for the byte-slice forms of the derivations, which use it for a block
// or two: a [crypt.DES2], which costs two key schedules, not three.
func masterCipher(mk []byte) (cipher.Block, error) {
	if len(mk) != 16 {
		return nil, fmt.Errorf("kdf: master key is %d bytes, want 16 (double-length DES)", len(mk))
	}
	return crypt.NewDES2(mk)
}

// OptionB derives an ICC master key by EMV option B (Book 2 A1.4.2), for
// PANs longer than 16 digits: X = PAN || PSN, left-padded with one zero
// digit to an even length and packed as BCD; the 16-digit Y is the
// decimalization of SHA-1(X) (its decimal digits from the left, then, if
// fewer than 16, its hexadecimal digits A to F from the left as 0 to 5),
// and MK = 3DES(imk)[Y] || 3DES(imk)[Y xor FF..FF] with odd parity. For a
// PAN of 16 digits or fewer option B is option A.
func OptionB(imk []byte, pan string, psn uint8) ([]byte, error) {
	b, err := masterCipher(imk)
	if err != nil {
		return nil, err
	}
	return OptionBCipher(b, pan, psn)
}

// OptionBCipher is [OptionB] under imk, the triple-DES cipher of the
// 16-byte issuer master key; see [OptionACipher].
func OptionBCipher(imk cipher.Block, pan string, psn uint8) ([]byte, error) {
	if len(pan) <= 16 {
		return OptionACipher(imk, pan, psn)
	}
	if err := checkPAN(pan, psn); err != nil {
		return nil, err
	}
	// X: at most 21 digits, left-padded to 22, 11 bytes of BCD.
	var digits [maxPAN + 3]byte
	n := copy(digits[:], pan)
	digits[n], digits[n+1] = '0'+psn/10, '0'+psn%10
	d := digits[:n+2]
	var x [(maxPAN + 3) / 2]byte
	nx := (len(d) + 1) / 2
	for i := range d { // right-align: digit i goes to nibble pos
		pos := 2*nx - len(d) + i
		x[pos/2] |= (d[i] - '0') << (4 * (1 - pos%2))
	}
	h := sha1.Sum(x[:nx])

	var y [8]byte
	k := 0
	put := func(v byte) {
		y[k/2] |= v << (4 * (1 - k%2))
		k++
	}
	for i := 0; i < 2*len(h) && k < 16; i++ {
		if v := nibble(h[:], i); v <= 9 {
			put(v)
		}
	}
	for i := 0; i < 2*len(h) && k < 16; i++ {
		if v := nibble(h[:], i); v > 9 {
			put(v - 10)
		}
	}
	return encryptBlockAndComplement(imk, y)
}

// nibble returns the i-th hexadecimal digit of b, from the left.
func nibble(b []byte, i int) byte {
	return b[i/2] >> (4 * (1 - i%2)) & 0x0F
}

// encryptBlockAndComplement returns 3DES(mk)[y] || 3DES(mk)[y xor FF..FF]
// with odd parity.
func encryptBlockAndComplement(mk cipher.Block, y [8]byte) ([]byte, error) {
	out := make([]byte, 16)
	copy(out, y[:])
	for i := range 8 {
		out[8+i] = ^y[i]
	}
	if err := encryptKey16(mk, out); err != nil {
		return nil, err
	}
	return out, nil
}

// encryptKey16 encrypts the 16 bytes of buf in place, 3DES-ECB under the
// master key's cipher mk, and sets odd parity: the last step of every EMV
// derivation here.
func encryptKey16(mk cipher.Block, buf []byte) error {
	if mk.BlockSize() != 8 {
		return fmt.Errorf("kdf: master key cipher has a %d-byte block, want triple DES", mk.BlockSize())
	}
	if err := crypt.EncryptECB(mk, buf, buf); err != nil {
		return err
	}
	crypt.SetOddParity(buf)
	return nil
}

// SessionKey derives the session key for application transaction counter
// atc from the 16-byte ICC master key mk by the EMV common session key
// derivation (Book 2 A1.3.1) with R = ATC || 00 00 00 00 00 00, the
// diversification value for AC session keys.
func SessionKey(mk []byte, atc uint16) ([]byte, error) {
	return SessionKeyR(mk, [8]byte{byte(atc >> 8), byte(atc)})
}

// SessionKeyR is the EMV common session key derivation (Book 2 A1.3.1)
// with an explicit diversification value R = R0..R7: SK = 3DES(mk)[F1] ||
// 3DES(mk)[F2], F1 = R0 R1 F0 R3..R7 and F2 = R0 R1 0F R3..R7, with odd
// parity. mk is 16 bytes.
func SessionKeyR(mk []byte, r [8]byte) ([]byte, error) {
	b, err := masterCipher(mk)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	copy(out, r[:])
	copy(out[8:], r[:])
	out[2], out[10] = 0xF0, 0x0F
	if err := encryptKey16(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AC returns the 8-byte application cryptogram (ARQC, TC or AAC) over
// data under the 16-byte session key sk: ISO/IEC 9797-1 MAC algorithm 3
// with padding method 2 and a zero initial value (EMV Book 2 8.1.2).
func AC(sk, data []byte) ([]byte, error) {
	if len(sk) != 16 {
		return nil, fmt.Errorf("kdf: session key is %d bytes, want 16", len(sk))
	}
	return crypt.MACAlg3(sk, nil, data, crypt.Pad2)
}

// ARPC1 returns the ARPC of method 1 (EMV Book 2 8.2.1): 3DES of the
// 8-byte arqc xor (the 2-byte arc || six zero bytes) under the 16-byte
// key acKey (the AC session key, or the ICC master key where the issuer
// uses it).
func ARPC1(acKey, arqc, arc []byte) ([]byte, error) {
	if len(acKey) != 16 {
		return nil, fmt.Errorf("kdf: ARPC key is %d bytes, want 16", len(acKey))
	}
	if len(arqc) != 8 {
		return nil, fmt.Errorf("kdf: ARQC is %d bytes, want 8", len(arqc))
	}
	if len(arc) != 2 {
		return nil, fmt.Errorf("kdf: ARC is %d bytes, want 2", len(arc))
	}
	b, err := crypt.NewDES2(acKey)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8)
	copy(out, arqc)
	out[0] ^= arc[0]
	out[1] ^= arc[1]
	b.Encrypt(out, out)
	return out, nil
}

// EncryptData derives a 16-byte DES key by encrypting data under the
// 16-byte master key mk with 3DES-ECB: for 8 bytes D the result is
// 3DES(mk)[D] || 3DES(mk)[D xor FF..FF]; for 16 bytes, 3DES-ECB of both
// halves. The result has odd parity. It is how stored-value card keys
// (KDL, KDU) come from their issuer master keys (KML, KMU).
func EncryptData(mk, data []byte) ([]byte, error) {
	b, err := masterCipher(mk)
	if err != nil {
		return nil, err
	}
	return EncryptDataCipher(b, data)
}

// EncryptDataCipher is [EncryptData] under mk, the triple-DES cipher of
// the 16-byte master key; see [OptionACipher].
func EncryptDataCipher(mk cipher.Block, data []byte) ([]byte, error) {
	switch len(data) {
	case 8:
		return encryptBlockAndComplement(mk, [8]byte(data))
	case 16:
		out := make([]byte, 16)
		copy(out, data)
		if err := encryptKey16(mk, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("kdf: derivation data is %d bytes, want 8 or 16", len(data))
}
