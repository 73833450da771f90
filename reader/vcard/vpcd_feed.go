package vcard

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// VPCDFeeder feeds fresh virtual cards through a vpcd reader, as the card
// transport of a personalization machine feeds blank cards through a chip
// station. It has the methods of reader/pcsc's Feeder.
//
// Feed puts the next card in place of the last one with [VPCD.Swap], so
// the reader sees no removal and no insertion, and a batch runs at the
// speed of its APDUs. When the reader is empty (the last card was pulled
// out by its fault, or pcscd dropped it) Feed inserts the card, and pcscd
// sees it at its next poll.
type VPCDFeeder struct {
	Reader *VPCD
	// Next makes the next blank card.
	Next func() (*Card, error)

	mu  sync.Mutex
	out []FedCard
}

// FedCard is a card a [VPCDFeeder] took out, and how its session ended.
type FedCard struct {
	Card *Card
	OK   bool
}

// Feed implements pcsc.Feeder.
func (f *VPCDFeeder) Feed(ctx context.Context) error {
	if f.Reader == nil || f.Next == nil {
		return errors.New("vcard: VPCDFeeder needs a Reader and Next")
	}
	card, err := f.Next()
	if err != nil {
		return fmt.Errorf("vcard: making the next card: %w", err)
	}
	if _, err := f.Reader.Swap(card); err == nil {
		return nil
	}
	return f.Reader.Insert(ctx, card)
}

// Out implements pcsc.Feeder: the card stays in the reader until the next
// Feed replaces it; [VPCDFeeder.Cards] lists it, with ok, from now on.
func (f *VPCDFeeder) Out(ctx context.Context, ok bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, FedCard{Card: f.Reader.Card(), OK: ok})
	return nil
}

// Cards returns the cards taken out so far, in order. The card of a
// session whose card was pulled out is nil.
func (f *VPCDFeeder) Cards() []FedCard {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FedCard(nil), f.out...)
}
