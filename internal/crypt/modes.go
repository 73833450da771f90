package crypt

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// checkBlocks checks that src is whole blocks and dst holds it.
func checkBlocks(mode string, bs int, dst, src []byte) error {
	if len(src)%bs != 0 {
		return fmt.Errorf("crypt: %s input is %d bytes, not a multiple of the %d-byte block", mode, len(src), bs)
	}
	if len(dst) < len(src) {
		return fmt.Errorf("crypt: %s output is %d bytes, input is %d", mode, len(dst), len(src))
	}
	return nil
}

// checkIV checks that iv is nil or one block.
func checkIV(mode string, bs int, iv []byte) error {
	if iv != nil && len(iv) != bs {
		return fmt.Errorf("crypt: %s IV is %d bytes, want %d", mode, len(iv), bs)
	}
	return nil
}

// EncryptECB encrypts src into dst block by block (electronic codebook,
// NIST SP 800-38A 6.1). len(src) must be a multiple of the block size and
// dst at least as long; dst and src may be the same slice but must not
// otherwise overlap.
func EncryptECB(b cipher.Block, dst, src []byte) error {
	bs := b.BlockSize()
	if err := checkBlocks("ECB", bs, dst, src); err != nil {
		return err
	}
	for i := 0; i < len(src); i += bs {
		b.Encrypt(dst[i:i+bs], src[i:i+bs])
	}
	return nil
}

// DecryptECB decrypts src into dst block by block; see [EncryptECB].
func DecryptECB(b cipher.Block, dst, src []byte) error {
	bs := b.BlockSize()
	if err := checkBlocks("ECB", bs, dst, src); err != nil {
		return err
	}
	for i := 0; i < len(src); i += bs {
		b.Decrypt(dst[i:i+bs], src[i:i+bs])
	}
	return nil
}

// EncryptCBC encrypts src into dst in cipher block chaining mode (NIST SP
// 800-38A 6.2) starting from iv, or from a zero IV when iv is nil, as
// EMV and GlobalPlatform do. len(src) must be a multiple of the block
// size and dst at least as long; dst and src may be the same slice but
// must not otherwise overlap. It does not allocate.
func EncryptCBC(b cipher.Block, iv, dst, src []byte) error {
	bs := b.BlockSize()
	if err := checkBlocks("CBC", bs, dst, src); err != nil {
		return err
	}
	if err := checkIV("CBC", bs, iv); err != nil {
		return err
	}
	prev := iv
	for i := 0; i < len(src); i += bs {
		d := dst[i : i+bs]
		copy(d, src[i:i+bs])
		if prev != nil {
			subtle.XORBytes(d, d, prev)
		}
		b.Encrypt(d, d)
		prev = d
	}
	return nil
}

// DecryptCBC decrypts src into dst in cipher block chaining mode; see
// [EncryptCBC]. It works from the last block backwards, so dst may be src.
func DecryptCBC(b cipher.Block, iv, dst, src []byte) error {
	bs := b.BlockSize()
	if err := checkBlocks("CBC", bs, dst, src); err != nil {
		return err
	}
	if err := checkIV("CBC", bs, iv); err != nil {
		return err
	}
	for i := len(src) - bs; i >= 0; i -= bs {
		d := dst[i : i+bs]
		b.Decrypt(d, src[i:i+bs])
		switch {
		case i > 0:
			subtle.XORBytes(d, d, src[i-bs:i])
		case iv != nil:
			subtle.XORBytes(d, d, iv)
		}
	}
	return nil
}
