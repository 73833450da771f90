package perso

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cardperso/perso/internal/crypt"
)

// KeyRef names a key held by a security module: a label and a version.
// Master keys are referred to, never held: the bytes stay in the module.
type KeyRef struct {
	Label   string `json:"label"`
	Version uint8  `json:"version"`
}

// String returns LABEL/vVERSION.
func (r KeyRef) String() string { return fmt.Sprintf("%s/v%d", r.Label, r.Version) }

// Method is a key derivation method.
type Method uint8

const (
	// MethodEMVOptionA derives an ICC master key (AC, SMI or SMC) from an
	// issuer master key with the 16 rightmost digits of PAN || PSN
	// (EMV Book 2 A1.4.1). Data: the PAN and PSN as [PANPSN] encodes them.
	MethodEMVOptionA Method = 1
	// MethodEMVOptionB derives an ICC master key for PANs longer than 16
	// digits: SHA-1 of PAN || PSN, decimalized (EMV Book 2 A1.4.2).
	// For PANs of 16 digits or fewer it is option A.
	MethodEMVOptionB Method = 2
	// MethodEncryptData encrypts the derivation data under the master key:
	// 3DES-ECB of the 8 bytes and of their complement for a 16-byte key, as
	// the stored-value keys KDL and KDU are derived from KML and KMU.
	MethodEncryptData Method = 3
	// MethodCPS diversifies a GlobalPlatform card key from the KMC with the
	// key diversification data (KDD, the first 10 bytes of the INITIALIZE
	// UPDATE response) as EMV CPS v1.1 section 5.3.1 does.
	MethodCPS Method = 4
	// MethodVISA2 diversifies a GlobalPlatform card key from the KMC the way
	// VISA2 does (the CPLC-based layout used by Visa cards).
	MethodVISA2 Method = 5
	// MethodSCP03KDF diversifies an AES card key from an AES KMC with the
	// NIST SP 800-108 counter-mode KDF with AES-CMAC (GP Amendment D 6.2.1).
	MethodSCP03KDF Method = 6
)

var methodNames = map[Method]string{
	MethodEMVOptionA:  "EMV option A",
	MethodEMVOptionB:  "EMV option B",
	MethodEncryptData: "encrypt data",
	MethodCPS:         "CPS",
	MethodVISA2:       "VISA2",
	MethodSCP03KDF:    "SCP03 KDF",
}

// String returns the method's name.
func (m Method) String() string {
	if s, ok := methodNames[m]; ok {
		return s
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// GPKey selects one of the three GlobalPlatform card keys that MethodCPS,
// MethodVISA2 and MethodSCP03KDF diversify.
type GPKey uint8

const (
	GPKeyENC GPKey = 1
	GPKeyMAC GPKey = 2
	GPKeyDEK GPKey = 3
)

// DeriveRequest asks a KeyDeriver for one card key.
type DeriveRequest struct {
	Master KeyRef // the master key, which stays in the module
	Method Method
	// Data is the derivation data: for the EMV options, PAN || PSN as
	// PANPSN builds it; for MethodEncryptData the 8 or 16 bytes to encrypt;
	// for the GlobalPlatform methods the 10-byte KDD.
	Data []byte
	// Key selects ENC, MAC or DEK for the GlobalPlatform methods.
	Key GPKey
	// KEK is the key the result is protected under.
	KEK KEKID
}

// KeyDeriver derives card keys from master keys inside a security module.
//
// Implementations must be safe for concurrent use. They must return an error
// that wraps [ErrNoSuchKey] when the master key or KEK is not in the module,
// [ErrUnsupported] when the module cannot perform the method or scheme, and
// [ErrBadInput] when the derivation data has the wrong length or format; all
// three are final for that request. Any other error is a failure of the
// module (a lost session, a device error) that the caller may retry.
type KeyDeriver interface {
	// Derive returns the derived key protected under req.KEK with its KCV.
	// The clear key never leaves the module.
	Derive(ctx context.Context, req DeriveRequest) (ProtectedKey, error)
	// Cryptogram computes an EMV application cryptogram inside the module:
	// ICC master key from the issuer master key (req.Method), session key
	// by the EMV common session key derivation (EMV Book 2 A1.3) with the
	// ATC, and the MAC of req.Data (ISO/IEC 9797-1 MAC algorithm 3 with
	// padding method 2). With ARC set it returns ARPC method 1 over the
	// ARQC given in Data instead (EMV Book 2 8.2.1).
	Cryptogram(ctx context.Context, req CryptogramRequest) ([]byte, error)
}

// CryptogramRequest asks for an ARQC/TC/AAC or an ARPC.
type CryptogramRequest struct {
	Master KeyRef // the issuer master key for AC
	Method Method // MethodEMVOptionA or MethodEMVOptionB
	PAN    string
	PSN    uint8
	ATC    uint16
	Data   []byte // the CDOL data for an AC; the 8-byte ARQC for an ARPC
	ARC    []byte // 2-byte authorisation response code; non-nil asks for an ARPC
}

// SCP is a GlobalPlatform secure channel protocol and its parameter.
type SCP struct {
	Version uint8 // 0x02 or 0x03
	Param   uint8 // i: 0x15 or 0x55 for SCP02, 0x00/0x10/0x70 for SCP03
}

// String returns e.g. SCP02 i=15.
func (s SCP) String() string { return fmt.Sprintf("SCP%02X i=%02X", s.Version, s.Param) }

// SessionKeyRequest asks a Translator for a card's secure channel keys.
type SessionKeyRequest struct {
	KMC    KeyRef
	Method Method // MethodCPS, MethodVISA2 or MethodSCP03KDF; 0 means the KMC is the card's key
	KDD    []byte // key diversification data from INITIALIZE UPDATE
	SCP    SCP
	// SCP02: the 2-byte sequence counter. SCP03: host challenge || card
	// challenge (16 or 32 bytes) as the KDF context.
	Sequence []byte
	Context  []byte
}

// SessionKeys are one card session's secure channel keys. They are
// ephemeral: valid for one session with one card. DEK is the session DEK
// for SCP02 and the static DEK for SCP03; it is nil where the module keeps
// it inside and translates there. SessionKeys prints no key bytes; call Zero
// when the session ends.
type SessionKeys struct {
	SCP  SCP
	ENC  []byte
	MAC  []byte
	RMAC []byte
	DEK  []byte
	// Handle lets a module find its own copy of keys it keeps inside.
	Handle any
}

// String describes the keys without their bytes.
func (k *SessionKeys) String() string {
	if k == nil {
		return "session keys <nil>"
	}
	return fmt.Sprintf("session keys (%s)", k.SCP)
}

// GoString is String.
func (k *SessionKeys) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *SessionKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing key bytes.
func (k *SessionKeys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Zero overwrites every key.
func (k *SessionKeys) Zero() {
	if k == nil {
		return
	}
	crypt.Zero(k.ENC)
	crypt.Zero(k.MAC)
	crypt.Zero(k.RMAC)
	crypt.Zero(k.DEK)
}

// PANPSN encodes a PAN and PSN as the derivation data of MethodEMVOptionA
// and MethodEMVOptionB: the PAN's ASCII digits followed by the PSN as two
// ASCII digits (PSN is 00..99, EMV tag 5F34).
func PANPSN(pan string, psn uint8) []byte {
	b := make([]byte, 0, len(pan)+2)
	b = append(b, pan...)
	return append(b, '0'+psn/10%10, '0'+psn%10)
}

// SplitPANPSN reverses [PANPSN], checking that the PAN has 12 to 19 digits
// and the PSN two.
func SplitPANPSN(data []byte) (pan string, psn uint8, err error) {
	if len(data) < 14 || len(data) > 21 {
		return "", 0, fmt.Errorf("%w: PAN||PSN of %d digits", ErrBadInput, len(data))
	}
	for _, c := range data {
		if c < '0' || c > '9' {
			return "", 0, fmt.Errorf("%w: PAN||PSN holds a non-digit", ErrBadInput)
		}
	}
	n := len(data)
	return string(data[:n-2]), (data[n-2]-'0')*10 + data[n-1] - '0', nil
}
