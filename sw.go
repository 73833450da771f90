package perso

import (
	"errors"
	"fmt"
)

// SWError is a status word other than 9000 returned by a card. Its Error
// names the status word and its meaning per ISO/IEC 7816-4:2013 section
// 5.1.3 (tables 5 and 6) and the command descriptions of GlobalPlatform
// Card Specification 2.3 chapter 11. Match classes of status words with errors.Is and the ErrXxx
// sentinels below:
//
//	if errors.Is(err, perso.ErrSecurityStatus) { ... } // 6982
//	var swe *perso.SWError
//	if errors.As(err, &swe) && swe.SW == 0x6A88 { ... }
type SWError struct {
	SW uint16
}

func (e *SWError) Error() string {
	return fmt.Sprintf("perso: SW %04X: %s", e.SW, StatusText(e.SW))
}

// Is reports whether target is a sentinel whose status words include e.SW.
func (e *SWError) Is(target error) bool {
	for _, s := range swSentinels {
		if s.err == target {
			return s.match(e.SW)
		}
	}
	return false
}

// Retries returns the counter x of a 63Cx status word (a verification
// failed, x tries left) and true, or 0 and false for any other status word.
func (e *SWError) Retries() (int, bool) {
	if e.SW&0xFFF0 == 0x63C0 {
		return int(e.SW & 0x0F), true
	}
	return 0, false
}

// Warning reports whether the status word is a warning (62xx, 63xx) rather
// than an error: the command was processed, with a remark.
func (e *SWError) Warning() bool {
	sw1 := e.SW >> 8
	return sw1 == 0x62 || sw1 == 0x63
}

// Sentinels for status words, matched by [SWError.Is].
var (
	// ErrAuthFailed: 6300 or 63Cx, verification or authentication failed;
	// for EXTERNAL AUTHENTICATE, the host cryptogram did not verify. See [SWError.Retries] for 63Cx.
	ErrAuthFailed = errors.New("perso: authentication failed")
	// ErrMemoryFailure: 6581, the card could not write its memory.
	ErrMemoryFailure = errors.New("perso: memory failure")
	// ErrWrongLength: 6700, Lc or Le is wrong for the command.
	ErrWrongLength = errors.New("perso: wrong length")
	// ErrSMNotSupported: 6882, secure messaging not supported.
	ErrSMNotSupported = errors.New("perso: secure messaging not supported")
	// ErrSecurityStatus: 6982, security status not satisfied: no secure
	// channel, or its C-MAC did not verify.
	ErrSecurityStatus = errors.New("perso: security status not satisfied")
	// ErrAuthBlocked: 6983, authentication method blocked.
	ErrAuthBlocked = errors.New("perso: authentication method blocked")
	// ErrConditions: 6985, conditions of use not satisfied, such as a
	// command out of sequence or in the wrong life cycle state.
	ErrConditions = errors.New("perso: conditions of use not satisfied")
	// ErrSMDataObjects: 6987 or 6988, secure messaging data objects missing
	// or incorrect.
	ErrSMDataObjects = errors.New("perso: secure messaging data objects missing or incorrect")
	// ErrWrongData: 6A80, incorrect parameters in the command data.
	ErrWrongData = errors.New("perso: wrong data")
	// ErrFuncNotSupported: 6A81, function not supported.
	ErrFuncNotSupported = errors.New("perso: function not supported")
	// ErrFileNotFound: 6A82, file or application not found.
	ErrFileNotFound = errors.New("perso: file or application not found")
	// ErrRecordNotFound: 6A83, record not found.
	ErrRecordNotFound = errors.New("perso: record not found")
	// ErrNotEnoughMemory: 6A84, not enough memory space.
	ErrNotEnoughMemory = errors.New("perso: not enough memory")
	// ErrWrongP1P2: 6A86 or 6B00, incorrect parameters P1-P2.
	ErrWrongP1P2 = errors.New("perso: wrong P1-P2")
	// ErrRefDataNotFound: 6A88, referenced data (a key, a key version)
	// not found.
	ErrRefDataNotFound = errors.New("perso: referenced data not found")
	// ErrWrongLe: 6Cxx, wrong Le; xx is the exact length. [Conn] re-sends
	// once, so this reaches a caller only from a card that insists.
	ErrWrongLe = errors.New("perso: wrong Le")
	// ErrINSNotSupported: 6D00, instruction not supported.
	ErrINSNotSupported = errors.New("perso: instruction not supported")
	// ErrCLANotSupported: 6E00, class not supported.
	ErrCLANotSupported = errors.New("perso: class not supported")
	// ErrNoDiagnosis: 6Fxx, no precise diagnosis.
	ErrNoDiagnosis = errors.New("perso: no precise diagnosis")
)

func exactly(sws ...uint16) func(uint16) bool {
	return func(sw uint16) bool {
		for _, s := range sws {
			if sw == s {
				return true
			}
		}
		return false
	}
}

func class(sw1 byte) func(uint16) bool {
	return func(sw uint16) bool { return byte(sw>>8) == sw1 }
}

var swSentinels = []struct {
	err   error
	match func(uint16) bool
}{
	{ErrAuthFailed, func(sw uint16) bool { return sw == 0x6300 || sw&0xFFF0 == 0x63C0 }},
	{ErrMemoryFailure, exactly(0x6581)},
	{ErrWrongLength, exactly(0x6700)},
	{ErrSMNotSupported, exactly(0x6882)},
	{ErrSecurityStatus, exactly(0x6982)},
	{ErrAuthBlocked, exactly(0x6983)},
	{ErrConditions, exactly(0x6985)},
	{ErrSMDataObjects, exactly(0x6987, 0x6988)},
	{ErrWrongData, exactly(0x6A80)},
	{ErrFuncNotSupported, exactly(0x6A81)},
	{ErrFileNotFound, exactly(0x6A82)},
	{ErrRecordNotFound, exactly(0x6A83)},
	{ErrNotEnoughMemory, exactly(0x6A84)},
	{ErrWrongP1P2, exactly(0x6A86, 0x6B00)},
	{ErrRefDataNotFound, exactly(0x6A88)},
	{ErrWrongLe, class(0x6C)},
	{ErrINSNotSupported, exactly(0x6D00)},
	{ErrCLANotSupported, exactly(0x6E00)},
	{ErrNoDiagnosis, class(0x6F)},
}

// statusTexts holds the meanings of ISO/IEC 7816-4:2013 tables 5 and 6
// that a personalization host meets, and those GlobalPlatform gives.
var statusTexts = map[uint16]string{
	0x9000: "normal processing",
	0x6200: "warning, state of non-volatile memory unchanged",
	0x6281: "part of returned data may be corrupted",
	0x6282: "end of file or record reached before reading Ne bytes",
	0x6283: "selected file deactivated",
	0x6284: "file control information not formatted",
	0x6285: "selected file in termination state",
	0x6300: "authentication failed", // GP: host cryptogram did not verify
	0x6381: "file filled up by the last write",
	0x6400: "execution error, state of non-volatile memory unchanged",
	0x6401: "immediate response required by the card",
	0x6500: "execution error, state of non-volatile memory changed",
	0x6581: "memory failure",
	0x6700: "wrong length",
	0x6800: "functions in CLA not supported",
	0x6881: "logical channel not supported",
	0x6882: "secure messaging not supported",
	0x6883: "last command of the chain expected",
	0x6884: "command chaining not supported",
	0x6900: "command not allowed",
	0x6981: "command incompatible with file structure",
	0x6982: "security status not satisfied",
	0x6983: "authentication method blocked",
	0x6984: "reference data not usable",
	0x6985: "conditions of use not satisfied",
	0x6986: "command not allowed (no current EF)",
	0x6987: "expected secure messaging data objects missing",
	0x6988: "incorrect secure messaging data objects",
	0x6A00: "wrong parameters P1-P2",
	0x6A80: "incorrect parameters in the command data field",
	0x6A81: "function not supported",
	0x6A82: "file or application not found",
	0x6A83: "record not found",
	0x6A84: "not enough memory space",
	0x6A85: "Nc inconsistent with TLV structure",
	0x6A86: "incorrect parameters P1-P2",
	0x6A87: "Nc inconsistent with parameters P1-P2",
	0x6A88: "referenced data or reference data not found",
	0x6A89: "file already exists",
	0x6A8A: "DF name already exists",
	0x6B00: "wrong parameters P1-P2",
	0x6D00: "instruction code not supported or invalid",
	0x6E00: "class not supported",
	0x6F00: "no precise diagnosis",
	0x9484: "algorithm not supported", // GP PUT KEY
	0x9485: "invalid key check value", // GP PUT KEY
}

// StatusText returns the meaning of a status word per ISO/IEC 7816-4 and
// GlobalPlatform, naming the class for status words it has no entry for.
func StatusText(sw uint16) string {
	if s, ok := statusTexts[sw]; ok {
		return s
	}
	sw2 := byte(sw)
	switch byte(sw >> 8) {
	case 0x61:
		return fmt.Sprintf("%d more bytes available", shortLe(sw2))
	case 0x62:
		return "warning, state of non-volatile memory unchanged"
	case 0x63:
		if sw2&0xF0 == 0xC0 {
			return fmt.Sprintf("verification failed, %d tries left", sw2&0x0F)
		}
		return "warning, state of non-volatile memory changed"
	case 0x64:
		return "execution error, state of non-volatile memory unchanged"
	case 0x65:
		return "execution error, state of non-volatile memory changed"
	case 0x66:
		return "security-related issue"
	case 0x67:
		return "wrong length"
	case 0x68:
		return "functions in CLA not supported"
	case 0x69:
		return "command not allowed"
	case 0x6A, 0x6B:
		return "wrong parameters P1-P2"
	case 0x6C:
		return fmt.Sprintf("wrong Le field, exact length %d", shortLe(sw2))
	case 0x6D:
		return "instruction code not supported or invalid"
	case 0x6E:
		return "class not supported"
	case 0x6F:
		return "no precise diagnosis"
	}
	return "unknown status"
}
