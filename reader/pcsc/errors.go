package pcsc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebfe/scard"
)

// Classes of PC/SC failures. Errors of this package wrap them; test with
// errors.Is:
//
//	if errors.Is(err, pcsc.ErrCardRemoved) { ... }
//
// The PC/SC return code itself is in the [*Error].
var (
	// ErrNoService: no resource manager is running (pcscd, or the smart
	// card service of Windows or macOS).
	ErrNoService = errors.New("pcsc: no PC/SC service")
	// ErrNoReaders: the resource manager knows no reader.
	ErrNoReaders = errors.New("pcsc: no readers")
	// ErrReaderUnavailable: the reader is unknown, unplugged, or failing.
	ErrReaderUnavailable = errors.New("pcsc: reader unavailable")
	// ErrNoCard: there is no card in the reader.
	ErrNoCard = errors.New("pcsc: no card in the reader")
	// ErrCardRemoved: the card left the reader during the session; what
	// the session had set up on it (a secure channel) is gone.
	ErrCardRemoved = errors.New("pcsc: card removed")
	// ErrCardReset: the card was reset during the session, by another
	// application or the reader; what the session had set up on it is
	// gone.
	ErrCardReset = errors.New("pcsc: card reset")
	// ErrUnresponsiveCard: the card is in the reader but does not answer
	// (mute, unpowered, or not a usable card).
	ErrUnresponsiveCard = errors.New("pcsc: card does not respond")
	// ErrSharingViolation: another application holds the card or the
	// reader.
	ErrSharingViolation = errors.New("pcsc: sharing violation")
	// ErrTimeout: no card came within the time allowed.
	ErrTimeout = errors.New("pcsc: timed out")
)

// codeClasses maps the PC/SC return codes (pcsc-lite pcsclite.h, Windows
// winerror.h SCARD_*) to the classes above.
var codeClasses = map[scard.Error]error{
	scard.ErrNoService:          ErrNoService,
	scard.ErrServiceStopped:     ErrNoService,
	scard.ErrShutdown:           ErrNoService,
	scard.ErrNoReadersAvailable: ErrNoReaders,
	scard.ErrReaderUnavailable:  ErrReaderUnavailable,
	scard.ErrUnknownReader:      ErrReaderUnavailable,
	scard.ErrReaderUnsupported:  ErrReaderUnavailable,
	scard.ErrNoSmartcard:        ErrNoCard,
	scard.ErrRemovedCard:        ErrCardRemoved,
	scard.ErrResetCard:          ErrCardReset,
	scard.ErrUnresponsiveCard:   ErrUnresponsiveCard,
	scard.ErrUnpoweredCard:      ErrUnresponsiveCard,
	scard.ErrUnsupportedCard:    ErrUnresponsiveCard,
	scard.ErrInvalidAtr:         ErrUnresponsiveCard,
	scard.ErrSharingViolation:   ErrSharingViolation,
	scard.ErrTimeout:            ErrTimeout,
}

// codeNames names the return codes this package meets, as the PC/SC
// headers do.
var codeNames = map[scard.Error]string{
	scard.ErrInternalError:      "SCARD_F_INTERNAL_ERROR",
	scard.ErrCancelled:          "SCARD_E_CANCELLED",
	scard.ErrInvalidHandle:      "SCARD_E_INVALID_HANDLE",
	scard.ErrInvalidParameter:   "SCARD_E_INVALID_PARAMETER",
	scard.ErrNoMemory:           "SCARD_E_NO_MEMORY",
	scard.ErrInsufficientBuffer: "SCARD_E_INSUFFICIENT_BUFFER",
	scard.ErrUnknownReader:      "SCARD_E_UNKNOWN_READER",
	scard.ErrTimeout:            "SCARD_E_TIMEOUT",
	scard.ErrSharingViolation:   "SCARD_E_SHARING_VIOLATION",
	scard.ErrNoSmartcard:        "SCARD_E_NO_SMARTCARD",
	scard.ErrProtoMismatch:      "SCARD_E_PROTO_MISMATCH",
	scard.ErrNotReady:           "SCARD_E_NOT_READY",
	scard.ErrInvalidValue:       "SCARD_E_INVALID_VALUE",
	scard.ErrSystemCancelled:    "SCARD_E_SYSTEM_CANCELLED",
	scard.ErrCommError:          "SCARD_F_COMM_ERROR",
	scard.ErrUnknownError:       "SCARD_F_UNKNOWN_ERROR",
	scard.ErrInvalidAtr:         "SCARD_E_INVALID_ATR",
	scard.ErrNotTransacted:      "SCARD_E_NOT_TRANSACTED",
	scard.ErrReaderUnavailable:  "SCARD_E_READER_UNAVAILABLE",
	scard.ErrShutdown:           "SCARD_P_SHUTDOWN",
	scard.ErrReaderUnsupported:  "SCARD_E_READER_UNSUPPORTED",
	scard.ErrNoService:          "SCARD_E_NO_SERVICE",
	scard.ErrServiceStopped:     "SCARD_E_SERVICE_STOPPED",
	scard.ErrNoReadersAvailable: "SCARD_E_NO_READERS_AVAILABLE",
	scard.ErrUnsupportedCard:    "SCARD_W_UNSUPPORTED_CARD",
	scard.ErrUnresponsiveCard:   "SCARD_W_UNRESPONSIVE_CARD",
	scard.ErrUnpoweredCard:      "SCARD_W_UNPOWERED_CARD",
	scard.ErrResetCard:          "SCARD_W_RESET_CARD",
	scard.ErrRemovedCard:        "SCARD_W_REMOVED_CARD",
}

// Error is a failed PC/SC call: what the package was doing, on which
// reader, and the return code. It matches, with errors.Is, the class of
// its code (ErrCardRemoved for SCARD_W_REMOVED_CARD, ...), or the class
// the package found out after the call: a transmission that failed
// because the card had been pulled out matches ErrCardRemoved whatever
// code the reader driver gave. Unwrap returns the code as a scard.Error.
type Error struct {
	Op     string // "connect", "transmit", ...
	Reader string // empty when the call concerns no one reader
	Code   uint32 // the PC/SC return code, SCARD_E_* or SCARD_W_*; 0 if the call succeeded with an unusable result
	class  error
	note   string // what was wrong with the result of a call that succeeded
}

// newError makes the error of a failed call; err is what scard returned.
func newError(op, reader string, err error) error {
	var code scard.Error
	if !errors.As(err, &code) {
		return fmt.Errorf("pcsc: %s: %w", op, err)
	}
	return &Error{Op: op, Reader: reader, Code: uint32(code), class: codeClasses[code]}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pcsc: ")
	if e.Reader != "" {
		fmt.Fprintf(&b, "reader %q: ", e.Reader)
	}
	b.WriteString(e.Op)
	b.WriteString(": ")
	code := scard.Error(e.Code)
	class := ""
	if e.class != nil {
		class = strings.TrimPrefix(e.class.Error(), "pcsc: ")
	}
	switch {
	case e.note != "" && class != "":
		fmt.Fprintf(&b, "%s (%s)", class, e.note)
	case e.note != "":
		b.WriteString(e.note)
	case class != "" && e.class != codeClasses[code]:
		// Found out after the call: say so, and what the call returned.
		fmt.Fprintf(&b, "%s (the call returned %s)", class, codeName(code))
	default:
		fmt.Fprintf(&b, "%s (%s)", strings.TrimSuffix(strings.TrimPrefix(code.Error(), "scard: "), "."), codeName(code))
	}
	return b.String()
}

// codeName returns the header name of a return code, or its value.
func codeName(c scard.Error) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

// Is reports whether target is the class of the error.
func (e *Error) Is(target error) bool { return e.class != nil && e.class == target }

// Unwrap returns the PC/SC return code as a scard.Error, or nil when the
// call succeeded.
func (e *Error) Unwrap() error {
	if e.Code == uint32(scard.ErrSuccess) {
		return nil
	}
	return scard.Error(e.Code)
}

// hasCode reports whether err is an *Error with one of the codes.
func hasCode(err error, codes ...scard.Error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if scard.Error(e.Code) == c {
			return true
		}
	}
	return false
}
