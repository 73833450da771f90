package perso

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits of the sealed encodings; a parser checks every length against them
// before it trusts it.
const (
	maxSealedKeys   = 16
	maxWrappedKey   = 64
	maxRSAComponent = 5
)

// ErrSealed is wrapped by every error of parsing a [Sealed] value.
var ErrSealed = errors.New("perso: malformed sealed value")

// SealedParts is a parsed [Sealed] value. Its byte slices alias the
// parsed value.
type SealedParts struct {
	Form SealForm
	// Wrapped is the wrapped value (SealValue) or the wrapped PKCS#8 private
	// key (SealRSAComponent).
	Wrapped []byte
	// Keys are the entries of SealKeys, in order; their KEK is left zero:
	// a sealed value belongs to its application's KEK.
	Keys []ProtectedKey
	// Component (1 p, 2 q, 3 dp, 4 dq, 5 qinv) and ModLen (the modulus
	// length in bytes) describe a SealRSAComponent.
	Component uint8
	ModLen    int
}

// SealValueOf returns the SealValue form of a value already wrapped under the KEK.
func SealValueOf(wrapped []byte) Sealed {
	return append(Sealed{byte(SealValue)}, wrapped...)
}

// SealKeysOf returns the SealKeys form of keys wrapped one by one under the
// KEK. It fails for no keys, more than 16, or a wrapped key longer than 64
// bytes.
func SealKeysOf(keys ...ProtectedKey) (Sealed, error) {
	if len(keys) == 0 || len(keys) > maxSealedKeys {
		return nil, fmt.Errorf("perso: sealing %d keys: want 1 to %d", len(keys), maxSealedKeys)
	}
	out := make(Sealed, 0, 2+len(keys)*(5+40))
	out = append(out, byte(SealKeys), byte(len(keys)))
	for _, k := range keys {
		var err error
		if out, err = appendProtectedKey(out, k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SealRSAComponentOf returns the SealRSAComponent form: component (1 p, 2 q,
// 3 dp, 4 dq, 5 qinv) of the PKCS#8 private key wrapped under the KEK, for a
// modulus of modLen bytes.
func SealRSAComponentOf(component uint8, modLen int, wrappedPKCS8 []byte) (Sealed, error) {
	if component < 1 || component > maxRSAComponent || modLen <= 0 || modLen > 0xFFFF {
		return nil, fmt.Errorf("perso: sealing RSA component %d of a %d-byte modulus: out of range", component, modLen)
	}
	out := make(Sealed, 0, 4+len(wrappedPKCS8))
	out = append(out, byte(SealRSAComponent), component, byte(modLen>>8), byte(modLen))
	return append(out, wrappedPKCS8...), nil
}

// appendProtectedKey appends type(1) || KCV(3) || len(1) || wrapped, the
// encoding a ProtectedKey has inside a sealed value and a batch file.
func appendProtectedKey(dst []byte, k ProtectedKey) ([]byte, error) {
	if len(k.Wrapped) == 0 || len(k.Wrapped) > maxWrappedKey {
		return nil, fmt.Errorf("perso: protected %s key: wrapped length %d out of range 1..%d", k.Type, len(k.Wrapped), maxWrappedKey)
	}
	dst = append(dst, byte(k.Type))
	dst = append(dst, k.KCV[:]...)
	dst = append(dst, byte(len(k.Wrapped)))
	return append(dst, k.Wrapped...), nil
}

// parseProtectedKey reads one ProtectedKey encoding from the front of b and
// returns it with the bytes it used.
func parseProtectedKey(b []byte) (ProtectedKey, int, error) {
	if len(b) < 5 {
		return ProtectedKey{}, 0, fmt.Errorf("%w: protected key header truncated", ErrSealed)
	}
	k := ProtectedKey{Type: KeyType(b[0])}
	copy(k.KCV[:], b[1:4])
	n := int(b[4])
	if k.Type.Len() == 0 {
		return ProtectedKey{}, 0, fmt.Errorf("%w: unknown key type 0x%02X", ErrSealed, b[0])
	}
	if n == 0 || n > maxWrappedKey || n > len(b)-5 {
		return ProtectedKey{}, 0, fmt.Errorf("%w: wrapped key length %d with %d bytes left", ErrSealed, n, len(b)-5)
	}
	k.Wrapped = b[5 : 5+n : 5+n]
	return k, 5 + n, nil
}

// Parse splits a sealed value into its parts. It never opens anything.
func (s Sealed) Parse() (SealedParts, error) {
	if len(s) < 2 {
		return SealedParts{}, fmt.Errorf("%w: %d bytes", ErrSealed, len(s))
	}
	p := SealedParts{Form: s.Form()}
	switch p.Form {
	case SealValue:
		p.Wrapped = s[1:]
	case SealKeys:
		n := int(s[1])
		if n == 0 || n > maxSealedKeys {
			return SealedParts{}, fmt.Errorf("%w: %d keys", ErrSealed, n)
		}
		rest := []byte(s[2:])
		p.Keys = make([]ProtectedKey, 0, n)
		for i := 0; i < n; i++ {
			k, used, err := parseProtectedKey(rest)
			if err != nil {
				return SealedParts{}, fmt.Errorf("key %d: %w", i, err)
			}
			p.Keys = append(p.Keys, k)
			rest = rest[used:]
		}
		if len(rest) != 0 {
			return SealedParts{}, fmt.Errorf("%w: %d bytes after the last key", ErrSealed, len(rest))
		}
	case SealRSAComponent:
		if len(s) < 5 {
			return SealedParts{}, fmt.Errorf("%w: RSA component header truncated", ErrSealed)
		}
		p.Component = s[1]
		p.ModLen = int(binary.BigEndian.Uint16(s[2:4]))
		if p.Component < 1 || p.Component > maxRSAComponent || p.ModLen == 0 {
			return SealedParts{}, fmt.Errorf("%w: RSA component %d, modulus %d bytes", ErrSealed, p.Component, p.ModLen)
		}
		p.Wrapped = s[4:]
	default:
		return SealedParts{}, fmt.Errorf("%w: unknown form 0x%02X", ErrSealed, s[0])
	}
	return p, nil
}
