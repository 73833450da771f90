package gp

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// messaging is the secure messaging state of a session, shared by the host
// and card sides: SCP02 or SCP03.
type messaging interface {
	wrap(Command) (Command, error)
	unwrap(Command) (Command, error)
	wrapResponse(Response) (Response, error)
	unwrapResponse(Response) (Response, error)
	setLevel(Level)
	zero()
}

// newMessaging returns the secure messaging state for p with the session
// keys and the card and host cryptograms computed from them.
func newMessaging(p Protocol, keys SessionKeys, hostChallenge []byte, r *InitUpdateResponse) (m messaging, card, host []byte, err error) {
	switch p.Version {
	case 2:
		s, err := newSCP02(p, keys)
		if err != nil {
			return nil, nil, nil, err
		}
		card = s.cryptogram(hostChallenge, r.Sequence, r.CardChallenge)
		host = s.cryptogram(r.Sequence, r.CardChallenge, hostChallenge)
		return s, card, host, nil
	case 3:
		s, err := newSCP03(p, keys)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx := append(append(make([]byte, 0, 2*len(hostChallenge)), hostChallenge...), r.CardChallenge...)
		if card, err = s.cryptogram(kdf.SCP03CardCryptogram, ctx); err == nil {
			host, err = s.cryptogram(kdf.SCP03HostCryptogram, ctx)
		}
		if err != nil {
			s.zero()
			return nil, nil, nil, err
		}
		return s, card, host, nil
	}
	return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnsupported, p)
}

type hostState uint8

const (
	hostNew      hostState = iota // INITIALIZE UPDATE not yet built
	hostSent                      // INITIALIZE UPDATE built, response awaited
	hostReceived                  // response read, session keys awaited
	hostOpen                      // EXTERNAL AUTHENTICATE built
	hostClosed
)

// HostConfig sets up a [HostSession].
type HostConfig struct {
	// KeyVersion is P1 of INITIALIZE UPDATE: the key version of the key
	// set, or 0 for the first available one (GP 2.2 E.5.1).
	KeyVersion byte
	// Channel is the logical channel, 0 to 3.
	Channel byte
	// Protocol is the protocol the host expects. With Version 0 the host
	// takes what the card announces, and "i" 15 for SCP02 (whose response
	// does not carry "i"; 15 and 55 protect commands alike). An SCP03
	// Protocol with "i" b1 (S16) makes the host challenge 16 bytes.
	Protocol Protocol
	// HostChallenge, if not nil, is the host challenge (8 bytes, 16 in
	// S16 mode), for tests and reproducing recorded sessions. A host
	// challenge must never repeat with the same card keys.
	HostChallenge []byte
	// Rand is the source of the host challenge; nil means crypto/rand.
	Rand io.Reader
}

// HostSession is the host side of one secure channel session (GP Card
// Specification 2.2 section 10 with Appendix E for SCP02, Amendment D for
// SCP03). Its steps, in order:
//
//  1. [HostSession.InitializeUpdate] builds the INITIALIZE UPDATE command.
//  2. [HostSession.ReadInitializeUpdate] reads the card's response data:
//     the KDD, key version, sequence counter and challenges that the
//     security module needs to derive the session keys.
//  3. [HostSession.ExternalAuthenticate] checks the card cryptogram with
//     those session keys and builds EXTERNAL AUTHENTICATE. A card
//     cryptogram that does not verify ends the session for good.
//  4. [HostSession.Wrap] protects each later command and
//     [HostSession.Unwrap] checks each response, in the order they are
//     exchanged.
//
// The caller sends the commands and checks that the card answers 9000 to
// the first two; any other status word ends the session. A HostSession is
// not safe for concurrent use, and prints no key bytes.
type HostSession struct {
	cfg   HostConfig
	state hostState
	hc    []byte
	resp  *InitUpdateResponse
	p     Protocol
	sm    messaging
	dek   []byte
	level Level
}

// NewHostSession returns a session in its first step. It fails if the
// configured protocol is not one this package implements, the channel is
// above 3, or a given host challenge has the wrong length.
func NewHostSession(cfg HostConfig) (*HostSession, error) {
	if cfg.Channel > claChannel {
		return nil, fmt.Errorf("%w: logical channel %d", ErrUnsupported, cfg.Channel)
	}
	if cfg.Protocol.Version != 0 {
		if err := cfg.Protocol.Check(); err != nil {
			return nil, err
		}
	}
	n := cfg.Protocol.challengeLen()
	h := &HostSession{cfg: cfg, hc: make([]byte, n)}
	if cfg.HostChallenge != nil {
		if len(cfg.HostChallenge) != n {
			return nil, fmt.Errorf("%w: host challenge of %d bytes, want %d", ErrLength, len(cfg.HostChallenge), n)
		}
		copy(h.hc, cfg.HostChallenge)
		return h, nil
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, h.hc); err != nil {
		return nil, fmt.Errorf("gp: host challenge: %w", err)
	}
	return h, nil
}

// InitializeUpdate returns the INITIALIZE UPDATE command: CLA 80 (with the
// logical channel), INS 50, P1 the key version, P2 00, the host challenge,
// Le 00. It may be called once.
func (h *HostSession) InitializeUpdate() (Command, error) {
	if h.state != hostNew {
		return Command{}, fmt.Errorf("%w: INITIALIZE UPDATE already built", ErrSequence)
	}
	h.state = hostSent
	return Command{
		CLA: claProprietary | h.cfg.Channel, INS: InsInitializeUpdate, P1: h.cfg.KeyVersion, P2: 0,
		Data: clone(h.hc), Le: 256,
	}, nil
}

// HostChallenge returns a copy of the host challenge.
func (h *HostSession) HostChallenge() []byte { return clone(h.hc) }

// ReadInitializeUpdate reads the response data of INITIALIZE UPDATE (the
// caller has checked the status word is 9000). It fails if the response
// does not parse or announces another protocol than the configured one.
// The key version in the response is reported, not enforced: cards in the
// field answer with another number than the one asked for (a recorded
// SCP02 card answers 70 to a request for 20); the card cryptogram is what
// proves the key set.
func (h *HostSession) ReadInitializeUpdate(data []byte) (*InitUpdateResponse, error) {
	if h.state != hostSent {
		return nil, fmt.Errorf("%w: INITIALIZE UPDATE response read out of turn", ErrSequence)
	}
	r, err := ParseInitUpdateResponse(data)
	if err != nil {
		return nil, err
	}
	p := r.Protocol
	want := h.cfg.Protocol
	switch {
	case want.Version == 0 && p.Version == 2:
		p = SCP02_15
	case want.Version == 0:
	case want.Version != p.Version || (p.Version == 3 && want.I != p.I):
		return nil, fmt.Errorf("%w: expected %v, card announces %v", ErrUnsupported, want, p)
	default:
		p = want
	}
	if len(h.hc) != p.challengeLen() {
		return nil, fmt.Errorf("%w: %v needs a host challenge of %d bytes, sent %d", ErrLength, p, p.challengeLen(), len(h.hc))
	}
	r.Protocol = p
	h.p, h.resp, h.state = p, r, hostReceived
	return r, nil
}

// Protocol returns the session's protocol, known once the INITIALIZE
// UPDATE response has been read.
func (h *HostSession) Protocol() Protocol { return h.p }

// Context returns the SCP03 key derivation context, host challenge || card
// challenge (GP Amendment D 6.2.1), once the response has been read; nil
// before.
func (h *HostSession) Context() []byte {
	if h.resp == nil {
		return nil
	}
	return append(clone(h.hc), h.resp.CardChallenge...)
}

// ExternalAuthenticate checks the card cryptogram with keys and returns the
// EXTERNAL AUTHENTICATE command for level: CLA 84, INS 82, P1 the level,
// P2 00, the host cryptogram and its C-MAC (GP 2.2 E.5.2, Amendment D
// 7.1.2). The session copies keys; the caller may zero its own.
//
// If the card cryptogram does not verify it returns an error wrapping
// [ErrCardCryptogram] and closes the session: the host must not send
// anything more in it and must not retry with other keys (see
// ErrCardCryptogram). An error for a level the protocol does not allow or
// keys of the wrong length leaves the session as it was.
func (h *HostSession) ExternalAuthenticate(keys SessionKeys, level Level) (Command, error) {
	if h.state != hostReceived {
		if h.state == hostClosed {
			return Command{}, ErrClosed
		}
		return Command{}, fmt.Errorf("%w: EXTERNAL AUTHENTICATE before the INITIALIZE UPDATE response", ErrSequence)
	}
	if err := level.check(h.p); err != nil {
		return Command{}, err
	}
	if level.has(LevelRMAC) && keys.RMAC == nil {
		return Command{}, fmt.Errorf("%w: level %v without an R-MAC key", ErrKeyLength, level)
	}
	sm, card, host, err := newMessaging(h.p, keys, h.hc, h.resp)
	if err != nil {
		return Command{}, err
	}
	if !crypt.Equal(card, h.resp.CardCryptogram) {
		sm.zero()
		h.close()
		return Command{}, fmt.Errorf("%w (%v, key version %02X)", ErrCardCryptogram, h.p, h.resp.KeyVersion)
	}
	ea, err := sm.wrap(Command{CLA: claProprietary | h.cfg.Channel, INS: InsExternalAuthenticate, P1: byte(level), Data: host, Le: leNone})
	if err != nil {
		sm.zero()
		h.close()
		return Command{}, err
	}
	sm.setLevel(level)
	h.sm, h.level, h.state = sm, level, hostOpen
	h.dek = clone(keys.DEK)
	return ea, nil
}

// Level returns the security level of an open session.
func (h *HostSession) Level() Level { return h.level }

// Wrap protects a command at the session's level: C-MAC, and C-DEC of the
// data where the level has it. The class byte must be a first
// interindustry one without secure messaging bits; the logical channel is
// kept, and so is Le, except that with R-MAC an Le below 256 becomes 256
// (the byte 00): the response grows by the R-MAC and the R-ENC padding.
// Commands must be wrapped in the order they are sent. It fails with
// [ErrLength] for data too long to protect in a short APDU (at most 239
// bytes with C-DEC in S8 mode) and with [ErrClosed] after the session has
// ended.
func (h *HostSession) Wrap(c Command) (Command, error) {
	if h.state != hostOpen {
		return Command{}, h.notOpen()
	}
	if err := checkCLA(c.CLA); err != nil {
		return Command{}, err
	}
	if c.Le > 256 {
		return Command{}, fmt.Errorf("%w: %v: Le %d needs an extended APDU", ErrLength, c, c.Le)
	}
	if h.level == LevelNone {
		return c, nil
	}
	return h.sm.wrap(c)
}

// Unwrap checks the response to the last wrapped command: with R-MAC, it
// verifies and removes the R-MAC, and with R-ENC decrypts the data (GP
// Amendment D 6.2.5, 6.2.7). Responses with an error status word carry no
// protection and pass unchanged. A response that fails closes the session
// with an error wrapping [ErrSecureMessaging].
func (h *HostSession) Unwrap(r Response) (Response, error) {
	if h.state != hostOpen {
		return Response{}, h.notOpen()
	}
	out, err := h.sm.unwrapResponse(r)
	if err != nil {
		h.close()
		return Response{}, err
	}
	return out, nil
}

// EncryptSensitive encrypts data under the session's DEK as
// [EncryptSensitive] does, for PUT KEY and secret STORE DATA values.
func (h *HostSession) EncryptSensitive(data []byte) ([]byte, error) {
	if h.state != hostOpen {
		return nil, h.notOpen()
	}
	return EncryptSensitive(h.p.Version, h.dek, data)
}

// Close ends the session and zeroes its keys.
func (h *HostSession) Close() { h.close() }

func (h *HostSession) close() {
	if h.sm != nil {
		h.sm.zero()
	}
	crypt.Zero(h.dek)
	h.state = hostClosed
}

func (h *HostSession) notOpen() error {
	if h.state == hostClosed {
		return ErrClosed
	}
	return fmt.Errorf("%w: no EXTERNAL AUTHENTICATE yet", ErrSequence)
}

// String describes the session without key bytes.
func (h *HostSession) String() string {
	return fmt.Sprintf("gp host session (%v, level %v)", h.p, h.level)
}

// GoString is String, so %#v shows no key bytes.
func (h *HostSession) GoString() string { return h.String() }

// Format prints String for every verb.
func (h *HostSession) Format(f fmt.State, _ rune) { fmt.Fprint(f, h.String()) }

// LogValue keeps slog from printing key bytes.
func (h *HostSession) LogValue() slog.Value { return slog.StringValue(h.String()) }
