package perso_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
	"github.com/cardperso/perso/reader/vcard"
)

// crashingSink passes records to a writer until its limit, then fails as a
// process that dies would: nothing after it reaches the file.
type crashingSink struct {
	w     perso.RecordSink
	limit int
	n     int
}

var errCrash = errors.New("process killed")

func (c *crashingSink) Write(r *perso.Record) error {
	if c.n == c.limit {
		return errCrash
	}
	c.n++
	return c.w.Write(r)
}

func counterInput(t *testing.T, n int) *sliceSource {
	t.Helper()
	src := &sliceSource{}
	for i := 0; i < n; i++ {
		c := &perso.CardData{Expiry: "301231", ServiceCode: "201", Name: "RESUME/TEST"}
		if i%7 == 3 {
			c.PAN = pan(1000 + i) // some records bring their own PAN
		}
		if i == 20 {
			c.Expiry = "" // and one is rejected
		}
		r, err := perso.RecordForCard(c)
		if err != nil {
			t.Fatal(err)
		}
		src.recs = append(src.recs, r)
	}
	return src
}

func readAll(t *testing.T, path string) ([]*perso.Record, *perso.Trailer) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := perso.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []*perso.Record
	for {
		rec, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading %s: %v", path, err)
			}
			break
		}
		out = append(out, rec)
	}
	return out, r.Trailer()
}

func TestResumeAfterCrash(t *testing.T) {
	m := testModule(t)
	const n = 100
	app := &testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}
	newJob := func() *perso.Job {
		return &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK, Workers: 3,
			Counter: &perso.Counter{Prefix: "4761739", Length: 16, Next: 500}, CheckpointEvery: 10}
	}
	hdr := func() *perso.Header {
		return &perso.Header{Created: time.Unix(1764000000, 0), Issuer: hsmtest.Issuer, Profiles: []string{"t"}, KEKs: []perso.KEKCheck{{KEK: hsmtest.KEK}}}
	}
	dir := t.TempDir()

	// The uninterrupted run.
	whole := filepath.Join(dir, "whole.prso")
	fw, err := perso.CreateResumable(whole, hdr())
	if err != nil {
		t.Fatal(err)
	}
	job := newJob()
	job.Checkpoint = fw.Checkpoint
	if _, err := preparer(m).Run(context.Background(), job, counterInput(t, n), fw); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	want, wantTrailer := readAll(t, whole)

	for _, crashAt := range []int{0, 9, 10, 37, 98} {
		path := filepath.Join(dir, "crash.prso")
		os.Remove(path)
		fw, err := perso.CreateResumable(path, hdr())
		if err != nil {
			t.Fatal(err)
		}
		job := newJob()
		job.Checkpoint = fw.Checkpoint
		_, err = preparer(m).Run(context.Background(), job, counterInput(t, n), &crashingSink{w: fw, limit: crashAt})
		if !errors.Is(err, errCrash) {
			t.Fatalf("crash at %d: Run = %v", crashAt, err)
		}
		// The process is gone: no Close, no Abort. A new one resumes.
		rw, cp, err := perso.ResumeFile(path)
		if crashAt < 10 {
			if !errors.Is(err, perso.ErrNoCheckpoint) {
				t.Fatalf("crash at %d before any checkpoint: ResumeFile = %v", crashAt, err)
			}
			os.Remove(path + ".partial")
			continue
		}
		if err != nil {
			t.Fatalf("crash at %d: ResumeFile: %v", crashAt, err)
		}
		job = newJob()
		job.Resume, job.Checkpoint = cp, rw.Checkpoint
		sum, err := preparer(m).Run(context.Background(), job, counterInput(t, n), rw)
		if err != nil {
			t.Fatalf("crash at %d: resumed run: %v", crashAt, err)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		if sum.Read != n || sum.Written != n-1 || sum.Rejected != 1 || sum.Counter != wantTrailer.Counters["pan-counter"] {
			t.Errorf("crash at %d: resumed summary %+v", crashAt, sum)
		}
		got, trailer := readAll(t, path)
		if len(got) != len(want) || trailer.Count != wantTrailer.Count || trailer.Counters["pan-counter"] != wantTrailer.Counters["pan-counter"] {
			t.Fatalf("crash at %d: %d records (trailer %+v), want %d (%+v)", crashAt, len(got), trailer, len(want), wantTrailer)
		}
		for i := range want {
			if !sameButRandom(t, want[i], got[i]) {
				t.Fatalf("crash at %d: record %d differs from the uninterrupted run", crashAt, i)
			}
		}
		if _, err := os.Stat(path + ".checkpoint"); !os.IsNotExist(err) {
			t.Errorf("checkpoint left behind: %v", err)
		}
	}
}

// sameButRandom compares two prepared records but for the random MAC key and MAC.
func sameButRandom(t *testing.T, a, b *perso.Record) bool {
	t.Helper()
	if len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Groups {
		ga, gb := a.Groups[i], b.Groups[i]
		if ga.MIC != gb.MIC {
			return false
		}
		if ga.MIC != perso.MICChip {
			if !bytes.Equal(ga.Data, gb.Data) {
				return false
			}
			continue
		}
		ca, _ := perso.ParseChipData(ga.Data)
		cb, _ := perso.ParseChipData(gb.Data)
		if len(ca.Apps) != len(cb.Apps) {
			return false
		}
		for j := range ca.Apps {
			x, y := ca.Apps[j], cb.Apps[j]
			if !bytes.Equal(x.AID, y.AID) || x.KEK != y.KEK || len(x.DGIs) != len(y.DGIs) {
				return false
			}
			for k := range x.DGIs {
				if x.DGIs[k].Tag != y.DGIs[k].Tag || !bytes.Equal(x.DGIs[k].Value, y.DGIs[k].Value) {
					return false
				}
			}
		}
	}
	return true
}

func TestResumeRefusesAnotherJob(t *testing.T) {
	m := testModule(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "b.prso")
	hdr := &perso.Header{Created: time.Unix(1764000000, 0), Issuer: hsmtest.Issuer, KEKs: []perso.KEKCheck{{KEK: hsmtest.KEK}}}
	fw, err := perso.CreateResumable(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	app := &testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}
	job := &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK, Counter: &perso.Counter{Prefix: "4761739", Length: 16, Next: 500}, CheckpointEvery: 5, Checkpoint: fw.Checkpoint}
	preparer(m).Run(context.Background(), job, counterInput(t, 30), &crashingSink{w: fw, limit: 12})
	rw, cp, err := perso.ResumeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Abort()
	job.Resume, job.Checkpoint = cp, rw.Checkpoint
	job.Counter = &perso.Counter{Prefix: "4761739", Length: 16, Next: 900} // not the job that was interrupted
	if _, err := preparer(m).Run(context.Background(), job, counterInput(t, 30), rw); err == nil {
		t.Error("a resumed run with another counter start was accepted")
	}
}

// TestPersonalizationResume simulates a run killed while a station held
// record 5: the audit log has records 0-2, the journal says 3 and 4 ended
// and 5 started. The resumed run logs 3 and 4 from the journal, logs 5 as
// failed without a card, and personalizes only 6 and after.
func TestPersonalizationResume(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV("none")
	if err != nil {
		t.Fatal(err)
	}
	path := prepareBatch(t, s, 9, e)
	var journal bytes.Buffer
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	p.Journal = &journal
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := p.Run(context.Background(), f, vcard.NewStation("A", false, cardConfig(perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{}))); err != nil {
		t.Fatal(err)
	}
	full := auditLines(t, audit)

	// What a run killed during record 5 leaves: three audit lines (records
	// 3 and 4 ended while the writer waited), the journal up to the start
	// of 5, and half a line.
	var cutAudit bytes.Buffer
	for _, l := range bytes.SplitAfter(audit.Bytes(), []byte("\n"))[:3] {
		cutAudit.Write(l)
	}
	var cutJournal bytes.Buffer
	for _, l := range bytes.SplitAfter(journal.Bytes(), []byte("\n")) {
		cutJournal.Write(l)
		if bytes.Contains(l, []byte(`"event":"start","index":5`)) {
			break
		}
	}
	cutJournal.WriteString(`{"event":"end","ind`)
	rs, err := perso.ReadResumeState(bytes.NewReader(cutAudit.Bytes()), bytes.NewReader(cutJournal.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	p2, _, audit2 := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	p2.Resume = rs
	st := vcard.NewStation("B", true, cardConfig(perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{}))
	f.Seek(0, io.SeekStart)
	sum, err := p2.Run(context.Background(), f, st)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Cards()); n != 3 {
		t.Errorf("resumed run touched %d cards, want 3 (records 6, 7, 8)", n)
	}
	got := auditLines(t, audit2)
	if len(got) != 6 || sum.Records != 6 {
		t.Fatalf("resumed run logged %d records (summary %+v), want 6", len(got), sum)
	}
	for i, l := range got {
		idx := i + 3
		want := perso.OutcomePersonalized
		if idx == 5 {
			want = perso.OutcomeFailed
		}
		if l.Index != idx || l.Outcome != want {
			t.Errorf("resumed audit line %d: %+v, want record %d %s", i, l, idx, want)
		}
		if idx == 3 && l.Card != full[3].Card {
			t.Errorf("record 3 logged from the journal as %+v, want %+v", l, full[3])
		}
	}
}
