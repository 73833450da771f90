// Package protect implements, over clear keys, the protection schemes of
// the batch file (see perso.Scheme): wrapping keys and values under a KEK,
// the per-application MAC, and encrypting a secret for a card's secure
// channel. The software security module uses it for everything; a hardware
// module uses it only for the steps its token cannot do, and reports them.
package protect

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/gp"
)

// Scheme values, equal to perso.SchemeAESKW and perso.SchemeDES3ECB.
const (
	AESKW   = 0x01
	DES3ECB = 0x02
)

// ErrOpen is wrapped when a wrapped key or value does not open under the KEK.
var ErrOpen = errors.New("protect: wrapped data does not open under the KEK")

// KEK is a key-encryption key ready for use.
type KEK struct {
	scheme int
	block  cipher.Block
}

// NewKEK returns a KEK for scheme: a 16, 24 or 32-byte AES key for AESKW, a
// 16-byte 3DES key for DES3ECB. The KEK keeps no reference to key.
func NewKEK(scheme int, key []byte) (*KEK, error) {
	var (
		b   cipher.Block
		err error
	)
	switch scheme {
	case AESKW:
		b, err = aes.NewCipher(key)
	case DES3ECB:
		if len(key) != 16 {
			return nil, fmt.Errorf("protect: a 3DES KEK is 16 bytes, not %d", len(key))
		}
		b, err = crypt.NewDES3(key)
	default:
		return nil, fmt.Errorf("protect: unknown scheme 0x%02X", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("protect: KEK: %w", err)
	}
	return &KEK{scheme: scheme, block: b}, nil
}

// WrapKey protects a key: RFC 3394 under an AES KEK, 3DES-ECB under a 3DES KEK.
func (k *KEK) WrapKey(key []byte) ([]byte, error) {
	if len(key) == 0 || len(key)%8 != 0 {
		return nil, fmt.Errorf("protect: a key to wrap is a non-zero multiple of 8 bytes, not %d", len(key))
	}
	if k.scheme == AESKW {
		return crypt.Wrap(k.block, key)
	}
	out := make([]byte, len(key))
	if err := crypt.EncryptECB(k.block, out, key); err != nil {
		return nil, err
	}
	return out, nil
}

// UnwrapKey opens a key that WrapKey protected. want is the key's length.
func (k *KEK) UnwrapKey(wrapped []byte, want int) ([]byte, error) {
	var (
		key []byte
		err error
	)
	if k.scheme == AESKW {
		key, err = crypt.Unwrap(k.block, wrapped)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOpen, err)
		}
	} else {
		if len(wrapped) == 0 || len(wrapped)%8 != 0 {
			return nil, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrOpen, len(wrapped))
		}
		key = make([]byte, len(wrapped))
		if err := crypt.DecryptECB(k.block, key, wrapped); err != nil {
			return nil, err
		}
	}
	if len(key) != want {
		crypt.Zero(key)
		return nil, fmt.Errorf("%w: key is %d bytes, want %d", ErrOpen, len(wrapped), want)
	}
	return key, nil
}

// WrapValue protects a value of any length: RFC 5649 under an AES KEK,
// 3DES-ECB after ISO/IEC 9797-1 padding method 2 under a 3DES KEK.
func (k *KEK) WrapValue(value []byte) ([]byte, error) {
	if len(value) == 0 {
		return nil, errors.New("protect: empty value")
	}
	if k.scheme == AESKW {
		return crypt.WrapPad(k.block, value)
	}
	p := crypt.Pad(value, 8, crypt.Pad2)
	defer crypt.Zero(p)
	out := make([]byte, len(p))
	if err := crypt.EncryptECB(k.block, out, p); err != nil {
		return nil, err
	}
	return out, nil
}

// UnwrapValue opens a value that WrapValue protected.
func (k *KEK) UnwrapValue(wrapped []byte) ([]byte, error) {
	if k.scheme == AESKW {
		v, err := crypt.UnwrapPad(k.block, wrapped)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOpen, err)
		}
		return v, nil
	}
	if len(wrapped) == 0 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrOpen, len(wrapped))
	}
	p := make([]byte, len(wrapped))
	if err := crypt.DecryptECB(k.block, p, wrapped); err != nil {
		return nil, err
	}
	v, err := crypt.Unpad2(p, 8)
	if err != nil {
		crypt.Zero(p)
		return nil, fmt.Errorf("%w: padding", ErrOpen)
	}
	return v, nil
}

// MAC computes the per-application MAC under a clear MAC key: AES-CMAC
// truncated to 8 bytes for AESKW, ISO/IEC 9797-1 MAC algorithm 3 with
// padding method 2 for DES3ECB.
func MAC(scheme int, key, data []byte) ([]byte, error) {
	switch scheme {
	case AESKW:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("protect: MAC key: %w", err)
		}
		return crypt.CMAC(b, data)[:8], nil
	case DES3ECB:
		return crypt.MACAlg3(key, nil, data, crypt.Pad2)
	}
	return nil, fmt.Errorf("protect: unknown scheme 0x%02X", scheme)
}

// ForCard encrypts a secret for a card's secure channel: 3DES-ECB under the
// SCP02 session DEK, or AES-CBC with a zero IV under the SCP03 static DEK
// (as GlobalPlatform Amendment D encrypts sensitive data). A value that is
// not a multiple of the block size is padded with ISO/IEC 9797-1 method 2
// (EMV CPS v1.1 5.5.2); the DGI length tells the card where the value ends.
func ForCard(scpVersion uint8, dek, clear []byte) ([]byte, error) {
	out, err := gp.EncryptSensitive(scpVersion, dek, clear)
	if err != nil {
		return nil, fmt.Errorf("protect: encrypting for the card: %w", err)
	}
	return out, nil
}
