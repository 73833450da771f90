package perso

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"fmt"
	"sync"
	"time"
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

// IssuerCertRequest asks a certification authority for an issuer public
// key certificate (format 02).
type IssuerCertRequest struct {
	CA KeyRef // the certification authority's key in the Certifier
	// CAKey is the authority's public key, which checks the result; nil
	// takes it from the Certifier.
	CAKey *rsa.PublicKey
	Cert  IssuerCert
	// Now, when set, is the date the certificate must not have expired
	// at.
	Now time.Time
}

// CertifyIssuer has a certification authority sign an issuer public key
// certificate: it builds the block of EMV Book 2 Table 13, signs it with
// [Certifier.SignRaw] under req.CA, then recovers the certificate with the
// authority's public key, checks its structure and hash as a terminal would
// (section 5.3) and compares its content with the request before returning
// it with the key's remainder (92) and exponent (9F32). A request that has
// expired at req.Now is refused before anything is signed.
func CertifyIssuer(ctx context.Context, ca Certifier, req IssuerCertRequest) (*CertifiedKey, error) {
	if err := notExpired(CertFormatIssuer, req.Cert.Expiry, req.Now); err != nil {
		return nil, err
	}
	var rem, exp []byte
	cert, block, err := signBlock(ctx, ca, req.CA, req.CAKey, CertFormatIssuer, func(n int) (b []byte, err error) {
		b, rem, exp, err = req.Cert.Block(n)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	got, err := ParseIssuerCert(block, rem, exp)
	if err != nil {
		return nil, err
	}
	if got.IssuerID != req.Cert.IssuerID || got.Expiry != req.Cert.Expiry || got.Serial != req.Cert.Serial || !got.Key.Equal(req.Cert.Key) {
		return nil, certErr(CertFormatIssuer, "content", ErrCertKey, "the recovered certificate differs from the request")
	}
	return &CertifiedKey{Cert: cert, Remainder: rem, Exponent: exp}, nil
}

// ICCCertRequest asks an issuer for an ICC public key certificate (format
// 04).
type ICCCertRequest struct {
	Issuer KeyRef // the issuer's key in the Certifier
	// IssuerKey is the issuer's public key, which checks the result; nil
	// takes it from the Certifier.
	IssuerKey *rsa.PublicKey
	Cert      ICCCert
	// StaticData is the card's static data to be authenticated (EMV Book 3
	// section 10.3): the records the AFL marks for offline data
	// authentication, then the values of the tags in the SDA tag list.
	StaticData []byte
	// Now, when set, is the date the certificate must not have expired
	// at.
	Now time.Time
}

// CertifyICC signs an ICC public key certificate with the issuer's key: it
// builds the block of EMV Book 2 Table 14, signs it with
// [Certifier.SignRaw], then recovers the certificate with the issuer's
// public key, checks it as a terminal would (section 6.4, against the
// request's static data) and compares its content with the request before
// returning it with the key's remainder (9F48) and exponent (9F47). A
// request that has expired at req.Now is refused before anything is
// signed.
func CertifyICC(ctx context.Context, c Certifier, req ICCCertRequest) (*CertifiedKey, error) {
	if err := notExpired(CertFormatICC, req.Cert.Expiry, req.Now); err != nil {
		return nil, err
	}
	var rem, exp []byte
	cert, block, err := signBlock(ctx, c, req.Issuer, req.IssuerKey, CertFormatICC, func(n int) (b []byte, err error) {
		b, rem, exp, err = req.Cert.Block(n, req.StaticData)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	got, err := ParseICCCert(block, rem, exp, req.StaticData)
	if err != nil {
		return nil, err
	}
	if got.PAN != req.Cert.PAN || got.Expiry != req.Cert.Expiry || got.Serial != req.Cert.Serial || !got.Key.Equal(req.Cert.Key) {
		return nil, certErr(CertFormatICC, "content", ErrCertKey, "the recovered certificate differs from the request")
	}
	return &CertifiedKey{Cert: cert, Remainder: rem, Exponent: exp}, nil
}

// StaticDataRequest asks an issuer for signed static application data
// (format 03).
type StaticDataRequest struct {
	Issuer KeyRef // the issuer's key in the Certifier
	// IssuerKey is the issuer's public key, which checks the result; nil
	// takes it from the Certifier.
	IssuerKey  *rsa.PublicKey
	DAC        [2]byte // data authentication code (9F45)
	StaticData []byte  // the static data to be authenticated, as for ICCCertRequest
}

// SignStaticData signs static application data with the issuer's key: it
// builds the block of EMV Book 2 Table 7, signs it with
// [Certifier.SignRaw], and recovers and checks the result as a terminal
// would (section 5.4) before returning it, the value of tag 93.
func SignStaticData(ctx context.Context, c Certifier, req StaticDataRequest) ([]byte, error) {
	s := SignedStaticData{DAC: req.DAC}
	sig, block, err := signBlock(ctx, c, req.Issuer, req.IssuerKey, CertFormatSSAD, func(n int) ([]byte, error) {
		return s.Block(n, req.StaticData)
	})
	if err != nil {
		return nil, err
	}
	got, err := ParseSignedStaticData(block, req.StaticData)
	if err != nil {
		return nil, err
	}
	if got.DAC != req.DAC {
		return nil, certErr(CertFormatSSAD, "content", ErrCertKey, "the recovered data authentication code differs from the request")
	}
	return sig, nil
}

// notExpired refuses, before anything is signed, a certificate that has
// expired at now (when now is set); a malformed date is left to the block
// builder.
func notExpired(format byte, d CertDate, now time.Time) error {
	if now.IsZero() || !d.Valid() {
		return nil
	}
	return checkExpiry(format, d, now)
}

// signBlock resolves the signer's public key (pub, or the Certifier's for
// ref), builds the block for its modulus length, has the Certifier sign it,
// and recovers the signature with the public key. It returns the signature
// and the recovered block, which it has checked equals the one it built.
func signBlock(ctx context.Context, c Certifier, ref KeyRef, pub *rsa.PublicKey, format byte, build func(n int) ([]byte, error)) (sig, recovered []byte, err error) {
	if c == nil {
		return nil, nil, fmt.Errorf("perso: %s: no Certifier: %w", certName(format), ErrBadInput)
	}
	if pub == nil {
		if pub, err = c.PublicKey(ctx, ref); err != nil {
			return nil, nil, fmt.Errorf("perso: %s: public key %s: %w", certName(format), ref, err)
		}
	}
	if err := checkKey(pub); err != nil {
		return nil, nil, certErr(format, "signing key", ErrCertKey, "%s: %v", ref, err)
	}
	block, err := build(pub.N.BitLen() / 8)
	if err != nil {
		return nil, nil, err
	}
	sig, err = c.SignRaw(ctx, ref, block)
	if err != nil {
		return nil, nil, fmt.Errorf("perso: %s: signing with %s: %w", certName(format), ref, err)
	}
	recovered, err = RecoverCert(pub, format, sig)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(recovered, block) {
		return nil, nil, certErr(format, "signature", ErrCertHash, "the signature by %s does not recover the signed block", ref)
	}
	return sig, recovered, nil
}

// CardCertifier makes the offline data authentication data of one issuer's
// cards for the application profiles: the issuer's certificate data, signed
// static application data for SDA, and for DDA a card key pair with its ICC
// public key certificate. It is safe for concurrent use.
type CardCertifier struct {
	issuer       IssuerKey
	bits, e      int
	issuerExp    int
	maxIssuerLen int

	// Now returns the date that new certificates must not have expired at;
	// nil means time.Now.
	Now func() time.Time

	mu  sync.Mutex
	pub *rsa.PublicKey // the issuer's public key, once matched with its certificate
}

// NewCardCertifier returns a CardCertifier for the issuer key and its
// certificate, making card keys of bits bits (a multiple of 8 from 512 to
// 1984, EMV Book 2 section 6.1) with the public exponent 3 or 65537.
func NewCardCertifier(issuer IssuerKey, bits, exponent int) (*CardCertifier, error) {
	switch {
	case issuer.Key.Label == "":
		return nil, fmt.Errorf("perso: issuer key: no label: %w", ErrBadInput)
	case len(issuer.Certificate) <= issuerLayout.overhead() || len(issuer.Certificate) > MaxCertKeyLen:
		return nil, fmt.Errorf("perso: issuer certificate of %d bytes: %w", len(issuer.Certificate), ErrBadInput)
	case bits < 512 || bits > 8*MaxCertKeyLen || bits%8 != 0:
		return nil, fmt.Errorf("perso: ICC key of %d bits: %w (a multiple of 8 from 512 to 1984)", bits, ErrUnsupported)
	}
	if _, err := exponentBytes(exponent); err != nil {
		return nil, fmt.Errorf("perso: ICC key: %v: %w", err, ErrUnsupported)
	}
	c := &CardCertifier{issuer: issuer, bits: bits, e: exponent, maxIssuerLen: len(issuer.Certificate)}
	switch {
	case bytes.Equal(issuer.Exponent, []byte{0x03}):
		c.issuerExp = 3
	case bytes.Equal(issuer.Exponent, []byte{0x01, 0x00, 0x01}):
		c.issuerExp = 65537
	default:
		return nil, fmt.Errorf("perso: issuer public key exponent %X is not 03 or 010001: %w", []byte(issuer.Exponent), ErrBadInput)
	}
	if len(issuer.Remainder) > 0 {
		if n := len(issuer.Certificate) - issuerLayout.overhead() + len(issuer.Remainder); n > MaxCertKeyLen || n > len(issuer.Certificate) || bits/8 > n {
			return nil, fmt.Errorf("perso: issuer key of %d bytes for a %d-byte certificate and a %d-bit ICC key: %w", n, len(issuer.Certificate), bits, ErrBadInput)
		}
	}
	return c, nil
}

// AddIssuerData adds the issuer's certificate data objects: 90, 92 when the
// key has a remainder, and 9F32.
func (c *CardCertifier) AddIssuerData(b *Builder) {
	b.AddPrimitive(0x90, c.issuer.Certificate)
	if len(c.issuer.Remainder) > 0 {
		b.AddPrimitive(0x92, c.issuer.Remainder)
	}
	b.AddPrimitive(0x9F32, c.issuer.Exponent)
}

// SignStaticData returns signed static application data (tag 93) over the
// static data to be authenticated with the 2-byte data authentication code
// dac; see [SignStaticData].
func (c *CardCertifier) SignStaticData(ctx context.Context, env *Env, dac, staticData []byte) ([]byte, error) {
	if len(dac) != 2 {
		return nil, fmt.Errorf("perso: data authentication code of %d bytes, want 2: %w", len(dac), ErrBadInput)
	}
	pub, err := c.issuerKey(ctx, env)
	if err != nil {
		return nil, err
	}
	return SignStaticData(ctx, env.Certifier, StaticDataRequest{
		Issuer: c.issuer.Key, IssuerKey: pub, DAC: [2]byte(dac), StaticData: staticData,
	})
}

// CardCertificate is a card key pair and its ICC public key certificate:
// the public key, the certificate data objects, and the private key's CRT
// components sealed under the KEK in the order of DGIs 8201 to 8205.
type CardCertificate struct {
	CertifiedKey
	Key *rsa.PublicKey
	CRT [5]Sealed
}

// AddICCData adds the ICC certificate data objects: 9F46, 9F47, and 9F48
// when the key has a remainder.
func (c *CardCertificate) AddICCData(b *Builder) {
	b.AddPrimitive(0x9F46, c.Cert)
	b.AddPrimitive(0x9F47, c.Exponent)
	if len(c.Remainder) > 0 {
		b.AddPrimitive(0x9F48, c.Remainder)
	}
}

// Certify generates a card key pair in env's Certifier, sealed under
// env.KEK, and certifies its public key for the card with the application
// PAN pan: the certificate expires with the card (expiry is the card's
// expiry date, YYMMDD or YYMM), its hash covers the static data to be
// authenticated, and its serial number is the first three bytes of the
// SHA-1 of the card's modulus. See [CertifyICC] for the checks made before
// it returns.
func (c *CardCertifier) Certify(ctx context.Context, env *Env, pan, expiry string, staticData []byte) (*CardCertificate, error) {
	if err := checkPAN(pan); err != nil {
		return nil, err
	}
	date, err := CertDateOf(expiry)
	if err != nil {
		return nil, err
	}
	now := c.now()
	if err := notExpired(CertFormatICC, date, now); err != nil {
		return nil, err
	}
	pub, err := c.issuerKey(ctx, env)
	if err != nil {
		return nil, err
	}
	key, err := env.Certifier.GenerateCardKey(ctx, CardKeyRequest{Bits: c.bits, Exponent: c.e, KEK: env.KEK})
	if err != nil {
		return nil, fmt.Errorf("perso: card key: %w", err)
	}
	if key == nil || key.Public == nil || key.Public.N == nil || key.Public.N.BitLen() != c.bits || key.Public.E != c.e {
		return nil, fmt.Errorf("perso: card key: the security module did not return a %d-bit key with exponent %d", c.bits, c.e)
	}
	h := sha1.Sum(key.Public.N.Bytes())
	ck, err := CertifyICC(ctx, env.Certifier, ICCCertRequest{
		Issuer:     c.issuer.Key,
		IssuerKey:  pub,
		Cert:       ICCCert{PAN: pan, Expiry: date, Serial: [3]byte(h[:3]), Key: key.Public},
		StaticData: staticData,
		Now:        now,
	})
	if err != nil {
		return nil, err
	}
	return &CardCertificate{CertifiedKey: *ck, Key: key.Public, CRT: key.CRT}, nil
}

func (c *CardCertifier) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// issuerKey returns the issuer's public key from env's Certifier, checked
// once against the configured certificate data: the exponent, the
// remainder (the modulus's rightmost bytes that the certificate could not
// hold), a length no greater than the certification authority's, and room
// for the card key.
func (c *CardCertifier) issuerKey(ctx context.Context, env *Env) (*rsa.PublicKey, error) {
	if env == nil || env.Certifier == nil {
		return nil, fmt.Errorf("perso: no Certifier for the issuer key: %w", ErrBadInput)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil {
		return c.pub, nil
	}
	ref := c.issuer.Key
	pub, err := env.Certifier.PublicKey(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("perso: issuer key %s: %w", ref, err)
	}
	mismatch := func(field, detail string, args ...any) error {
		return fmt.Errorf("perso: issuer key %s does not match its certificate: %w", ref, certErr(CertFormatIssuer, field, ErrCertKey, detail, args...))
	}
	if err := checkKey(pub); err != nil {
		return nil, mismatch("public key", "%v", err)
	}
	if pub.E != c.issuerExp {
		return nil, mismatch("public key exponent", "the module's key has %d, the certificate data %X", pub.E, []byte(c.issuer.Exponent))
	}
	mod := pub.N.Bytes()
	field := len(c.issuer.Certificate) - issuerLayout.overhead()
	switch {
	case len(mod) > c.maxIssuerLen:
		return nil, mismatch("public key length", "%d bytes, longer than the %d-byte certification authority key", len(mod), c.maxIssuerLen)
	case len(mod) > field && !bytes.Equal(mod[field:], c.issuer.Remainder):
		return nil, mismatch("public key remainder", "92 is not the modulus's last %d bytes", len(mod)-field)
	case len(mod) <= field && len(c.issuer.Remainder) > 0:
		return nil, mismatch("public key remainder", "92 is present but the key fits in the certificate")
	case c.bits > 8*len(mod):
		return nil, mismatch("public key length", "%d-byte issuer key is shorter than the %d-bit ICC key", len(mod), c.bits)
	}
	c.pub = pub
	return pub, nil
}
