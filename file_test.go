package perso

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func batchHeader() *Header {
	return &Header{
		BatchID:  [16]byte{0x0B, 0xA7, 0xC4, 1},
		Created:  time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC),
		Issuer:   batchIssuer,
		Profiles: []string{"emv", "vsvc"},
		KEKs: []KEKCheck{
			{KEK: batchKEK, KCV: [3]byte{0x11, 0x22, 0x33}},
			{KEK: batchKEK3, KCV: [3]byte{0x44, 0x55, 0x66}},
		},
	}
}

// batchRecord returns a small record numbered i: an emboss group and a chip
// group with one application.
func batchRecord(t testing.TB, i int) *Record {
	a := batchApp("A0000000031010", batchKEK)
	a.AddDGI(0x0102, []byte{0x70, 2, 0x9F, byte(i)})
	return &Record{Groups: []Group{
		{MIC: MICEmboss, Data: fmt.Appendf(nil, "CARD %06d", i)},
		{MIC: MICChip, Data: batchChip(t, a)},
	}}
}

// writeBatch writes a file of n records and the counter pan-counter=n.
func writeBatch(t testing.TB, h *Header, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Write(batchRecord(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	w.SetCounter("pan-counter", uint64(n))
	w.SetCounter("batch-seq", 7)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readBatch reads a whole file, returning what it read before the first
// error.
func readBatch(in []byte) (*Header, []*Record, *Trailer, error) {
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, nil, nil, err
	}
	var recs []*Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), recs, r.Trailer(), nil
		}
		if err != nil {
			return r.Header(), recs, nil, err
		}
		recs = append(recs, rec)
	}
}

// rewriteBatch encodes what readBatch read, for encode(decode(x)) == x.
func rewriteBatch(h *Header, recs []*Record, tr *Trailer) ([]byte, error) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			return nil, err
		}
	}
	for name, v := range tr.Counters {
		w.SetCounter(name, v)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func TestBatchRoundTrip(t *testing.T) {
	h := batchHeader()
	h.Extra = []byte{0xE0, 0x01, 0x00}
	in := writeBatch(t, h, 3)
	gotH, recs, tr, err := readBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, gotH); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, r := range recs {
		if diff := cmp.Diff(batchRecord(t, i), r, batchIgnoreRaw); diff != "" {
			t.Errorf("record %d (-want +got):\n%s", i, diff)
		}
	}
	want := &Trailer{Count: 3, Counters: map[string]uint64{"pan-counter": 3, "batch-seq": 7}, Digest: sha256.Sum256(in[:len(in)-32])}
	if diff := cmp.Diff(want, tr); diff != "" {
		t.Errorf("trailer (-want +got):\n%s", diff)
	}
	out, err := rewriteBatch(gotH, recs, tr)
	if err != nil || !bytes.Equal(out, in) {
		t.Errorf("re-encoded file differs (%v)", err)
	}

	// Offset says where each record starts.
	r, _ := NewReader(bytes.NewReader(in))
	for want := prologueLen + int(binary.BigEndian.Uint32(in[5:])); ; {
		if r.Offset() != int64(want) {
			t.Fatalf("Offset() = %d, want %d", r.Offset(), want)
		}
		if _, err := r.Next(); err != nil {
			break
		}
		want += 4 + int(binary.BigEndian.Uint32(in[want:]))
	}
	if r.Offset() != int64(len(in)) {
		t.Errorf("Offset() at EOF = %d, want %d", r.Offset(), len(in))
	}

	// An empty batch is a header and a trailer.
	in = writeBatch(t, batchHeader(), 0)
	if _, recs, tr, err := readBatch(in); err != nil || len(recs) != 0 || tr.Count != 0 {
		t.Errorf("empty batch: %d records, trailer %v, %v", len(recs), tr, err)
	}
}

func TestHeaderTimeAndLookup(t *testing.T) {
	h := batchHeader()
	h.Created = time.Date(2025, 1, 15, 10, 30, 0, 999, time.FixedZone("CET", 3600))
	got, _, _, err := readBatch(writeBatch(t, h, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC); !got.Created.Equal(want) || got.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want %v", got.Created, want)
	}
	if k, ok := got.LookupKEK(batchKEK3); !ok || k.KCV != [3]byte{0x44, 0x55, 0x66} {
		t.Errorf("LookupKEK(%v) = %v, %v", batchKEK3, k, ok)
	}
	other := batchKEK
	other.Scheme = SchemeDES3ECB
	if _, ok := got.LookupKEK(other); ok {
		t.Errorf("LookupKEK(%v) found a KEK of another scheme", other)
	}
}

// batchPatch returns a copy of in with b written at off and the digest
// recomputed, so that only the patched field is wrong.
func batchPatch(in []byte, off int, b ...byte) []byte {
	out := slices.Clone(in)
	copy(out[off:], b)
	return batchRedigest(out)
}

func batchRedigest(in []byte) []byte {
	sum := sha256.Sum256(in[:len(in)-32])
	copy(in[len(in)-32:], sum[:])
	return in
}

func TestReaderErrors(t *testing.T) {
	h := batchHeader()
	in := writeBatch(t, h, 2)
	hl := int(binary.BigEndian.Uint32(in[5:]))
	rec0 := prologueLen + hl
	rec1 := rec0 + 4 + int(binary.BigEndian.Uint32(in[rec0:]))
	tr := rec1 + 4 + int(binary.BigEndian.Uint32(in[rec1:]))
	other := writeBatch(t, batchHeader(), 3)

	// A spliced file: record 2 of another batch (as long as record 1)
	// instead of this one's record 1.
	spliced := slices.Concat(in[:rec1], other[tr:tr+tr-rec1], in[tr:])
	// A record dropped, the trailer left as it was.
	dropped := slices.Concat(in[:rec1], in[tr:])
	// A trailer that counts one record more, with a digest that matches.
	counted := batchPatch(in, tr+4+7, 3)
	// Counters out of order: batch-seq must come before pan-counter.
	var unsorted []byte
	{
		c := slices.Clone(in[:tr+4+8])
		c = append(c, 2, 11)
		c = append(c, "pan-counter"...)
		c = binary.BigEndian.AppendUint64(c, 2)
		c = append(c, 9)
		c = append(c, "batch-seq"...)
		c = binary.BigEndian.AppendUint64(c, 7)
		unsorted = batchRedigest(append(c, make([]byte, 32)...))
	}
	tests := []formatCase{
		{"empty", nil, ErrTruncated, 0, "header"},
		{"bad magic", []byte("PRSX"), ErrMagic, 0, "magic"},
		{"not a batch", []byte("%PDF-1.7 ..."), ErrMagic, 0, "magic"},
		{"magic only", []byte("PRS"), ErrTruncated, 0, "header"},
		{"version 2", batchPatch(in, 4, 2), ErrVersion, 4, "format version"},
		{"version 0", batchPatch(in, 4, 0), ErrVersion, 4, "format version"},
		{"header over bound", batchPatch(in, 5, 0, 1, 0, 1), ErrTooLong, 5, "header length"},
		{"header longer than file", batchPatch(in, 5, 0, 0, 0xFF, 0), ErrTruncated, 9, "header"},
		{"KEK with unknown scheme", batchPatch(in, 9+16+8+4+1+4+5+1+4+1, 7), ErrMalformed, -1, "KEK 0 scheme"},
		{"profile name not printable", batchPatch(in, 9+16+8+4+2, ' '), ErrMalformed, 9 + 16 + 8 + 4 + 1, "profile 0"},
		{"record over bound", batchPatch(in, rec0, 1, 0, 0, 1), ErrTooLong, int64(rec0), "record length"},
		{"record longer than file", batchPatch(in, rec0, 0, 0x10, 0, 0), ErrTruncated, int64(rec0 + 4), "record"},
		{"no trailer", in[:tr], ErrTrailer, int64(tr), "trailer"},
		{"spliced record", spliced, ErrDigest, int64(len(in) - 32), "trailer digest"},
		{"dropped record", dropped, ErrCount, -1, "trailer record count"},
		{"count mismatch", counted, ErrCount, int64(tr), "trailer record count"},
		{"digest flipped", func() []byte { b := slices.Clone(in); b[len(b)-1] ^= 1; return b }(), ErrDigest, -1, "trailer digest"},
		{"header byte flipped", func() []byte { b := slices.Clone(in); b[9] ^= 1; return b }(), ErrDigest, -1, "trailer digest"},
		{"data after trailer", append(slices.Clone(in), 0), ErrTrailer, int64(len(in)), "trailer"},
		{"counters unsorted", unsorted, ErrTrailer, -1, "trailer counter 1"},
		{"counter name empty", batchPatch(in, tr+4+8+1, 0), ErrTrailer, -1, "trailer counter 0"},
	}
	runFormatCases(t, tests, func(b []byte) (any, error) {
		_, recs, tr, err := readBatch(b)
		return fmt.Sprintf("%d records, trailer %v", len(recs), tr), err
	})

	// The message names the record and the offset.
	_, _, _, err := readBatch(batchPatch(in, rec1, 0, 0x10, 0, 0))
	if want := fmt.Sprintf("perso: record 1 at offset %d: record: truncated:", rec1+4); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start %q", err, want)
	}
}

func TestReaderTruncation(t *testing.T) {
	in := writeBatch(t, batchHeader(), 2)
	for n := range len(in) {
		_, _, _, err := readBatch(in[:n])
		var fe *FormatError
		switch {
		case err == nil:
			t.Fatalf("a file cut to %d of %d bytes was accepted", n, len(in))
		case !errors.As(err, &fe):
			t.Fatalf("cut to %d: %v is not a *FormatError", n, err)
		case !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTrailer):
			t.Fatalf("cut to %d: %v wraps neither ErrTruncated nor ErrTrailer", n, err)
		case fe.Offset > int64(n):
			t.Fatalf("cut to %d: %v at an offset past the end", n, err)
		}
	}
}

func TestReaderBadRecordGoesOn(t *testing.T) {
	h := batchHeader()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write(batchRecord(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Reading with a header that lacks KEK version 1 makes every record's
	// chip application bad, but the frames are intact.
	in := buf.Bytes()
	kekAt := 9 + 16 + 8 + 4 + 1 + 4 + 5 + 1
	in = batchPatch(in, kekAt+4, 9) // KEK version 1 becomes 9 in the header
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rec, err := r.Next()
		if !errors.Is(err, ErrBadRecord) || !errors.Is(err, ErrMalformed) || rec != nil {
			t.Fatalf("record %d: %v, %v; want ErrBadRecord", i, rec, err)
		}
		var fe *FormatError
		if errors.As(err, &fe); fe.Record != i || !strings.Contains(err.Error(), "not in the batch header") {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the bad records: %v, want io.EOF", err)
	}
	if r.Trailer().Count != 3 {
		t.Errorf("trailer count %d", r.Trailer().Count)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after EOF: %v", err)
	}

	// A final error is returned again.
	r, _ = NewReader(bytes.NewReader(in[:len(in)-1]))
	for range 3 {
		r.Next()
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("final error %v, then %v", err1, err2)
	}
}

func TestReaderIOError(t *testing.T) {
	in := writeBatch(t, batchHeader(), 1)
	boom := errors.New("disk on fire")
	r, err := NewReader(io.MultiReader(bytes.NewReader(in[:200]), iotest(boom)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	var fe *FormatError
	if !errors.Is(err, boom) || errors.As(err, &fe) {
		t.Errorf("I/O error: %v, want it passed on, not as a *FormatError", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func iotest(err error) io.Reader { return errReader{err} }

func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	h := batchHeader()
	noTime := batchHeader()
	noTime.Created = time.Time{}
	badName := batchHeader()
	badName.Profiles = []string{"emv", "two words"}
	dupName := batchHeader()
	dupName.Profiles = []string{"emv", "emv"}
	dupKEK := batchHeader()
	dupKEK.KEKs = append(dupKEK.KEKs, dupKEK.KEKs[0])
	badScheme := batchHeader()
	badScheme.KEKs[1].KEK.Scheme = 0
	long := batchHeader()
	long.Extra = make([]byte, MaxHeaderLen)
	for name, h := range map[string]*Header{"no time": noTime, "bad profile": badName, "profile twice": dupName,
		"KEK twice": dupKEK, "bad scheme": badScheme, "too long": long} {
		if _, err := NewWriter(&buf, h); err == nil {
			t.Errorf("%s: NewWriter accepted the header", name)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("refused headers wrote %d bytes", buf.Len())
	}

	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	unlisted := batchApp("A0000000031010", KEKID{Issuer: batchIssuer, Version: 3, Scheme: SchemeAESKW})
	rec := &Record{Groups: []Group{{MIC: MICChip, Data: batchChip(t, unlisted)}}}
	err = w.Write(rec)
	wantFormatError(t, err, ErrBadRecord, -1, "chip app 0 KEK")
	if err := w.Write(&Record{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty record: %v", err)
	}
	if err := w.Write(batchRecord(t, 0)); err != nil {
		t.Errorf("the writer did not go on after a refused record: %v", err)
	}
	if w.Count() != 1 {
		t.Errorf("Count = %d, want 1", w.Count())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(batchRecord(t, 1)); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, recs, _, err := readBatch(buf.Bytes()); err != nil || len(recs) != 1 {
		t.Errorf("read back %d records, %v", len(recs), err)
	}
	_ = n

	for _, name := range []string{"", "pan counter", strings.Repeat("x", MaxNameLen+1)} {
		buf.Reset()
		w, _ := NewWriter(&buf, h)
		w.SetCounter(name, 1)
		if err := w.Close(); !errors.Is(err, ErrBadInput) {
			t.Errorf("counter %q: Close() = %v, want ErrBadInput", name, err)
		}
	}
	buf.Reset()
	w, _ = NewWriter(&buf, h)
	for i := range 256 {
		w.SetCounter(fmt.Sprintf("c%03d", i), uint64(i))
	}
	if err := w.Close(); !errors.Is(err, ErrBadInput) {
		t.Errorf("256 counters: Close() = %v", err)
	}
	buf.Reset()
	w, _ = NewWriter(&buf, h)
	for i := range 255 {
		w.SetCounter(fmt.Sprintf("c%03d", i), uint64(i))
	}
	w.SetCounter("c000", 9)
	if err := w.Close(); err != nil {
		t.Fatalf("255 counters: %v", err)
	}
	if _, _, tr, err := readBatch(buf.Bytes()); err != nil || len(tr.Counters) != 255 || tr.Counters["c000"] != 9 {
		t.Errorf("255 counters read back: %v", err)
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriterIOError(t *testing.T) {
	boom := errors.New("disk full")
	w, err := NewWriter(&failWriter{n: 100, err: boom}, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; err == nil && i < 1000; i++ {
		err = w.Write(batchRecord(t, i))
	}
	if !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want the I/O error", err)
	}
	if err2 := w.Write(batchRecord(t, 0)); !errors.Is(err2, boom) {
		t.Errorf("Write after an I/O error: %v", err2)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close after an I/O error: %v", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestFileWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "batch.prso")

	fw, err := CreateFile(path, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := fw.Write(batchRecord(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	fw.SetCounter("pan-counter", 3)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file exists before Close: %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"batch.prso"}) {
		t.Errorf("directory holds %q", got)
	}
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, writeBatchCounters(t, 3)) {
		t.Error("the file differs from what Writer writes")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	if err := fw.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := fw.Abort(); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Abort after Close removed the file: %v", err)
	}

	// Abort leaves nothing.
	path2 := filepath.Join(dir, "aborted.prso")
	fw, err = CreateFile(path2, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(batchRecord(t, 0))
	if err := fw.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"batch.prso"}) {
		t.Errorf("after Abort the directory holds %q", got)
	}

	// A failed write leaves nothing either: the file goes away under the
	// writer.
	fw, err = CreateFile(path2, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	fw.f.Close()
	for i := 0; err == nil && i < 10000; i++ {
		err = fw.Write(batchRecord(t, i))
	}
	if err == nil {
		t.Fatal("writes to a closed file succeeded")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"batch.prso"}) {
		t.Errorf("after a failed write the directory holds %q", got)
	}
	if err := fw.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}

	// A failure in Close (here, at the flush) leaves nothing.
	fw, err = CreateFile(path2, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(batchRecord(t, 0))
	fw.f.Close()
	if err := fw.Close(); err == nil {
		t.Error("Close of a closed file succeeded")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"batch.prso"}) {
		t.Errorf("after a failed Close the directory holds %q", got)
	}

	// A bad header creates nothing.
	bad := batchHeader()
	bad.Created = time.Time{}
	if _, err := CreateFile(path2, bad); err == nil {
		t.Error("CreateFile accepted a bad header")
	}
	if _, err := CreateFile(filepath.Join(dir, "no", "such", "dir"), batchHeader()); err == nil {
		t.Error("CreateFile in a missing directory succeeded")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"batch.prso"}) {
		t.Errorf("after refused creations the directory holds %q", got)
	}
}

// writeBatchCounters is TestFileWriter's file made with a Writer.
func writeBatchCounters(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, batchHeader())
	for i := range n {
		w.Write(batchRecord(t, i))
	}
	w.SetCounter("pan-counter", uint64(n))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestStreamMemory streams 100,000 records from a Writer to a Reader
// through a pipe and checks that the live heap does not grow with the
// number of records, and that a Write and a Next allocate a bounded amount
// however many records went before.
func TestStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100,000 records")
	}
	const n = 100_000
	rec := batchRecord(t, 1)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		w, err := NewWriter(pw, batchHeader())
		for i := 0; err == nil && i < n; i++ {
			err = w.Write(rec)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	r, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	var base, peak uint64
	for i := 0; ; i++ {
		got, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Groups) != 2 {
			t.Fatalf("record %d: %d groups", i, len(got.Groups))
		}
		switch {
		case i == 1000:
			base = heapInUse()
		case i%20000 == 0 && i > 0:
			peak = max(peak, heapInUse())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Trailer().Count != n {
		t.Fatalf("trailer count %d", r.Trailer().Count)
	}
	t.Logf("live heap after 1,000 records %d bytes, at most %d after 20,000 .. 100,000", base, peak)
	if peak > base+512<<10 {
		t.Errorf("the live heap grew from %d to %d bytes while streaming", base, peak)
	}

	// Allocations per Write and per Next do not depend on what went before.
	w, err := NewWriter(io.Discard, batchHeader())
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		w.Write(rec)
	}
	early := testing.AllocsPerRun(100, func() { w.Write(rec) })
	for range 10000 {
		w.Write(rec)
	}
	late := testing.AllocsPerRun(100, func() { w.Write(rec) })
	t.Logf("allocations per Write: %v after 1,000 records, %v after 11,100", early, late)
	if late > early {
		t.Errorf("allocations per Write grew from %v to %v", early, late)
	}
}

func BenchmarkWriter(b *testing.B) {
	rec := batchRecord2K(b)
	enc, _ := rec.Marshal()
	w, err := NewWriter(io.Discard, batchHeader())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc) + 4))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	rec := batchRecord2K(b)
	enc, _ := rec.Marshal()
	const n = 1000
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, batchHeader())
	for range n {
		w.Write(rec)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	in := buf.Bytes()
	b.SetBytes(int64(n * (len(enc) + 4)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
