package pcsc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardperso/perso"
)

// Feeder is the card transport of a personalization machine at one chip
// station: it brings blank cards to the station's reader and takes them
// away. Its methods are called from the station's goroutine.
type Feeder interface {
	// Feed brings the next blank card into the reader and returns once it
	// is in contact position, or with an error when there is none to
	// bring (the input hopper is empty) or the transport failed.
	Feed(ctx context.Context) error
	// Out takes the card away after its session: to the output when ok,
	// to the reject hopper otherwise.
	Out(ctx context.Context, ok bool) error
}

// StationConfig configures a [Station].
type StationConfig struct {
	// Reader is the reader's name, as [Context.Readers] lists it.
	Reader string
	// Name names the station in the audit log; empty means Reader.
	Name string
	// Options shape each connection; the zero value connects exclusively
	// with T=0 or T=1.
	Options Options
	// Wait bounds how long Insert waits for a card; zero waits as long as
	// its context lets it.
	Wait time.Duration
	// Feeder, when set, moves the cards: Insert has it feed a card and
	// takes the card in the reader as the next one; Eject has it take the
	// card out. Without one, cards are fed by hand: Insert takes a card
	// only once the reader has seen a card inserted since the last one.
	Feeder Feeder
}

// Station is a chip personalization station on a PC/SC reader: a
// perso.Station. Each card's session is one exclusive connection and one
// transaction, from Insert to Eject, so that no other application's
// command reaches the card, or resets it, while it is being personalized.
//
// A Station has its own [Context], so that stations on several readers
// work in parallel. It is used by one goroutine, as perso.Personalizer
// uses its stations.
type Station struct {
	cfg  StationConfig
	ctx  *Context
	base context.Context // for the feeder in Eject; cancelled by Close
	stop context.CancelFunc

	card     *Card
	had      bool   // a card has had a session
	events   uint16 // the reader's card event count when that card was connected
	sawEmpty bool   // the reader was seen empty since
}

// connectAttempts bounds the connections Insert tries to a card that goes
// away or does not answer as it is connected; retryPause is the longest
// it waits for the reader's state to change between two.
const (
	connectAttempts = 3
	retryPause      = 400 * time.Millisecond
)

// NewStation opens a context for the station and checks that its reader
// is there. Close releases it.
func NewStation(cfg StationConfig) (*Station, error) {
	if cfg.Reader == "" {
		return nil, errors.New("pcsc: station without a reader")
	}
	c, err := Open()
	if err != nil {
		return nil, err
	}
	st, err := c.State(cfg.Reader)
	if err == nil && st.Gone() {
		err = fmt.Errorf("pcsc: reader %q (%s): %w", cfg.Reader, st.Flags, ErrReaderUnavailable)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	base, stop := context.WithCancel(context.Background())
	return &Station{cfg: cfg, ctx: c, base: base, stop: stop}, nil
}

// Name implements perso.Station.
func (s *Station) Name() string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	return s.cfg.Reader
}

// Reader returns the station's reader name.
func (s *Station) Reader() string { return s.cfg.Reader }

// Insert implements perso.Station: it has the feeder, if any, feed a
// card, waits for the card (SCardGetStatusChange), connects to it and
// begins a transaction. A card that goes away or does not answer as it
// is connected is tried again, a few times, as the reader settles. It
// fails with an error matching [ErrTimeout] when StationConfig.Wait
// passes first, or wrapping context.Cause(ctx) when ctx is done.
func (s *Station) Insert(ctx context.Context) (perso.Transport, error) {
	if s.card != nil {
		return nil, fmt.Errorf("pcsc: station %s: the last card has not been ejected", s.Name())
	}
	if s.cfg.Wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, s.cfg.Wait, fmt.Errorf("%w: no card within %v", ErrTimeout, s.cfg.Wait))
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pcsc: station %s: %w", s.Name(), context.Cause(ctx))
	}
	if s.cfg.Feeder != nil {
		if err := s.cfg.Feeder.Feed(ctx); err != nil {
			return nil, fmt.Errorf("pcsc: station %s: feeding a card: %w", s.Name(), err)
		}
	}
	for attempt := 1; ; attempt++ {
		// A fed card is taken as it is: the station looks at the reader
		// only when connecting fails.
		var st ReaderState
		if s.cfg.Feeder == nil || attempt > 1 {
			var err error
			if st, err = s.waitNew(ctx); err != nil {
				return nil, fmt.Errorf("pcsc: station %s: %w", s.Name(), err)
			}
		}
		card, err := s.connect()
		if err == nil {
			s.card, s.had, s.events, s.sawEmpty = card, true, card.events, false
			return card, nil
		}
		if !retryable(err) || attempt == connectAttempts {
			return nil, err
		}
		if st.Reader == "" {
			continue // not looked at yet: wait for the card
		}
		// Let the reader settle: the card may have gone before the
		// resource manager saw it go, or be still powering up.
		wctx, cancel := context.WithTimeout(ctx, retryPause)
		_, werr := s.ctx.Wait(wctx, st)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pcsc: station %s: %w (after %w)", s.Name(), context.Cause(ctx), err)
		}
		if werr != nil && wctx.Err() == nil {
			return nil, werr
		}
	}
}

// connect connects to the card and begins the transaction, releasing the
// connection if the transaction cannot begin.
func (s *Station) connect() (*Card, error) {
	card, err := s.ctx.Connect(s.cfg.Reader, s.cfg.Options)
	if err != nil {
		return nil, err
	}
	if err := card.Begin(); err != nil {
		card.Close(Leave)
		return nil, err
	}
	return card, nil
}

// retryable reports whether a failed connection may succeed when tried
// again: the card went or did not answer as it was connected.
func retryable(err error) bool {
	return errors.Is(err, ErrNoCard) || errors.Is(err, ErrCardRemoved) ||
		errors.Is(err, ErrCardReset) || errors.Is(err, ErrUnresponsiveCard)
}

// waitNew waits until the reader holds a card to personalize: any card
// with a feeder, or without one the first card, or a card inserted after
// the last one.
func (s *Station) waitNew(ctx context.Context) (ReaderState, error) {
	st, err := s.ctx.State(s.cfg.Reader)
	for err == nil {
		if st.Gone() {
			return st, fmt.Errorf("pcsc: reader %q (%s): %w", s.cfg.Reader, st.Flags, ErrReaderUnavailable)
		}
		if st.Flags&StatePresent == 0 {
			s.sawEmpty = true
		}
		if st.Present() && (s.cfg.Feeder != nil || !s.had || s.sawEmpty || st.Events != s.events) {
			return st, nil
		}
		st, err = s.ctx.Wait(ctx, st)
	}
	return st, err
}

// Eject implements perso.Station: it ends the transaction and the
// connection, unpowering the card (ISO/IEC 7816-3 section 6.5,
// deactivation, before the card moves), and has the feeder, if any, take
// the card out. A card found pulled out ends without complaint.
func (s *Station) Eject(t perso.Transport, ok bool) error {
	card, isCard := t.(*Card)
	if !isCard || card != s.card || card == nil {
		return fmt.Errorf("pcsc: station %s: ejecting a card it did not insert", s.Name())
	}
	s.card = nil
	s.sawEmpty = card.Removed()
	err := card.Close(Unpower)
	if s.cfg.Feeder != nil {
		if ferr := s.cfg.Feeder.Out(s.base, ok); ferr != nil && err == nil {
			err = fmt.Errorf("pcsc: station %s: taking the card out: %w", s.Name(), ferr)
		}
	}
	return err
}

// Close releases the card, if one is in a session, and the station's
// context.
func (s *Station) Close() error {
	s.stop()
	var err error
	if s.card != nil {
		err = s.card.Close(Unpower)
		s.card = nil
	}
	if cerr := s.ctx.Close(); err == nil {
		err = cerr
	}
	return err
}
