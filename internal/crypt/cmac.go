package crypt

import (
	"crypto/cipher"
	"crypto/subtle"
)

// CMAC returns the CMAC of data under b (NIST SP 800-38B section 6.2;
// RFC 4493 for AES), full length: one block, 16 bytes for AES and 8 for
// triple DES. It panics if b's block size is not 8 or 16 bytes, the two
// sizes SP 800-38B defines subkeys for (section 5.3). GlobalPlatform SCP03
// (Amendment D section 6.2) uses AES-CMAC for C-MAC and R-MAC and as the
// PRF of its key derivation.
func CMAC(b cipher.Block, data []byte) []byte {
	bs := b.BlockSize()
	var rb byte
	switch bs {
	case 16:
		rb = 0x87 // R128 = 0^120 || 10000111
	case 8:
		rb = 0x1B // R64 = 0^59 || 11011
	default:
		panic("crypt: CMAC needs a 64- or 128-bit block cipher")
	}
	mac := make([]byte, bs)

	// Subkeys (SP 800-38B 6.1): L = CIPH_K(0^b); K1 = L<<1 ^ (msb(L)·Rb);
	// K2 = K1<<1 ^ (msb(K1)·Rb). Only one of them is needed.
	b.Encrypt(mac, mac)
	var k [16]byte
	sub := k[:bs]
	double(sub, mac, rb)
	n := len(data)
	complete := n != 0 && n%bs == 0
	if !complete {
		double(sub, sub, rb)
	}
	clear(mac)

	// All blocks but the last.
	last := (n - 1) / bs * bs
	if n == 0 {
		last = 0
	}
	for i := 0; i < last; i += bs {
		subtle.XORBytes(mac, mac, data[i:i+bs])
		b.Encrypt(mac, mac)
	}
	// The last block: complete, xor K1; otherwise padded 10*, xor K2.
	rest := data[last:]
	subtle.XORBytes(mac, mac, rest)
	if !complete {
		mac[len(rest)] ^= 0x80
	}
	subtle.XORBytes(mac, mac, sub)
	b.Encrypt(mac, mac)
	clear(k[:])
	return mac
}

// double sets dst to src multiplied by x in GF(2^b) (SP 800-38B 6.1 steps
// 2 and 3): a left shift by one bit, xor rb into the last byte if the bit
// shifted out was 1. It runs in constant time; dst may be src.
func double(dst, src []byte, rb byte) {
	msb := src[0] >> 7
	for i := 0; i < len(src)-1; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[len(src)-1] = src[len(src)-1]<<1 ^ rb&-msb
}
