package gp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
)

// dekCipher returns the DEK's block cipher for the protocol version.
func dekCipher(version byte, dek []byte) (cipher.Block, error) {
	if dek == nil {
		return nil, fmt.Errorf("%w: no DEK in this session", ErrKeyLength)
	}
	if err := checkKeyLens(version, []string{"DEK"}, dek); err != nil {
		return nil, err
	}
	if version == 2 {
		// A 16-byte key for a few blocks: two key schedules, not three.
		return crypt.NewDES2(dek)
	}
	return aes.NewCipher(dek)
}

// EncryptSensitive encrypts sensitive data (key components for PUT KEY,
// secret values for STORE DATA) for the card: for SCP02 with 3DES-ECB under
// the session DEK (GP Card Specification 2.2 E.4.7), for SCP03 with AES-CBC
// and a zero ICV under the static DEK (Amendment D: SCP03 has no session
// DEK). Data that are not whole blocks are first padded with ISO/IEC
// 9797-1 method 2, as EMV CPS v1.1 section 5.5 pads secret data; whole
// blocks are encrypted as they are.
func EncryptSensitive(version byte, dek, data []byte) ([]byte, error) {
	b, err := dekCipher(version, dek)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no sensitive data to encrypt", ErrLength)
	}
	out := crypt.Pad(data, b.BlockSize(), crypt.PadNone)
	if len(data)%b.BlockSize() != 0 {
		out = crypt.Pad(data, b.BlockSize(), crypt.Pad2)
	}
	if version == 2 {
		err = crypt.EncryptECB(b, out, out)
	} else {
		err = crypt.EncryptCBC(b, nil, out, out)
	}
	return out, err
}

// DecryptSensitive reverses EncryptSensitive up to the padding, which it
// leaves in place: only the receiver knows whether the clear value was
// whole blocks. data must be whole blocks.
func DecryptSensitive(version byte, dek, data []byte) ([]byte, error) {
	b, err := dekCipher(version, dek)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 || len(data)%b.BlockSize() != 0 {
		return nil, fmt.Errorf("%w: encrypted sensitive data of %d bytes are not whole %d-byte blocks", ErrLength, len(data), b.BlockSize())
	}
	out := make([]byte, len(data))
	if version == 2 {
		err = crypt.DecryptECB(b, out, data)
	} else {
		err = crypt.DecryptCBC(b, nil, out, data)
	}
	return out, err
}
