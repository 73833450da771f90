package perso

import "errors"

// Sentinel errors that security modules, codecs and pipelines wrap. Test for
// them with errors.Is.
var (
	// ErrNoSuchKey: a key reference or KEK is not in the security module.
	ErrNoSuchKey = errors.New("perso: no such key")
	// ErrUnsupported: the module or card cannot perform the operation.
	ErrUnsupported = errors.New("perso: unsupported")
	// ErrBadInput: a request's data has the wrong length or format.
	ErrBadInput = errors.New("perso: bad input")
	// ErrBadMAC: an application MAC or a secure channel MAC does not verify.
	ErrBadMAC = errors.New("perso: MAC mismatch")
)
