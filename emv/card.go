package emv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cardperso/perso"
)

// Card is an EMV application on a card seen from a terminal: the commands
// of EMV Book 3 section 6.5 over a perso.Conn, which handles GET RESPONSE
// and wrong-Le retries. Each method returns an error wrapping a
// *perso.SWError when the card refuses the command, and a parse error
// naming the field when its answer is malformed. A Card is not safe for
// concurrent use.
type Card struct {
	conn *perso.Conn
}

// NewCard returns a Card over t.
func NewCard(t perso.Transport) *Card { return &Card{conn: perso.NewConn(t)} }

// Count returns the number of APDUs sent so far.
func (c *Card) Count() int { return c.conn.Count() }

// Conn returns the connection the Card sends its commands on, for the
// commands of other applications on the same card (the purse's, in vsvc).
func (c *Card) Conn() *perso.Conn { return c.conn }

// FCI is an application's answer to SELECT (EMV Book 1 11.3.4): the file
// control information template 6F with the DF name (84) and the FCI
// proprietary template (A5).
type FCI struct {
	DFName   []byte
	Label    string // 50
	Priority []byte // 87, if present
	PDOL     []byte // 9F38, if present
	Raw      []byte
}

// Select selects the application by its AID (SELECT by DF name, first
// occurrence, EMV Book 1 11.3).
func (c *Card) Select(aid []byte) (*FCI, error) {
	data, err := c.conn.Do(perso.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: aid, Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("emv: SELECT: %w", err)
	}
	t, err := perso.ParseTLV(data, perso.Lenient)
	if err != nil || t.Tag != 0x6F {
		return nil, fmt.Errorf("emv: SELECT response is not an FCI template (6F)")
	}
	f := &FCI{Raw: data}
	df, ok := t.Find(0x84)
	if !ok {
		return nil, errors.New("emv: FCI without a DF name (84)")
	}
	f.DFName = df.Value
	a5, ok := t.Find(0xA5)
	if !ok {
		return nil, errors.New("emv: FCI without a proprietary template (A5)")
	}
	if v, ok := a5.Find(0x50); ok {
		f.Label = string(v.Value)
	}
	if v, ok := a5.Find(0x87); ok {
		f.Priority = v.Value
	}
	if v, ok := a5.Find(0x9F38); ok {
		f.PDOL = v.Value
	}
	return f, nil
}

// AFLEntry is one entry of the application file locator (EMV Book 3
// 10.2): the records First to Last of file SFI, of which the first ODA take
// part in offline data authentication.
type AFLEntry struct {
	SFI, First, Last, ODA byte
}

// AFL is an application file locator (94).
type AFL []AFLEntry

// Bytes returns the AFL's encoding: 4 bytes per entry, the SFI in b8-b4 of
// the first.
func (a AFL) Bytes() []byte {
	out := make([]byte, 0, 4*len(a))
	for _, e := range a {
		out = append(out, e.SFI<<3, e.First, e.Last, e.ODA)
	}
	return out
}

// Records returns the number of records the AFL lists.
func (a AFL) Records() int {
	n := 0
	for _, e := range a {
		n += int(e.Last-e.First) + 1
	}
	return n
}

// ParseAFL decodes an application file locator (94), checking each entry:
// SFI 1 to 30, first record at least 1, last not before first, no more ODA
// records than the entry has.
func ParseAFL(b []byte) (AFL, error) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, fmt.Errorf("emv: AFL of %d bytes, want a positive multiple of 4", len(b))
	}
	out := make(AFL, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		e := AFLEntry{SFI: b[i] >> 3, First: b[i+1], Last: b[i+2], ODA: b[i+3]}
		if b[i]&7 != 0 || e.SFI == 0 || e.SFI > 30 || e.First == 0 || e.Last < e.First || int(e.ODA) > int(e.Last-e.First)+1 {
			return nil, fmt.Errorf("emv: AFL entry at offset %d (%X) is malformed", i, b[i:i+4])
		}
		out = append(out, e)
	}
	return out, nil
}

// GetProcessingOptions sends GET PROCESSING OPTIONS (EMV Book 3 6.5.8) with
// the PDOL data in template 83 and returns the AIP and the AFL, from a
// response in format 1 (80: AIP || AFL) or format 2 (77 { 82, 94 }).
func (c *Card) GetProcessingOptions(pdolData []byte) (aip []byte, afl AFL, err error) {
	var b perso.Builder
	b.AddPrimitive(0x83, pdolData)
	data, err := b.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("emv: PDOL data: %w", err)
	}
	resp, err := c.conn.Do(perso.Command{CLA: 0x80, INS: 0xA8, Data: data, Le: perso.MaxShortLe})
	if err != nil {
		return nil, nil, fmt.Errorf("emv: GET PROCESSING OPTIONS: %w", err)
	}
	t, err := perso.ParseTLV(resp, perso.Lenient)
	var rawAFL []byte
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("emv: GET PROCESSING OPTIONS response: %w", err)
	case t.Tag == 0x80 && len(t.Value) >= 2:
		aip, rawAFL = t.Value[:2], t.Value[2:]
	case t.Tag == 0x77:
		a, ok1 := t.Find(0x82)
		l, ok2 := t.Find(0x94)
		if !ok1 || !ok2 {
			return nil, nil, errors.New("emv: GET PROCESSING OPTIONS response lacks the AIP (82) or the AFL (94)")
		}
		aip, rawAFL = a.Value, l.Value
	default:
		return nil, nil, fmt.Errorf("emv: GET PROCESSING OPTIONS response template %v, want 80 or 77", t.Tag)
	}
	if len(aip) != 2 {
		return nil, nil, fmt.Errorf("emv: AIP of %d bytes, want 2", len(aip))
	}
	if afl, err = ParseAFL(rawAFL); err != nil {
		return nil, nil, err
	}
	return aip, afl, nil
}

// ReadRecord reads record rec of file sfi (EMV Book 3 6.5.11) and returns
// it: a record template 70 for SFIs 1 to 10.
func (c *Card) ReadRecord(sfi, rec byte) ([]byte, error) {
	data, err := c.conn.Do(perso.Command{CLA: 0x00, INS: 0xB2, P1: rec, P2: sfi<<3 | 0x04, Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("emv: READ RECORD SFI %d record %d: %w", sfi, rec, err)
	}
	return data, nil
}

// GetData reads a data object with GET DATA (EMV Book 3 6.5.7) and returns
// its value.
func (c *Card) GetData(tag perso.Tag) ([]byte, error) {
	if tag > 0xFFFF {
		return nil, fmt.Errorf("emv: GET DATA of a %d-byte tag", tag.Len())
	}
	data, err := c.conn.Do(perso.Command{CLA: 0x80, INS: 0xCA, P1: byte(tag >> 8), P2: byte(tag), Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("emv: GET DATA %v: %w", tag, err)
	}
	t, err := perso.ParseTLV(data, perso.Lenient)
	if err != nil || t.Tag != tag {
		return nil, fmt.Errorf("emv: GET DATA %v: the response is not that data object", tag)
	}
	return t.Value, nil
}

// InternalAuthenticate sends INTERNAL AUTHENTICATE (EMV Book 3 6.5.9) with
// the DDOL data and returns the signed dynamic application data, from a
// response in format 1 (80) or format 2 (77 { 9F4B }).
func (c *Card) InternalAuthenticate(ddolData []byte) ([]byte, error) {
	data, err := c.conn.Do(perso.Command{CLA: 0x00, INS: 0x88, Data: ddolData, Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("emv: INTERNAL AUTHENTICATE: %w", err)
	}
	t, err := perso.ParseTLV(data, perso.Lenient)
	switch {
	case err != nil:
		return nil, fmt.Errorf("emv: INTERNAL AUTHENTICATE response: %w", err)
	case t.Tag == 0x80:
		return t.Value, nil
	case t.Tag == 0x77:
		if s, ok := t.Find(0x9F4B); ok {
			return s.Value, nil
		}
	}
	return nil, errors.New("emv: INTERNAL AUTHENTICATE response carries no signed dynamic application data")
}

// CryptogramType is the cryptogram a terminal asks GENERATE AC for, and
// the type in the cryptogram information data (EMV Book 3 6.5.5, tables 12
// and 14: b8-b7).
type CryptogramType byte

const (
	AAC  CryptogramType = 0x00
	TC   CryptogramType = 0x40
	ARQC CryptogramType = 0x80
)

// String names the type.
func (t CryptogramType) String() string {
	switch t & 0xC0 {
	case AAC:
		return "AAC"
	case TC:
		return "TC"
	case ARQC:
		return "ARQC"
	}
	return "RFU"
}

// AC is a GENERATE AC response (EMV Book 3 6.5.5.4).
type AC struct {
	CID        byte   // cryptogram information data (9F27)
	ATC        uint16 // application transaction counter (9F36)
	Cryptogram []byte // application cryptogram (9F26), 8 bytes
	IAD        []byte // issuer application data (9F10), if any
}

// Type returns the cryptogram's type from the CID.
func (a *AC) Type() CryptogramType { return CryptogramType(a.CID & 0xC0) }

// GenerateAC sends GENERATE AC (EMV Book 3 6.5.5) asking for typ with the
// CDOL data, without CDA, and decodes the response in format 1 (80: CID ||
// ATC || AC || IAD) or format 2 (77 { 9F27, 9F36, 9F26, 9F10 }).
func (c *Card) GenerateAC(typ CryptogramType, cdolData []byte) (*AC, error) {
	data, err := c.conn.Do(perso.Command{CLA: 0x80, INS: 0xAE, P1: byte(typ), Data: cdolData, Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("emv: GENERATE AC (%v): %w", typ, err)
	}
	return ParseAC(data)
}

// ParseAC decodes a GENERATE AC response in format 1 or 2.
func ParseAC(data []byte) (*AC, error) {
	t, err := perso.ParseTLV(data, perso.Lenient)
	if err != nil {
		return nil, fmt.Errorf("emv: GENERATE AC response: %w", err)
	}
	a := &AC{}
	switch t.Tag {
	case 0x80:
		v := t.Value
		if len(v) < 11 {
			return nil, fmt.Errorf("emv: GENERATE AC response format 1 of %d bytes, want at least 11", len(v))
		}
		a.CID, a.ATC, a.Cryptogram, a.IAD = v[0], binary.BigEndian.Uint16(v[1:3]), v[3:11], v[11:]
	case 0x77:
		fields := []struct {
			tag perso.Tag
			n   int
		}{{0x9F27, 1}, {0x9F36, 2}, {0x9F26, 8}}
		var vals [3][]byte
		for i, f := range fields {
			d, ok := t.Find(f.tag)
			if !ok || len(d.Value) != f.n {
				return nil, fmt.Errorf("emv: GENERATE AC response lacks %v (%d bytes)", f.tag, f.n)
			}
			vals[i] = d.Value
		}
		a.CID, a.ATC, a.Cryptogram = vals[0][0], binary.BigEndian.Uint16(vals[1]), vals[2]
		if d, ok := t.Find(0x9F10); ok {
			a.IAD = d.Value
		}
	default:
		return nil, fmt.Errorf("emv: GENERATE AC response template %v, want 80 or 77", t.Tag)
	}
	return a, nil
}

// DOLEntry is one entry of a data object list: a tag and the length of
// the data the card wants for it (EMV Book 3 5.4).
type DOLEntry struct {
	Tag perso.Tag
	Len int
}

// DOL is a data object list (PDOL, CDOL1, CDOL2, DDOL).
type DOL []DOLEntry

// ParseDOL decodes a data object list: tags, each followed by a one-byte
// length.
func ParseDOL(b []byte) (DOL, error) {
	var out DOL
	for off := 0; off < len(b); {
		tag, n, err := perso.ParseTag(b[off:])
		if err != nil {
			return nil, fmt.Errorf("emv: DOL entry at offset %d: %w", off, err)
		}
		if off+n >= len(b) {
			return nil, fmt.Errorf("emv: DOL entry %v at offset %d has no length", tag, off)
		}
		out = append(out, DOLEntry{Tag: tag, Len: int(b[off+n])})
		off += n + 1
	}
	return out, nil
}

// Bytes returns the list's encoding.
func (d DOL) Bytes() []byte {
	var out []byte
	for _, e := range d {
		for i := e.Tag.Len() - 1; i >= 0; i-- {
			out = append(out, byte(e.Tag>>(8*i)))
		}
		out = append(out, byte(e.Len))
	}
	return out
}

// Len returns the length of the data the list asks for.
func (d DOL) Len() int {
	n := 0
	for _, e := range d {
		n += e.Len
	}
	return n
}

// numericTags are the terminal data elements of format n (EMV Book 3 Annex
// A1), which a DOL pads and truncates on the left.
var numericTags = map[perso.Tag]bool{
	0x9F02: true, 0x9F03: true, 0x9F1A: true, 0x5F2A: true, 0x5F36: true, 0x9A: true, 0x9C: true,
	0x9F21: true, 0x9F41: true, 0x9F3C: true, 0x9F3D: true, 0x9F15: true, 0x9F11: true,
}

// Build returns the data for the list from values (EMV Book 3 5.4): each
// entry's value, padded or truncated to the entry's length — on the left
// with zeros for numeric (n) data, on the right with zeros otherwise — and
// zeros for a tag values lacks or a constructed tag.
func (d DOL) Build(values map[perso.Tag][]byte) []byte {
	out := make([]byte, 0, d.Len())
	for _, e := range d {
		v, ok := values[e.Tag]
		field := make([]byte, e.Len)
		switch {
		case !ok || e.Tag.Constructed():
		case numericTags[e.Tag]:
			if len(v) > e.Len {
				v = v[len(v)-e.Len:]
			}
			copy(field[e.Len-len(v):], v)
		default:
			copy(field, v)
		}
		out = append(out, field...)
	}
	return out
}
