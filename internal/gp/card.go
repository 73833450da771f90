package gp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"

	"github.com/cardperso/perso/internal/crypt"
)

// CardConfig describes a security domain's secure channel, as a card holds
// it.
type CardConfig struct {
	Protocol   Protocol
	KeyVersion byte // the key set's version, 01 to 7F
	// Keys are the static keys, already diversified for this card. NewCard
	// copies them.
	Keys Keys
	// KDD is the key diversification data the card returns first in the
	// INITIALIZE UPDATE response (10 bytes), from which the issuer's keys
	// are diversified.
	KDD []byte
	// AID is the security domain's AID (5 to 16 bytes), which the
	// pseudo-random card challenges cover.
	AID []byte
	// Sequence is the sequence counter's value: 2 bytes for SCP02, 3 for
	// SCP03.
	Sequence uint32
	// Rand is the source of random card challenges; nil means
	// crypto/rand.
	Rand io.Reader
}

// Card is the card side of a security domain's secure channels: its static
// keys and sequence counter, from which each INITIALIZE UPDATE opens a
// [CardSession]. A Card is not safe for concurrent use; a card handles one
// command at a time.
type Card struct {
	cfg    CardConfig
	seqMax uint32
}

// NewCard checks cfg and returns the card. It fails for a protocol this
// package does not implement, keys of the wrong length, a KDD that is not
// 10 bytes, an AID outside 5 to 16 bytes, or a counter out of range.
func NewCard(cfg CardConfig) (*Card, error) {
	if err := cfg.Protocol.Check(); err != nil {
		return nil, err
	}
	k := cfg.Keys
	if k.ENC == nil || k.MAC == nil || k.DEK == nil {
		return nil, fmt.Errorf("%w: the card needs ENC, MAC and DEK", ErrKeyLength)
	}
	if err := checkKeyLens(cfg.Protocol.Version, []string{"ENC", "MAC", "DEK"}, k.ENC, k.MAC, k.DEK); err != nil {
		return nil, err
	}
	if len(cfg.KDD) != kddLen {
		return nil, fmt.Errorf("%w: KDD of %d bytes, want %d", ErrLength, len(cfg.KDD), kddLen)
	}
	if len(cfg.AID) < 5 || len(cfg.AID) > 16 {
		return nil, fmt.Errorf("%w: AID of %d bytes", ErrLength, len(cfg.AID))
	}
	c := &Card{cfg: cfg, seqMax: 0xFFFF}
	if cfg.Protocol.Version == 3 {
		c.seqMax = 0xFFFFFF
	}
	if cfg.Sequence > c.seqMax {
		return nil, fmt.Errorf("%w: sequence counter %X out of range", ErrCounter, cfg.Sequence)
	}
	c.cfg.Keys = Keys{ENC: clone(k.ENC), MAC: clone(k.MAC), DEK: clone(k.DEK)}
	c.cfg.KDD, c.cfg.AID = clone(cfg.KDD), clone(cfg.AID)
	return c, nil
}

// Sequence returns the sequence counter's current value.
func (c *Card) Sequence() uint32 { return c.cfg.Sequence }

// Zero overwrites the card's static keys; the Card is unusable afterwards.
func (c *Card) Zero() { c.cfg.Keys.Zero() }

// String describes the card without key bytes.
func (c *Card) String() string {
	return fmt.Sprintf("gp card (%v, key version %02X, sequence %X)", c.cfg.Protocol, c.cfg.KeyVersion, c.cfg.Sequence)
}

// GoString is String, so %#v shows no key bytes.
func (c *Card) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Card) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue keeps slog from printing key bytes.
func (c *Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *Card) seqBytes() []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], c.cfg.Sequence)
	if c.cfg.Protocol.Version == 2 {
		return clone(b[2:])
	}
	return clone(b[1:])
}

// InitializeUpdate handles INITIALIZE UPDATE (GP 2.2 E.5.1, Amendment D
// 7.1.1): it checks the command, derives the session keys from the static
// keys, makes the card challenge (random, or pseudo-random where "i" says
// so) and the card cryptogram, and returns the session awaiting EXTERNAL
// AUTHENTICATE with the response data. A new INITIALIZE UPDATE abandons any
// earlier session.
//
// The sequence counter of SCP02 moves on when EXTERNAL AUTHENTICATE
// succeeds, so that every opened session has its own keys; that of SCP03
// with a pseudo-random challenge moves on here, so that no two challenges
// repeat, and the response carries the value used.
func (c *Card) InitializeUpdate(cmd Command) (*CardSession, []byte, error) {
	p := c.cfg.Protocol
	switch {
	case cmd.CLA&^claChannel != claProprietary:
		return nil, nil, fmt.Errorf("%w %02X for INITIALIZE UPDATE", errClass, cmd.CLA)
	case cmd.INS != InsInitializeUpdate:
		return nil, nil, fmt.Errorf("%w: INS %02X is not INITIALIZE UPDATE", ErrUnsupported, cmd.INS)
	case cmd.P1 != 0 && cmd.P1 != c.cfg.KeyVersion, cmd.P2 != 0:
		return nil, nil, fmt.Errorf("%w: key version %02X, key identifier %02X", ErrKeyVersion, cmd.P1, cmd.P2)
	case len(cmd.Data) != p.challengeLen():
		return nil, nil, fmt.Errorf("%w: host challenge of %d bytes, want %d", ErrLength, len(cmd.Data), p.challengeLen())
	}
	if p.Version == 3 && p.pseudoRandom() {
		if c.cfg.Sequence >= c.seqMax {
			return nil, nil, ErrCounter
		}
		c.cfg.Sequence++
	} else if c.cfg.Sequence >= c.seqMax {
		return nil, nil, ErrCounter // SCP02 could not count the session
	}
	seq := c.seqBytes()
	hc := clone(cmd.Data)
	r := &InitUpdateResponse{KDD: c.cfg.KDD, KeyVersion: c.cfg.KeyVersion, Protocol: p}
	var keys SessionKeys
	var err error
	switch p.Version {
	case 2:
		r.Sequence = seq
		if keys, err = scp02SessionKeys(c.cfg.Keys, seq); err != nil {
			return nil, nil, err
		}
		if p.pseudoRandom() {
			r.CardChallenge, err = scp02PseudoRandomChallenge(keys.MAC, c.cfg.AID)
		} else {
			r.CardChallenge, err = c.random(scp02CardChallengeLen)
		}
	case 3:
		if p.pseudoRandom() {
			r.Sequence = seq
			r.CardChallenge, err = scp03PseudoRandomChallenge(p, c.cfg.Keys.ENC, seq, c.cfg.AID)
		} else {
			r.CardChallenge, err = c.random(p.challengeLen())
		}
		if err == nil {
			keys, err = scp03SessionKeys(c.cfg.Keys, append(clone(hc), r.CardChallenge...))
		}
	}
	if err != nil {
		keys.Zero()
		return nil, nil, err
	}
	sm, card, host, err := newMessaging(p, keys, hc, r) // sm keeps its own copy
	dek := clone(keys.DEK)
	keys.Zero()
	if err != nil {
		crypt.Zero(dek)
		return nil, nil, err
	}
	r.CardCryptogram = card
	s := &CardSession{card: c, p: p, sm: sm, host: host, dek: dek, channel: cmd.CLA & claChannel}
	return s, r.Bytes(), nil
}

func (c *Card) random(n int) ([]byte, error) {
	r := c.cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("gp: card challenge: %w", err)
	}
	return b, nil
}

type cardState uint8

const (
	cardInitialized cardState = iota // INITIALIZE UPDATE answered
	cardOpen                         // EXTERNAL AUTHENTICATE verified
	cardClosed
)

// CardSession is the card side of one secure channel session, from
// INITIALIZE UPDATE on. Any failure to authenticate or to verify a command
// closes it, as real cards do (C-MAC verification, GP 2.2 E.4.4 and
// Amendment D 6.2.4): every later command fails with [ErrClosed] until a new INITIALIZE UPDATE.
type CardSession struct {
	card    *Card
	p       Protocol
	sm      messaging
	host    []byte // the host cryptogram expected
	dek     []byte
	channel byte
	level   Level
	state   cardState
}

// ExternalAuthenticate verifies EXTERNAL AUTHENTICATE (GP 2.2 E.5.2,
// Amendment D 7.1.2): the class byte with secure messaging on the channel of
// INITIALIZE UPDATE, the security level in P1, then the host cryptogram
// (failing with [ErrHostCryptogram]) and its C-MAC (failing with
// [ErrSecureMessaging]). Success opens the session at that level; any
// failure closes it.
func (s *CardSession) ExternalAuthenticate(cmd Command) error {
	if s.state != cardInitialized {
		if s.state == cardClosed {
			return ErrClosed
		}
		return fmt.Errorf("%w: EXTERNAL AUTHENTICATE in an open session", ErrSequence)
	}
	err := s.authenticate(cmd)
	if err != nil {
		s.close()
	}
	return err
}

func (s *CardSession) authenticate(cmd Command) error {
	n := s.p.macLen()
	level := Level(cmd.P1)
	switch {
	case cmd.CLA != claProprietary|claSM|s.channel:
		return fmt.Errorf("%w %02X for EXTERNAL AUTHENTICATE on channel %d", errClass, cmd.CLA, s.channel)
	case cmd.INS != InsExternalAuthenticate:
		return fmt.Errorf("%w: INS %02X is not EXTERNAL AUTHENTICATE", ErrUnsupported, cmd.INS)
	case cmd.P2 != 0:
		return fmt.Errorf("%w: EXTERNAL AUTHENTICATE P2 %02X", ErrUnsupported, cmd.P2)
	case len(cmd.Data) != 2*n:
		return fmt.Errorf("%w: EXTERNAL AUTHENTICATE data of %d bytes, want %d", ErrLength, len(cmd.Data), 2*n)
	}
	if err := level.check(s.p); err != nil {
		return err
	}
	if !crypt.Equal(cmd.Data[:n], s.host) {
		return ErrHostCryptogram
	}
	if _, err := s.sm.unwrap(cmd); err != nil {
		return err
	}
	if s.p.Version == 2 {
		s.card.cfg.Sequence++ // InitializeUpdate made sure it does not overflow
	}
	s.sm.setLevel(level)
	s.level, s.state = level, cardOpen
	return nil
}

// Level returns the security level, once the session is open.
func (s *CardSession) Level() Level { return s.level }

// Open reports whether EXTERNAL AUTHENTICATE succeeded and no check has
// failed since.
func (s *CardSession) Open() bool { return s.state == cardOpen }

// UnwrapCommand checks a command received in the open session and returns
// it as the host built it: C-MAC verified (and removed), data decrypted with
// C-DEC, class byte without the secure messaging bit. At level none it
// accepts only unprotected commands and returns them unchanged. Commands
// must be unwrapped in the order they arrive: the MAC chain makes a
// replayed or reordered command fail. Any failure closes the session with
// an error wrapping [ErrSecureMessaging].
func (s *CardSession) UnwrapCommand(cmd Command) (Command, error) {
	if s.state != cardOpen {
		return Command{}, s.notOpen()
	}
	var out Command
	var err error
	switch {
	case cmd.CLA&claChannel != s.channel:
		// Another logical channel: not this session's command.
		return Command{}, fmt.Errorf("%w: channel %d, session on channel %d", ErrSequence, cmd.CLA&claChannel, s.channel)
	case checkCLA(cmd.CLA&^claSM) != nil:
		err = checkCLA(cmd.CLA &^ claSM)
	case s.level == LevelNone && cmd.CLA&claSM == 0:
		return cmd, nil
	case s.level == LevelNone:
		err = fmt.Errorf("%w: %v: secure messaging at level none", ErrSecureMessaging, cmd)
	case cmd.CLA&claSM == 0:
		err = fmt.Errorf("%w: %v: no secure messaging at level %v", ErrSecureMessaging, cmd, s.level)
	case len(cmd.Data) > maxShortData:
		err = fmt.Errorf("%w: %v: protected commands are short APDUs", ErrSecureMessaging, cmd)
	default:
		out, err = s.sm.unwrap(cmd)
	}
	if err != nil {
		s.close()
		return Command{}, err
	}
	return out, nil
}

// WrapResponse protects the response to the command last unwrapped, where
// the level asks for it: R-ENC of the data, then the R-MAC (SCP03, GP
// Amendment D 6.2.5 and 6.2.7). Error status words go out unprotected.
func (s *CardSession) WrapResponse(r Response) (Response, error) {
	if s.state != cardOpen {
		return r, nil // what a closed session answers is not protected
	}
	return s.sm.wrapResponse(r)
}

// DecryptSensitive decrypts sensitive data with the session's DEK; see
// [DecryptSensitive].
func (s *CardSession) DecryptSensitive(data []byte) ([]byte, error) {
	if s.state != cardOpen {
		return nil, s.notOpen()
	}
	return DecryptSensitive(s.p.Version, s.dek, data)
}

// Close ends the session and zeroes its keys.
func (s *CardSession) Close() { s.close() }

func (s *CardSession) close() {
	s.sm.zero()
	crypt.Zero(s.dek)
	crypt.Zero(s.host)
	s.state = cardClosed
}

func (s *CardSession) notOpen() error {
	if s.state == cardClosed {
		return ErrClosed
	}
	return fmt.Errorf("%w: no EXTERNAL AUTHENTICATE yet", ErrSequence)
}

// String describes the session without key bytes.
func (s *CardSession) String() string {
	return fmt.Sprintf("gp card session (%v, level %v, open %v)", s.p, s.level, s.state == cardOpen)
}

// GoString is String, so %#v shows no key bytes.
func (s *CardSession) GoString() string { return s.String() }

// Format prints String for every verb.
func (s *CardSession) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue keeps slog from printing key bytes.
func (s *CardSession) LogValue() slog.Value { return slog.StringValue(s.String()) }
