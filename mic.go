package perso

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// MIC is a module identifier code: the first byte of a MIC group, naming the
// personalization module that processes the group's data (the "processing
// module identifier" of WO 99/19846). Code 05 is the cardholder data group ([MICCardData]); codes 06..BF are unassigned and
// C0..FE are for a bureau's own modules; groups with any of them are carried
// through unchanged. 00 and FF are reserved and never appear in a file.
type MIC uint8

const (
	MICChip      MIC = 0x01 // chip data: [ChipData]
	MICMagStripe MIC = 0x02 // magnetic stripe tracks, in the bureau's encoder format
	MICEmboss    MIC = 0x03 // embossing and indent printing
	MICGraphics  MIC = 0x04 // graphics and printing: laser engraving, thermal or inkjet print

	// MICBureauFirst and MICBureauLast bound the codes a bureau assigns to
	// modules of its own (a carrier printer, a mailer insert).
	MICBureauFirst MIC = 0xC0
	MICBureauLast  MIC = 0xFE
)

// Reserved reports whether m is 00 or FF, which no group may carry.
func (m MIC) Reserved() bool { return m == 0x00 || m == 0xFF }

// BureauDefined reports whether m is in the range C0..FE that a bureau
// assigns.
func (m MIC) BureauDefined() bool { return m >= MICBureauFirst && m <= MICBureauLast }

// String names the module, as in "chip" or "bureau C3".
func (m MIC) String() string {
	switch {
	case m == MICChip:
		return "chip"
	case m == MICMagStripe:
		return "magnetic stripe"
	case m == MICEmboss:
		return "emboss"
	case m == MICGraphics:
		return "graphics"
	case m == MICCardData:
		return "card data"
	case m.BureauDefined():
		return fmt.Sprintf("bureau %02X", uint8(m))
	case m.Reserved():
		return fmt.Sprintf("reserved %02X", uint8(m))
	}
	return fmt.Sprintf("MIC %02X", uint8(m))
}

// GroupHeaderLen is the size of a MIC group's header: MIC(1) || length(4).
const GroupHeaderLen = 5

// MaxGroupLen bounds a MIC group's data: the largest that fits, with its
// header, in a record of [MaxRecordLen] bytes.
const MaxGroupLen = MaxRecordLen - GroupHeaderLen

// Group is one MIC group of a record: the code of the module that processes
// it and the data for that module. Its encoding is
//
//	MIC(1) || length(4, big-endian, at most MaxGroupLen) || data
//
// Data aliases the bytes it was parsed from.
type Group struct {
	MIC  MIC
	Data []byte
}

// ParseGroups splits b into MIC groups. It rejects a reserved MIC, a
// length over [MaxGroupLen] and a length that overruns b, with a
// *[FormatError] whose Offset is relative to b. The groups alias b. Empty b
// gives no groups and no error; the rules of a record (at least one group,
// each MIC once) are [ParseRecord]'s.
func ParseGroups(b []byte) ([]Group, error) {
	gs, err := parseGroups(b)
	if err != nil {
		return nil, err
	}
	return gs, nil
}

func parseGroups(b []byte) ([]Group, *FormatError) {
	c := cursor{in: b}
	var gs []Group
	for i := 0; c.left() > 0; i++ {
		start := c.pos
		if c.left() < GroupHeaderLen {
			return nil, c.need(GroupHeaderLen, groupField(i, "header"))
		}
		mic := MIC(c.u8())
		n := c.u32()
		if mic.Reserved() {
			return nil, errAt(start, groupField(i, "MIC"), ErrMalformed, "%02X is reserved", uint8(mic))
		}
		if n > MaxGroupLen {
			return nil, errAt(start+1, groupField(i, "length"), ErrTooLong, "%d exceeds %d", n, MaxGroupLen)
		}
		if int64(n) > int64(c.left()) {
			return nil, c.need(int64(n), groupField(i, "data"))
		}
		gs = append(gs, Group{MIC: mic, Data: c.bytes(int(n))})
	}
	return gs, nil
}

func groupField(i int, what string) string { return fmt.Sprintf("group %d %s", i, what) }

// AppendGroup appends the encoding of g to dst. It fails for a reserved MIC
// or data longer than [MaxGroupLen].
func AppendGroup(dst []byte, g Group) ([]byte, error) {
	b := builder{buf: dst, base: len(dst)}
	b.group(0, g)
	if b.err != nil {
		return dst, b.err
	}
	return b.buf, nil
}

func (b *builder) group(i int, g Group) {
	if g.MIC.Reserved() {
		b.fail(groupField(i, "MIC"), ErrMalformed, "%02X is reserved", uint8(g.MIC))
		return
	}
	if len(g.Data) > MaxGroupLen {
		b.failAt(len(b.buf)+1, groupField(i, "length"), ErrTooLong, "%d exceeds %d", len(g.Data), MaxGroupLen)
		return
	}
	b.u8(uint8(g.MIC))
	b.lenPrefixed32(MaxGroupLen, "group length", func(b *builder) { b.add(g.Data) })
}

// Card is what a [Module] is given about the card it works on. It is a
// struct so that the personalizer can add what its modules need (the chip
// module's card transport, for one) without changing the interface.
type Card struct {
	// Index is the record's zero-based position in the batch file.
	Index int
	// Record is the card's record, with all its groups.
	Record *Record
	// Batch is the header of the batch file the record comes from.
	Batch *Header
	// Conn is the connection to the card's chip, for the chip module; nil
	// when the station has no chip reader. Its APDU count is the audit
	// log's.
	Conn *Conn
	// Identity is what a module learned of the card's identity, such as
	// the chip's key diversification data, for the audit log.
	Identity string
}

// Module processes the MIC groups of one kind for a personalization
// machine: it embosses, encodes a stripe, prints, or loads a chip.
//
// Personalize applies one group of the card's record. It returns nil only
// when the module has done all it must for this card; any error rejects the
// record (the personalizer records the index and reason and goes on with
// the next card). An error for data the module cannot use (malformed,
// inconsistent, for a feature the machine lacks) wraps [ErrBadInput] or is
// a *[FormatError], so that the caller knows a retry cannot help; a failed
// MAC check wraps [ErrBadMAC]; a cancelled ctx returns ctx.Err(). A module
// must not keep g.Data or card after it returns, and must be safe for
// concurrent use: a personalizer may drive several machines at once.
type Module interface {
	Personalize(ctx context.Context, card *Card, g Group) error
}

// ModuleFunc lets an ordinary function serve as a [Module].
type ModuleFunc func(ctx context.Context, card *Card, g Group) error

// Personalize calls f.
func (f ModuleFunc) Personalize(ctx context.Context, card *Card, g Group) error {
	return f(ctx, card, g)
}

// Registry maps module identifier codes to the modules that process them.
// The zero Registry is empty and ready to use; it is safe for concurrent
// use.
type Registry struct {
	mu sync.RWMutex
	m  map[MIC]Module
}

// Register makes m the module for mic. It fails, with an error that wraps
// [ErrBadInput], for a reserved MIC, a nil module, or a MIC that already has
// one.
func (r *Registry) Register(mic MIC, m Module) error {
	if mic.Reserved() {
		return fmt.Errorf("%w: MIC %02X is reserved", ErrBadInput, uint8(mic))
	}
	if m == nil {
		return fmt.Errorf("%w: nil module for %v", ErrBadInput, mic)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[mic]; ok {
		return fmt.Errorf("%w: a module for %v is already registered", ErrBadInput, mic)
	}
	if r.m == nil {
		r.m = make(map[MIC]Module)
	}
	r.m[mic] = m
	return nil
}

// Lookup returns the module registered for mic.
func (r *Registry) Lookup(mic MIC) (Module, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.m[mic]
	return m, ok
}

// MICs returns the codes that have a module, in ascending order.
func (r *Registry) MICs() []MIC {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]MIC, 0, len(r.m))
	for mic := range r.m {
		out = append(out, mic)
	}
	slices.Sort(out)
	return out
}
