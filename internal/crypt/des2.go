package crypt

import (
	"crypto/cipher"
	"crypto/des"
	"fmt"
)

// DES2 is a double-length DES key K1 || K2 made ready for use once: the
// DES key schedules of K1 and K2. It serves two purposes.
//
// As a [cipher.Block] it is triple DES (TDEA) with keying option 2 of NIST
// SP 800-67 section 3.1: encryption is E(K1) D(K2) E(K1), decryption
// D(K1) E(K2) D(K1), the same cipher as [NewDES3] gives for a 16-byte key.
// It costs two key schedules where that one costs three, and each block
// three single-DES operations with their permutations where that one
// shares them, so DES2 is the cheaper of the two for a key used on a few
// blocks (key check values, one derivation, a session key) and NewDES3's
// for a key used on many.
//
// It also computes ISO/IEC 9797-1 MAC algorithm 3 ([DES2.MACAlg3]), which
// uses K1 and K2 apart, so that a session MACs every command with the key
// schedules it made once.
//
// A DES2 keeps no copy of the key bytes; like crypto/des it cannot clear
// its key schedules, so drop it when the key is no longer needed. It is
// safe for concurrent use. The zero DES2 is not usable: make one with
// [NewDES2].
type DES2 struct {
	k1, k2 cipher.Block
}

// NewDES2 returns the double-length key K1 || K2 of key, which must be 16
// bytes, ready for use. Parity bits are ignored. The error names the
// length only.
func NewDES2(key []byte) (*DES2, error) {
	k, err := newDES2(key)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// newDES2 is NewDES2 returning a value, which a caller that uses the key
// at once keeps off the heap.
func newDES2(key []byte) (DES2, error) {
	if len(key) != 16 {
		return DES2{}, fmt.Errorf("crypt: double-length DES key is %d bytes, want 16", len(key))
	}
	k1, err := des.NewCipher(key[:8])
	if err != nil {
		return DES2{}, err
	}
	k2, err := des.NewCipher(key[8:])
	if err != nil {
		return DES2{}, err
	}
	return DES2{k1: k1, k2: k2}, nil
}

// BlockSize returns the DES block size, 8 bytes.
func (k *DES2) BlockSize() int { return des.BlockSize }

// Encrypt encrypts one block from src into dst with triple DES K1 K2 K1
// (E(K1) D(K2) E(K1)). dst and src must overlap entirely or not at all.
func (k *DES2) Encrypt(dst, src []byte) {
	k.k1.Encrypt(dst, src)
	k.k2.Decrypt(dst, dst)
	k.k1.Encrypt(dst, dst)
}

// Decrypt decrypts one block from src into dst (D(K1) E(K2) D(K1)). dst
// and src must overlap entirely or not at all.
func (k *DES2) Decrypt(dst, src []byte) {
	k.k1.Decrypt(dst, src)
	k.k2.Encrypt(dst, dst)
	k.k1.Decrypt(dst, dst)
}

// MACAlg3 returns ISO/IEC 9797-1:2011 MAC algorithm 3 (section 7.4) under
// the key; see the function [MACAlg3], which it is without the key
// schedules. The initial value iv is nil for zeros or 8 bytes. It fails
// for another iv length, an unknown padding method, and PadNone with data
// that is empty or not whole blocks.
func (k *DES2) MACAlg3(iv, data []byte, p Padding) ([]byte, error) {
	if err := checkIV("MAC algorithm 3", des.BlockSize, iv); err != nil {
		return nil, err
	}
	mac := make([]byte, des.BlockSize)
	copy(mac, iv)
	if err := cbcMAC(k.k1, mac, data, p); err != nil {
		return nil, err
	}
	k.k2.Decrypt(mac, mac)
	k.k1.Encrypt(mac, mac)
	return mac, nil
}

var _ cipher.Block = (*DES2)(nil)
