package perso

import (
	"context"
	"fmt"
	"log/slog"
)

// IssuerID identifies the issuer that owns a batch and its keys. It is four
// bytes, conventionally the issuer identification number (BIN) in BCD,
// right-padded with F, as in 45123FFF for the BIN 45123.
type IssuerID [4]byte

// String returns the issuer identifier in upper-case hex.
func (id IssuerID) String() string { return fmt.Sprintf("%X", id[:]) }

// Scheme names how secrets are protected under a KEK and how the
// per-application MAC is computed.
type Scheme uint8

const (
	// SchemeAESKW protects secrets with AES key wrap under an AES KEK: keys
	// (a ProtectedKey, each entry of SealKeys) with RFC 3394, values
	// (SealValue, SealRSAComponent) with RFC 5649. It MACs application data
	// with AES-CMAC (NIST SP 800-38B) truncated to 8 bytes. It is the
	// default: every PKCS#11 token that wraps keys at all offers it.
	SchemeAESKW Scheme = 0x01
	// SchemeDES3ECB protects secrets with 3DES-ECB under a double-length KEK,
	// as EMV CPS v1.1 section 5.5 does: keys as they are, values (SealValue,
	// SealRSAComponent) after ISO/IEC 9797-1 padding method 2, always
	// applied so that opening is unambiguous. It MACs application data with
	// ISO/IEC 9797-1 MAC algorithm 3, padding method 2.
	SchemeDES3ECB Scheme = 0x02
)

// String returns the scheme's name.
func (s Scheme) String() string {
	switch s {
	case SchemeAESKW:
		return "AES-KW"
	case SchemeDES3ECB:
		return "3DES-ECB"
	}
	return fmt.Sprintf("Scheme(0x%02X)", uint8(s))
}

// Valid reports whether s is a scheme this library knows.
func (s Scheme) Valid() bool { return s == SchemeAESKW || s == SchemeDES3ECB }

// KEKID names a transport key-encryption key: its owner, its version and the
// scheme it protects secrets with. A KEKID is public; the KEK itself lives in
// the security modules of the issuer and the bureau.
type KEKID struct {
	Issuer  IssuerID
	Version uint8
	Scheme  Scheme
}

// Label is the label a security module files the KEK under:
// KEK/ISSUER/vVERSION.
func (k KEKID) Label() string { return fmt.Sprintf("KEK/%s/v%d", k.Issuer, k.Version) }

// String returns the identifier as ISSUER/vVERSION/SCHEME.
func (k KEKID) String() string {
	return fmt.Sprintf("%s/v%d/%s", k.Issuer, k.Version, k.Scheme)
}

// KeyType is the algorithm and length of a symmetric key.
type KeyType uint8

const (
	KeyDES2   KeyType = 0x01 // double-length 3DES, 16 bytes
	KeyDES3   KeyType = 0x02 // triple-length 3DES, 24 bytes
	KeyAES128 KeyType = 0x11
	KeyAES192 KeyType = 0x12
	KeyAES256 KeyType = 0x13
)

// Len returns the key length in bytes, or 0 for an unknown type.
func (t KeyType) Len() int {
	switch t {
	case KeyDES2, KeyAES128:
		return 16
	case KeyDES3, KeyAES192:
		return 24
	case KeyAES256:
		return 32
	}
	return 0
}

// IsDES reports whether t is a 3DES key type.
func (t KeyType) IsDES() bool { return t == KeyDES2 || t == KeyDES3 }

// String returns the type's name.
func (t KeyType) String() string {
	switch t {
	case KeyDES2:
		return "DES2"
	case KeyDES3:
		return "DES3"
	case KeyAES128:
		return "AES-128"
	case KeyAES192:
		return "AES-192"
	case KeyAES256:
		return "AES-256"
	}
	return fmt.Sprintf("KeyType(0x%02X)", uint8(t))
}

// ProtectedKey is a symmetric key that exists outside a security module only
// encrypted under a KEK. Wrapped is the key as the KEK's scheme protects it;
// KCV is the key's check value (3DES: 3DES-ECB of eight zero bytes; AES:
// AES-ECB of sixteen 01 bytes, as GlobalPlatform SCP03 does), which is public.
//
// A ProtectedKey prints only its type, KEK and KCV.
type ProtectedKey struct {
	KEK     KEKID
	Type    KeyType
	KCV     [3]byte
	Wrapped []byte
}

// String describes the key without its wrapped bytes.
func (k ProtectedKey) String() string {
	return fmt.Sprintf("protected %s key (KEK %s, KCV %X, %d bytes)", k.Type, k.KEK, k.KCV[:], len(k.Wrapped))
}

// GoString is String, so %#v shows no key bytes.
func (k ProtectedKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k ProtectedKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing the wrapped bytes.
func (k ProtectedKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// SealForm says how a sealed secret is laid out; see [Sealed].
type SealForm uint8

const (
	// SealValue: the secret's clear value, wrapped under the KEK as one value.
	SealValue SealForm = 0x01
	// SealKeys: a list of keys, each wrapped on its own; the clear value is
	// their concatenation. Security modules that derive keys inside the
	// module and wrap them one by one (C_WrapKey) produce this form.
	SealKeys SealForm = 0x02
	// SealRSAComponent: one CRT component (p, q, dp, dq or qinv) of an RSA
	// private key that is wrapped whole (PKCS#8, as C_WrapKey produces it);
	// the clear value is that component, big-endian, left-padded to half the
	// modulus length.
	SealRSAComponent SealForm = 0x03
)

// Sealed is a secret protected under an application's KEK, in the encoding
// the batch file carries for a secret DGI's value:
//
//	SealValue:        01 || wrap(KEK, value)
//	SealKeys:         02 || n || n * (type(1) || KCV(3) || len(1) || wrap(KEK, key))
//	SealRSAComponent: 03 || component(1: 1=p 2=q 3=dp 4=dq 5=qinv) || modlen(2) || wrap(KEK, PKCS#8)
//
// Only a security module holding the KEK can open it. Sealed prints only
// its form and length.
type Sealed []byte

// Form returns the seal's form byte, or 0 for an empty value.
func (s Sealed) Form() SealForm {
	if len(s) == 0 {
		return 0
	}
	return SealForm(s[0])
}

// String describes the sealed value without its bytes.
func (s Sealed) String() string {
	return fmt.Sprintf("sealed secret (form %d, %d bytes)", s.Form(), len(s))
}

// GoString is String.
func (s Sealed) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Sealed) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps slog from printing the bytes.
func (s Sealed) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Protector is the issuer side's KEK operations: sealing secrets that arrive
// in clear (a PIN block, a key from the issuer's data), and the
// per-application MAC of DESIGN section 4.
//
// Implementations must be safe for concurrent use. An unknown KEK is
// reported with an error that wraps [ErrNoSuchKey].
type Protector interface {
	// Seal protects clear under the KEK and returns the SealValue form.
	// It must not retain clear; the caller zeroes it afterwards.
	Seal(ctx context.Context, kek KEKID, clear []byte) (Sealed, error)
	// NewMACKey generates a fresh MAC key inside the module (AES-128 for
	// SchemeAESKW, DES2 for SchemeDES3ECB) and returns it protected under
	// the KEK.
	NewMACKey(ctx context.Context, kek KEKID) (ProtectedKey, error)
	// MAC computes the scheme's MAC of data under the protected MAC key:
	// 8 bytes for both schemes.
	MAC(ctx context.Context, key ProtectedKey, data []byte) ([]byte, error)
}

// Translator is the bureau side's security module: it checks application
// MACs and turns secrets sealed under the KEK into what the card's secure
// channel needs, without the secrets appearing in clear on the host where
// the module can avoid it ([Capabilities] says where it cannot).
//
// Implementations must be safe for concurrent use.
type Translator interface {
	// VerifyMAC checks mac over data under the protected MAC key in
	// constant time. A mismatch returns an error that wraps [ErrBadMAC].
	VerifyMAC(ctx context.Context, key ProtectedKey, data, mac []byte) error
	// SessionKeys diversifies the card's static keys from the KMC with the
	// card's key diversification data and derives the secure channel
	// session keys from them. The static keys do not leave the module.
	SessionKeys(ctx context.Context, req SessionKeyRequest) (*SessionKeys, error)
	// Translate opens a sealed secret under the KEK and encrypts its clear
	// value for the card: 3DES-ECB under the SCP02 session DEK, or
	// AES-CBC with a zero IV under the SCP03 static DEK, after ISO/IEC
	// 9797-1 padding method 2 where the value is not a multiple of the
	// block size. It returns the ciphertext only.
	Translate(ctx context.Context, kek KEKID, secret Sealed, to *SessionKeys) ([]byte, error)
	// Capabilities reports what the module does inside itself.
	Capabilities() Capabilities
}

// Capabilities reports which operations a security module performs inside
// itself and which fall back to the host, so that no caller is fooled about
// where clear key material exists.
type Capabilities struct {
	Module string // a name for the module, such as "soft" or a token label

	DeriveInModule    bool // card keys are derived and wrapped inside the module
	KeyGenInModule    bool // card RSA keys are generated inside the module
	SignInModule      bool // certificates are signed with a private key that never leaves the module
	MACInModule       bool // application MACs are computed and verified inside the module
	TranslateInModule bool // KEK -> session key translation happens inside the module
	Schemes           []Scheme

	// Fallbacks lists, in words, each step that the host performs with clear
	// key material because the module cannot.
	Fallbacks []string
}
