package perso

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Batch file constants; the package documentation lays the format out byte
// by byte.
const (
	// Magic starts every batch file.
	Magic = "PRSO"
	// FormatVersion is the only format version this package reads and
	// writes.
	FormatVersion = 1
	// MaxHeaderLen bounds the header's fields (after magic, version and
	// header length).
	MaxHeaderLen = 64 << 10
	// MaxRecordLen bounds a record's bytes (after its 4-byte length).
	MaxRecordLen = 16 << 20
	// MaxNameLen bounds a profile name and a counter name.
	MaxNameLen = 64

	// trailerMarker stands where a record length would, and is larger than
	// any record length may be.
	trailerMarker = 0xFFFFFFFF
	prologueLen   = len(Magic) + 1 + 4
)

// Sentinel errors of the batch file format, which a *[FormatError] wraps.
// Test for them with errors.Is.
var (
	// ErrTruncated: the input ends inside a field, or a length claims more
	// bytes than are left.
	ErrTruncated = errors.New("perso: truncated")
	// ErrTooLong: a length exceeds its bound (MaxHeaderLen, MaxRecordLen,
	// MaxGroupLen, a count byte).
	ErrTooLong = errors.New("perso: length over bound")
	// ErrMagic: the input does not start with Magic.
	ErrMagic = errors.New("perso: not a batch file")
	// ErrVersion: a format or chip data version this package does not know.
	ErrVersion = errors.New("perso: unknown version")
	// ErrMalformed: a field holds a value the format does not allow.
	ErrMalformed = errors.New("perso: malformed")
	// ErrTrailer: the trailer is missing or malformed, or data follows it.
	ErrTrailer = errors.New("perso: bad trailer")
	// ErrCount: the trailer's record count differs from the records read.
	ErrCount = errors.New("perso: record count mismatch")
	// ErrDigest: the trailer's digest differs from the bytes read.
	ErrDigest = errors.New("perso: digest mismatch")
	// ErrBadRecord: a record whose frame is intact holds bad content.
	// [Reader.Next] reports it for that record alone and can go on with the
	// next; every other error of a Reader is final.
	ErrBadRecord = errors.New("perso: bad record")
)

// FormatError reports where and why bytes are not a valid batch file, record
// or chip data. Err wraps one of the sentinel errors [ErrTruncated],
// [ErrTooLong], [ErrMagic], [ErrVersion], [ErrMalformed], [ErrTrailer],
// [ErrCount] and [ErrDigest], [ErrBadRecord] too for a record the Reader can
// skip, and, where one caused it, the underlying error (a *[DGIError], an
// error wrapping [ErrSealed]).
type FormatError struct {
	// Record is the zero-based index of the record, or -1 outside records
	// (the header, the trailer, bytes parsed on their own).
	Record int
	// Offset is the field's byte offset: in the file for a Reader or
	// Writer, in the parsed bytes for the Parse functions.
	Offset int64
	// Field names the field, as in "record length" or "chip app 0 MAC".
	Field string
	Err   error
}

func (e *FormatError) Error() string {
	if e.Record >= 0 {
		return fmt.Sprintf("perso: record %d at offset %d: %s: %s", e.Record, e.Offset, e.Field, trimPkg(e.Err))
	}
	return fmt.Sprintf("perso: offset %d: %s: %s", e.Offset, e.Field, trimPkg(e.Err))
}

func (e *FormatError) Unwrap() error { return e.Err }

func trimPkg(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), "perso: ")
}

// shift moves the error's offset by base, for an error found in bytes that
// start at base in a larger whole.
func (e *FormatError) shift(base int) *FormatError {
	e.Offset += int64(base)
	return e
}

// formatCause is the Err of a FormatError: its kinds (sentinels), what
// caused it, and the details.
type formatCause struct {
	kinds []error
	cause error
	msg   string
}

func (c *formatCause) Error() string {
	s := trimPkg(c.kinds[0])
	if c.msg != "" {
		s += ": " + c.msg
	}
	if c.cause != nil {
		s += ": " + trimPkg(c.cause)
	}
	return s
}

func (c *formatCause) Unwrap() []error {
	if c.cause == nil {
		return c.kinds
	}
	return append(slices.Clip(c.kinds), c.cause)
}

func errAt(off int, field string, kind error, format string, args ...any) *FormatError {
	return &FormatError{Record: -1, Offset: int64(off), Field: field,
		Err: &formatCause{kinds: []error{kind}, msg: fmt.Sprintf(format, args...)}}
}

func errCause(off int, field string, kind, cause error) *FormatError {
	return &FormatError{Record: -1, Offset: int64(off), Field: field,
		Err: &formatCause{kinds: []error{kind}, cause: cause}}
}

func errTruncated(off int, field string, need int64, left int) *FormatError {
	return errAt(off, field, ErrTruncated, "needs %d bytes, %d left", need, left)
}

// badRecord marks e as concerning one record's content only.
func (e *FormatError) badRecord(index int, base int64) *FormatError {
	e.Record = index
	e.Offset += base
	if c, ok := e.Err.(*formatCause); ok {
		c.kinds = append(c.kinds, ErrBadRecord)
	}
	return e
}

// cursor reads big-endian fields from in, starting at pos. Reads never
// panic: callers check with need first, and a read past the end yields
// zeros.
type cursor struct {
	in  []byte
	pos int
}

func (c *cursor) left() int { return len(c.in) - c.pos }

// need reports a truncation at the cursor unless n more bytes are left.
func (c *cursor) need(n int64, field string) *FormatError {
	if n < 0 || n > int64(c.left()) {
		return errTruncated(c.pos, field, n, c.left())
	}
	return nil
}

// bytes returns the next n bytes, capacity-limited so that appending to them
// cannot overwrite what follows.
func (c *cursor) bytes(n int) []byte {
	if n < 0 || n > c.left() {
		c.pos = len(c.in)
		return nil
	}
	p := c.in[c.pos : c.pos+n : c.pos+n]
	c.pos += n
	return p
}

// sub returns a cursor over the next n bytes, with offsets still counted
// from the start of c, and skips them.
func (c *cursor) sub(n int) cursor {
	end := min(c.pos+max(n, 0), len(c.in))
	s := cursor{in: c.in[:end], pos: c.pos}
	c.pos = end
	return s
}

func (c *cursor) u8() uint8 {
	if p := c.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (c *cursor) u16() uint16 {
	if p := c.bytes(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if p := c.bytes(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if p := c.bytes(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// builder appends big-endian fields to buf. Length fields are reserved
// first and filled in once their content is written. The first field that
// cannot be encoded sets err; what follows is ignored.
type builder struct {
	buf  []byte
	base int // where the encoding starts in buf; error offsets count from it
	err  *FormatError
}

func (b *builder) u8(v uint8)   { b.buf = append(b.buf, v) }
func (b *builder) u16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }
func (b *builder) u32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }
func (b *builder) u64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }
func (b *builder) add(p []byte) { b.buf = append(b.buf, p...) }

// fail records the first field that cannot be encoded, at the end of buf.
func (b *builder) fail(field string, kind error, format string, args ...any) {
	b.failAt(len(b.buf), field, kind, format, args...)
}

func (b *builder) failAt(pos int, field string, kind error, format string, args ...any) {
	if b.err == nil {
		b.err = errAt(pos-b.base, field, kind, format, args...)
	}
}

// count8 appends n as a one-byte count or length.
func (b *builder) count8(n int, field string) {
	if n > 0xFF {
		b.fail(field, ErrTooLong, "%d exceeds 255", n)
	}
	b.u8(uint8(n))
}

// lenPrefixed32 appends a 4-byte length, then what f appends, and fills the
// length in.
func (b *builder) lenPrefixed32(maxLen int, field string, f func(*builder)) {
	at := len(b.buf)
	b.u32(0)
	f(b)
	n := len(b.buf) - at - 4
	if n > maxLen {
		b.failAt(at, field, ErrTooLong, "%d exceeds %d", n, maxLen)
	}
	binary.BigEndian.PutUint32(b.buf[at:], uint32(n))
}

// Header is a batch file's header: which batch, when, whose, and what the
// bureau needs to process it.
type Header struct {
	// BatchID identifies the batch, for the audit trail of both sides.
	BatchID [16]byte
	// Created is when the batch was prepared, in whole seconds; the
	// encoding keeps seconds since 1970-01-01 UTC.
	Created time.Time
	// Issuer owns the batch and its keys.
	Issuer IssuerID
	// Profiles names the application profiles the batch uses (such as
	// "emv" or "vsvc"), each 1 to MaxNameLen printable ASCII characters,
	// at most 255, no name twice.
	Profiles []string
	// KEKs lists every KEK the chip applications use, with its check value,
	// at most 255, no KEK twice. Every chip application's KEK must be
	// listed.
	KEKs []KEKCheck
	// Extra holds header bytes after the fields above: fields a later
	// revision of format version 1 adds, kept so that the file re-encodes
	// unchanged.
	Extra []byte
}

// KEKCheck is a KEK identifier and the KEK's check value, which lets the
// bureau check, before it starts, that its security module holds the KEK
// the batch was prepared under.
type KEKCheck struct {
	KEK KEKID
	KCV [3]byte
}

// LookupKEK returns the header's entry for the KEK id. A nil header lists
// none.
func (h *Header) LookupKEK(id KEKID) (KEKCheck, bool) {
	if h == nil {
		return KEKCheck{}, false
	}
	for _, k := range h.KEKs {
		if k.KEK == id {
			return k, true
		}
	}
	return KEKCheck{}, false
}

// appendHeader appends magic, version, header length and the header fields.
func (b *builder) header(h *Header) {
	b.add([]byte(Magic))
	b.u8(FormatVersion)
	b.lenPrefixed32(MaxHeaderLen, "header length", func(b *builder) {
		b.add(h.BatchID[:])
		b.u64(uint64(h.Created.Unix()))
		b.add(h.Issuer[:])
		b.count8(len(h.Profiles), "profile count")
		for _, p := range h.Profiles {
			b.count8(len(p), "profile name length")
			b.add([]byte(p))
		}
		b.count8(len(h.KEKs), "KEK count")
		for _, k := range h.KEKs {
			b.add(k.KEK.Issuer[:])
			b.u8(k.KEK.Version)
			b.u8(uint8(k.KEK.Scheme))
			b.add(k.KCV[:])
		}
		b.add(h.Extra)
	})
}

// parseHeader parses the header fields of b, the encoded header from the
// magic on, whose prologue (magic, version, length) the caller has checked.
func parseHeader(b []byte) (*Header, *FormatError) {
	c := cursor{in: b, pos: prologueLen}
	h := &Header{}
	if err := c.need(16+8+4, "header"); err != nil {
		return nil, err
	}
	copy(h.BatchID[:], c.bytes(16))
	if h.Created = time.Unix(int64(c.u64()), 0).UTC(); h.Created.IsZero() {
		return nil, errAt(c.pos-8, "creation time", ErrMalformed, "not set (0001-01-01)")
	}
	copy(h.Issuer[:], c.bytes(4))
	names, err := parseNames(&c, "profile")
	if err != nil {
		return nil, err
	}
	h.Profiles = names
	at := c.pos
	if err := c.need(1, "KEK count"); err != nil {
		return nil, err
	}
	n := int(c.u8())
	if err := c.need(int64(9*n), "KEKs"); err != nil {
		return nil, err
	}
	for i := range n {
		var k KEKCheck
		copy(k.KEK.Issuer[:], c.bytes(4))
		k.KEK.Version = c.u8()
		k.KEK.Scheme = Scheme(c.u8())
		copy(k.KCV[:], c.bytes(3))
		if !k.KEK.Scheme.Valid() {
			return nil, errAt(at+1+9*i+5, fmt.Sprintf("KEK %d scheme", i), ErrMalformed, "unknown scheme %02X", uint8(k.KEK.Scheme))
		}
		if _, dup := h.LookupKEK(k.KEK); dup {
			return nil, errAt(at+1+9*i, fmt.Sprintf("KEK %d", i), ErrMalformed, "%v appears twice", k.KEK)
		}
		h.KEKs = append(h.KEKs, k)
	}
	if c.left() > 0 {
		h.Extra = c.bytes(c.left())
	}
	return h, nil
}

// parseNames reads a count byte and that many length-prefixed names, each
// valid and distinct.
func parseNames(c *cursor, what string) ([]string, *FormatError) {
	if err := c.need(1, what+" count"); err != nil {
		return nil, err
	}
	n := int(c.u8())
	var names []string
	for i := range n {
		at := c.pos
		field := fmt.Sprintf("%s %d", what, i)
		if err := c.need(1, field+" length"); err != nil {
			return nil, err
		}
		l := int(c.u8())
		if err := c.need(int64(l), field); err != nil {
			return nil, err
		}
		name := string(c.bytes(l))
		if err := checkName(name); err != nil {
			return nil, errCause(at, field, ErrMalformed, err)
		}
		if slices.Contains(names, name) {
			return nil, errAt(at, field, ErrMalformed, "%q appears twice", name)
		}
		names = append(names, name)
	}
	return names, nil
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("name of %d bytes, want 1..%d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' {
			return fmt.Errorf("name %q: byte %d is not printable ASCII", name, i)
		}
	}
	return nil
}

// Trailer ends a batch file: the record count, named counters that the
// issuer persists with the output (such as "pan-counter", the next value of
// a card number counter), and the SHA-256 digest of every byte of the file
// before the digest.
type Trailer struct {
	Count    uint64
	Counters map[string]uint64
	Digest   [sha256.Size]byte
}

// Reader reads a batch file as a stream: the header first, then one record
// per call to Next, then the trailer, which it checks. Its memory does not
// grow with the number of records.
type Reader struct {
	br      *bufio.Reader
	sum     hash.Hash
	hdr     *Header
	off     int64
	n       int // records read, including bad ones
	trailer *Trailer
	err     error // final
}

// NewReader reads and checks the header of the batch file r. It rejects
// bad magic, a version other than [FormatVersion], and a malformed header.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	var pro [prologueLen]byte
	n, err := io.ReadFull(rd.br, pro[:])
	switch m := min(n, len(Magic)); {
	case string(pro[:m]) != Magic[:m]:
		return nil, errAt(0, "magic", ErrMagic, "starts with %X", pro[:m])
	case err != nil:
		return nil, rd.readErr(err, -1, 0, "header", int64(prologueLen), n)
	case pro[4] != FormatVersion:
		return nil, errAt(4, "format version", ErrVersion, "%d, this package reads %d", pro[4], FormatVersion)
	}
	hl := binary.BigEndian.Uint32(pro[5:])
	if hl > MaxHeaderLen {
		return nil, errAt(5, "header length", ErrTooLong, "%d exceeds %d", hl, MaxHeaderLen)
	}
	rd.sum.Write(pro[:])
	rd.off = int64(prologueLen)
	body, err := rd.read(-1, int(hl), "header")
	if err != nil {
		return nil, err
	}
	h, ferr := parseHeader(append(pro[:], body...))
	if ferr != nil {
		return nil, ferr
	}
	rd.hdr = h
	return rd, nil
}

// readErr turns an error of reading want bytes of field at off, of which
// got arrived, into a FormatError (or passes an I/O error on). rec is the
// record index, or -1.
func (r *Reader) readErr(err error, rec int, off int64, field string, want int64, got int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		e := errAt(0, field, ErrTruncated, "needs %d bytes, input ends after %d", want, got)
		e.Offset, e.Record = off, rec
		return e
	}
	return fmt.Errorf("perso: reading %s at offset %d: %w", field, off, err)
}

// read reads n bytes of field (of record rec, or -1) and adds them to the
// digest. It grows its buffer as data arrives, so that a length that lies
// about what follows costs no more memory than the data that is there.
func (r *Reader) read(rec, n int, field string) ([]byte, error) {
	const chunk = 64 << 10
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		m := min(n-len(buf), max(chunk, len(buf)))
		buf = slices.Grow(buf, m)
		k, err := io.ReadFull(r.br, buf[len(buf):len(buf)+m])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, r.readErr(err, rec, r.off, field, int64(n), len(buf))
		}
	}
	r.sum.Write(buf)
	r.off += int64(n)
	return buf[:n:n], nil
}

// Header returns the batch header.
func (r *Reader) Header() *Header { return r.hdr }

// Offset returns how many bytes the Reader has consumed: before a call to
// Next, the offset at which the next record (or the trailer) starts.
func (r *Reader) Offset() int64 { return r.off }

// Trailer returns the checked trailer once Next has returned io.EOF, and
// nil before.
func (r *Reader) Trailer() *Trailer { return r.trailer }

// Next returns the next record. After the last record it reads the trailer,
// checks the record count, the digest and that nothing follows, and only
// then returns io.EOF.
//
// Faults of the file are *[FormatError] values, which name the record index
// and byte offset; an error of the underlying reader is passed on, wrapped.
// A FormatError that wraps [ErrBadRecord] concerns that record's content
// alone (a malformed group or chip application, a KEK the header does not
// list): the record is skipped and the next call goes on with the following
// one. Any other error is final and every later call returns it.
func (r *Reader) Next() (*Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.trailer != nil {
		return nil, io.EOF
	}
	rec, err := r.next()
	if err != nil {
		if !errors.Is(err, ErrBadRecord) {
			r.err = err
		}
		return nil, err
	}
	return rec, nil
}

func (r *Reader) next() (*Record, error) {
	start := r.off
	var lb [4]byte
	n, err := io.ReadFull(r.br, lb[:])
	if err == io.EOF {
		return nil, &FormatError{Record: -1, Offset: start, Field: "trailer",
			Err: &formatCause{kinds: []error{ErrTrailer}, msg: fmt.Sprintf("input ends after %d records without a trailer", r.n)}}
	}
	if err != nil {
		return nil, r.readErr(err, r.n, start, "record length", 4, n)
	}
	l := binary.BigEndian.Uint32(lb[:])
	if l == trailerMarker {
		return nil, r.readTrailer(lb[:])
	}
	if l > MaxRecordLen {
		e := errAt(0, "record length", ErrTooLong, "%d exceeds %d", l, MaxRecordLen)
		e.Record, e.Offset = r.n, start
		return nil, e
	}
	r.sum.Write(lb[:])
	r.off += 4
	body, err := r.read(r.n, int(l), "record")
	if err != nil {
		return nil, err
	}
	index := r.n
	r.n++
	rec, ferr := parseRecord(body, r.hdr)
	if ferr != nil {
		return nil, ferr.badRecord(index, start+4)
	}
	return rec, nil
}

// readTrailer reads the trailer after its marker and checks it.
func (r *Reader) readTrailer(marker []byte) error {
	at := r.off
	r.sum.Write(marker)
	r.off += 4
	t := &Trailer{Counters: map[string]uint64{}}
	fixed, err := r.read(-1, 8+1, "trailer record count")
	if err != nil {
		return err
	}
	t.Count = binary.BigEndian.Uint64(fixed)
	prev := ""
	for i := range int(fixed[8]) {
		field := fmt.Sprintf("trailer counter %d", i)
		nameAt := r.off
		l, err := r.read(-1, 1, field+" name length")
		if err != nil {
			return err
		}
		name, err := r.read(-1, int(l[0]), field+" name")
		if err != nil {
			return err
		}
		if err := checkName(string(name)); err != nil {
			return errCause(int(nameAt), field, ErrTrailer, err)
		}
		if i > 0 && string(name) <= prev {
			return errAt(int(nameAt), field, ErrTrailer, "%q after %q: names not in ascending order", name, prev)
		}
		v, err := r.read(-1, 8, field+" value")
		if err != nil {
			return err
		}
		prev = string(name)
		t.Counters[prev] = binary.BigEndian.Uint64(v)
	}
	r.sum.Sum(t.Digest[:0])
	digestAt := r.off
	var got [sha256.Size]byte
	if n, err := io.ReadFull(r.br, got[:]); err != nil {
		return r.readErr(err, -1, digestAt, "trailer digest", sha256.Size, n)
	}
	r.off += sha256.Size
	if t.Count != uint64(r.n) {
		return errAt(int(at), "trailer record count", ErrCount, "trailer says %d, file holds %d", t.Count, r.n)
	}
	if got != t.Digest {
		return errAt(int(digestAt), "trailer digest", ErrDigest, "trailer says %X, bytes give %X", got[:8], t.Digest[:8])
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("perso: reading after the trailer at offset %d: %w", r.off, err)
		}
		return errAt(int(r.off), "trailer", ErrTrailer, "data follows the trailer")
	}
	r.trailer = t
	return io.EOF
}

// Writer writes a batch file as a stream: the header when it is made, one
// record per Write, and the trailer on Close. It buffers its output; Close
// flushes it. It does not close the underlying writer.
type Writer struct {
	bw       *bufio.Writer
	sum      hash.Hash
	hdr      *Header
	off      int64
	count    uint64
	counters map[string]uint64
	buf      []byte
	err      error // final: an I/O error, or closed
	// counterErr is the first bad SetCounter call, which Close reports.
	counterErr error
}

var errClosed = errors.New("perso: batch writer is closed")

// NewWriter checks h and writes it to w. It refuses a header that a
// [Reader] would refuse, and one without a creation time; Created is kept
// in whole seconds. The Writer keeps its own copy of h.
func NewWriter(w io.Writer, h *Header) (*Writer, error) {
	if h.Created.IsZero() {
		return nil, fmt.Errorf("%w: batch header without a creation time", ErrBadInput)
	}
	b := builder{}
	b.header(h)
	if b.err != nil {
		return nil, b.err
	}
	hdr, err := parseHeader(b.buf)
	if err != nil {
		return nil, err
	}
	wr := &Writer{bw: bufio.NewWriterSize(w, 64<<10), sum: sha256.New(), hdr: hdr, counters: map[string]uint64{}}
	if err := wr.write(b.buf); err != nil {
		return nil, err
	}
	return wr, nil
}

func (w *Writer) write(p []byte) error {
	w.sum.Write(p)
	if _, err := w.bw.Write(p); err != nil {
		w.err = fmt.Errorf("perso: writing batch at offset %d: %w", w.off, err)
		return w.err
	}
	w.off += int64(len(p))
	return nil
}

// Write appends one record. It refuses a record that a [Reader] would
// refuse (including a chip application whose KEK the header does not list)
// and writes nothing then; the Writer stays usable. An I/O error is final.
func (w *Writer) Write(rec *Record) error {
	if w.err != nil {
		return w.err
	}
	out, err := rec.appendTo(binary.BigEndian.AppendUint32(w.buf[:0], 0), w.hdr)
	if err != nil {
		return err.badRecord(int(w.count), w.off+4)
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	w.buf = out
	if err := w.write(out); err != nil {
		return err
	}
	w.count++
	return nil
}

// SetCounter sets a named counter for the trailer, such as "pan-counter";
// setting it again replaces the value. A name is 1 to MaxNameLen printable
// ASCII characters, and a file holds at most 255 counters: a counter that
// breaks these rules makes Close fail without writing the trailer.
func (w *Writer) SetCounter(name string, v uint64) {
	if err := checkName(name); err != nil {
		w.counterErr = cmp.Or(w.counterErr, fmt.Errorf("%w: trailer counter: %v", ErrBadInput, err))
		return
	}
	if _, ok := w.counters[name]; !ok && len(w.counters) == 0xFF {
		w.counterErr = cmp.Or(w.counterErr, fmt.Errorf("%w: trailer counter %q: more than 255 counters", ErrBadInput, name))
		return
	}
	w.counters[name] = v
}

// Count returns the number of records written.
func (w *Writer) Count() uint64 { return w.count }

// Close writes the trailer and flushes the output. It does not close the
// underlying writer. Calls after the first return an error.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.counterErr != nil {
		w.err = w.counterErr
		return w.err
	}
	b := builder{buf: w.buf[:0]}
	b.u32(trailerMarker)
	b.u64(w.count)
	b.u8(uint8(len(w.counters)))
	for _, name := range slices.Sorted(maps.Keys(w.counters)) {
		b.u8(uint8(len(name)))
		b.add([]byte(name))
		b.u64(w.counters[name])
	}
	if err := w.write(b.buf); err != nil {
		return err
	}
	if err := w.write(w.sum.Sum(nil)); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("perso: writing batch: %w", err)
		return w.err
	}
	w.err = errClosed
	return nil
}

// FileWriter writes a batch file to a path atomically: to a temporary file
// in the same directory, which Close syncs and renames to the path only once
// the trailer is written. The file has mode 0600: it holds cardholder data.
type FileWriter struct {
	*Writer
	f    *os.File
	path string
	done bool
}

// CreateFile starts a batch file that will appear at path on Close.
func CreateFile(path string, h *Header) (*FileWriter, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("perso: creating batch file: %w", err)
	}
	w, err := NewWriter(f, h)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &FileWriter{Writer: w, f: f, path: path}, nil
}

// Write appends one record, as Writer.Write does. After an I/O error it
// removes the temporary file.
func (fw *FileWriter) Write(rec *Record) error {
	if fw.done {
		return errClosed
	}
	err := fw.Writer.Write(rec)
	if err != nil && fw.Writer.err != nil {
		fw.Abort()
	}
	return err
}

// Close writes the trailer, syncs the file, renames it to its path and
// syncs the directory. If any step before the rename fails, it removes the
// temporary file and no file appears at the path.
func (fw *FileWriter) Close() error {
	if fw.done {
		return errClosed
	}
	fw.done = true
	tmp := fw.f.Name()
	err := commitFile(fw.Writer, fw.f, tmp, fw.path)
	if err != nil {
		os.Remove(tmp) // fails harmlessly once the rename has happened
	}
	return err
}

// commitFile finishes a batch file that w writes to f, at the path tmp:
// it writes the trailer, syncs and closes f, renames tmp to path and syncs
// the directory, so that the file is durable under its name. On an error it
// leaves tmp where it is, for the caller to remove or keep.
func commitFile(w *Writer, f *os.File, tmp, path string) error {
	err := w.Close()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("perso: batch file %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("perso: batch file %s written, but syncing its directory: %w", path, err)
	}
	return nil
}

// Abort abandons the file: it closes and removes the temporary file. It
// does nothing after Close or a previous Abort.
func (fw *FileWriter) Abort() error {
	if fw.done {
		return nil
	}
	fw.done = true
	return abandonFile(fw.Writer, fw.f)
}

// abandonFile closes w for good and removes its file, f: the end of a
// FileWriter's or ResumableWriter's Abort.
func abandonFile(w *Writer, f *os.File) error {
	w.err = errClosed
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("perso: removing temporary batch file: %w", err)
	}
	return nil
}
