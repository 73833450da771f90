package perso_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
	"github.com/cardperso/perso/hsm/soft"
)

// testApp is a small application profile: one derived key, one clear DGI.
type testApp struct {
	name string
	aid  []byte
	fail func(card *perso.CardData) error
}

func (a *testApp) Name() string { return a.name }

func (a *testApp) Build(ctx context.Context, env *perso.Env, card *perso.CardData) (*perso.App, error) {
	if a.fail != nil {
		if err := a.fail(card); err != nil {
			return nil, err
		}
	}
	k, err := env.Deriver.Derive(ctx, perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(card.PAN, card.PSN), KEK: env.KEK})
	if err != nil {
		return nil, err
	}
	s, err := perso.SealKeysOf(k)
	if err != nil {
		return nil, err
	}
	app := &perso.App{AID: a.aid}
	app.AddDGI(0x0101, []byte(card.PAN))
	app.AddSecret(0x8000, s)
	app.AddDGI(0x9000, k.KCV[:])
	return app, nil
}

func testModule(t testing.TB) *soft.Module {
	t.Helper()
	m, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("prepare")))
	if err != nil {
		t.Fatal(err)
	}
	hsmtest.Load(t, m)
	return m
}

func preparer(m *soft.Module) *perso.Preparer {
	return &perso.Preparer{Deriver: m, Certifier: m, Protector: m}
}

// sliceSource is a RecordSource over records in memory.
type sliceSource struct {
	recs []*perso.Record
	errs map[int]error
	i    int
}

func (s *sliceSource) Next() (*perso.Record, error) {
	if s.i >= len(s.recs) {
		return nil, io.EOF
	}
	i := s.i
	s.i++
	if err, ok := s.errs[i]; ok {
		return nil, err
	}
	return s.recs[i], nil
}

type sliceSink struct {
	recs     []*perso.Record
	counters map[string]uint64
}

func (s *sliceSink) Write(r *perso.Record) error { s.recs = append(s.recs, r); return nil }
func (s *sliceSink) SetCounter(name string, v uint64) {
	if s.counters == nil {
		s.counters = map[string]uint64{}
	}
	s.counters[name] = v
}

type rejects struct{ list []perso.Reject }

func (r *rejects) Reject(x perso.Reject) error { r.list = append(r.list, x); return nil }

func cardRecord(t testing.TB, pan string, extra ...perso.Group) *perso.Record {
	t.Helper()
	c := &perso.CardData{PAN: pan, PSN: 1, Expiry: "291231", Name: "TEST/CARD", ServiceCode: "201"}
	r, err := perso.RecordForCard(c)
	if err != nil {
		t.Fatal(err)
	}
	r.Groups = append(r.Groups, extra...)
	return r
}

// pan returns the i-th test PAN, Luhn-valid.
func pan(i int) string {
	body := fmt.Sprintf("476173900%06d", i)
	return body + string(perso.LuhnDigit(body))
}

func TestPreparerOrderAndAccounting(t *testing.T) {
	m := testModule(t)
	const n = 500
	src := &sliceSource{errs: map[int]error{}}
	for i := 0; i < n; i++ {
		src.recs = append(src.recs, cardRecord(t, pan(i), perso.Group{MIC: 0xC3, Data: []byte{byte(i >> 8), byte(i)}}))
	}
	// Bad records: a Luhn failure, a duplicate, an unknown application,
	// an input error, a profile rejection.
	src.recs[10] = cardRecord(t, "4761739000000011")
	src.recs[20] = cardRecord(t, pan(19))
	src.recs[30] = func() *perso.Record {
		c := &perso.CardData{PAN: pan(30), Expiry: "291231", Apps: []string{"loyalty"}}
		r, _ := perso.RecordForCard(c)
		return r
	}()
	src.errs[40] = &perso.InputError{Line: 41, Column: "pan", Err: errors.New("not digits")}
	app := &testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}, fail: func(c *perso.CardData) error {
		if c.PAN == pan(50) {
			return &perso.FieldError{Field: "x", Reason: "refused"}
		}
		return nil
	}}
	var rj rejects
	var progress atomic.Int32
	job := &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK, Workers: 4, Rejects: &rj,
		Progress: func(perso.Progress) { progress.Add(1) }}
	dst := &sliceSink{}
	sum, err := preparer(m).Run(context.Background(), job, src, dst)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Read != n || sum.Written != n-5 || sum.Rejected != 5 {
		t.Errorf("summary = %+v, want %d read, %d written, 5 rejected", sum, n, n-5)
	}
	var idx []int
	for _, r := range rj.list {
		idx = append(idx, r.Index)
	}
	if diff := cmp.Diff([]int{10, 20, 30, 40, 50}, idx); diff != "" {
		t.Errorf("rejected indexes (-want +got):\n%s", diff)
	}
	for _, r := range rj.list {
		if strings.Contains(r.Reason, pan(r.Index)[6:12]) {
			t.Errorf("reject reason shows an unmasked PAN: %s", r.Reason)
		}
	}
	if rj.list[3].Line != 41 {
		t.Errorf("input error line = %d, want 41", rj.list[3].Line)
	}
	// Output order is input order; the bureau group passes through.
	var order []int
	for i := 0; i < n; i++ {
		if i%10 != 0 || i == 0 || i > 50 {
			order = append(order, i)
		}
	}
	var got []int
	for _, r := range dst.recs {
		if g, ok := r.Group(0xC3); ok && len(g.Data) == 2 {
			got = append(got, int(g.Data[0])<<8|int(g.Data[1]))
		}
		cd, err := r.Chip()
		if err != nil || cd == nil || len(cd.Apps) != 1 {
			t.Fatalf("chip data: %v", err)
		}
	}
	if diff := cmp.Diff(order, got); diff != "" {
		t.Errorf("output order or bureau groups (-want +got):\n%s", diff)
	}
	if progress.Load() == 0 {
		t.Error("no progress reported")
	}
}

func TestPreparerMACAndKeys(t *testing.T) {
	m := testModule(t)
	ctx := context.Background()
	app := &testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}
	src := &sliceSource{recs: []*perso.Record{cardRecord(t, pan(1))}}
	dst := &sliceSink{}
	if _, err := preparer(m).Run(ctx, &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK}, src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := dst.recs[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := perso.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	cd, _ := rec.Chip()
	a := cd.Apps[0]
	in, _ := a.MACInput()
	if err := m.VerifyMAC(ctx, a.MACKey, in, a.MAC); err != nil {
		t.Fatalf("MAC: %v", err)
	}
	d, _ := a.DGI(0x8000)
	clear, err := m.Open(ctx, a.KEK, perso.Sealed(d.Value))
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := m.Derive(ctx, perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(pan(1), 1), KEK: hsmtest.KEK})
	want, _ := m.OpenKey(ctx, pk)
	if !bytes.Equal(clear, want) {
		t.Error("sealed key differs from option A for the card")
	}
	// Every single-bit flip in the application's MAC input fails the MAC.
	for i := 0; i < len(in); i++ {
		bad := append([]byte(nil), in...)
		bad[i] ^= 0x01
		if err := m.VerifyMAC(ctx, a.MACKey, bad, a.MAC); !errors.Is(err, perso.ErrBadMAC) && err == nil {
			t.Fatalf("flipped bit at %d passed the MAC", i)
		}
	}
}

func TestPreparerCounter(t *testing.T) {
	m := testModule(t)
	src := &sliceSource{}
	for i := 0; i < 20; i++ {
		r, err := perso.RecordForCard(&perso.CardData{Expiry: "291231", ServiceCode: "201"})
		if err != nil {
			t.Fatal(err)
		}
		src.recs = append(src.recs, r)
	}
	job := &perso.Job{Apps: []perso.Application{&testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}}, KEK: hsmtest.KEK,
		Counter: &perso.Counter{Prefix: "4761739", Length: 16, Next: 100}}
	dst := &sliceSink{}
	sum, err := preparer(m).Run(context.Background(), job, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counter != 120 || dst.counters["pan-counter"] != 120 {
		t.Errorf("counter = %d (sink %d), want 120", sum.Counter, dst.counters["pan-counter"])
	}
	seen := map[string]bool{}
	for i, r := range dst.recs {
		c, err := perso.CardDataOf(r)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("4761739%08d", 100+i)
		if c.PAN[:15] != want || !perso.LuhnValid(c.PAN) || seen[c.PAN] {
			t.Errorf("record %d PAN = %s, want %s plus a check digit, once", i, c.PAN, want)
		}
		seen[c.PAN] = true
	}
}

func TestPreparerStopsOnModuleFailure(t *testing.T) {
	m := testModule(t)
	src := &sliceSource{}
	for i := 0; i < 50; i++ {
		src.recs = append(src.recs, cardRecord(t, pan(i)))
	}
	job := &perso.Job{Apps: []perso.Application{&testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}},
		KEK: perso.KEKID{Issuer: hsmtest.Issuer, Version: 77, Scheme: perso.SchemeAESKW}}
	sum, err := preparer(m).Run(context.Background(), job, src, &sliceSink{})
	var re *perso.RecordError
	if !errors.As(err, &re) || !errors.Is(err, perso.ErrNoSuchKey) || re.Index != 0 {
		t.Fatalf("Run with a missing KEK = %v, want a RecordError for record 0 wrapping ErrNoSuchKey", err)
	}
	if sum.Read != sum.Written+sum.Rejected {
		t.Errorf("summary does not add up: %+v", sum)
	}
}

func TestPreparerStopOnError(t *testing.T) {
	m := testModule(t)
	src := &sliceSource{}
	for i := 0; i < 50; i++ {
		src.recs = append(src.recs, cardRecord(t, pan(i)))
	}
	src.recs[5] = cardRecord(t, "4761739000000011")
	job := &perso.Job{Apps: []perso.Application{&testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}}, KEK: hsmtest.KEK, StopOnError: true}
	dst := &sliceSink{}
	sum, err := preparer(m).Run(context.Background(), job, src, dst)
	var fe *perso.FieldError
	if !errors.As(err, &fe) || fe.Field != "pan" {
		t.Fatalf("Run = %v, want the Luhn failure", err)
	}
	if sum.Written != 5 || sum.Rejected != 1 || len(dst.recs) != 5 {
		t.Errorf("summary %+v, %d written; want 5 written, 1 rejected", sum, len(dst.recs))
	}
}

func TestPreparerCancel(t *testing.T) {
	m := testModule(t)
	src := &sliceSource{}
	for i := 0; i < 5000; i++ {
		src.recs = append(src.recs, cardRecord(t, pan(i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &perso.Job{Apps: []perso.Application{&testApp{name: "t", aid: []byte{0xA0, 0, 0, 0, 0x99, 1}}}, KEK: hsmtest.KEK,
		Progress: func(p perso.Progress) {
			if p.Done > 100 {
				cancel()
			}
		}, ProgressEvery: time.Nanosecond}
	dst := &sliceSink{}
	sum, err := preparer(m).Run(ctx, job, src, dst)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if sum.Written != len(dst.recs) || sum.Read != sum.Written+sum.Rejected || sum.Read >= 5000 {
		t.Errorf("summary %+v with %d records written", sum, len(dst.recs))
	}
	for i, r := range dst.recs {
		c, _ := perso.CardDataOf(r)
		if c.PAN != pan(i) {
			t.Fatalf("record %d is not input record %d: the output is not a prefix", i, i)
		}
	}
}
