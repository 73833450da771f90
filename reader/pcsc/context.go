package pcsc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// Context is a connection to the PC/SC resource manager (SCardEstablishContext,
// PC/SC Part 5 section 3.1.3): pcscd on Linux, the smart card service of
// Windows and macOS.
//
// The resource manager serves one call of a context at a time: a
// Context's calls wait for each other, and a card connected through it
// shares that. Stations that work in parallel each open their own. A
// blocking wait ([Context.Wait]) is the exception: cancelling its
// context.Context cancels it from another goroutine (SCardCancel).
type Context struct {
	c *scard.Context

	mu     sync.Mutex
	closed bool
}

// Open establishes a context with the resource manager. It fails with an
// error matching [ErrNoService] when none is running.
func Open() (*Context, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, newError("establish context", "", err)
	}
	return &Context{c: c}, nil
}

// Close releases the context. Cards connected through it must be closed
// first. Closing a closed context does nothing.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.c.Release(); err != nil {
		return newError("release context", "", err)
	}
	return nil
}

// Readers lists the readers the resource manager knows, in its order. It
// returns an error matching [ErrNoReaders] when there are none.
func (c *Context) Readers() ([]string, error) {
	rs, err := c.c.ListReaders()
	if err != nil {
		return nil, newError("list readers", "", err)
	}
	if len(rs) == 0 {
		return nil, &Error{Op: "list readers", Code: uint32(scard.ErrNoReadersAvailable), class: ErrNoReaders}
	}
	return rs, nil
}

// SelectReaders picks readers from those listed by a specification, as a
// command line takes it: "all" (or empty) for every reader, or a
// comma-separated list of reader indexes (from 0, in the order of
// readers) and names. A name matches a reader of that exact name, or
// else the one reader whose name contains it, ignoring case. The result
// is in the order of the specification, without duplicates.
func SelectReaders(readers []string, spec string) ([]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "all") {
		if len(readers) == 0 {
			return nil, ErrNoReaders
		}
		return slices.Clone(readers), nil
	}
	var out []string
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		r, err := selectReader(readers, item)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func selectReader(readers []string, item string) (string, error) {
	if item == "" {
		return "", errors.New("pcsc: empty reader in the list")
	}
	if i, err := strconv.Atoi(item); err == nil {
		if i < 0 || i >= len(readers) {
			return "", fmt.Errorf("pcsc: reader index %d: %d readers, %w", i, len(readers), ErrReaderUnavailable)
		}
		return readers[i], nil
	}
	if slices.Contains(readers, item) {
		return item, nil
	}
	var found []string
	for _, r := range readers {
		if strings.Contains(strings.ToLower(r), strings.ToLower(item)) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("pcsc: no reader named %q: %w", item, ErrReaderUnavailable)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("pcsc: %q names %d readers (%s); give the full name or an index", item, len(found), strings.Join(found, ", "))
}

// StateFlags are the reader state bits of SCARD_READERSTATE.dwEventState
// (PC/SC Part 5 section 3.1.3, SCardGetStatusChange), without the event
// count in the high word.
type StateFlags uint32

// Reader states.
const (
	StateUnknown     StateFlags = 0x0004 // the reader is not known
	StateUnavailable StateFlags = 0x0008 // the reader's state cannot be had
	StateEmpty       StateFlags = 0x0010 // no card in the reader
	StatePresent     StateFlags = 0x0020 // a card is in the reader
	StateExclusive   StateFlags = 0x0080 // an application holds the card exclusively
	StateInUse       StateFlags = 0x0100 // applications are connected to the card
	StateMute        StateFlags = 0x0200 // the card does not answer to reset
	StateUnpowered   StateFlags = 0x0400 // the card is not powered
)

var stateNames = []struct {
	f    StateFlags
	name string
}{
	{StateUnknown, "unknown"}, {StateUnavailable, "unavailable"}, {StateEmpty, "empty"},
	{StatePresent, "present"}, {StateExclusive, "exclusive"}, {StateInUse, "in use"},
	{StateMute, "mute"}, {StateUnpowered, "unpowered"},
}

// String names the bits set, as "present, exclusive".
func (f StateFlags) String() string {
	var names []string
	for _, s := range stateNames {
		if f&s.f != 0 {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// stateMask keeps the flags above and the change bit out of dwEventState.
const stateMask = 0xFFFF

// ReaderState is what the resource manager says of a reader.
type ReaderState struct {
	Reader string
	Flags  StateFlags
	// Events counts the card insertions and removals the resource manager
	// has seen in the reader, where it keeps the count (pcsc-lite and
	// Windows keep it in the high word of dwEventState); it tells a new
	// card from the one seen before. Zero where it is not kept.
	Events uint16
	// ATR is the answer to reset of the card in the reader, if any.
	ATR []byte

	raw scard.StateFlag // dwEventState as received, for the next wait
}

// Present reports whether a card that answered to reset is in the reader.
func (s ReaderState) Present() bool {
	return s.Flags&StatePresent != 0 && s.Flags&StateMute == 0
}

// Gone reports whether the reader itself is unknown or unavailable.
func (s ReaderState) Gone() bool {
	return s.Flags&(StateUnknown|StateUnavailable) != 0
}

func readerState(rs scard.ReaderState) ReaderState {
	return ReaderState{
		Reader: rs.Reader,
		Flags:  StateFlags(rs.EventState & stateMask &^ scard.StateChanged),
		Events: uint16(rs.EventState >> 16),
		ATR:    slices.Clone(rs.Atr),
		raw:    rs.EventState &^ scard.StateChanged,
	}
}

// State returns the reader's state now, without waiting.
func (c *Context) State(reader string) (ReaderState, error) {
	rs := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	if err := c.c.GetStatusChange(rs, 0); err != nil {
		return ReaderState{}, newError("get reader state", reader, err)
	}
	return readerState(rs[0]), nil
}

// Wait waits until the reader's state differs from last (a state that an
// earlier State or Wait returned), and returns the new state
// (SCardGetStatusChange). It returns, wrapped, context.Cause(ctx) when
// ctx is done first; the wait in the resource manager is cancelled then
// (SCardCancel). A cancellation that reaches the resource manager after
// the wait it was meant for has ended can cut the next wait short
// (pcsc-lite); Wait then waits again.
func (c *Context) Wait(ctx context.Context, last ReaderState) (ReaderState, error) {
	if err := ctx.Err(); err != nil {
		return ReaderState{}, fmt.Errorf("pcsc: reader %q: waiting for a change: %w", last.Reader, context.Cause(ctx))
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.Cancel() })
	defer stop()
	for {
		rs := []scard.ReaderState{{Reader: last.Reader, CurrentState: last.raw}}
		timeout := time.Duration(-1) // infinite
		if d, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(d), time.Millisecond)
		}
		err := c.c.GetStatusChange(rs, timeout)
		switch {
		case err == nil:
			return readerState(rs[0]), nil
		case ctx.Err() != nil && (errors.Is(err, scard.ErrCancelled) || errors.Is(err, scard.ErrTimeout)):
			return ReaderState{}, fmt.Errorf("pcsc: reader %q: waiting for a change: %w", last.Reader, context.Cause(ctx))
		case errors.Is(err, scard.ErrTimeout):
			continue // the deadline rounded down to the millisecond
		case errors.Is(err, scard.ErrCancelled):
			// The late cancellation of an earlier wait on this context,
			// which the resource manager delivered to this one.
			continue
		}
		return ReaderState{}, newError("wait for a change", last.Reader, err)
	}
}

// WaitForCard waits until a card that answers to reset is in the reader
// and returns the reader's state. It fails with an error matching
// [ErrReaderUnavailable] if the reader goes away, and with
// context.Cause(ctx) when ctx is done first.
func (c *Context) WaitForCard(ctx context.Context, reader string) (ReaderState, error) {
	s, err := c.State(reader)
	for err == nil && !s.Present() {
		if s.Gone() {
			return s, &Error{Op: "wait for a card", Reader: reader, Code: uint32(scard.ErrReaderUnavailable), class: ErrReaderUnavailable}
		}
		s, err = c.Wait(ctx, s)
	}
	return s, err
}
