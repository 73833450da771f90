package perso

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"runtime/metrics"
	"testing"
)

// The seed corpora are in testdata/fuzz/<target>: the worked example of the
// package documentation, small valid files, records and chip data, and cut
// or patched versions of them.

// boundedAlloc runs f and fails if it allocated more than a fixed 256 KiB
// (the Reader's buffers) plus 64 bytes per input byte: no length field may
// make a decoder allocate what the input does not hold.
//
// It reads the runtime's cumulative allocation counter, which is cheap but
// counts small objects a span at a time; when that count is over the limit,
// it runs f again between two runtime.ReadMemStats, which stop the world and
// count exactly.
func boundedAlloc(t *testing.T, inputLen int, f func()) {
	t.Helper()
	limit := uint64(256<<10 + 64*inputLen)
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	if s[0].Value.Uint64()-before <= limit {
		return
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	if got := m1.TotalAlloc - m0.TotalAlloc; got > limit {
		t.Fatalf("decoding %d bytes allocated %d bytes, more than %d", inputLen, got, limit)
	}
}

// wantFormatErr fails unless err is a *FormatError.
func wantFormatErr(t *testing.T, err error) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FormatError", err, err)
	}
	if fe.Offset < 0 || fe.Field == "" || fe.Err == nil {
		t.Fatalf("error %#v lacks its offset, field or cause", fe)
	}
}

func FuzzMICGroups(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var gs []Group
		var err error
		boundedAlloc(t, len(in), func() { gs, err = ParseGroups(in) })
		if err != nil {
			wantFormatErr(t, err)
			return
		}
		var out []byte
		for _, g := range gs {
			if out, err = AppendGroup(out, g); err != nil {
				t.Fatalf("re-encoding a parsed group: %v", err)
			}
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n%X\nparsed from\n%X", out, in)
		}
	})
}

func FuzzRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var r *Record
		var err error
		boundedAlloc(t, len(in), func() { r, err = ParseRecord(in) })
		if err != nil {
			wantFormatErr(t, err)
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("re-encoding a parsed record: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n%X\nparsed from\n%X", out, in)
		}
		if _, err := r.Chip(); err != nil {
			t.Fatalf("a parsed record's chip data does not parse: %v", err)
		}
	})
}

func FuzzChipData(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var cd *ChipData
		var err error
		boundedAlloc(t, len(in), func() { cd, err = ParseChipData(in) })
		if err != nil {
			wantFormatErr(t, err)
			return
		}
		out, err := cd.Marshal()
		if err != nil {
			t.Fatalf("re-encoding parsed chip data: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n%X\nparsed from\n%X", out, in)
		}
		rec := &Record{Groups: []Group{{MIC: MICChip, Data: in}}}
		for i := range cd.Apps {
			a := &cd.Apps[i]
			mi, err := a.MACInput()
			if err != nil || !bytes.HasPrefix(a.Raw, mi) || len(a.Raw)-len(mi) != 1+MACLen {
				t.Fatalf("app %d: MACInput is not Raw up to the MAC (%v)", i, err)
			}
			// The MAC input of the fields, re-encoded, is the same.
			fresh := *a
			fresh.Raw = nil
			if mf, err := fresh.MACInput(); err != nil || !bytes.Equal(mf, mi) {
				t.Fatalf("app %d: MACInput of the fields differs from the bytes (%v)", i, err)
			}
			// Putting an application back leaves the chip data unchanged.
			if err := rec.PutApp(a); err != nil {
				t.Fatalf("app %d: PutApp: %v", i, err)
			}
			if g, _ := rec.Group(MICChip); !bytes.Equal(g.Data, in) {
				t.Fatalf("app %d: PutApp of an unchanged application changed the chip data", i)
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			h    *Header
			recs []*Record
			tr   *Trailer
			err  error
			bad  int
		)
		boundedAlloc(t, len(in), func() {
			var r *Reader
			if r, err = NewReader(bytes.NewReader(in)); err != nil {
				return
			}
			h = r.Header()
			for {
				var rec *Record
				rec, err = r.Next()
				switch {
				case err == io.EOF:
					tr, err = r.Trailer(), nil
					return
				case errors.Is(err, ErrBadRecord):
					bad++
					continue
				case err != nil:
					return
				}
				recs = append(recs, rec)
			}
		})
		if err != nil {
			wantFormatErr(t, err)
			return
		}
		if tr == nil || tr.Count != uint64(len(recs)+bad) {
			t.Fatalf("EOF with trailer %v after %d good and %d bad records", tr, len(recs), bad)
		}
		if bad > 0 {
			return
		}
		out, err := rewriteBatch(h, recs, tr)
		if err != nil {
			t.Fatalf("re-encoding a file that was read: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n%X\nread from\n%X", out, in)
		}
	})
}
