package perso

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// RecordingModule is a Module for the card body's machine modules
// (embosser, magnetic stripe encoder, printer) that records what it would
// do instead of doing it: a line per card naming the record and what the
// group asks for, never its content (emboss lines and tracks hold the
// PAN). It is for tests, examples and dry runs; a bureau registers its own
// machine drivers in its place.
type RecordingModule struct {
	mu    sync.Mutex
	lines []string
}

// Personalize implements Module.
func (m *RecordingModule) Personalize(ctx context.Context, card *Card, g Group) error {
	var what string
	switch g.MIC {
	case MICEmboss:
		what = fmt.Sprintf("emboss %d lines", strings.Count(string(g.Data), "\n")+1)
	case MICMagStripe:
		tlvs, err := ParseTLVs(g.Data, Strict)
		if err != nil {
			return fmt.Errorf("magnetic stripe data: %w", err)
		}
		what = fmt.Sprintf("encode %d tracks", len(tlvs))
	default:
		what = fmt.Sprintf("process %d bytes", len(g.Data))
	}
	m.mu.Lock()
	m.lines = append(m.lines, fmt.Sprintf("record %d: %s: %s", card.Index, g.MIC, what))
	m.mu.Unlock()
	return nil
}

// Lines returns what the module recorded, in the order it was done.
func (m *RecordingModule) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}
