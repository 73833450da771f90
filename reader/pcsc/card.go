package pcsc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ebfe/scard"
)

// ShareMode says whether other applications may use the card while a
// connection holds it (SCardConnect dwShareMode).
type ShareMode uint8

const (
	// Exclusive: no other application can connect to the card
	// (SCARD_SHARE_EXCLUSIVE). The zero value: a card being personalized
	// belongs to its station.
	Exclusive ShareMode = iota
	// Shared: other applications can connect, and transactions keep
	// their commands apart (SCARD_SHARE_SHARED).
	Shared
)

func (m ShareMode) scard() scard.ShareMode {
	if m == Shared {
		return scard.ShareShared
	}
	return scard.ShareExclusive
}

// Protocol is a set of ISO/IEC 7816-3 transmission protocols: T=0 (section
// 10, character oriented) and T=1 (section 11, block oriented), coded as
// PC/SC codes SCARD_PROTOCOL_T0 and SCARD_PROTOCOL_T1.
type Protocol uint32

const (
	T0          Protocol = 0x1
	T1          Protocol = 0x2
	AnyProtocol          = T0 | T1
)

// String returns "T=0", "T=1", "T=0 or T=1", or the code.
func (p Protocol) String() string {
	switch p {
	case T0:
		return "T=0"
	case T1:
		return "T=1"
	case AnyProtocol:
		return "T=0 or T=1"
	}
	return fmt.Sprintf("Protocol(0x%X)", uint32(p))
}

// Disposition is what becomes of the card when a connection ends
// (SCardDisconnect dwDisposition).
type Disposition uint8

const (
	Leave   Disposition = iota // leave the card as it is (SCARD_LEAVE_CARD)
	Reset                      // warm reset (SCARD_RESET_CARD)
	Unpower                    // deactivate the contacts (SCARD_UNPOWER_CARD)
	Eject                      // eject, where the reader can (SCARD_EJECT_CARD)
)

func (d Disposition) scard() scard.Disposition {
	switch d {
	case Reset:
		return scard.ResetCard
	case Unpower:
		return scard.UnpowerCard
	case Eject:
		return scard.EjectCard
	}
	return scard.LeaveCard
}

// DefaultRemovalCheck is how long a failed exchange waits, by default, for
// the resource manager to say whether the card has left the reader: a few
// of the polls by which pcsc-lite watches readers that do not signal card
// events (vpcd, many serial readers), every 400 ms on a machine that is
// not overloaded; CCID readers signal at once.
const DefaultRemovalCheck = 2 * time.Second

// Options shape a connection to a card.
type Options struct {
	// Share is Exclusive (the default) or Shared.
	Share ShareMode
	// Protocols are those the card may use; zero means T=0 or T=1, and
	// the reader and card settle on one (ATR, PPS: ISO/IEC 7816-3 sections
	// 8 and 9).
	Protocols Protocol
	// RemovalCheck bounds how long a failed exchange waits to learn
	// whether the card was pulled out: a reader driver that loses its card
	// mid-exchange reports a transmission failure, and the removal shows
	// only when the resource manager next looks. Zero means
	// DefaultRemovalCheck; negative, no check.
	RemovalCheck time.Duration
}

// Card is a connection to the card in a reader (SCardConnect). It
// implements perso.Transport. A Card is for one goroutine at a time.
//
// Until [Card.Close], it holds a handle in the resource manager, and a
// transaction ([Card.Begin]) keeps the card to itself between commands.
type Card struct {
	ctx    *Context
	h      *scard.Card
	reader string
	opts   Options
	proto  Protocol
	atr    []byte
	events uint16 // the reader's card event count when the card was connected

	tx      bool // in a transaction
	sent    int  // commands sent since the connection or the last reset
	removed bool // the card was found gone
	closed  bool
}

// Connect connects to the card in reader (SCardConnect) and reads its
// ATR. It fails with an error matching [ErrNoCard] when the reader is
// empty, [ErrSharingViolation] when another application holds the card,
// [ErrUnresponsiveCard] when the card does not answer, and
// [ErrReaderUnavailable] when the reader is unknown or gone.
func (c *Context) Connect(reader string, opts Options) (*Card, error) {
	if opts.Protocols == 0 {
		opts.Protocols = AnyProtocol
	}
	if opts.RemovalCheck == 0 {
		opts.RemovalCheck = DefaultRemovalCheck
	}
	h, err := c.c.Connect(reader, opts.Share.scard(), scard.Protocol(opts.Protocols))
	if err != nil {
		return nil, newError("connect", reader, err)
	}
	k := &Card{ctx: c, h: h, reader: reader, opts: opts}
	if err := k.settle(); err != nil {
		_ = h.Disconnect(scard.LeaveCard)
		return nil, err
	}
	return k, nil
}

// settle reads the protocol, ATR and event count of a new or renewed
// connection.
func (k *Card) settle() error {
	k.proto = Protocol(k.h.ActiveProtocol())
	rs, err := k.ctx.State(k.reader)
	if err != nil {
		return err
	}
	if !rs.Present() {
		return &Error{Op: "connect", Reader: k.reader, Code: uint32(scard.ErrRemovedCard), class: ErrCardRemoved}
	}
	k.atr, k.events = rs.ATR, rs.Events
	return nil
}

// Reader returns the reader's name.
func (k *Card) Reader() string { return k.reader }

// ATR returns the card's answer to reset (ISO/IEC 7816-3 section 8).
func (k *Card) ATR() []byte { return slices.Clone(k.atr) }

// Protocol returns the protocol the connection uses, T0 or T1.
func (k *Card) Protocol() Protocol { return k.proto }

// Removed reports whether the card was found pulled out of the reader.
func (k *Card) Removed() bool { return k.removed }

var errClosed = errors.New("pcsc: card connection closed")

// Begin starts a transaction (SCardBeginTransaction): until [Card.End]
// or [Card.Close], no other application's command reaches the card, nor
// can another application reset it. A card that was reset before this
// connection sent anything is reconnected first, since nothing is lost.
func (k *Card) Begin() error {
	if k.closed {
		return errClosed
	}
	if k.tx {
		return fmt.Errorf("pcsc: reader %q: a transaction is open already", k.reader)
	}
	err := k.h.BeginTransaction()
	if errors.Is(err, scard.ErrResetCard) && k.sent == 0 {
		if err = k.reconnect(scard.LeaveCard); err == nil {
			err = k.h.BeginTransaction()
		}
	}
	if err != nil {
		return k.fail("begin transaction", err)
	}
	k.tx = true
	return nil
}

// End ends the transaction, leaving the card as it is.
func (k *Card) End() error {
	if k.closed {
		return errClosed
	}
	if !k.tx {
		return nil
	}
	k.tx = false
	if err := k.h.EndTransaction(scard.LeaveCard); err != nil {
		return k.fail("end transaction", err)
	}
	return nil
}

// Transmit sends one command APDU and returns the response APDU
// (SCardTransmit), at least SW1 SW2. The reader driver carries the APDU
// over T=0 or T=1 (ISO/IEC 7816-3 section 12); status words come back
// untouched, 61xx and 6Cxx included.
//
// A card that was reset by someone else before this connection's first
// command is reconnected and the command sent again: nothing was lost.
// After the first command a reset fails with an error matching
// [ErrCardReset], since what the session had set up on the card (its
// secure channel, the selected application) is gone. A card pulled out
// fails with an error matching [ErrCardRemoved]: a transmission failure
// is checked against the reader's state for up to Options.RemovalCheck.
func (k *Card) Transmit(cmd []byte) ([]byte, error) {
	if k.closed {
		return nil, errClosed
	}
	resp, err := k.h.Transmit(cmd)
	if errors.Is(err, scard.ErrResetCard) && k.sent == 0 {
		if err = k.reconnect(scard.LeaveCard); err == nil {
			resp, err = k.h.Transmit(cmd)
		}
	}
	k.sent++
	if err != nil {
		return nil, k.fail("transmit", err)
	}
	if len(resp) < 2 {
		// A reader driver that lost its card may answer with nothing
		// (vpcd does): a failed exchange all the same.
		e := &Error{Op: "transmit", Reader: k.reader, note: fmt.Sprintf("response of %d bytes, without a status word", len(resp))}
		if k.gone() {
			k.removed, e.class = true, ErrCardRemoved
		}
		return nil, e
	}
	// The binding returns a slice of a 64 KiB buffer; keep only the response.
	return bytes.Clone(resp), nil
}

// Reset resets the card (a warm reset: SCardReconnect with
// SCARD_RESET_CARD) and reads its ATR again. The card forgets its
// session (secure channel, selection); what it stores persists. A
// transaction stays open (pcsc-lite keeps it across a reconnection of the
// handle that holds it).
func (k *Card) Reset() error {
	if k.closed {
		return errClosed
	}
	if err := k.reconnect(scard.ResetCard); err != nil {
		return k.fail("reset", err)
	}
	return nil
}

// reconnect renews the connection (SCardReconnect) with the given
// initialization and starts counting commands afresh.
func (k *Card) reconnect(init scard.Disposition) error {
	if err := k.h.Reconnect(k.opts.Share.scard(), scard.Protocol(k.opts.Protocols), init); err != nil {
		return err
	}
	k.sent = 0
	return k.settle()
}

// Close ends the transaction, if one is open, and the connection, with
// the card left as d says (SCardEndTransaction, SCardDisconnect). The
// handle is released whatever happens: a disconnection that fails is
// done again leaving the card as it is. Failures because the card is
// gone or was reset are not reported: the card is out of this
// connection's hands either way. Closing a closed Card does nothing.
func (k *Card) Close(d Disposition) error {
	if k.closed {
		return nil
	}
	k.closed = true
	var first error
	if k.tx {
		k.tx = false
		if err := k.h.EndTransaction(scard.LeaveCard); err != nil && !cardGone(err) {
			first = newError("end transaction", k.reader, err)
		}
	}
	err := k.h.Disconnect(d.scard())
	if err != nil && d != Leave {
		err = k.h.Disconnect(scard.LeaveCard)
	}
	if err != nil && !cardGone(err) && first == nil {
		first = newError("disconnect", k.reader, err)
	}
	return first
}

// cardGone reports whether err says the card is no longer there as the
// connection knew it.
func cardGone(err error) bool {
	return errors.Is(err, scard.ErrRemovedCard) || errors.Is(err, scard.ErrResetCard) ||
		errors.Is(err, scard.ErrNoSmartcard) || errors.Is(err, scard.ErrInvalidHandle)
}

// fail makes the error of a failed call on the card, finding out whether
// a failed exchange was a card pulled out.
func (k *Card) fail(op string, err error) error {
	e := newError(op, k.reader, err)
	var pe *Error
	if !errors.As(e, &pe) {
		return e
	}
	switch scard.Error(pe.Code) {
	case scard.ErrRemovedCard:
		k.removed = true
	case scard.ErrNotTransacted, scard.ErrCommError, scard.ErrUnresponsiveCard,
		scard.ErrNoSmartcard, scard.ErrUnpoweredCard, scard.ErrUnknownError:
		if k.gone() {
			k.removed = true
			pe.class = ErrCardRemoved
		}
	}
	return e
}

// gone waits up to Options.RemovalCheck for the reader to show the card
// gone: the reader empty, or another card event since the connection.
func (k *Card) gone() bool {
	if k.opts.RemovalCheck < 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.opts.RemovalCheck)
	defer cancel()
	s, err := k.ctx.State(k.reader)
	for err == nil {
		if s.Flags&StatePresent == 0 || s.Events != k.events {
			return true
		}
		s, err = k.ctx.Wait(ctx, s)
	}
	return false
}
