//go:build cgo

package perso_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/pcsc"
	"github.com/cardperso/perso/reader/pcsc/pcsctest"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

// The tests and benchmarks of this file personalize virtual cards through
// a real PC/SC stack: pcscd with vsmartcard's vpcd readers (see package
// pcsctest), one pcsc.Station per reader, fed with fresh virtual cards.

// pcscFeed makes the cards fed through the vpcd readers, in feed order
// across the readers, with the fault of the card of index faulty.
type pcscFeed struct {
	scp    perso.SCP
	faulty int
	fault  vcard.Fault

	mu    sync.Mutex
	cards []*vcard.Card
}

func (f *pcscFeed) next() (*vcard.Card, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, err := cardConfig(f.scp, vcard.Fault{})(len(f.cards))
	if err != nil {
		return nil, err
	}
	if len(f.cards) == f.faulty {
		cfg.Fault = f.fault
	}
	c, err := vcard.New(cfg)
	if err != nil {
		return nil, err
	}
	f.cards = append(f.cards, c)
	return c, nil
}

func (f *pcscFeed) fed() []*vcard.Card {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cards)
}

// pcscStations makes a station with a feeder on each vpcd reader; the
// readers are emptied when the test ends.
func pcscStations(t testing.TB, rs []pcsctest.Reader, feed *pcscFeed) ([]perso.Station, []*vcard.VPCD) {
	t.Helper()
	var sts []perso.Station
	var vs []*vcard.VPCD
	for i, r := range rs {
		v := vcard.NewVPCD(r.Addr)
		t.Cleanup(func() { pcsctest.TakeOut(t, r, v) })
		st, err := pcsc.NewStation(pcsc.StationConfig{
			Reader: r.Name,
			Name:   fmt.Sprintf("chip %d", i+1),
			Feeder: &vcard.VPCDFeeder{Reader: v, Next: feed.next},
			Wait:   20 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		})
		sts, vs = append(sts, st), append(vs, v)
	}
	return sts, vs
}

// pcscBatch prepares a batch of n cards with a DDA EMV application and a
// purse.
func pcscBatch(t testing.TB, n int) (*demo.Setup, string) {
	t.Helper()
	s := demoSetup(t)
	e, err := s.EMV(emv.ODADDA)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	return s, prepareBatch(t, s, n, e, pv)
}

func TestPCSCPersonalizeParallel(t *testing.T) {
	rs := pcsctest.VPCD(t, 2)
	const n = 8
	s, path := pcscBatch(t, n)
	scp := perso.SCP{Version: 2, Param: 0x55}
	p, machine, audit := personalizer(t, s, scp, perso.LevelCMACCDEC)

	// The third card fed is pulled out at its 9th APDU, in the middle of
	// its first application's STORE DATA commands.
	const pullAt = 9
	feed := &pcscFeed{scp: scp, faulty: 2, fault: vcard.Fault{At: pullAt, Kind: vcard.FaultRemove}}
	sts, vs := pcscStations(t, rs, feed)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := p.Run(context.Background(), f, sts...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Records != n || sum.Personalized != n-1 || sum.Failed != 1 || sum.Rejected != 0 {
		t.Fatalf("summary %+v, want %d personalized and 1 failed", sum, n-1)
	}

	// The audit log: in record order, both stations at work, the pulled
	// card's record failed at the APDU where it went, as a removed card.
	lines := auditLines(t, audit)
	stations := map[string]int{}
	var failed []perso.AuditEntry
	pans := map[string]bool{}
	for i, l := range lines {
		if l.Index != i {
			t.Errorf("audit line %d has index %d", i, l.Index)
		}
		stations[l.Station]++
		switch l.Outcome {
		case perso.OutcomeFailed:
			failed = append(failed, l)
		case perso.OutcomePersonalized:
			pans[l.PAN] = true
		default:
			t.Errorf("audit line %d: %+v", i, l)
		}
	}
	if len(stations) != 2 {
		t.Errorf("records per station %v, want both stations used", stations)
	}
	if len(failed) != 1 || failed[0].APDU != pullAt || failed[0].APDUs != pullAt || !strings.Contains(failed[0].Reason, "card removed") {
		t.Fatalf("failed records %+v, want one removed card at APDU %d", failed, pullAt)
	}
	t.Logf("the pulled card's record: %s", failed[0].Reason)
	if got := len(machine.Lines()); got != 2*n {
		t.Errorf("%d machine module lines, want %d (emboss and stripe for every record, before the chip)", got, 2*n)
	}

	// Every record had a card of its own: the pulled card holds nothing,
	// the others are personalized, each with one record.
	cards := feed.fed()
	if len(cards) != n {
		t.Fatalf("%d cards fed for %d records", len(cards), n)
	}
	for i, c := range cards {
		for _, a := range c.Applets() {
			if want := i != 2; (a.State == vcard.Personalized) != want {
				t.Errorf("card %d: applet %X is %v", i, a.AID, a.State)
			}
		}
	}

	// Each personalized card, back in a reader, passes a terminal's
	// checks through PC/SC, EMV and purse, and holds a PAN of its own.
	purseKeys := pcscPurseKeys(t, s)
	c, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A reader the batch left a card in (the pulled card left the other
	// empty, if it was the last of its reader).
	in := 0
	if vs[0].Card() == nil {
		in = 1
	}
	seen := map[string]bool{}
	for i, card := range cards {
		if i == 2 {
			continue
		}
		if _, err := vs[in].Swap(card); err != nil {
			t.Fatal(err)
		}
		k, err := c.Connect(rs[in].Name, pcsc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Begin(); err != nil {
			t.Fatal(err)
		}
		r, err := emv.VerifyCard(context.Background(), k, emv.Options{
			CAKeys:   []perso.CAPublicKey{s.CAKey},
			Deriver:  s.Module,
			ACMaster: demo.IMKAC,
			Rand:     rand.NewChaCha8([32]byte{byte(i)}),
		})
		if err != nil {
			k.Close(pcsc.Unpower)
			t.Fatalf("card %d: EMV: %v", i, err)
		}
		pr, err := vsvc.VerifyPurse(context.Background(), k, vsvc.Options{
			CAKeys: []perso.CAPublicKey{s.CAKey},
			Keys:   purseKeys,
			Rand:   rand.NewChaCha8([32]byte{byte(i), 1}),
		})
		if cerr := k.Close(pcsc.Unpower); cerr != nil {
			t.Error(cerr)
		}
		if err != nil {
			t.Fatalf("card %d: purse: %v", i, err)
		}
		if r.ODA != emv.ODADDA || r.ATC != 1 {
			t.Errorf("card %d: ODA %s, ATC %d; want DDA on a fresh card", i, r.ODA, r.ATC)
		}
		if !pans[r.PAN] || seen[r.PAN] || pr.PAN != r.PAN {
			t.Errorf("card %d: PAN %s (purse %s) is not one personalized record's, or is on two cards", i, r.PAN, pr.PAN)
		}
		seen[r.PAN] = true
	}
}

// pcscPurseKEK protects the purse MAC keys that vsvc.ModuleKeys derives to
// load the purses it checks: a 3DES KEK, made once in the shared
// demonstration module.
var (
	pcscPurseKEK  = perso.KEKID{Issuer: demo.IssuerID, Version: 0x29, Scheme: perso.SchemeDES3ECB}
	pcscPurseOnce sync.Once
	pcscPurseErr  error
)

func pcscPurseKeys(t testing.TB, s *demo.Setup) vsvc.PurseKeys {
	t.Helper()
	pcscPurseOnce.Do(func() { _, pcscPurseErr = s.Module.GenerateKEK(pcscPurseKEK) })
	if pcscPurseErr != nil {
		t.Fatal(pcscPurseErr)
	}
	return vsvc.ModuleKeys{Deriver: s.Module, Protector: s.Module, KML: demo.KML, KMU: demo.KMU, KEK: pcscPurseKEK}
}

// BenchmarkPCSCPersonalize personalizes batches through pcscd on one and
// two vpcd readers and reports cards per second, the time per card (the
// batch's time over its cards), and the floor it is measured against: the
// card's APDU count times the median APDU round trip through pcscd
// (measured on the same stack, on the card a first batch left in the
// first reader). pcscd serializes the calls to the
// two vpcd readers, which are slots of one reader whose driver does not
// declare them thread safe (TAG_IFD_SLOT_THREAD_SAFE): two vpcd readers
// share one floor, and only the host's work overlaps.
//
//	go test -run - -bench PCSCPersonalize .
func BenchmarkPCSCPersonalize(b *testing.B) {
	rs := pcsctest.VPCD(b, 2)
	const n = 16
	s, path := pcscBatch(b, n)
	scp := perso.SCP{Version: 2, Param: 0x55}
	// The same batch on in-process virtual cards: the host's and the
	// cards' own work, without a transport.
	b.Run("in-process", func(b *testing.B) {
		p, _, _ := personalizer(b, s, scp, perso.LevelCMACCDEC)
		p.Audit = nil
		st := vcard.NewStation("in-process", false, cardConfig(scp, vcard.Fault{}))
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var cards int
		var elapsed time.Duration
		for b.Loop() {
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
			sum, err := p.Run(context.Background(), f, st)
			if err != nil || sum.Personalized != n {
				b.Fatalf("Run: %+v, %v", sum, err)
			}
			cards += sum.Personalized
			elapsed += sum.Elapsed
		}
		b.ReportMetric(float64(cards)/elapsed.Seconds(), "cards/s")
		b.ReportMetric(elapsed.Seconds()*1e3/float64(cards), "ms/card")
	})
	for _, readers := range []int{1, 2} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			p, _, _ := personalizer(b, s, scp, perso.LevelCMACCDEC)
			p.Audit = nil
			plain, _ := pcscStations(b, rs[:readers], &pcscFeed{scp: scp, faulty: -1})
			var t sessionTimes
			sts := t.wrap(plain)
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			run := func() *perso.PersoSummary {
				if _, err := f.Seek(0, 0); err != nil {
					b.Fatal(err)
				}
				sum, err := p.Run(context.Background(), f, sts...)
				if err != nil || sum.Personalized != n {
					b.Fatalf("Run: %+v, %v", sum, err)
				}
				return sum
			}
			// A first batch puts a card in each reader, which pcscd sees
			// at its next poll; the batches measured swap cards in place.
			// The round trip is measured on the card the batch left.
			run()
			rtt := pcscRoundTrip(b, rs[0].Name)
			t = sessionTimes{}
			var cards, apdus int
			var elapsed time.Duration
			for b.Loop() {
				sum := run()
				cards += sum.Personalized
				apdus += sum.APDUs
				elapsed += sum.Elapsed
			}
			perCard := elapsed.Seconds() / float64(cards)
			floor := float64(apdus) / float64(cards) * rtt.Seconds()
			b.ReportMetric(float64(cards)/elapsed.Seconds(), "cards/s")
			b.ReportMetric(perCard*1e3, "ms/card")
			b.ReportMetric(float64(apdus)/float64(cards), "APDUs/card")
			b.ReportMetric(floor*1e3, "floor-ms/card")
			b.ReportMetric(perCard/floor, "x-floor")
			b.ReportMetric(float64(t.apdus.Load())/1e6/float64(cards), "exchanges-ms/card")
			b.ReportMetric(float64(t.station.Load())/1e6/float64(cards), "insert+eject-ms/card")
		})
	}
}

// sessionTimes sums, over the cards of stations it wraps, the time spent
// in the cards' exchanges (Transmit) and in Insert and Eject, which with
// the host's own work make up a card's time.
type sessionTimes struct {
	apdus, station atomic.Int64 // nanoseconds
}

func (t *sessionTimes) wrap(sts []perso.Station) []perso.Station {
	out := make([]perso.Station, len(sts))
	for i, st := range sts {
		out[i] = timedStation{st, t}
	}
	return out
}

type timedStation struct {
	perso.Station
	t *sessionTimes
}

func (s timedStation) Insert(ctx context.Context) (perso.Transport, error) {
	t0 := time.Now()
	tr, err := s.Station.Insert(ctx)
	s.t.station.Add(int64(time.Since(t0)))
	if err != nil {
		return nil, err
	}
	return timedTransport{tr, s.t}, nil
}

func (s timedStation) Eject(tr perso.Transport, ok bool) error {
	t0 := time.Now()
	err := s.Station.Eject(tr.(timedTransport).Transport, ok)
	s.t.station.Add(int64(time.Since(t0)))
	return err
}

type timedTransport struct {
	perso.Transport
	t *sessionTimes
}

func (x timedTransport) Transmit(cmd []byte) ([]byte, error) {
	t0 := time.Now()
	r, err := x.Transport.Transmit(cmd)
	x.t.apdus.Add(int64(time.Since(t0)))
	return r, err
}

// pcscRoundTrip returns the median round trip of a short APDU through
// pcscd to the card in the reader.
func pcscRoundTrip(b *testing.B, reader string) time.Duration {
	b.Helper()
	c, err := pcsc.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	k, err := c.Connect(reader, pcsc.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close(pcsc.Unpower)
	cmd := []byte{0x80, 0xCA, 0x9F, 0x7F, 0x00} // GET DATA, CPLC
	d := make([]time.Duration, 1000)
	for i := range d {
		t0 := time.Now()
		if _, err := k.Transmit(cmd); err != nil {
			b.Fatal(err)
		}
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	b.Logf("APDU round trip through pcscd: median %v, p99 %v", d[len(d)/2], d[len(d)*99/100])
	return d[len(d)/2]
}
