package protect

import (
	"fmt"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

// KCV returns a key's check value: 3DES-ECB of zeros for DES keys, AES-ECB
// of sixteen 01 bytes for AES keys.
func KCV(t perso.KeyType, key []byte) ([3]byte, error) {
	if t.IsDES() {
		return crypt.KCV(key)
	}
	return crypt.KCVAES(key)
}

// ProtectKey wraps a clear key under the KEK with its KCV. It does not
// zero clear.
func (k *KEK) ProtectKey(id perso.KEKID, t perso.KeyType, clear []byte) (perso.ProtectedKey, error) {
	if len(clear) != t.Len() {
		return perso.ProtectedKey{}, fmt.Errorf("protect: a %s key is %d bytes, not %d", t, t.Len(), len(clear))
	}
	kcv, err := KCV(t, clear)
	if err != nil {
		return perso.ProtectedKey{}, err
	}
	w, err := k.WrapKey(clear)
	if err != nil {
		return perso.ProtectedKey{}, err
	}
	return perso.ProtectedKey{KEK: id, Type: t, KCV: kcv, Wrapped: w}, nil
}

// OpenKey unwraps a protected key and checks it against its KCV. The
// caller zeroes the result.
func (k *KEK) OpenKey(pk perso.ProtectedKey) ([]byte, error) {
	if pk.Type.Len() == 0 {
		return nil, fmt.Errorf("protect: protected key of unknown type: %w", perso.ErrBadInput)
	}
	clear, err := k.UnwrapKey(pk.Wrapped, pk.Type.Len())
	if err != nil {
		return nil, err
	}
	kcv, err := KCV(pk.Type, clear)
	if err != nil || !crypt.Equal(kcv[:], pk.KCV[:]) {
		crypt.Zero(clear)
		return nil, fmt.Errorf("%w: the %s key does not match its KCV", ErrOpen, pk.Type)
	}
	return clear, nil
}

// OpenSealed returns the clear value of a sealed secret: the value, the
// keys concatenated, or the RSA component. The caller zeroes the result.
func (k *KEK) OpenSealed(s perso.Sealed) ([]byte, error) {
	p, err := s.Parse()
	if err != nil {
		return nil, err
	}
	switch p.Form {
	case perso.SealValue:
		return k.UnwrapValue(p.Wrapped)
	case perso.SealKeys:
		var out []byte
		for i, pk := range p.Keys {
			c, err := k.OpenKey(pk)
			if err != nil {
				crypt.Zero(out)
				return nil, fmt.Errorf("protect: sealed key %d: %w", i, err)
			}
			out = append(out, c...)
			crypt.Zero(c)
		}
		return out, nil
	case perso.SealRSAComponent:
		der, err := k.UnwrapValue(p.Wrapped)
		if err != nil {
			return nil, err
		}
		defer crypt.Zero(der)
		return RSAComponent(der, p.Component, p.ModLen)
	}
	return nil, fmt.Errorf("protect: sealed form %d: %w", p.Form, perso.ErrUnsupported)
}
