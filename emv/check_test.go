package emv_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

// personalizedCard prepares one card with the profile in the issuer's
// module (demoSetup, oneRecord and collect are the profile tests'), as the issuer's data preparation does, and personalizes a
// virtual card with it through the chip module, as the bureau does.
func personalizedCard(t testing.TB, s *demo.Setup, app perso.Application, pan string) *vcard.Card {
	t.Helper()
	ctx := context.Background()
	rec, err := perso.RecordForCard(&perso.CardData{PAN: pan, PSN: 1, Expiry: "301231", Effective: "250101", Name: "CARD/TEST", ServiceCode: "201"})
	if err != nil {
		t.Fatal(err)
	}
	out := &collect{}
	sum, err := s.Preparer().Run(ctx, &perso.Job{Apps: []perso.Application{app}, KEK: demo.KEK, Workers: 1}, &oneRecord{rec: rec}, out)
	if err != nil || sum.Written != 1 {
		t.Fatalf("prepare: %v (%+v)", err, sum)
	}
	chip, err := perso.NewChipModule(perso.ChipConfig{Translator: s.Module, KMC: demo.KMC, Diversification: perso.MethodCPS, Level: perso.LevelCMACCDEC})
	if err != nil {
		t.Fatal(err)
	}
	card, err := vcard.New(vcard.Config{
		Keys: vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS},
		EMV:  [][]byte{visaAID}, Purse: vsvc.DefaultAID,
	})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := out.recs[0].Group(perso.MICChip)
	if err := chip.Personalize(ctx, &perso.Card{Record: out.recs[0], Conn: perso.NewConn(card)}, g); err != nil {
		t.Fatalf("personalize: %v", err)
	}
	return card
}

// testPAN returns a Luhn-valid PAN of the demonstration range with n
// digits, made from seq.
func testPAN(seq, n int) string {
	body := []byte(demo.PANPrefix)
	for len(body) < n-1 {
		body = append(body, '0')
	}
	for i, v := len(body)-1, seq; v > 0 && i >= len(demo.PANPrefix); i, v = i-1, v/10 {
		body[i] = byte('0' + v%10)
	}
	for d := byte('0'); d <= '9'; d++ {
		if p := string(append(body, d)); perso.LuhnValid(p) {
			return p
		}
	}
	panic("no check digit")
}

var visaAID = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}

func options(s *demo.Setup) emv.Options {
	return emv.Options{
		CAKeys:   []perso.CAPublicKey{s.CAKey},
		Deriver:  s.Module,
		ACMaster: demo.IMKAC,
		Now:      time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		Rand:     rand.NewChaCha8([32]byte{1}),
	}
}

func TestVerifyCard(t *testing.T) {
	s := demoSetup(t)
	base := []emv.Step{emv.StepSelect, emv.StepGPO, emv.StepRecords}
	tail := []emv.Step{emv.StepGenerateAC, emv.StepARQC, emv.StepATC, emv.StepCompletion, emv.StepPINCounter}
	cases := []struct {
		oda    emv.ODA
		pan    string
		steps  []emv.Step
		method perso.Method
	}{
		{emv.ODADDA, testPAN(1, 16), []emv.Step{emv.StepIssuerCert, emv.StepICCCert, emv.StepDDA}, 0},
		{emv.ODASDA, testPAN(2, 16), []emv.Step{emv.StepIssuerCert, emv.StepSDA}, 0},
		{emv.ODANone, testPAN(3, 16), nil, 0},
		// A 19-digit PAN: option B.
		{emv.ODADDA, testPAN(4, 19), []emv.Step{emv.StepIssuerCert, emv.StepICCCert, emv.StepDDA}, 0},
	}
	for _, tc := range cases {
		t.Run(string(tc.oda)+"/"+tc.pan, func(t *testing.T) {
			p, err := s.EMV(tc.oda)
			if err != nil {
				t.Fatal(err)
			}
			card := personalizedCard(t, s, p, tc.pan)
			r, err := emv.VerifyCard(context.Background(), card, options(s))
			if err != nil {
				t.Fatalf("VerifyCard: %v", err)
			}
			want := append(append(append([]emv.Step(nil), base...), tc.steps...), tail...)
			if diff := cmp.Diff(want, r.Checked); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if r.ODA != tc.oda || r.ATC != 1 || r.CID != 0x80 || len(r.ARQC) != 8 || r.PINTryCounter != 3 || r.PSN != 1 {
				t.Errorf("report %+v", r)
			}
			if !strings.Contains(r.PAN, "*") || r.PAN[:6] != tc.pan[:6] {
				t.Errorf("PAN %q is not masked", r.PAN)
			}
			if tc.oda == emv.ODADDA && (r.ICCKeyBits != 1024 || r.IssuerKeyBits != 1152 || len(r.ICCDynamicNumber) != 8) {
				t.Errorf("DDA report: ICC %d bits, issuer %d bits, IDN %v", r.ICCKeyBits, r.IssuerKeyBits, r.ICCDynamicNumber)
			}
			if tc.oda == emv.ODASDA && len(r.DAC) != 2 {
				t.Errorf("DAC %X", r.DAC)
			}
			// A second check: the ATC moves on.
			r2, err := emv.VerifyCard(context.Background(), card, options(s))
			if err != nil || r2.ATC != 2 {
				t.Errorf("second VerifyCard: ATC %d, %v", r2.ATC, err)
			}
		})
	}
}

// stepOf returns the step a VerifyCard error names.
func stepOf(t *testing.T, err error) emv.Step {
	t.Helper()
	var ce *emv.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CheckError", err)
	}
	if want := "emv: check " + string(ce.Step) + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	return ce.Step
}

func TestVerifyCardFailures(t *testing.T) {
	s := demoSetup(t)
	dda, err := s.EMV(emv.ODADDA)
	if err != nil {
		t.Fatal(err)
	}
	card := personalizedCard(t, s, dda, testPAN(5, 16))
	ctx := context.Background()
	cases := []struct {
		name string
		edit func(o *emv.Options)
		step emv.Step
		is   error
	}{
		{"wrong AC master key", func(o *emv.Options) { o.ACMaster = demo.IMKSMI }, emv.StepARQC, emv.ErrCryptogram},
		{"wrong derivation method", func(o *emv.Options) { o.Method = perso.MethodEMVOptionB + 10 }, emv.StepARQC, nil},
		{"no CA key", func(o *emv.Options) { o.CAKeys = nil }, emv.StepIssuerCert, emv.ErrNoCAKey},
		{"CA key of another index", func(o *emv.Options) {
			k := s.CAKey
			k.Index++
			o.CAKeys = []perso.CAPublicKey{k}
		}, emv.StepIssuerCert, emv.ErrNoCAKey},
		{"another CA's key", func(o *emv.Options) {
			k := s.CAKey
			k.Key = s.IssuerPublicKey()
			o.CAKeys = []perso.CAPublicKey{k}
		}, emv.StepIssuerCert, nil},
		{"certificates expired", func(o *emv.Options) { o.Now = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC) }, emv.StepIssuerCert, perso.ErrCertExpired},
		{"application not on the card", func(o *emv.Options) { o.AID = []byte{0xA0, 0, 0, 0, 4, 0x10, 0x10} }, emv.StepSelect, perso.ErrFileNotFound},
		{"no key deriver", func(o *emv.Options) { o.Deriver = nil }, "options", perso.ErrBadInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := options(s)
			tc.edit(&o)
			_, err := emv.VerifyCard(ctx, card, o)
			if err == nil {
				t.Fatal("VerifyCard succeeded")
			}
			if got := stepOf(t, err); got != tc.step {
				t.Errorf("step %q, want %q (%v)", got, tc.step, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	// RequireODA refuses a card without it.
	none, err := s.EMV(emv.ODANone)
	if err != nil {
		t.Fatal(err)
	}
	o := options(s)
	o.RequireODA = true
	_, err = emv.VerifyCard(ctx, personalizedCard(t, s, none, testPAN(6, 16)), o)
	if !errors.Is(err, emv.ErrNoODA) {
		t.Errorf("RequireODA on a card without ODA: %v", err)
	}
	// A card that is not personalized.
	blank, err := vcard.New(vcard.Config{Keys: vcard.Keys{KMC: demo.KMCValue}, EMV: [][]byte{visaAID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emv.VerifyCard(ctx, blank, options(s)); stepOf(t, err) != emv.StepSelect {
		t.Errorf("blank card: %v", err)
	}
	// A cancelled context stops the check.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := emv.VerifyCard(cctx, card, options(s)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// tamperedCard is a card whose answers to one command are altered, as a
// faulty or counterfeit card's would be.
type tamperedCard struct {
	perso.Transport
	ins  byte
	edit func([]byte) []byte
}

func (c tamperedCard) Transmit(cmd []byte) ([]byte, error) {
	r, err := c.Transport.Transmit(cmd)
	if err == nil && len(cmd) > 1 && cmd[1] == c.ins && len(r) > 2 {
		r = c.edit(bytes.Clone(r))
	}
	return r, err
}

func TestVerifyCardTampered(t *testing.T) {
	s := demoSetup(t)
	flipAt := func(i int) func([]byte) []byte {
		return func(b []byte) []byte {
			b[len(b)-3-i] ^= 0x01 // the i-th data byte from the end
			return b
		}
	}
	for _, tc := range []struct {
		name string
		oda  emv.ODA
		ins  byte
		edit func([]byte) []byte
		step emv.Step
		is   error
	}{
		{"signed dynamic data", emv.ODADDA, 0x88, flipAt(5), emv.StepDDA, nil},
		{"cryptogram", emv.ODADDA, 0xAE, flipAt(10), emv.StepARQC, emv.ErrCryptogram},
		{"static data", emv.ODASDA, 0xB2, func(b []byte) []byte {
			if i := bytes.Index(b, []byte("CARD/TEST")); i >= 0 {
				b[i] = 'X'
			}
			return b
		}, emv.StepSDA, perso.ErrCertHash},
		{"AIP", emv.ODADDA, 0xA8, func(b []byte) []byte {
			if i := bytes.Index(b, []byte{0x82, 0x02}); i >= 0 {
				b[i+3] ^= 0x01
			}
			return b
		}, emv.StepICCCert, perso.ErrCertHash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.EMV(tc.oda)
			if err != nil {
				t.Fatal(err)
			}
			card := personalizedCard(t, s, p, testPAN(7, 16))
			_, err = emv.VerifyCard(context.Background(), tamperedCard{card, tc.ins, tc.edit}, options(s))
			if err == nil {
				t.Fatal("VerifyCard accepted a tampered card")
			}
			if got := stepOf(t, err); got != tc.step {
				t.Errorf("step %q, want %q (%v)", got, tc.step, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
		})
	}
}

// BenchmarkVerifyCard runs the whole check on a DDA card: SELECT, GPO,
// records, both certificates, INTERNAL AUTHENTICATE, two GENERATE ACs
// verified in the software module.
func BenchmarkVerifyCard(b *testing.B) {
	s := demoSetup(b)
	p, err := s.EMV(emv.ODADDA)
	if err != nil {
		b.Fatal(err)
	}
	card := personalizedCard(b, s, p, testPAN(8, 16))
	o := options(s)
	b.ReportAllocs()
	apdus := 0
	for b.Loop() {
		r, err := emv.VerifyCard(context.Background(), card, o)
		if err != nil {
			b.Fatal(err)
		}
		apdus = r.APDUs
	}
	b.ReportMetric(float64(apdus), "APDUs/check")
}

// recordedCard answers with the responses it was given, in order, then
// 6F00: a card whose answers a fuzzer chooses.
type recordedCard struct{ resps [][]byte }

func (c *recordedCard) Transmit([]byte) ([]byte, error) {
	if len(c.resps) == 0 {
		return []byte{0x6F, 0x00}, nil
	}
	r := c.resps[0]
	c.resps = c.resps[1:]
	return r, nil
}

// responseLog keeps a card's responses.
type responseLog struct {
	perso.Transport
	resps [][]byte
}

func (l *responseLog) Transmit(cmd []byte) ([]byte, error) {
	r, err := l.Transport.Transmit(cmd)
	l.resps = append(l.resps, bytes.Clone(r))
	return r, err
}

// frame encodes responses as a fuzz input: 2-byte length, bytes.
func frame(resps [][]byte) []byte {
	var out []byte
	for _, r := range resps {
		out = append(out, byte(len(r)>>8), byte(len(r)))
		out = append(out, r...)
	}
	return out
}

func unframe(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := min(int(b[0])<<8|int(b[1]), len(b)-2)
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// FuzzVerifyCard runs the check against a card whose every answer the
// fuzzer makes, from the answers of real DDA and SDA cards: it must return
// a report and never panic.
func FuzzVerifyCard(f *testing.F) {
	s := demoSetup(f)
	for i, oda := range []emv.ODA{emv.ODADDA, emv.ODASDA} {
		p, err := s.EMV(oda)
		if err != nil {
			f.Fatal(err)
		}
		l := &responseLog{Transport: personalizedCard(f, s, p, testPAN(20+i, 16))}
		if _, err := emv.VerifyCard(context.Background(), l, options(s)); err != nil {
			f.Fatal(err)
		}
		f.Add(frame(l.resps))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, _ := emv.VerifyCard(context.Background(), &recordedCard{resps: unframe(in)}, options(s))
		if r == nil {
			t.Fatal("no report")
		}
	})
}
