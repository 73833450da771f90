package gp

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cardperso/perso/internal/crypt"
)

// Command is a command APDU as the secure channel sees it. Its fields are
// those of perso.Command, in the same order and of the same types, so that
// each converts to the other: gp.Command(c) and perso.Command(g).
//
// Le is -1 for no Le field, or the number of response bytes expected (256
// for the short Le byte 00). Secure messaging changes CLA and Data only.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Le               int
}

// Response is a response APDU as the secure channel sees it, convertible to
// and from perso.Response.
type Response struct {
	Data []byte
	SW   uint16
}

// leNone is Command.Le for a command with no Le field.
const leNone = -1

// maxShortData is the most data a short command APDU carries; secure
// messaging here uses short APDUs only.
const maxShortData = 255

// maxPlain is the most plaintext a protected short command carries: the
// data, with C-DEC padded by method 2 (at least one byte) to whole blocks,
// and the C-MAC in 255 bytes. For 8-byte MACs that is 239 bytes with C-DEC
// (240 encrypted + 8) and 247 without.
func maxPlain(level Level, macLen, block int) int {
	room := maxShortData - macLen
	if level.has(LevelCDEC) {
		return room/block*block - 1
	}
	return room
}

// String shows the header and lengths only; data can carry secrets.
func (c Command) String() string {
	return fmt.Sprintf("%02X%02X%02X%02X Lc=%d", c.CLA, c.INS, c.P1, c.P2, len(c.Data))
}

// GoString is String.
func (c Command) GoString() string { return c.String() }

// Protocol is a secure channel protocol and its "i" parameter (GP Card
// Specification 2.2 Appendix E.1 for SCP02; Amendment D section 5 for
// SCP03).
type Protocol struct {
	Version byte // 0x02 or 0x03
	I       byte
}

// The protocol options this package implements and the usual ones.
var (
	// SCP02 i=15: three keys, C-MAC on the modified APDU, explicit
	// initiation, ICV zero at EXTERNAL AUTHENTICATE then encrypted for each
	// following command, random card challenge.
	SCP02_15 = Protocol{Version: 2, I: 0x15}
	// SCP02 i=55: as i=15 with the well-known pseudo-random card challenge.
	SCP02_55 = Protocol{Version: 2, I: 0x55}
	// SCP03 i=00: random card challenge, no R-MAC, S8 mode.
	SCP03_00 = Protocol{Version: 3, I: 0x00}
	// SCP03 i=10: pseudo-random card challenge.
	SCP03_10 = Protocol{Version: 3, I: 0x10}
	// SCP03 i=30: pseudo-random card challenge, R-MAC supported.
	SCP03_30 = Protocol{Version: 3, I: 0x30}
	// SCP03 i=70: pseudo-random card challenge, R-MAC and R-ENC supported.
	SCP03_70 = Protocol{Version: 3, I: 0x70}
)

// SCP02 options, GP Card Specification 2.2 Appendix E.1 ("i" parameter).
const (
	scp02ThreeKeys    = 0x01 // 3 secure channel keys (else 1 base key)
	scp02Unmodified   = 0x02 // C-MAC on the unmodified APDU
	scp02Explicit     = 0x04 // explicit initiation (INITIALIZE UPDATE)
	scp02ICVMacAID    = 0x08 // ICV is a MAC over the AID (implicit mode)
	scp02ICVEncrypt   = 0x10 // ICV encryption for C-MAC
	scp02RMAC         = 0x20 // R-MAC support
	scp02PseudoRandom = 0x40 // well-known pseudo-random card challenge
)

// SCP03 options, GP Amendment D section 5 ("i" parameter).
const (
	scp03S16          = 0x01 // S16 mode: 16-byte challenges, cryptograms and MACs
	scp03PseudoRandom = 0x10 // pseudo-random card challenge
	scp03RMAC         = 0x20 // R-MAC support
	scp03RENC         = 0x40 // R-ENC support (with R-MAC)
)

// String returns e.g. "SCP02 i=15".
func (p Protocol) String() string { return fmt.Sprintf("SCP%02X i=%02X", p.Version, p.I) }

// Check returns nil if this package implements p, or an error wrapping
// [ErrUnsupported] saying why not. SCP02 needs three keys and explicit
// initiation, without the implicit-mode ICV; SCP03 takes any "i" whose
// reserved bits are zero and that asks for R-ENC only with R-MAC.
func (p Protocol) Check() error {
	switch p.Version {
	case 2:
		switch {
		case p.I&0x80 != 0:
			return fmt.Errorf("%w: %v: reserved bit b8 set", ErrUnsupported, p)
		case p.I&scp02ThreeKeys == 0:
			return fmt.Errorf("%w: %v: one base key", ErrUnsupported, p)
		case p.I&scp02Explicit == 0:
			return fmt.Errorf("%w: %v: implicit initiation", ErrUnsupported, p)
		case p.I&scp02ICVMacAID != 0:
			return fmt.Errorf("%w: %v: ICV from a MAC over the AID", ErrUnsupported, p)
		}
		return nil
	case 3:
		switch {
		case p.I&^(scp03S16|scp03PseudoRandom|scp03RMAC|scp03RENC) != 0:
			return fmt.Errorf("%w: %v: reserved bits set", ErrUnsupported, p)
		case p.I&scp03RENC != 0 && p.I&scp03RMAC == 0:
			return fmt.Errorf("%w: %v: R-ENC without R-MAC", ErrUnsupported, p)
		}
		return nil
	}
	return fmt.Errorf("%w: SCP%02X", ErrUnsupported, p.Version)
}

// s16 reports SCP03 S16 mode.
func (p Protocol) s16() bool { return p.Version == 3 && p.I&scp03S16 != 0 }

// pseudoRandom reports a pseudo-random (card-computable) card challenge.
func (p Protocol) pseudoRandom() bool {
	if p.Version == 2 {
		return p.I&scp02PseudoRandom != 0
	}
	return p.I&scp03PseudoRandom != 0
}

// challengeLen is the length of the host and card challenges: 8, except 16
// in SCP03 S16 mode. (The SCP02 card challenge is 6 bytes; see
// scp02CardChallengeLen.)
func (p Protocol) challengeLen() int {
	if p.s16() {
		return 16
	}
	return 8
}

// macLen is the length of cryptograms, C-MACs and R-MACs: 8, or 16 in S16
// mode.
func (p Protocol) macLen() int { return p.challengeLen() }

// Level is a secure channel's security level, P1 of EXTERNAL AUTHENTICATE
// (GP Card Specification 2.2 E.5.2, Amendment D 7.1.2).
type Level byte

const (
	// LevelNone: mutual authentication only; later commands are sent as
	// they are.
	LevelNone Level = 0x00
	// LevelCMAC: each command carries a C-MAC.
	LevelCMAC Level = 0x01
	// LevelCDEC: command data are encrypted; only together with LevelCMAC.
	LevelCDEC Level = 0x02
	// LevelRMAC: each response carries an R-MAC (SCP03).
	LevelRMAC Level = 0x10
	// LevelRENC: response data are encrypted (SCP03); only together with
	// LevelCDEC and LevelRMAC.
	LevelRENC Level = 0x20
)

func (l Level) has(bits Level) bool { return l&bits == bits }

// String names the level's parts, as in "C-MAC+C-DEC+R-MAC".
func (l Level) String() string {
	if l == LevelNone {
		return "none"
	}
	s := ""
	for _, b := range []struct {
		bit  Level
		name string
	}{{LevelCMAC, "C-MAC"}, {LevelCDEC, "C-DEC"}, {LevelRMAC, "R-MAC"}, {LevelRENC, "R-ENC"}} {
		if l.has(b.bit) {
			if s != "" {
				s += "+"
			}
			s += b.name
		}
	}
	if rest := l &^ (LevelCMAC | LevelCDEC | LevelRMAC | LevelRENC); rest != 0 {
		s += fmt.Sprintf("+0x%02X", byte(rest))
	}
	return s
}

// check returns nil if p allows the security level l, and an error wrapping
// [ErrLevel] otherwise. The levels are those of GP Card Specification 2.2
// E.5.2 for SCP02 without R-MAC, which this package does not implement, and
// of Amendment D 7.1.2 for SCP03: 00, 01, 03, and for SCP03 11, 13 and 33
// where "i" announces R-MAC and R-ENC.
func (l Level) check(p Protocol) error {
	allowed := []Level{LevelNone, LevelCMAC, LevelCMAC | LevelCDEC}
	if p.Version == 3 && p.I&scp03RMAC != 0 {
		allowed = append(allowed, LevelCMAC|LevelRMAC, LevelCMAC|LevelCDEC|LevelRMAC)
		if p.I&scp03RENC != 0 {
			allowed = append(allowed, LevelCMAC|LevelCDEC|LevelRMAC|LevelRENC)
		}
	}
	for _, a := range allowed {
		if l == a {
			return nil
		}
	}
	return fmt.Errorf("%w: %02X (%v) under %v", ErrLevel, byte(l), l, p)
}

// Keys are a security domain's static keys, as the card holds them (already
// diversified from the issuer's KMC): ENC, MAC and DEK, 16-byte 3DES keys
// for SCP02 and AES keys of 16, 24 or 32 bytes for SCP03.
//
// Keys prints no key bytes; call Zero when done.
type Keys struct {
	ENC, MAC, DEK []byte
}

// SessionKeys are the keys of one secure channel session, derived outside
// this package by whoever holds the card's static keys (a security module):
//
//	SCP02 (GP 2.2 E.4.1): ENC = S-ENC, MAC = C-MAC, RMAC = R-MAC (unused
//	       here), DEK = the session DEK
//	SCP03 (Amendment D 6.2.1): ENC = S-ENC, MAC = S-MAC, RMAC = S-RMAC,
//	       DEK = the static DEK
//
// DEK may be nil where the security module encrypts sensitive data itself;
// RMAC may be nil unless the level asks for R-MAC.
//
// SessionKeys prints no key bytes; call Zero when done.
type SessionKeys struct {
	ENC, MAC, RMAC, DEK []byte
}

const redacted = "gp: keys (redacted)"

// String describes the keys without their bytes.
func (Keys) String() string { return redacted }

// GoString is String.
func (k Keys) GoString() string { return k.String() }

// Format prints String for every verb.
func (k Keys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing key bytes.
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Zero overwrites the keys.
func (k Keys) Zero() { zero(k.ENC, k.MAC, k.DEK) }

// String describes the keys without their bytes.
func (SessionKeys) String() string { return redacted }

// GoString is String.
func (k SessionKeys) GoString() string { return k.String() }

// Format prints String for every verb.
func (k SessionKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing key bytes.
func (k SessionKeys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Zero overwrites the keys.
func (k SessionKeys) Zero() { zero(k.ENC, k.MAC, k.RMAC, k.DEK) }

// clone returns a copy of the keys that the session owns and zeroes.
func (k SessionKeys) clone() SessionKeys {
	return SessionKeys{ENC: clone(k.ENC), MAC: clone(k.MAC), RMAC: clone(k.RMAC), DEK: clone(k.DEK)}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func zero(bs ...[]byte) {
	for _, b := range bs {
		crypt.Zero(b)
	}
}

// checkKeyLens returns an error naming the key whose length does not suit
// the protocol: 16 bytes for SCP02, 16, 24 or 32 for SCP03 (all three
// alike). It never shows key bytes.
func checkKeyLens(v byte, names []string, keys ...[]byte) error {
	for i, k := range keys {
		if k == nil {
			continue
		}
		ok := len(k) == 16
		if v == 3 {
			ok = (len(k) == 16 || len(k) == 24 || len(k) == 32) && len(k) == len(keys[0])
		}
		if !ok {
			return fmt.Errorf("%w: %s key of %d bytes for SCP%02X", ErrKeyLength, names[i], len(k), v)
		}
	}
	return nil
}

// Errors. Card-side errors map to status words with [StatusWord].
var (
	// ErrCardCryptogram: the card cryptogram in the INITIALIZE UPDATE
	// response does not verify with the session keys. The card is not the
	// one the keys are for, or the keys are wrong. The host must not send
	// EXTERNAL AUTHENTICATE and must not retry with other keys: each
	// attempt answers an unauthenticated card, and cards count failed
	// authentications and lock (GP 2.2 E.4.2.1, Amendment D 6.2.2.2).
	ErrCardCryptogram = errors.New("gp: card cryptogram does not verify")
	// ErrHostCryptogram: the host cryptogram in EXTERNAL AUTHENTICATE does
	// not verify (card side; status 6300).
	ErrHostCryptogram = errors.New("gp: host cryptogram does not verify")
	// ErrSecureMessaging: a command or response fails the secure messaging
	// checks: C-MAC or R-MAC mismatch, missing or truncated MAC, data that
	// do not decrypt to well-padded plaintext, or an unprotected command
	// where the security level requires protection. The session is closed
	// (card side: status 6982).
	ErrSecureMessaging = errors.New("gp: secure messaging check failed")
	// ErrClosed: the session is closed, after a failure or by Close, or
	// was never opened (card side: status 6982).
	ErrClosed = errors.New("gp: secure channel session closed")
	// ErrSequence: a step out of order, such as EXTERNAL AUTHENTICATE
	// without INITIALIZE UPDATE (card side: status 6985).
	ErrSequence = errors.New("gp: command out of sequence")
	// ErrKeyVersion: INITIALIZE UPDATE names a key set the card does not
	// have (card side: status 6A88).
	ErrKeyVersion = errors.New("gp: key set not found")
	// ErrLevel: a security level that the protocol or this package does
	// not allow (card side: status 6A86).
	ErrLevel = errors.New("gp: security level not supported")
	// ErrLength: a command or response of the wrong length, or a command
	// too long to protect in a short APDU (card side: status 6700).
	ErrLength = errors.New("gp: wrong length")
	// ErrUnsupported: a protocol, "i" option or class byte this package
	// does not implement (card side: status 6E00 for the class byte,
	// 6A86 otherwise).
	ErrUnsupported = errors.New("gp: unsupported")
	// ErrKeyLength: a key of the wrong length for the protocol.
	ErrKeyLength = errors.New("gp: wrong key length")
	// ErrCounter: the card's sequence counter is exhausted; the security
	// domain can open no more sessions (status 6985).
	ErrCounter = errors.New("gp: sequence counter exhausted")
)

// errClass is ErrUnsupported for a class byte, so that StatusWord can
// answer 6E00.
var errClass = fmt.Errorf("%w class byte", ErrUnsupported)

// StatusWord returns the status word a card answers for err, an error from
// [Card] or [CardSession]: 9000 for nil, 6300 for a host cryptogram that
// does not verify, 6982 for secure messaging failures and a closed
// session, 6985 for sequence errors and an exhausted counter, 6A88 for an
// unknown key set, 6A86 for a security level or parameter not supported,
// 6E00 for a class byte not supported, 6700 for wrong lengths, and 6F00 for
// anything else.
func StatusWord(err error) uint16 {
	switch {
	case err == nil:
		return 0x9000
	case errors.Is(err, ErrHostCryptogram):
		return 0x6300
	case errors.Is(err, ErrSecureMessaging), errors.Is(err, ErrClosed):
		return 0x6982
	case errors.Is(err, ErrSequence), errors.Is(err, ErrCounter):
		return 0x6985
	case errors.Is(err, ErrKeyVersion):
		return 0x6A88
	case errors.Is(err, errClass):
		return 0x6E00
	case errors.Is(err, ErrLevel), errors.Is(err, ErrUnsupported):
		return 0x6A86
	case errors.Is(err, ErrLength):
		return 0x6700
	}
	return 0x6F00
}

// Class byte coding (ISO/IEC 7816-4 5.4.1, GP Card Specification 2.2
// 11.1.4): in the first interindustry coding, b8 set marks a proprietary
// (GlobalPlatform) command, b4 b3 = 01 proprietary secure messaging, and b2
// b1 the logical channel. Further interindustry class bytes (b7 set) are
// not used for secure messaging here.
const (
	claProprietary = 0x80
	claSM          = 0x04
	claISOSM       = 0x08
	claChannel     = 0x03
	claFurther     = 0x40
)

// checkCLA rejects class bytes that this package does not protect:
// the further interindustry coding and class bytes already marked for
// secure messaging.
func checkCLA(cla byte) error {
	if cla&claFurther != 0 || cla&(claSM|claISOSM) != 0 {
		return fmt.Errorf("%w %02X", errClass, cla)
	}
	return nil
}

// macCLA is the class byte that the C-MAC covers (GP Card Specification
// 2.2 E.4.4, Amendment D 6.2.4): the logical channel number set to zero,
// b4 zero and b3 set for GlobalPlatform secure messaging.
func macCLA(cla byte) byte { return cla&^(claISOSM|claChannel) | claSM }
