package perso

import (
	"context"
	"crypto/rsa"
)

// CardKeyRequest asks a Certifier for a card (ICC) RSA key pair.
type CardKeyRequest struct {
	Bits     int // modulus length; EMV Book 2 limits it to 1984 bits and to no more than the issuer's
	Exponent int // 3 or 65537
	KEK      KEKID
}

// CardKey is a card key pair as it leaves the security module: the public
// key in clear and the private key's CRT components sealed under the KEK,
// in the order of DGIs 8201..8205 of EMV CPS: qinv, dq, dp, q, p. Each
// component, once opened, is big-endian and half the modulus length.
type CardKey struct {
	Public *rsa.PublicKey
	CRT    [5]Sealed
}

// Certifier is the security module's RSA side: card key pairs and the
// issuer's private-key operation for certificates.
//
// Implementations must be safe for concurrent use, and must return an error
// that wraps [ErrNoSuchKey] for an unknown issuer key or KEK, and
// [ErrUnsupported] for a size or exponent they cannot generate.
type Certifier interface {
	// GenerateCardKey generates a key pair with the requested size and
	// exponent. The private key leaves the module only sealed.
	GenerateCardKey(ctx context.Context, req CardKeyRequest) (*CardKey, error)
	// PublicKey returns the public half of an issuer key pair.
	PublicKey(ctx context.Context, issuer KeyRef) (*rsa.PublicKey, error)
	// SignRaw applies the issuer's private key to block with no padding
	// (the raw RSA operation of EMV Book 2 A2.1): block is as long as the
	// modulus and smaller than it. The module checks its result with the
	// public key before returning it.
	SignRaw(ctx context.Context, issuer KeyRef, block []byte) ([]byte, error)
}
