package perso_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

var (
	demoOnce sync.Once
	demoSet  *demo.Setup
	demoErr  error
)

func demoSetup(t testing.TB) *demo.Setup {
	t.Helper()
	demoOnce.Do(func() {
		demoSet, demoErr = demo.New(demo.Options{Seed: []byte("personalize tests"), CABits: 1408, IssuerBits: 1152, ICCBits: 768})
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoSet
}

// prepareBatch prepares n cards with the given profiles into a batch file
// and returns its path.
func prepareBatch(t testing.TB, s *demo.Setup, n int, apps ...perso.Application) string {
	t.Helper()
	var names []string
	for _, a := range apps {
		names = append(names, a.Name())
	}
	path := filepath.Join(t.TempDir(), "batch.prso")
	fw, err := perso.CreateFile(path, s.Header(names...))
	if err != nil {
		t.Fatal(err)
	}
	src := &sliceSource{}
	for i := 0; i < n; i++ {
		c := &perso.CardData{PAN: pan(i), PSN: 1, Expiry: "301231", Name: "CARD/TEST", ServiceCode: "201", Emboss: []string{"TEST CARD"}}
		r, err := perso.RecordForCard(c)
		if err != nil {
			t.Fatal(err)
		}
		src.recs = append(src.recs, r)
	}
	sum, err := s.Preparer().Run(context.Background(), &perso.Job{Apps: apps, KEK: demo.KEK}, src, fw)
	if err != nil || sum.Written != n {
		fw.Abort()
		t.Fatalf("prepare: %v (%+v)", err, sum)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// cardConfig gives the virtual cards of a test: KMC-diversified SCP02 keys,
// the EMV and purse applets.
func cardConfig(scp perso.SCP, fault vcard.Fault) func(n int) (vcard.Config, error) {
	return func(n int) (vcard.Config, error) {
		kdd := []byte{0, 1, 2, 3, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 8, 9}
		keys := vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS}
		if scp.Version == 3 {
			keys.Method = perso.MethodSCP03KDF
		}
		f := vcard.Fault{}
		if n == 0 {
			f = fault
		}
		return vcard.Config{Keys: keys, KDD: kdd, SCP: scp, EMV: [][]byte{{0xA0, 0, 0, 0, 3, 0x10, 0x10}}, Purse: vsvc.DefaultAID, Fault: f}, nil
	}
}

func personalizer(t testing.TB, s *demo.Setup, scp perso.SCP, level perso.SecurityLevel) (*perso.Personalizer, *perso.RecordingModule, *bytes.Buffer) {
	t.Helper()
	kmc := demo.KMC
	div := perso.MethodCPS
	if scp.Version == 3 {
		kmc, div = demo.KMCAES, perso.MethodSCP03KDF
	}
	chip, err := perso.NewChipModule(perso.ChipConfig{Translator: s.Module, KMC: kmc, Diversification: div, SCP: scp, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	rec := &perso.RecordingModule{}
	var reg perso.Registry
	reg.Register(perso.MICChip, chip)
	reg.Register(perso.MICEmboss, rec)
	reg.Register(perso.MICMagStripe, rec)
	audit := &bytes.Buffer{}
	return &perso.Personalizer{Translator: s.Module, Modules: &reg, Audit: audit}, rec, audit
}

func auditLines(t testing.TB, b *bytes.Buffer) []perso.AuditEntry {
	t.Helper()
	var out []perso.AuditEntry
	dec := json.NewDecoder(bytes.NewReader(b.Bytes()))
	for dec.More() {
		var e perso.AuditEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV(emv.ODADDA)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	path := prepareBatch(t, s, 6, e, pv)
	for _, tc := range []struct {
		name  string
		scp   perso.SCP
		level perso.SecurityLevel
	}{
		{"SCP02-55-CMAC", perso.SCP{Version: 2, Param: 0x55}, perso.LevelCMAC},
		{"SCP02-15-CDEC", perso.SCP{Version: 2, Param: 0x15}, perso.LevelCMACCDEC},
		{"SCP03-70-CDEC", perso.SCP{Version: 3, Param: 0x70}, perso.LevelCMACCDEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, rec, audit := personalizer(t, s, tc.scp, tc.level)
			st1 := vcard.NewStation("A", true, cardConfig(tc.scp, vcard.Fault{}))
			st2 := vcard.NewStation("B", true, cardConfig(tc.scp, vcard.Fault{}))
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sum, err := p.Run(context.Background(), f, st1, st2)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sum.Records != 6 || sum.Personalized != 6 {
				t.Fatalf("summary %+v", sum)
			}
			lines := auditLines(t, audit)
			for i, l := range lines {
				if l.Index != i || l.Outcome != perso.OutcomePersonalized || l.APDUs == 0 || !strings.Contains(l.PAN, "*") {
					t.Errorf("audit line %d: %+v", i, l)
				}
			}
			cards := append(st1.Cards(), st2.Cards()...)
			if len(cards) != 6 {
				t.Fatalf("%d cards ejected", len(cards))
			}
			for _, c := range cards {
				for _, a := range c.Applets() {
					if a.State != vcard.Personalized {
						t.Errorf("applet %X is %v", a.AID, a.State)
					}
				}
			}
			if n := len(rec.Lines()); n != 12 {
				t.Errorf("%d machine module lines, want 12 (emboss and stripe for 6 cards)", n)
			}
		})
	}
}

func TestBadMACRejectedBeforeAnyAPDU(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	path := prepareBatch(t, s, 3, e)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Forge record 1: flip a bit in its EMV application and recompute the
	// file's digest, as an attacker without the MAC key would.
	forged := forgeRecord(t, b, 1)
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	st := vcard.NewStation("A", true, cardConfig(perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{}))
	sum, err := p.Run(context.Background(), bytes.NewReader(forged), st)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Personalized != 2 || sum.Rejected != 1 {
		t.Errorf("summary %+v, want 2 personalized and 1 rejected", sum)
	}
	lines := auditLines(t, audit)
	if lines[1].Outcome != perso.OutcomeRejected || lines[1].APDUs != 0 || !strings.Contains(lines[1].Reason, "MAC") {
		t.Errorf("forged record's audit line: %+v", lines[1])
	}
	if n := len(st.Cards()); n != 2 {
		t.Errorf("%d cards touched, want 2", n)
	}
}

// forgeRecord flips one bit in record i's first application's DGIs and
// rewrites the file with a valid digest.
func forgeRecord(t testing.TB, file []byte, i int) []byte {
	t.Helper()
	r, err := perso.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := perso.NewWriter(&out, r.Header())
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		rec, err := r.Next()
		if err != nil {
			break
		}
		if n == i {
			cd, _ := rec.Chip()
			app := cd.Apps[0]
			d := app.DGIs[0]
			v := append([]byte(nil), d.Value...)
			v[len(v)-1] ^= 0x01
			app.DGIs[0] = perso.DGI{Tag: d.Tag, Value: v}
			app.Raw = nil
			if err := rec.PutApp(&app); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestCardFailsMidSession(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	path := prepareBatch(t, s, 3, e)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	scp := perso.SCP{Version: 2, Param: 0x55}
	st := vcard.NewStation("A", false, cardConfig(scp, vcard.Fault{At: 5, Kind: vcard.FaultRemove}))
	sum, err := p.Run(context.Background(), f, st)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 1 || sum.Personalized != 2 || sum.Records != 3 {
		t.Errorf("summary %+v", sum)
	}
	l := auditLines(t, audit)[0]
	if l.Outcome != perso.OutcomeFailed || l.APDU != 5 {
		t.Errorf("failed card's audit line: %+v (want APDU 5)", l)
	}

	// A card answering an error status word.
	f.Seek(0, 0)
	audit.Reset()
	st = vcard.NewStation("A", false, cardConfig(scp, vcard.Fault{At: 6, Kind: vcard.FaultSW, SW: 0x6A84}))
	if _, err := p.Run(context.Background(), f, st); err != nil {
		t.Fatal(err)
	}
	l = auditLines(t, audit)[0]
	if l.Outcome != perso.OutcomeFailed || l.APDU != 6 || l.SW != "6A84" {
		t.Errorf("audit line: %+v, want SW 6A84 at APDU 6", l)
	}
}

func TestWrongKMCStopsTheCard(t *testing.T) {
	s := demoSetup(t)
	e, _ := s.EMV(emv.ODANone)
	path := prepareBatch(t, s, 1, e)
	f, _ := os.Open(path)
	defer f.Close()
	p, _, audit := personalizer(t, s, perso.SCP{}, perso.LevelCMAC)
	wrong := func(n int) (vcard.Config, error) {
		c, _ := cardConfig(perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{})(n)
		c.Keys.KMC = bytes.Repeat([]byte{0x11}, 16)
		return c, nil
	}
	if _, err := p.Run(context.Background(), f, vcard.NewStation("A", false, wrong)); err != nil {
		t.Fatal(err)
	}
	l := auditLines(t, audit)[0]
	if l.Outcome != perso.OutcomeFailed || !strings.Contains(l.Reason, "authentication") || l.APDUs != 2 {
		t.Errorf("audit line %+v: want a card authentication failure after SELECT and INITIALIZE UPDATE only", l)
	}
}

func TestWrongKEKRefusesTheBatch(t *testing.T) {
	s := demoSetup(t)
	e, _ := s.EMV(emv.ODANone)
	path := prepareBatch(t, s, 2, e)
	other, err := demo.New(demo.Options{Seed: []byte("another bureau"), CABits: 1024, IssuerBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	p, _, _ := personalizer(t, other, perso.SCP{}, perso.LevelCMAC)
	st := vcard.NewStation("A", true, cardConfig(perso.SCP{Version: 2, Param: 0x55}, vcard.Fault{}))
	_, err = p.Run(context.Background(), f, st)
	var be *perso.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Run with the wrong KEK = %v, want a BatchError", err)
	}
	if len(st.Cards()) != 0 {
		t.Error("a card was touched")
	}
}
