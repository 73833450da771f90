package perso

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// This file holds the two encodings a personalization file is made of:
//
//   - BER-TLV as EMV uses it (EMV Book 3 Annex B, after ISO/IEC 8825-1 and
//     ISO/IEC 7816-4 section 5.2): the card's data objects and templates.
//   - DGI (EMV CPS v1.1): the 2-byte data grouping identifiers that STORE
//     DATA carries, each holding a record template, key material, or other
//     application data.
//
// Reading follows golang.org/x/crypto/cryptobyte: a cursor whose reads
// report failure instead of panicking, with the reason kept for the end.
// Parsed values alias the input and keep their original bytes (Raw), so a
// MAC is always computed over the bytes as received. Writing goes through
// Builder, which fills in each length once the value is complete.

// Tag is a BER-TLV tag as EMV codes it (EMV Book 3 Annex B1): the tag's
// bytes read as a big-endian number, so the bytes 9F 02 are Tag(0x9F02) and
// 70 is Tag(0x70). EMV-defined tags have one or two bytes; payment systems
// and issuers also use three (DF8101).
//
// EMV codes tag numbers below 31 on two bytes (9F02), which ISO/IEC 8825-1
// section 8.1.2 would code on one; this package accepts them, as EMV must.
type Tag uint32

// TagClass is the class of a tag, bits b8-b7 of its first byte (EMV Book 3
// Table 35).
type TagClass uint8

// The four tag classes.
const (
	ClassUniversal       TagClass = 0 // 00: ISO/IEC 8825-1 types
	ClassApplication     TagClass = 1 // 01: ISO/IEC 7816 and EMV interindustry objects (4F, 5A, 5F2A, 61, 70)
	ClassContextSpecific TagClass = 2 // 10: meaning set by the template or application (82, 9F02, A5, BF0C)
	ClassPrivate         TagClass = 3 // 11: issuer or payment-system proprietary (C0, DF01, E0, FF8101)
)

// String names the class.
func (c TagClass) String() string {
	switch c {
	case ClassUniversal:
		return "universal"
	case ClassApplication:
		return "application"
	case ClassContextSpecific:
		return "context-specific"
	case ClassPrivate:
		return "private"
	}
	return fmt.Sprintf("TagClass(%d)", uint8(c))
}

// Len returns the number of bytes of t's encoding: 1 to 3 for a valid tag,
// 4 for a number no valid tag has.
func (t Tag) Len() int {
	switch {
	case t <= 0xFF:
		return 1
	case t <= 0xFFFF:
		return 2
	case t <= 0xFFFFFF:
		return 3
	}
	return 4
}

func (t Tag) first() byte { return byte(t >> (8 * (t.Len() - 1))) }

// Class returns the class coded in t's first byte.
func (t Tag) Class() TagClass { return TagClass(t.first() >> 6) }

// Constructed reports whether bit b6 of t's first byte is set: the value of
// a data object with this tag is a template of further data objects.
func (t Tag) Constructed() bool { return t.first()&0x20 != 0 }

// Valid reports whether t is a tag that [Builder] writes and [Strict]
// parsing accepts: 1 to 3 bytes; a first byte other than 00 whose b5-b1 are
// 11111 exactly when more bytes follow; b8 set on every subsequent byte but
// the last; and a first subsequent byte other than 80, which would be a
// leading zero of the tag number (ISO/IEC 8825-1 section 8.1.2.4.2).
func (t Tag) Valid() bool { return t.problem() == "" }

// problem says why t is not Valid, or returns "".
func (t Tag) problem() string {
	n := t.Len()
	if n == 4 {
		return "tag of more than 3 bytes"
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(t))
	_, m, reason := parseTag(b[4-n:], true)
	switch {
	case reason != "":
		return reason
	case m != n:
		return fmt.Sprintf("first byte %02X does not announce %d tag bytes", t.first(), n)
	}
	return ""
}

// String returns the tag's bytes in hex: "9F02", "70", "DF8101".
func (t Tag) String() string { return fmt.Sprintf("%0*X", 2*t.Len(), uint32(t)) }

// Format prints String for %v and %s, Go syntax for %#v, and the number for
// the integer verbs, so that %04X prints a tag as it would a uint32.
func (t Tag) Format(f fmt.State, verb rune) {
	switch verb {
	case 'd', 'x', 'X', 'o', 'O', 'b':
		fmt.Fprintf(f, fmt.FormatString(f, verb), uint32(t))
	case 'v':
		if f.Flag('#') {
			fmt.Fprintf(f, "perso.Tag(0x%s)", t)
			return
		}
		fallthrough
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), t.String())
	}
}

// ParseTag reads the tag at the start of b under the [Strict] rules and
// returns it with its length in bytes. It fails on an empty b, a 00 byte,
// a truncated tag, a tag of more than 3 bytes and a tag number with a
// leading zero.
func ParseTag(b []byte) (Tag, int, error) {
	t, n, reason := parseTag(b, true)
	if reason != "" {
		return 0, 0, &TLVError{Tag: t, Reason: reason}
	}
	return t, n, nil
}

// parseTag decodes the tag at the start of b (EMV Book 3 Tables 35 and 36).
// On failure it returns the tag as far as it was read and why.
func parseTag(b []byte, strict bool) (Tag, int, string) {
	if len(b) == 0 {
		return 0, 0, "missing tag"
	}
	t := Tag(b[0])
	switch {
	case b[0] == 0x00:
		return 0, 0, "00 is padding, not a tag"
	case b[0]&0x1F != 0x1F:
		return t, 1, ""
	}
	for i := 1; i < 3; i++ {
		if i == len(b) {
			return t, i, "truncated tag"
		}
		c := b[i]
		t = t<<8 | Tag(c)
		if c&0x80 == 0 {
			return t, i + 1, ""
		}
		if i == 1 && c == 0x80 && strict {
			return t, i + 1, "tag number with a leading zero (first subsequent byte 80)"
		}
	}
	return t, 3, "tag of more than 3 bytes"
}

// TLV is one BER-TLV data object. Value and Raw alias the parsed input; Raw
// is the whole object as it was read (tag, length, value), nil for a TLV
// made in code. For a constructed tag, Value is a template: the encoding of
// further data objects, including any padding that was read.
//
// A TLV prints (String, Format, slog) with the values of data objects that
// may hold the PAN, personal data, PIN data or anything the tag dictionary
// does not know replaced by their length; see [Sensitivity].
type TLV struct {
	Tag   Tag
	Value []byte
	Raw   []byte
}

// Children parses the template in t's value: one level, with the [Lenient]
// rules (which accept every value that Strict parsing accepted). It fails if
// t's tag is primitive or the template is malformed; error offsets count
// from the start of t.Value.
func (t TLV) Children() ([]TLV, error) {
	if !t.Tag.Constructed() {
		return nil, &TLVError{Tag: t.Tag, Reason: "primitive data object has no children"}
	}
	return readAll(&TLVReader{in: t.Value, mode: Lenient, shallow: true})
}

// Find returns the first data object with the given tag inside t's
// template, searching depth first in encoding order (see [FindTLV]).
func (t TLV) Find(tag Tag) (TLV, bool) {
	if !t.Tag.Constructed() {
		return TLV{}, false
	}
	return FindTLV(t.Value, tag)
}

// FindPath returns the first data object inside t's template reached
// through the given chain of nested tags (see [FindTLVPath]).
func (t TLV) FindPath(path ...Tag) (TLV, bool) {
	if !t.Tag.Constructed() {
		return TLV{}, false
	}
	return FindTLVPath(t.Value, path...)
}

// String describes t with sensitive values redacted: "9F02=000000001000",
// "5A=<PAN data, 8 bytes>", "70{57=<PAN data, 19 bytes> 9F07=FF00}".
func (t TLV) String() string {
	var w tlvWriter
	if t.Tag.Constructed() {
		w.constructed(t.Tag, t.Value)
	} else {
		w.primitive(t.Tag, t.Value)
	}
	return w.String()
}

// GoString is String, so that %#v redacts too.
func (t TLV) GoString() string { return t.String() }

// Format prints String for every verb.
func (t TLV) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue keeps slog from printing sensitive bytes.
func (t TLV) LogValue() slog.Value { return slog.StringValue(t.String()) }

// TLVMode selects how strictly BER-TLV input is checked. Both modes reject
// the indefinite length (80), which EMV does not use; length fields of more
// than 4 length bytes (85 to FF); lengths that overrun the enclosing
// template or the input; truncated tags and tags of more than 3 bytes; and
// anything malformed inside a template.
type TLVMode uint8

const (
	// Strict accepts only the canonical encoding that Builder writes:
	// minimal lengths (ISO/IEC 8825-1 section 10.1), tags that are
	// [Tag.Valid], no padding, and, for ParseTLV, nothing after the data
	// object. Strict is the zero TLVMode.
	Strict TLVMode = iota
	// Lenient accepts what cards are allowed to return: non-minimal lengths
	// (81 05 for 5), a tag number with a leading zero (9F 80 01), and 00
	// bytes before, between and after data objects (EMV Book 3 Annex B;
	// EMV Specification Update 69 confines that padding to templates, this
	// mode accepts it at the top level too). Raw still holds each data
	// object's bytes exactly as read.
	//
	// FF is never taken for padding, although ISO/IEC 7816-4 allows it:
	// FF begins private-class constructed tags (FF8101) that payment
	// systems use.
	Lenient
)

// TLVError reports malformed BER-TLV data.
type TLVError struct {
	// Offset is where the field at fault (tag, length, value, or a stray
	// byte) starts, counted from the start of the parsed input.
	Offset int
	// Tag is the data object's tag as far as it was read; 0 if none was.
	Tag    Tag
	Reason string
}

func (e *TLVError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("perso: TLV %v at offset %d: %s", e.Tag, e.Offset, e.Reason)
	}
	return fmt.Sprintf("perso: TLV at offset %d: %s", e.Offset, e.Reason)
}

// Unwrap returns [ErrBadInput].
func (e *TLVError) Unwrap() error { return ErrBadInput }

// TLVReader reads a sequence of BER-TLV data objects. Its reads never
// panic: a read that cannot complete returns false and leaves the reason in
// Err, after which every read returns false.
//
// Each data object read is checked whole: a constructed object's template
// is parsed down to its last primitive, so a TLV that ReadTLV returns has
// children that [TLV.Children] can always parse.
type TLVReader struct {
	in      []byte
	off     int
	mode    TLVMode
	shallow bool // check templates one level only (Children)
	err     *TLVError
}

// NewTLVReader returns a reader over b. The TLVs it returns alias b.
func NewTLVReader(b []byte, mode TLVMode) *TLVReader {
	return &TLVReader{in: b, mode: mode}
}

// ReadTLV reads the next data object into out (which may be nil to skip
// it) and reports whether there was one. It returns false at the end of
// the input, and on malformed input, which Err then reports.
func (r *TLVReader) ReadTLV(out *TLV) bool {
	if r.err != nil || r.off == len(r.in) {
		return false
	}
	var got TLV
	n, err := scan(r.in[r.off:], r.off, r.mode, true, func(depth int, t TLV) visit {
		if depth == 0 {
			got = t
			if r.shallow {
				return skip
			}
		}
		return descend
	})
	if err != nil {
		r.err = err
		return false
	}
	r.off += n
	if got.Raw == nil { // only padding was left
		return false
	}
	if out != nil {
		*out = got
	}
	return true
}

// PeekTag returns the tag of the next data object without reading it, and
// false at the end of the input or if that tag is malformed.
func (r *TLVReader) PeekTag() (Tag, bool) {
	if r.err != nil {
		return 0, false
	}
	rest := r.in[r.off:]
	if r.mode != Strict {
		rest = rest[padding(rest):]
	}
	t, _, reason := parseTag(rest, r.mode == Strict)
	return t, reason == ""
}

// Empty reports whether nothing is left to read: no bytes, or in Lenient
// mode only 00 padding.
func (r *TLVReader) Empty() bool {
	rest := r.in[r.off:]
	return len(rest) == 0 || r.mode != Strict && padding(rest) == len(rest)
}

// Offset returns the number of input bytes consumed so far.
func (r *TLVReader) Offset() int { return r.off }

// Err returns the reason the last read failed, a *TLVError, or nil.
func (r *TLVReader) Err() error {
	if r.err == nil {
		return nil
	}
	return r.err
}

// ParseTLVs parses b as a sequence of BER-TLV data objects, checking every
// template down to its last primitive. On malformed input it returns the
// data objects read before the fault with a *TLVError. The TLVs alias b.
func ParseTLVs(b []byte, mode TLVMode) ([]TLV, error) {
	return readAll(NewTLVReader(b, mode))
}

// readAll reads every data object r has. A first pass over the top-level
// headers sizes the result, so that it is allocated once.
func readAll(r *TLVReader) ([]TLV, error) {
	n := 0
	scan(r.in, 0, r.mode, false, func(int, TLV) visit {
		n++
		return skip
	})
	var out []TLV
	if n > 0 {
		out = make([]TLV, 0, n)
	}
	for t := (TLV{}); r.ReadTLV(&t); {
		out = append(out, t)
	}
	return out, r.Err()
}

// ParseTLV parses b as exactly one data object. Strict mode rejects any byte
// after it; Lenient mode accepts 00 padding before and after it.
func ParseTLV(b []byte, mode TLVMode) (TLV, error) {
	r := NewTLVReader(b, mode)
	var t TLV
	switch {
	case !r.ReadTLV(&t):
		if err := r.Err(); err != nil {
			return TLV{}, err
		}
		return TLV{}, &TLVError{Offset: r.Offset(), Reason: "no data object"}
	case !r.Empty():
		return TLV{}, &TLVError{Offset: r.Offset(), Reason: fmt.Sprintf("%d bytes after the data object", len(b)-r.Offset())}
	}
	return t, nil
}

// FindTLV returns the first data object with the given tag in the BER-TLV
// sequence b, looking into templates depth first, in encoding order. It
// reads b with the Lenient rules and reports false if the tag is absent or
// b is malformed before it; parse b first where that difference matters.
func FindTLV(b []byte, tag Tag) (TLV, bool) {
	var found TLV
	scan(b, 0, Lenient, false, func(_ int, t TLV) visit {
		if t.Tag == tag {
			found = t
			return stop
		}
		return descend
	})
	return found, found.Raw != nil
}

// FindTLVPath returns the first data object reached in b through the chain
// of nested tags path: FindTLVPath(fci, 0x6F, 0xA5, 0xBF0C, 0x61, 0x4F)
// finds the first AID of a directory entry in a SELECT response. Every
// object whose tags match is tried, so a second 61 is searched when the
// first has no 4F. It reads b with the Lenient rules, as FindTLV.
func FindTLVPath(b []byte, path ...Tag) (TLV, bool) {
	var found TLV
	if len(path) == 0 {
		return found, false
	}
	scan(b, 0, Lenient, false, func(depth int, t TLV) visit {
		switch {
		case t.Tag != path[depth]:
			return skip
		case depth == len(path)-1:
			found = t
			return stop
		}
		return descend
	})
	return found, found.Raw != nil
}

// visit tells scan what to do after a data object.
type visit uint8

const (
	descend visit = iota // go into its template, if it is constructed
	skip                 // go on after it
	stop                 // stop scanning
)

// scan walks the BER-TLV data objects in b depth first, in encoding order,
// calling fn (if not nil) on each with its nesting depth (0 for b's top
// level). It checks every header it crosses, and every template it goes
// into, under mode. With single, it returns after the first top-level data
// object. It returns how many bytes it consumed; base is b's offset in the
// caller's input, for errors. The walk keeps a stack of template ends
// instead of recursing, so nesting depth costs no goroutine stack.
func scan(b []byte, base int, mode TLVMode, single bool, fn func(depth int, t TLV) visit) (int, *TLVError) {
	var stack [8]int
	ends := stack[:0]
	strict := mode == Strict
	end, read := len(b), false
	for p := 0; ; {
		for p == end && len(ends) > 0 {
			end, ends = ends[len(ends)-1], ends[:len(ends)-1]
		}
		if p == end || single && read && len(ends) == 0 {
			return p, nil
		}
		if b[p] == 0x00 {
			if strict {
				return p, &TLVError{Offset: base + p, Reason: "padding byte 00 in strict mode"}
			}
			p++
			continue
		}
		h, at, reason := readHeader(b[p:end], strict)
		if reason != "" {
			return p, &TLVError{Offset: base + p + at, Tag: h.tag, Reason: reason}
		}
		read = true
		vEnd := p + h.hdrLen + h.valLen
		next := descend
		if fn != nil {
			next = fn(len(ends), TLV{Tag: h.tag, Value: b[p+h.hdrLen : vEnd : vEnd], Raw: b[p:vEnd:vEnd]})
		}
		switch {
		case next == stop:
			return vEnd, nil
		case next == descend && h.tag.Constructed():
			ends = append(ends, end)
			end = vEnd
			p += h.hdrLen
		default:
			p = vEnd
		}
	}
}

// isTLV reports whether b is a well-formed BER-TLV sequence by the
// Lenient rules.
func isTLV(b []byte) bool {
	_, err := scan(b, 0, Lenient, false, nil)
	return err == nil
}

// padding returns the number of 00 bytes at the start of b.
func padding(b []byte) int {
	n := 0
	for n < len(b) && b[n] == 0 {
		n++
	}
	return n
}

// tlvHeader is a data object's decoded tag and length.
type tlvHeader struct {
	tag    Tag
	hdrLen int // tag and length bytes
	valLen int
}

// readHeader decodes the tag and length at the start of b (EMV Book 3
// Annex B1 and B2) and checks the value fits in b. On failure it returns
// the offset in b of the field at fault and why.
func readHeader(b []byte, strict bool) (h tlvHeader, at int, reason string) {
	tag, n, reason := parseTag(b, strict)
	h.tag = tag
	if reason != "" {
		return h, 0, reason
	}
	if n == len(b) {
		return h, n, "missing length"
	}
	var v uint64
	switch l := b[n]; {
	case l < 0x80:
		v, h.hdrLen = uint64(l), n+1
	case l == 0x80:
		return h, n, "indefinite length (80), which EMV does not use"
	case l > 0x84:
		return h, n, fmt.Sprintf("length field %02X announces %d length bytes; at most 4 are allowed", l, l&0x7F)
	default:
		k := int(l & 0x7F)
		if len(b)-n-1 < k {
			return h, n, fmt.Sprintf("truncated length: %d of %d length bytes", len(b)-n-1, k)
		}
		for _, c := range b[n+1 : n+1+k] {
			v = v<<8 | uint64(c)
		}
		if strict && (v < 0x80 || b[n+1] == 0) {
			return h, n, fmt.Sprintf("non-minimal length %X for %d", b[n:n+1+k], v)
		}
		h.hdrLen = n + 1 + k
	}
	if left := len(b) - h.hdrLen; v > uint64(left) {
		return h, h.hdrLen, fmt.Sprintf("length %d exceeds the %d bytes left", v, left)
	}
	h.valLen = int(v)
	return h, 0, ""
}

// lengthCodec is one way of coding a value's length: BER-TLV or DGI.
type lengthCodec struct {
	max  uint64
	size func(n int) int         // bytes of the length field for n
	put  func(dst []byte, n int) // writes the field into dst[:size(n)]
}

// tlvLength is the minimal BER-TLV length (EMV Book 3 Annex B2): one byte
// up to 127, else 81 to 84 followed by 1 to 4 bytes.
var tlvLength = lengthCodec{
	max: 0xFFFFFFFF,
	size: func(n int) int {
		s := 1
		if n >= 0x80 {
			for ; n > 0; n >>= 8 {
				s++
			}
		}
		return s
	},
	put: func(dst []byte, n int) {
		if len(dst) == 1 {
			dst[0] = byte(n)
			return
		}
		dst[0] = 0x80 | byte(len(dst)-1)
		for i := len(dst) - 1; i > 0; i, n = i-1, n>>8 {
			dst[i] = byte(n)
		}
	},
}

// dgiLength is the DGI length of EMV CPS: one byte up to 254, else FF
// followed by 2 bytes.
var dgiLength = lengthCodec{
	max: 0xFFFF,
	size: func(n int) int {
		if n < 0xFF {
			return 1
		}
		return 3
	},
	put: func(dst []byte, n int) {
		if len(dst) == 1 {
			dst[0] = byte(n)
			return
		}
		dst[0], dst[1], dst[2] = 0xFF, byte(n>>8), byte(n)
	},
}

var zeros [5]byte // room for the longest length field, 84 and 4 bytes

// appendLength appends the length field for n, which must not exceed c.max.
func appendLength(dst []byte, c lengthCodec, n int) []byte {
	if n < 0x80 { // one byte in both codings, and most lengths
		return append(dst, byte(n))
	}
	s := c.size(n)
	dst = append(dst, zeros[:s]...)
	c.put(dst[len(dst)-s:], n)
	return dst
}

// appendTag appends t's bytes.
func appendTag(dst []byte, t Tag) []byte {
	for i := t.Len() - 1; i >= 0; i-- {
		dst = append(dst, byte(t>>(8*i)))
	}
	return dst
}

// Builder writes BER-TLV data objects and DGIs with minimal lengths, filling
// in the length of a template or DGI once its contents are written. The
// zero Builder is ready to use.
//
// The first error (an invalid tag, a primitive tag used for a template, a
// value too long for its length field) stops the Builder: later calls do
// nothing and Bytes returns that error, wrapping [ErrBadInput]. The
// functions passed to AddTLV and AddDGI write the contents through the
// Builder they are given; they must not keep it.
type Builder struct {
	buf   []byte
	err   error
	depth int
}

// NewBuilder returns a Builder that appends to buf.
func NewBuilder(buf []byte) *Builder { return &Builder{buf: buf} }

// minBuilderCap is the capacity a Builder starts with when it has to
// allocate: room for a record template, so that small builds allocate once.
const minBuilderCap = 128

// reserve makes room for n more bytes, growing the buffer at least to
// minBuilderCap so that building a record template does not reallocate at
// every data object.
func (b *Builder) reserve(n int) {
	if cap(b.buf)-len(b.buf) < n {
		b.buf = slices.Grow(b.buf, max(n, minBuilderCap-len(b.buf)))
	}
}

// AddTLV adds a constructed data object whose template f writes.
func (b *Builder) AddTLV(tag Tag, f func(*Builder)) {
	if !b.checkTag(tag, true) {
		return
	}
	b.reserve(tag.Len() + 1)
	b.buf = appendTag(b.buf, tag)
	if n, ok := b.nest(f, tlvLength); !ok {
		b.fail("TLV %v: template of %d bytes is too long", tag, n)
	}
}

// AddPrimitive adds a primitive data object.
func (b *Builder) AddPrimitive(tag Tag, value []byte) {
	if !b.checkTag(tag, false) {
		return
	}
	if uint64(len(value)) > tlvLength.max {
		b.fail("TLV %v: value of %d bytes is too long", tag, len(value))
		return
	}
	b.reserve(tag.Len() + 5 + len(value))
	b.buf = appendTag(b.buf, tag)
	b.buf = appendLength(b.buf, tlvLength, len(value))
	b.buf = append(b.buf, value...)
}

// AddRaw adds bytes that are already encoded, unchecked: a parsed TLV's
// Raw, which keeps its original encoding, or the contents of a DGI that is
// not BER-TLV (key material, a PIN block).
func (b *Builder) AddRaw(raw []byte) {
	if b.err == nil {
		b.reserve(len(raw))
		b.buf = append(b.buf, raw...)
	}
}

// AddDGI adds a DGI whose value f writes, typically a record template:
//
//	b.AddDGI(0x0101, func(b *Builder) {
//		b.AddTLV(0x70, func(b *Builder) { ... })
//	})
func (b *Builder) AddDGI(tag uint16, f func(*Builder)) {
	if b.err != nil {
		return
	}
	b.reserve(3)
	b.buf = binary.BigEndian.AppendUint16(b.buf, tag)
	if n, ok := b.nest(f, dgiLength); !ok {
		b.fail("DGI %04X: value of %d bytes exceeds 65535", tag, n)
	}
}

// AddDGIValue adds a DGI with the given value. Unlike [AppendDGI], it
// reports a value over 65535 bytes through Bytes instead of panicking.
func (b *Builder) AddDGIValue(tag uint16, value []byte) {
	if b.err != nil {
		return
	}
	if len(value) > int(dgiLength.max) {
		b.fail("DGI %04X: value of %d bytes exceeds 65535", tag, len(value))
		return
	}
	b.reserve(5 + len(value))
	b.buf = AppendDGI(b.buf, tag, value)
}

// SetError stops the Builder with err, unless it has already failed. A
// function passed to AddTLV or AddDGI uses it to report a fault in its own
// data.
func (b *Builder) SetError(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Bytes returns what was built, or the first error. It must not be called
// from a function passed to AddTLV or AddDGI.
func (b *Builder) Bytes() ([]byte, error) {
	if b.depth > 0 {
		b.fail("Builder.Bytes called while a template or DGI is open")
	}
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

func (b *Builder) fail(format string, args ...any) {
	b.SetError(fmt.Errorf("perso: "+format+": %w", append(args, ErrBadInput)...))
}

// checkTag reports whether the Builder may go on and tag fits the call.
func (b *Builder) checkTag(tag Tag, constructed bool) bool {
	if b.err != nil {
		return false
	}
	switch p := tag.problem(); {
	case p != "":
		b.fail("TLV %v: %s", tag, p)
	case tag.Constructed() && !constructed:
		b.fail("TLV %v: constructed tag given a primitive value; use AddTLV", tag)
	case !tag.Constructed() && constructed:
		b.fail("TLV %v: primitive tag used for a template; use AddPrimitive", tag)
	default:
		return true
	}
	return false
}

// nest has f append a value, then writes the value's length in front of it
// in the encoding c, moving the value up if the length needs more than the
// one byte reserved. It returns the value's length and false if it is over
// c.max; if f made the Builder fail it returns true, the error being set.
func (b *Builder) nest(f func(*Builder), c lengthCodec) (int, bool) {
	at := len(b.buf)
	b.buf = append(b.buf, 0)
	start := len(b.buf)
	if f != nil {
		b.depth++
		f(b)
		b.depth--
	}
	if b.err != nil {
		return 0, true
	}
	n := len(b.buf) - start
	if uint64(n) > c.max {
		return n, false
	}
	s := c.size(n)
	if s > 1 {
		b.buf = append(b.buf, zeros[:s-1]...)
		copy(b.buf[start+s-1:], b.buf[start:start+n])
	}
	c.put(b.buf[at:at+s], n)
	return n, true
}

// tlvWriter prints data objects with sensitive values redacted.
type tlvWriter struct {
	strings.Builder
	space bool // a separator is due before the next item
}

func (w *tlvWriter) sep() {
	if w.space {
		w.WriteByte(' ')
	}
	w.space = true
}

func (w *tlvWriter) primitive(t Tag, v []byte) {
	w.sep()
	w.WriteString(t.String())
	w.WriteByte('=')
	switch s := t.Sensitivity(); s {
	case PublicData:
		w.WriteString(strings.ToUpper(hex.EncodeToString(v)))
	default:
		fmt.Fprintf(w, "<%v, %d bytes>", s, len(v))
	}
}

func (w *tlvWriter) constructed(t Tag, v []byte) {
	w.sep()
	w.WriteString(t.String())
	w.template(v)
}

// template prints "{...}" for a well-formed template and "=<malformed
// template, n bytes>" for another.
func (w *tlvWriter) template(v []byte) {
	if !isTLV(v) {
		fmt.Fprintf(w, "=<malformed template, %d bytes>", len(v))
		return
	}
	w.WriteByte('{')
	w.space = false
	open := 0 // templates opened inside v and not yet closed
	scan(v, 0, Lenient, false, func(depth int, t TLV) visit {
		for ; open > depth; open-- {
			w.WriteByte('}')
			w.space = true
		}
		if !t.Tag.Constructed() {
			w.primitive(t.Tag, t.Value)
			return descend
		}
		w.sep()
		w.WriteString(t.Tag.String())
		w.WriteByte('{')
		w.space = false
		open++
		return descend
	})
	w.WriteString(strings.Repeat("}", open+1))
	w.space = true
}

// DGI is one Data Grouping Identifier entry of EMV CPS v1.1 section 4.2:
// a 2-byte identifier, a length of 1 byte (0..254) or FF followed by 2 bytes
// (255..65535), and the data. Raw keeps the entry's bytes as they were
// parsed (nil for a DGI built in code).
//
// A DGI prints (String, Format, slog) without the value of a secret DGI
// (see [SecretDGI]) and with a BER-TLV value redacted as [TLV] does.
type DGI struct {
	Tag   uint16
	Value []byte
	Raw   []byte
}

// String describes d without secrets: "8000=<secret, 48 bytes>",
// "0101{70{5A=<PAN data, 8 bytes> 5F24=301231}}", "9010=<2 bytes>".
func (d DGI) String() string {
	var w tlvWriter
	fmt.Fprintf(&w, "%04X", d.Tag)
	switch {
	case SecretDGI(d.Tag):
		fmt.Fprintf(&w, "=<secret, %d bytes>", len(d.Value))
	case len(d.Value) > 0 && isTLV(d.Value):
		w.template(d.Value)
	default:
		fmt.Fprintf(&w, "=<%d bytes>", len(d.Value))
	}
	return w.String()
}

// GoString is String, so that %#v redacts too.
func (d DGI) GoString() string { return d.String() }

// Format prints String for every verb.
func (d DGI) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }

// LogValue keeps slog from printing secret bytes.
func (d DGI) LogValue() slog.Value { return slog.StringValue(d.String()) }

// DGIError reports a malformed DGI sequence: the offset of the entry that
// failed and why.
type DGIError struct {
	Offset int
	Tag    uint16 // 0 when the identifier itself could not be read
	Reason string
}

func (e *DGIError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("perso: DGI %04X at offset %d: %s", e.Tag, e.Offset, e.Reason)
	}
	return fmt.Sprintf("perso: DGI at offset %d: %s", e.Offset, e.Reason)
}

// Unwrap returns [ErrBadInput].
func (e *DGIError) Unwrap() error { return ErrBadInput }

// ParseDGIs splits b into DGI entries. It rejects a truncated entry, a
// length that overruns b, and a non-minimal length (FF 00 xx for xx < FF).
// Value and Raw alias b.
func ParseDGIs(b []byte) ([]DGI, error) {
	// A first pass over the headers sizes the result, so that it is
	// allocated once; the second reads the entries, reporting any fault.
	count := 0
	for off := 0; off < len(b); count++ {
		_, n, err := parseDGI(b[off:])
		if err != nil {
			break
		}
		off += n
	}
	var out []DGI
	if count > 0 {
		out = make([]DGI, 0, count)
	}
	for off := 0; off < len(b); {
		d, n, err := parseDGI(b[off:])
		if err != nil {
			err.Offset += off
			return out, err
		}
		out = append(out, d)
		off += n
	}
	return out, nil
}

func parseDGI(b []byte) (DGI, int, *DGIError) {
	if len(b) < 3 {
		return DGI{}, 0, &DGIError{Reason: "truncated header"}
	}
	tag := binary.BigEndian.Uint16(b)
	n, hl := int(b[2]), 3
	if b[2] == 0xFF {
		if len(b) < 5 {
			return DGI{}, 0, &DGIError{Tag: tag, Reason: "truncated 3-byte length"}
		}
		n, hl = int(binary.BigEndian.Uint16(b[3:])), 5
		if n < 0xFF {
			return DGI{}, 0, &DGIError{Tag: tag, Reason: fmt.Sprintf("non-minimal length FF%04X", n)}
		}
	}
	if n > len(b)-hl {
		return DGI{}, 0, &DGIError{Tag: tag, Reason: fmt.Sprintf("length %d exceeds the %d bytes left", n, len(b)-hl)}
	}
	return DGI{Tag: tag, Value: b[hl : hl+n : hl+n], Raw: b[: hl+n : hl+n]}, hl + n, nil
}

// AppendDGI appends the minimal encoding of one DGI to dst. It panics if
// value is longer than 65535 bytes, which no DGI may be; [Builder.AddDGIValue]
// reports that as an error instead.
func AppendDGI(dst []byte, tag uint16, value []byte) []byte {
	if len(value) > int(dgiLength.max) {
		panic("perso: DGI value longer than 65535 bytes")
	}
	dst = binary.BigEndian.AppendUint16(dst, tag)
	dst = appendLength(dst, dgiLength, len(value))
	return append(dst, value...)
}
