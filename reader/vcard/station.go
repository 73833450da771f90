package vcard

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cardperso/perso"
)

// Station is a personalization station that puts a fresh virtual card in
// for every record: a perso.Station for tests, benchmarks and the
// quickstart.
type Station struct {
	name string
	cfg  func(n int) (Config, error)

	mu    sync.Mutex
	n     int
	cards []*Card
	keep  bool
}

// NewStation returns a station whose n-th card (from 0) is made with
// cfg(n). With keep set, it keeps every card it ejects, for tests that
// inspect them.
func NewStation(name string, keep bool, cfg func(n int) (Config, error)) *Station {
	return &Station{name: name, cfg: cfg, keep: keep}
}

// Name implements perso.Station.
func (s *Station) Name() string { return s.name }

// Insert implements perso.Station: a new virtual card.
func (s *Station) Insert(ctx context.Context) (perso.Transport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	cfg, err := s.cfg(n)
	if err != nil {
		return nil, fmt.Errorf("vcard: card %d: %w", n, err)
	}
	return New(cfg)
}

// Eject implements perso.Station.
func (s *Station) Eject(t perso.Transport, ok bool) error {
	c, isCard := t.(*Card)
	if !isCard {
		return errors.New("vcard: ejecting a card this station did not insert")
	}
	if s.keep {
		s.mu.Lock()
		s.cards = append(s.cards, c)
		s.mu.Unlock()
	}
	return nil
}

// Cards returns the cards ejected so far, when the station keeps them.
func (s *Station) Cards() []*Card {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Card(nil), s.cards...)
}
