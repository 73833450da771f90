package perso_test

// The fault suite: a prepared batch file is damaged in every way a transport
// or an attacker without the keys can damage it, and a card fails at every
// APDU of its session. Every case must end in an error that names where it
// happened (record index, byte offset, APDU number), no damaged record may
// reach a card, and every record of a batch must be accounted for:
// records in = personalized + rejected + failed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/internal/protect"
	"github.com/cardperso/perso/reader/vcard"
)

// countingStation counts the cards a Personalizer asks for, so that a test
// can tell that no card was touched, and records the command headers the
// first card receives.
type countingStation struct {
	perso.Station
	inserted atomic.Int64
	first    *headerLog
}

func (s *countingStation) Insert(ctx context.Context) (perso.Transport, error) {
	n := s.inserted.Add(1)
	t, err := s.Station.Insert(ctx)
	if err != nil || n != 1 {
		return t, err
	}
	s.first = &headerLog{Transport: t}
	return s.first, nil
}

func (s *countingStation) Eject(t perso.Transport, ok bool) error {
	if h, isLog := t.(*headerLog); isLog {
		t = h.Transport
	}
	return s.Station.Eject(t, ok)
}

// headerLog records the header of every command APDU, CLA, INS, P1 and P2.
type headerLog struct {
	perso.Transport
	headers [][4]byte
}

func (h *headerLog) Transmit(cmd []byte) ([]byte, error) {
	var hd [4]byte
	copy(hd[:], cmd)
	h.headers = append(h.headers, hd)
	return h.Transport.Transmit(cmd)
}

func newCountingStation(scp perso.SCP, fault vcard.Fault) *countingStation {
	return &countingStation{Station: vcard.NewStation("A", true, cardConfig(scp, fault))}
}

// span is a byte range [start, end) of a batch file.
type span struct{ start, end int }

func (s span) contains(off int) bool { return off >= s.start && off < s.end }

// batchLayout is where the parts of a batch file are.
type batchLayout struct {
	header  span
	records []span // each record with its 4-byte length
	// groups holds, per record, each MIC group's span (header included) and
	// its MIC.
	groups  [][]groupSpan
	trailer span // the trailer marker through the digest
}

type groupSpan struct {
	span
	mic perso.MIC
}

// layoutOf reads a valid batch file and returns its layout.
func layoutOf(t testing.TB, file []byte) batchLayout {
	t.Helper()
	r, err := perso.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	l := batchLayout{header: span{0, int(r.Offset())}}
	for {
		start := int(r.Offset())
		rec, err := r.Next()
		if err == io.EOF {
			l.trailer = span{start, len(file)}
			return l
		}
		if err != nil {
			t.Fatal(err)
		}
		l.records = append(l.records, span{start, int(r.Offset())})
		var gs []groupSpan
		off := start + 4
		for _, g := range rec.Groups {
			n := perso.GroupHeaderLen + len(g.Data)
			gs = append(gs, groupSpan{span{off, off + n}, g.MIC})
			off += n
		}
		l.groups = append(l.groups, gs)
	}
}

// redigest recomputes the trailer's digest of a file, as someone who
// changed the file and knows the format (but holds no key) would.
func redigest(file []byte) []byte {
	out := slices.Clone(file)
	n := len(out) - sha256.Size
	sum := sha256.Sum256(out[:n])
	copy(out[n:], sum[:])
	return out
}

// faultClass names the check that caught a fault.
func faultClass(err error) string {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"digest", perso.ErrDigest},
		{"count", perso.ErrCount},
		{"trailer", perso.ErrTrailer},
		{"truncated", perso.ErrTruncated},
		{"too long", perso.ErrTooLong},
		{"magic", perso.ErrMagic},
		{"version", perso.ErrVersion},
		{"bad record", perso.ErrBadRecord},
		{"malformed", perso.ErrMalformed},
		{"MAC", perso.ErrBadMAC},
		{"MAC key", protect.ErrOpen},
		{"no key", perso.ErrNoSuchKey},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	switch {
	case err == nil:
		return "none"
	case strings.Contains(err.Error(), "no module for MIC"):
		return "no module"
	case strings.Contains(err.Error(), "the security module's KEK has KCV"):
		return "KEK check value"
	}
	return fmt.Sprintf("other (%v)", err)
}

// formatRecord returns the record index a *perso.FormatError names, and
// whether err holds one.
func formatRecord(err error) (int, bool) {
	var fe *perso.FormatError
	if !errors.As(err, &fe) {
		return 0, false
	}
	return fe.Record, true
}

// sdaFiles holds the SDA batches of the fault tests by record count; the
// tests only read them.
var sdaFiles = map[int][]byte{}

// sdaBatch returns a batch of n cards with an EMV application (SDA).
func sdaBatch(t testing.TB, s *demo.Setup, n int) []byte {
	t.Helper()
	if b, ok := sdaFiles[n]; ok {
		return b
	}
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prepareBatch(t, s, n, e))
	if err != nil {
		t.Fatal(err)
	}
	sdaFiles[n] = b
	return b
}

// checkBatch runs Check on file.
func checkBatch(p *perso.Personalizer, file []byte) (*perso.CheckResult, error) {
	return p.Check(context.Background(), bytes.NewReader(file))
}

// runBatch personalizes file on a counting station with good cards and
// checks the accounting: records in = personalized + rejected + failed,
// one audit line per record, in order. It returns how many cards were
// touched.
func runBatch(t *testing.T, p *perso.Personalizer, audit *bytes.Buffer, file []byte) (*perso.PersoSummary, []perso.AuditEntry, int, error) {
	t.Helper()
	sum, lines, st, err := runFaulty(t, p, audit, file, perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{})
	return sum, lines, int(st.inserted.Load()), err
}

// runFaulty is runBatch with cards of the given protocol, the first of
// which fails as f says.
func runFaulty(t *testing.T, p *perso.Personalizer, audit *bytes.Buffer, file []byte, scp perso.SCP, f vcard.Fault) (*perso.PersoSummary, []perso.AuditEntry, *countingStation, error) {
	t.Helper()
	audit.Reset()
	st := newCountingStation(scp, f)
	sum, err := p.Run(context.Background(), bytes.NewReader(file), st)
	lines := auditLines(t, audit)
	if sum != nil {
		if sum.Records != sum.Personalized+sum.Rejected+sum.Failed {
			t.Errorf("summary %+v: records in != personalized + rejected + failed", sum)
		}
		if len(lines) != sum.Records {
			t.Errorf("%d audit lines for %d records", len(lines), sum.Records)
		}
	}
	for i, l := range lines {
		if l.Index != i {
			t.Errorf("audit line %d has index %d", i, l.Index)
		}
	}
	return sum, lines, st, err
}

// TestFaultByteFlips changes bytes of a small batch in two ways. As a
// transport fault: every byte of the file in turn, header, records and
// trailer, which the framing or the trailer's digest must catch. As a
// forger without the keys, who recomputes the trailer's digest: every byte
// of one record in turn, where every change to the chip group must be
// caught by its MAC or its framing, naming the record, while the other
// records stay good. Check refuses each case; one file of each kind of
// fault is then personalized, and no changed record reaches a card.
func TestFaultByteFlips(t *testing.T) {
	s := demoSetup(t)
	file := sdaBatch(t, s, 3)
	l := layoutOf(t, file)
	const victim = 1
	rec := l.records[victim]
	var chip span
	for _, g := range l.groups[victim] {
		if g.mic == perso.MICChip {
			chip = g.span
		}
	}
	if chip == (span{}) {
		t.Fatal("the record has no chip group")
	}
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	if res, err := checkBatch(p, file); err != nil || len(res.Rejected) != 0 || res.Records != 3 {
		t.Fatalf("the intact batch: %v, %+v", err, res)
	}
	masks := []byte{0xFF, 0x01}

	// Transport faults: the whole batch is refused.
	plain := map[string]int{}
	plainFirst := map[string][]byte{}
	for _, mask := range masks {
		for pos := range file {
			b := slices.Clone(file)
			b[pos] ^= mask
			res, err := checkBatch(p, b)
			var be *perso.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("byte %d ^ %02X: Check = %+v, %v; want a BatchError", pos, mask, res, err)
			}
			class := faultClass(err)
			plain[class]++
			if _, ok := plainFirst[class]; !ok {
				plainFirst[class] = b
			}
			if r, ok := formatRecord(err); ok && rec.contains(pos) && class != "digest" && r != victim {
				t.Errorf("byte %d ^ %02X: %v names record %d, want %d", pos, mask, err, r, victim)
			}
		}
	}
	t.Logf("%d bytes, 2 changes each: caught by %v", len(file), plain)
	for _, class := range slices.Sorted(maps.Keys(plainFirst)) {
		sum, _, cards, err := runBatch(t, p, audit, plainFirst[class])
		var be *perso.BatchError
		if !errors.As(err, &be) || sum != nil || cards != 0 {
			t.Errorf("%s: Run = %+v, %v after %d cards; want a BatchError before any card", class, sum, err, cards)
		}
	}

	// Forged changes of one record.
	forged := map[string]int{}
	var survivors []int
	forgedFirst := map[string][]byte{}
	for _, mask := range masks {
		for pos := rec.start; pos < rec.end; pos++ {
			b := slices.Clone(file)
			b[pos] ^= mask
			b = redigest(b)
			res, err := checkBatch(p, b)
			var class string
			var be *perso.BatchError
			switch {
			case err != nil:
				if !errors.As(err, &be) {
					t.Fatalf("byte %d ^ %02X: Check = %v; want a BatchError", pos, mask, err)
				}
				class = faultClass(err)
				if r, ok := formatRecord(err); !ok || r != victim || !strings.Contains(err.Error(), fmt.Sprintf("record %d", victim)) {
					t.Errorf("byte %d ^ %02X: %v does not name record %d", pos, mask, err, victim)
				}
			case res.Rejected[victim] != nil:
				if len(res.Rejected) != 1 || res.Records != 3 {
					t.Errorf("byte %d ^ %02X: %d records, rejected %v; want only record %d rejected", pos, mask, res.Records, res.Rejected, victim)
				}
				class = faultClass(res.Rejected[victim])
			default:
				if len(res.Rejected) != 0 {
					t.Errorf("byte %d ^ %02X: records %v rejected, not the changed one", pos, mask, slices.Collect(maps.Keys(res.Rejected)))
				}
				class = "not caught"
				survivors = append(survivors, pos)
				if chip.contains(pos) {
					t.Errorf("byte %d ^ %02X, in the chip group: not caught", pos, mask)
				}
			}
			forged[class]++
			if _, ok := forgedFirst[class]; !ok && class != "not caught" {
				forgedFirst[class] = b
			}
		}
	}
	t.Logf("record %d: %d bytes (chip group %d), 2 forged changes each: %v", victim, rec.end-rec.start, chip.end-chip.start, forged)

	// Forged changes that pass Check are in the groups no MAC covers
	// (cardholder data, emboss, magnetic stripe), which only the unkeyed
	// digest protects; never in a group's header, which frames the record.
	for _, pos := range survivors {
		for _, g := range l.groups[victim] {
			if g.contains(pos) && pos < g.start+perso.GroupHeaderLen {
				t.Errorf("forged change of byte %d, in the header of group %v, not caught", pos, g.mic)
			}
		}
	}

	// One forged file of each kind, personalized: the changed record is
	// refused before its card, or the batch before any card.
	for _, class := range slices.Sorted(maps.Keys(forgedFirst)) {
		sum, lines, cards, err := runBatch(t, p, audit, forgedFirst[class])
		var be *perso.BatchError
		switch {
		case errors.As(err, &be):
			if cards != 0 {
				t.Errorf("%s: batch refused after %d cards", class, cards)
			}
		case err != nil:
			t.Errorf("%s: Run: %v", class, err)
		default:
			if sum.Records != 3 || sum.Rejected != 1 || sum.Personalized != 2 || cards != 2 {
				t.Errorf("%s: summary %+v after %d cards; want record %d rejected, 2 personalized", class, sum, cards, victim)
			}
			if l := lines[victim]; l.Outcome != perso.OutcomeRejected || l.APDUs != 0 || l.Card != "" || l.Reason == "" {
				t.Errorf("%s: audit line %+v", class, l)
			}
		}
	}
}

// TestFaultTruncation cuts the batch at every byte offset: inside the
// header, at every record boundary, inside every record and inside the
// trailer. Each cut refuses the batch before a card, with the record or
// field where the file ends; a cut at a record boundary followed by the
// original trailer fails the trailer's record count.
func TestFaultTruncation(t *testing.T) {
	s := demoSetup(t)
	file := sdaBatch(t, s, 3)
	l := layoutOf(t, file)
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	classes := map[string]int{}
	for n := 0; n < len(file); n++ {
		sum, _, cards, err := runBatch(t, p, audit, file[:n])
		var be *perso.BatchError
		if !errors.As(err, &be) || sum != nil || cards != 0 {
			t.Fatalf("cut at %d: Run = %+v, %v after %d cards; want a BatchError before any card", n, sum, err, cards)
		}
		class := faultClass(err)
		classes[class]++
		rec, _ := formatRecord(err)
		want, wantRec := "truncated", -1
		for i, r := range l.records {
			switch {
			case n == r.start:
				want = "trailer" // the records before are whole: no trailer follows them
			case r.contains(n):
				wantRec = i
			}
		}
		switch {
		case n == l.trailer.start:
			want = "trailer"
		case n < l.trailer.start+4 && n > l.trailer.start:
			// The marker is cut: the reader cannot tell it from the
			// length of a next record.
			wantRec = len(l.records)
		}
		if class != want || rec != wantRec {
			t.Errorf("cut at %d: %v (%s, record %d); want %s at record %d", n, err, class, rec, want, wantRec)
		}
		if want == "trailer" && !strings.Contains(err.Error(), "without a trailer") {
			t.Errorf("cut at %d: %q does not say the trailer is missing", n, err)
		}
	}
	t.Logf("%d cuts: %v", len(file), classes)

	// Records dropped from the end, the original trailer kept.
	for i := range l.records {
		b := slices.Concat(file[:l.records[i].start], file[l.trailer.start:])
		_, _, cards, err := runBatch(t, p, audit, b)
		if faultClass(err) != "count" || cards != 0 {
			t.Errorf("records %d.. dropped: %v after %d cards; want a record count mismatch before any card", i, err, cards)
		}
		if want := fmt.Sprintf("file holds %d", i); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("records %d.. dropped: %v does not say %q", i, err, want)
		}
	}
}

// TestFaultSplice moves records between two batches of the same issuer and
// KEK, and within one: the trailer's record count and its digest over the
// header (which holds the batch id) and every record refuse each splice
// before a card.
func TestFaultSplice(t *testing.T) {
	s := demoSetup(t)
	a := sdaBatch(t, s, 3)
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	hb := s.Header(e.Name())
	copy(hb.BatchID[:], "splice batch B  ")
	b := prepareWith(t, s, hb, 3, e)
	la, lb := layoutOf(t, a), layoutOf(t, b)
	part := func(file []byte, sp span) []byte { return file[sp.start:sp.end] }
	recs := func(file []byte, l batchLayout, idx ...int) []byte {
		var out []byte
		for _, i := range idx {
			out = append(out, part(file, l.records[i])...)
		}
		return out
	}
	if bytes.Equal(part(a, la.header), part(b, lb.header)) {
		t.Fatal("the two batches have the same header")
	}
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"record 1 from batch B", slices.Concat(part(a, la.header), recs(a, la, 0), recs(b, lb, 1), recs(a, la, 2), part(a, la.trailer)), "digest"},
		{"records 0 and 2 swapped", slices.Concat(part(a, la.header), recs(a, la, 2, 1, 0), part(a, la.trailer)), "digest"},
		{"header of batch B", slices.Concat(part(b, lb.header), recs(a, la, 0, 1, 2), part(a, la.trailer)), "digest"},
		{"trailer of batch B", slices.Concat(part(a, la.header), recs(a, la, 0, 1, 2), part(b, lb.trailer)), "digest"},
		{"record of batch B added", slices.Concat(part(a, la.header), recs(a, la, 0, 1, 2), recs(b, lb, 1), part(a, la.trailer)), "count"},
		{"record 1 twice", slices.Concat(part(a, la.header), recs(a, la, 0, 1, 1, 2), part(a, la.trailer)), "count"},
		{"record 1 dropped", slices.Concat(part(a, la.header), recs(a, la, 0, 2), part(a, la.trailer)), "count"},
		{"data after the trailer", slices.Concat(a, recs(b, lb, 0)), "trailer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum, _, cards, err := runBatch(t, p, audit, tc.file)
			var be *perso.BatchError
			if !errors.As(err, &be) || sum != nil || cards != 0 {
				t.Fatalf("Run = %+v, %v after %d cards; want a BatchError before any card", sum, err, cards)
			}
			if got := faultClass(err); got != tc.want {
				t.Errorf("%v: caught by %s, want %s", err, got, tc.want)
			}
			if !strings.Contains(err.Error(), "trailer") {
				t.Errorf("%q does not name the trailer", err)
			}
		})
	}
}

// prepareWith prepares n cards under the header h and returns the file.
func prepareWith(t testing.TB, s *demo.Setup, h *perso.Header, n int, apps ...perso.Application) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := perso.NewWriter(&out, h)
	if err != nil {
		t.Fatal(err)
	}
	src := &sliceSource{}
	for i := range n {
		r, err := perso.RecordForCard(&perso.CardData{PAN: pan(i), PSN: 1, Expiry: "301231", Name: "CARD/TEST", ServiceCode: "201"})
		if err != nil {
			t.Fatal(err)
		}
		src.recs = append(src.recs, r)
	}
	if sum, err := s.Preparer().Run(context.Background(), &perso.Job{Apps: apps, KEK: demo.KEK}, src, w); err != nil || sum.Written != n {
		t.Fatalf("prepare: %v (%+v)", err, sum)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// macOnly hides every method of a Translator but the interface's, so that
// the Personalizer cannot ask it for KEK check values.
type macOnly struct{ perso.Translator }

// TestFaultWrongKEK personalizes with a security module that holds another
// KEK under the batch's KEK id, or the right KEK under another version:
// the batch is refused before its first record, or, with a module that
// reports no check values, every record is refused, and no card is touched.
func TestFaultWrongKEK(t *testing.T) {
	s := demoSetup(t)
	file := sdaBatch(t, s, 3)
	kek := demoKEKValue(t, s)

	other, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("another bureau")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.GenerateKEK(demo.KEK); err != nil {
		t.Fatal(err)
	}
	v2, err := soft.New(soft.NotForProduction())
	if err != nil {
		t.Fatal(err)
	}
	id2 := demo.KEK
	id2.Version = 2
	if _, err := v2.ImportKEK(id2, kek); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*soft.Module{other, v2} {
		if _, err := m.ImportKey(demo.KMC, perso.KeyDES2, demo.KMCValue); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name       string
		tr         perso.Translator
		refused    bool   // the batch is refused as a whole
		want, says string // the fault class and what the error says
	}{
		{"another KEK", other, true, "KEK check value", "KCV"},
		{"another KEK version", v2, true, "no key", demo.KEK.Label()},
		{"another KEK, no check values", macOnly{other}, false, "MAC key", "does not open"},
		{"another KEK version, no check values", macOnly{v2}, true, "no key", "record 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, audit := newBureau(t, tc.tr, perso.SCP{}, perso.LevelCMAC)
			sum, lines, cards, err := runBatch(t, p, audit, file)
			if cards != 0 {
				t.Errorf("%d cards touched", cards)
			}
			if tc.refused {
				var be *perso.BatchError
				if !errors.As(err, &be) || sum != nil {
					t.Fatalf("Run = %+v, %v; want a BatchError", sum, err)
				}
				if got := faultClass(err); got != tc.want {
					t.Errorf("%v: caught by %s, want %s", err, got, tc.want)
				}
				if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("%q does not say %q", err, tc.says)
				}
				return
			}
			if err != nil || sum.Rejected != 3 {
				t.Fatalf("Run = %+v, %v; want every record rejected", sum, err)
			}
			for _, l := range lines {
				if l.Outcome != perso.OutcomeRejected || l.APDUs != 0 || !strings.Contains(l.Reason, tc.says) || !strings.Contains(l.Reason, "application A0000000031010") {
					t.Errorf("audit line %+v", l)
				}
			}
		})
	}
}

// faultSWs are the status words a failing card answers, in turn: errors
// and a warning, none that asks the host for another exchange (61xx, 6Cxx).
var faultSWs = []uint16{0x6A80, 0x6982, 0x6985, 0x6A88, 0x6F00, 0x6400, 0x6581, 0x6700, 0x6283, 0x6A84}

// TestFaultAPDU makes the first card of a two-record batch (EMV and purse
// applications) fail at every APDU of its session in turn: it answers an
// error status word, is pulled out before the command, or is pulled out
// after executing it. The record fails with the APDU's number and status
// word in its audit line and error, the card got no APDU after the failing
// one, and the second record is personalized.
func TestFaultAPDU(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(prepareBatch(t, s, 2, e, pv))
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []struct {
		name  string
		scp   perso.SCP
		level perso.SecurityLevel
	}{
		{"SCP02-55-CMAC", perso.SCP{Version: 2, Param: 0x55}, perso.LevelCMAC},
		{"SCP03-70-all", perso.SCP{Version: 3, Param: 0x70}, perso.LevelAll},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			p, _, audit := personalizer(t, s, cfg.scp, cfg.level)
			run := func(f vcard.Fault) (*perso.PersoSummary, []perso.AuditEntry, *countingStation) {
				t.Helper()
				sum, lines, st, err := runFaulty(t, p, audit, file, cfg.scp, f)
				if err != nil || sum.Records != 2 {
					t.Fatalf("fault %+v: Run = %+v, %v", f, sum, err)
				}
				return sum, lines, st
			}
			_, lines, st := run(vcard.Fault{})
			n := lines[0].APDUs
			session := st.first.headers
			if lines[0].Outcome != perso.OutcomePersonalized || n == 0 || lines[1].APDUs != n || len(session) != n {
				t.Fatalf("without a fault: %+v, %d commands", lines, len(session))
			}
			t.Logf("a card session takes %d APDUs", n)
			given := givenHeaders(session)
			lastStore := 0 // the last STORE DATA, after which the card is complete
			for i, h := range session {
				if h[1] == 0xE2 {
					lastStore = i + 1
				}
			}
			for at := 1; at <= n; at++ {
				for _, kind := range []vcard.FaultKind{vcard.FaultSW, vcard.FaultRemove, vcard.FaultTear} {
					f := vcard.Fault{At: at, Kind: kind}
					if kind == vcard.FaultSW {
						f.SW = faultSWs[at%len(faultSWs)]
					}
					sum, lines, st := run(f)
					l := lines[0]
					if sum.Failed != 1 || sum.Personalized != 1 || st.inserted.Load() != 2 {
						t.Errorf("fault %+v: summary %+v after %d cards", f, sum, st.inserted.Load())
					}
					if l.Outcome != perso.OutcomeFailed || l.APDU != at || l.APDUs != at || l.Card == "" && at > 2 {
						t.Errorf("fault %+v: audit line %+v; want failed at APDU %d after %d APDUs", f, l, at, at)
					}
					h := given[at-1]
					if want := fmt.Sprintf("APDU %d (%02X%02X%02X%02X)", at, h[0], h[1], h[2], h[3]); !strings.Contains(l.Reason, want) {
						t.Errorf("fault %+v: reason %q does not name %q", f, l.Reason, want)
					}
					storeData := h[1] == 0xE2
					switch {
					case kind == vcard.FaultSW && f.SW>>8 <= 0x63 && cfg.level&0x10 != 0 && storeData:
						// A warning without the R-MAC the session requires
						// (GP Amendment D 6.2.5): a secure messaging failure.
						if want := fmt.Sprintf("SW %04X", f.SW); !strings.Contains(l.Reason, want) || !strings.Contains(l.Reason, "R-MAC") {
							t.Errorf("fault %+v: reason %q; want an R-MAC failure naming %s", f, l.Reason, want)
						}
					case kind == vcard.FaultSW:
						if want := fmt.Sprintf("%04X", f.SW); l.SW != want || !strings.Contains(l.Reason, want) {
							t.Errorf("fault %+v: audit line SW %q, reason %q; want SW %s", f, l.SW, l.Reason, want)
						}
					default:
						if l.SW != "" || !strings.Contains(l.Reason, vcard.ErrRemoved.Error()) {
							t.Errorf("fault %+v: audit line SW %q, reason %q; want the card removed", f, l.SW, l.Reason)
						}
					}
					if kind != vcard.FaultTear && at <= lastStore && allPersonalized(st) {
						t.Errorf("fault %+v: the failed card is personalized", f)
					}
					if lines[1].Outcome != perso.OutcomePersonalized {
						t.Errorf("fault %+v: the next record: %+v", f, lines[1])
					}
				}
			}
		})
	}
}

// demoKEKValue returns the clear value of the demonstration KEK.
func demoKEKValue(t testing.TB, s *demo.Setup) []byte {
	t.Helper()
	kf := demoKeyFile(t, s)
	for _, k := range kf.KEKs {
		if k.Issuer == demo.KEK.Issuer.String() && k.Version == demo.KEK.Version {
			v, err := hex.DecodeString(k.Value)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no KEK %s in the key file", demo.KEK.Label())
	return nil
}

// givenHeaders maps each APDU of a card session, as the card received it,
// to the header of the command the host gave, which errors name: without
// the CLA bit (b3) that secure messaging sets on the commands after
// EXTERNAL AUTHENTICATE until the next SELECT, and for a GET RESPONSE the
// command it continues.
func givenHeaders(session [][4]byte) [][4]byte {
	out := make([][4]byte, len(session))
	wrapped := false
	for i, h := range session {
		switch h[1] {
		case 0xC0:
			if i > 0 {
				out[i] = out[i-1]
				continue
			}
		case 0xA4:
			wrapped = false
		}
		if wrapped {
			h[0] &^= 0x04
		}
		out[i] = h
		if h[1] == 0x82 {
			wrapped = true
		}
	}
	return out
}

// allPersonalized reports whether the station's first card has every
// applet personalized.
func allPersonalized(st *countingStation) bool {
	cards := st.Station.(*vcard.Station).Cards()
	if len(cards) == 0 {
		return false
	}
	for _, a := range cards[0].Applets() {
		if a.State != vcard.Personalized {
			return false
		}
	}
	return true
}

// failingModule is a security module that stops working after a number of
// calls of one kind, as a hardware module does when its connection drops.
type failingModule struct {
	*soft.Module
	verifyOK, sessionOK atomic.Int64 // calls that still work
}

var errModuleDown = errors.New("security module: connection lost")

func (m *failingModule) VerifyMAC(ctx context.Context, key perso.ProtectedKey, data, mac []byte) error {
	if m.verifyOK.Add(-1) < 0 {
		return errModuleDown
	}
	return m.Module.VerifyMAC(ctx, key, data, mac)
}

func (m *failingModule) SessionKeys(ctx context.Context, req perso.SessionKeyRequest) (*perso.SessionKeys, error) {
	if m.sessionOK.Add(-1) < 0 {
		return nil, errModuleDown
	}
	return m.Module.SessionKeys(ctx, req)
}

// TestFaultSecurityModuleFails makes the bureau's security module fail in
// the middle of a batch. A failing module is no fault of the records: as
// data preparation does, personalization must stop with the module's error
// rather than reject the remaining records as bad or spend a blank card on
// each of them.
func TestFaultSecurityModuleFails(t *testing.T) {
	s := demoSetup(t)
	file := sdaBatch(t, s, 3)
	for _, tc := range []struct {
		name             string
		verifyOK, sessOK int64
	}{
		{"during the check", 1, 100},
		{"during personalization", 100, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &failingModule{Module: s.Module}
			m.verifyOK.Store(tc.verifyOK)
			m.sessionOK.Store(tc.sessOK)
			p, audit := newBureau(t, m, perso.SCP{Version: 2, Param: 0x55}, perso.LevelCMAC)
			sum, lines, cards, err := runBatch(t, p, audit, file)
			if !errors.Is(err, errModuleDown) {
				t.Errorf("Run = %+v, %v; want the module's error", sum, err)
			}
			// The card in the station when the module failed has failed;
			// no record is bad for it.
			failed := 0
			for _, l := range lines {
				if !strings.Contains(l.Reason, errModuleDown.Error()) {
					continue
				}
				if l.Outcome == perso.OutcomeFailed {
					failed++
				}
				if l.Outcome == perso.OutcomeRejected || failed > 1 {
					t.Errorf("record %d %s for the module's failure", l.Index, l.Outcome)
				}
			}
			if cards > 2 {
				t.Errorf("%d cards touched; the module failed on the second", cards)
			}
		})
	}
}
