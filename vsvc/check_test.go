package vsvc_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

var (
	issuerOnce sync.Once
	issuer     *demo.Setup
	issuerErr  error
	// des3KEK protects the purse keys that ModuleKeys derives.
	des3KEK = perso.KEKID{Issuer: demo.IssuerID, Version: 9, Scheme: perso.SchemeDES3ECB}
)

// purseIssuer is the demonstration issuer with a 3DES KEK for the purse
// MACs.
func purseIssuer(t testing.TB) *demo.Setup {
	t.Helper()
	issuerOnce.Do(func() {
		issuer, issuerErr = demo.New(demo.Options{Seed: []byte("vsvc check tests"), CABits: 1152, IssuerBits: 1024, ICCBits: 768})
		if issuerErr == nil {
			_, issuerErr = issuer.Module.GenerateKEK(des3KEK)
		}
	})
	if issuerErr != nil {
		t.Fatal(issuerErr)
	}
	return issuer
}

func moduleKeys(s *demo.Setup) vsvc.ModuleKeys {
	return vsvc.ModuleKeys{Deriver: s.Module, Protector: s.Module, KML: demo.KML, KMU: demo.KMU, KEK: des3KEK}
}

// purseCard prepares a purse with the given balance for a card, as the
// issuer does (source and sink are the profile tests'), and personalizes
// a virtual card with it through the chip module over SCP03, as the bureau
// does.
func purseCard(t testing.TB, s *demo.Setup, pan string, balance int) *vcard.Card {
	t.Helper()
	ctx := context.Background()
	p, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	cd := &perso.CardData{PAN: pan, Expiry: "301231", Name: "PURSE/TEST", ServiceCode: "201", Fields: map[string]string{"balance": fmt.Sprint(balance)}}
	rec, err := perso.RecordForCard(cd)
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	if sum, err := s.Preparer().Run(ctx, &perso.Job{Apps: []perso.Application{p}, KEK: demo.KEK, Workers: 1}, &source{recs: []*perso.Record{rec}}, out); err != nil || sum.Written != 1 {
		t.Fatalf("prepare: %v (%+v)", err, sum)
	}
	scp := perso.SCP{Version: 3, Param: 0x70}
	chip, err := perso.NewChipModule(perso.ChipConfig{Translator: s.Module, KMC: demo.KMCAES, Diversification: perso.MethodSCP03KDF, SCP: scp, Level: perso.LevelAll, Mode: perso.StoreAppDependent})
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.New(vcard.Config{Keys: vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodSCP03KDF}, SCP: scp, Purse: vsvc.DefaultAID})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := out.recs[0].Group(perso.MICChip)
	if err := chip.Personalize(ctx, &perso.Card{Record: out.recs[0], Conn: perso.NewConn(c)}, g); err != nil {
		t.Fatalf("personalize: %v", err)
	}
	return c
}

func purseOptions(s *demo.Setup) vsvc.Options {
	return vsvc.Options{
		CAKeys: []perso.CAPublicKey{s.CAKey},
		Keys:   moduleKeys(s),
		Now:    time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		Rand:   rand.NewChaCha8([32]byte{2}),
	}
}

func TestVerifyPurse(t *testing.T) {
	s := purseIssuer(t)
	c := purseCard(t, s, "4761739001010010", 1500)
	o := purseOptions(s)
	o.Update = true
	r, err := vsvc.VerifyPurse(context.Background(), c, o)
	if err != nil {
		t.Fatalf("VerifyPurse: %v", err)
	}
	want := []vsvc.Step{vsvc.StepSelect, vsvc.StepRecords, vsvc.StepIssuerCert, vsvc.StepCardCert, vsvc.StepDDA,
		vsvc.StepBalance, vsvc.StepLoad, vsvc.StepCredit, vsvc.StepNewBalance, vsvc.StepUpdate}
	if diff := cmp.Diff(want, r.Checked); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if r.BalanceBefore != 1500 || r.Amount != 100 || r.BalanceAfter != 1600 || r.NT != 0 || r.MaxBalance != 50000 ||
		r.Currency != "0978" || r.CurrencyExponent != 2 || r.CardKeyBits != 768 || r.IssuerKeyBits != 1024 || r.Label != "VISA CASH" {
		t.Errorf("report %+v", r)
	}
	if !strings.Contains(r.PAN, "*") {
		t.Errorf("PAN %q not masked", r.PAN)
	}
	// The card agrees, and a second check loads again at the next NT (the
	// UPDATE took one).
	st, _ := c.Applet(vsvc.DefaultAID)
	if st.Balance != 1600 || st.NT != 2 {
		t.Errorf("card balance %d NT %d", st.Balance, st.NT)
	}
	o.Amount = 400
	r, err = vsvc.VerifyPurse(context.Background(), c, o)
	if err != nil || r.BalanceAfter != 2000 || r.NT != 2 {
		t.Errorf("second VerifyPurse: %+v, %v", r, err)
	}
	// Up to the maximum, then no room.
	o.Amount = 0
	full := purseCard(t, s, "4761739001010028", 49950)
	if r, err := vsvc.VerifyPurse(context.Background(), full, o); err != nil || r.Amount != 50 || r.BalanceAfter != 50000 {
		t.Errorf("load to the maximum: %+v, %v", r, err)
	}
	if _, err := vsvc.VerifyPurse(context.Background(), full, o); !errors.Is(err, vsvc.ErrFull) {
		t.Errorf("full purse: %v", err)
	}
}

func stepOf(t *testing.T, err error) vsvc.Step {
	t.Helper()
	var ce *vsvc.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a *CheckError", err)
	}
	if want := "vsvc: check " + string(ce.Step) + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	return ce.Step
}

func TestVerifyPurseFailures(t *testing.T) {
	s := purseIssuer(t)
	c := purseCard(t, s, "4761739001010036", 0)
	for _, tc := range []struct {
		name string
		edit func(o *vsvc.Options)
		step vsvc.Step
		is   error
	}{
		{"load key is the update key", func(o *vsvc.Options) {
			k := moduleKeys(s)
			k.KML = demo.KMU
			o.Keys = k
		}, vsvc.StepLoad, vsvc.ErrMAC},
		{"AES KEK for the MACs", func(o *vsvc.Options) {
			k := moduleKeys(s)
			k.KEK = demo.KEK
			o.Keys = k
		}, vsvc.StepLoad, perso.ErrUnsupported},
		{"update key is the load key", func(o *vsvc.Options) {
			k := moduleKeys(s)
			k.KMU = demo.KML
			o.Keys, o.Update = k, true
		}, vsvc.StepUpdate, perso.ErrSecurityStatus},
		{"no CA key", func(o *vsvc.Options) { o.CAKeys = nil }, vsvc.StepIssuerCert, vsvc.ErrNoCAKey},
		{"expired", func(o *vsvc.Options) { o.Now = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC) }, vsvc.StepIssuerCert, perso.ErrCertExpired},
		{"over the maximum", func(o *vsvc.Options) { o.Amount = 50001 }, vsvc.StepLoad, vsvc.ErrFull},
		{"no purse", func(o *vsvc.Options) { o.AID = []byte{0xA0, 0, 0, 0, 3, 0x60, 0x99} }, vsvc.StepSelect, perso.ErrFileNotFound},
		{"no keys", func(o *vsvc.Options) { o.Keys = nil }, "options", perso.ErrBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := purseOptions(s)
			tc.edit(&o)
			_, err := vsvc.VerifyPurse(context.Background(), c, o)
			if err == nil {
				t.Fatal("VerifyPurse succeeded")
			}
			if got := stepOf(t, err); got != tc.step {
				t.Errorf("step %q, want %q (%v)", got, tc.step, err)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
		})
	}
	// Only the load before the refused UPDATE was credited.
	if st, _ := c.Applet(vsvc.DefaultAID); st.Balance != 100 {
		t.Errorf("balance %d after failed checks, want 100", st.Balance)
	}
}

// tampered alters the card's answers to one instruction.
type tampered struct {
	perso.Transport
	ins  byte
	edit func([]byte)
}

func (c tampered) Transmit(cmd []byte) ([]byte, error) {
	r, err := c.Transport.Transmit(cmd)
	if err == nil && len(cmd) > 1 && cmd[1] == c.ins && len(r) > 2 {
		r = bytes.Clone(r)
		c.edit(r)
	}
	return r, err
}

// secondOnly applies edit to the second response it sees only.
func secondOnly(edit func([]byte)) func([]byte) {
	n := 0
	return func(b []byte) {
		if n++; n == 2 {
			edit(b)
		}
	}
}

func TestVerifyPurseTampered(t *testing.T) {
	s := purseIssuer(t)
	c := purseCard(t, s, "4761739001010044", 10)
	for _, tc := range []struct {
		name string
		ins  byte
		edit func([]byte)
		step vsvc.Step
		is   error
	}{
		{"S1", 0x50, func(b []byte) { b[len(b)-3] ^= 1 }, vsvc.StepLoad, vsvc.ErrMAC},
		{"S3", 0x52, func(b []byte) { b[len(b)-3] ^= 1 }, vsvc.StepCredit, vsvc.ErrMAC},
		{"balance in INITIALIZE FOR LOAD", 0x50, func(b []byte) { b[3] ^= 1 }, vsvc.StepLoad, vsvc.ErrBalance},
		{"new balance", 0x5C, secondOnly(func(b []byte) { b[3] ^= 0x80 }), vsvc.StepNewBalance, vsvc.ErrBalance},
		{"parameters", 0xB2, func(b []byte) {
			if i := bytes.Index(b, []byte{0xDF, 0x05, 0x01}); i >= 0 {
				b[i+3] ^= 1
			}
		}, vsvc.StepCardCert, perso.ErrCertHash},
		{"signed dynamic data", 0x88, func(b []byte) { b[10] ^= 1 }, vsvc.StepDDA, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vsvc.VerifyPurse(context.Background(), tampered{c, tc.ins, tc.edit}, purseOptions(s))
			if err == nil {
				t.Fatal("VerifyPurse accepted a tampered card")
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

// TestPurseKeysAgree: the clear-key PurseKeys and the module's compute the
// same MACs for the same KML and KMU.
func TestPurseKeysAgree(t *testing.T) {
	kml, _ := hex.DecodeString("404142434445464748494A4B4C4D4E4F")
	kmu, _ := hex.DecodeString("4F4E4D4C4B4A49484746454443424140")
	m, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("purse keys")))
	if err != nil {
		t.Fatal(err)
	}
	refL, refU := perso.KeyRef{Label: "KML", Version: 1}, perso.KeyRef{Label: "KMU", Version: 1}
	for _, k := range []struct {
		ref perso.KeyRef
		v   []byte
	}{{refL, kml}, {refU, kmu}} {
		if _, err := m.ImportKey(k.ref, perso.KeyDES2, k.v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.GenerateKEK(des3KEK); err != nil {
		t.Fatal(err)
	}
	clear := vsvc.ClearPurseKeys{KML: kml, KMU: kmu}
	mod := vsvc.ModuleKeys{Deriver: m, Protector: m, KML: refL, KMU: refU, KEK: des3KEK}
	iep, _ := hex.DecodeString("4761739001010010FFFF")
	ctx := context.Background()
	for _, data := range [][]byte{{}, []byte("12345678"), []byte("a load MAC over more than one block")} {
		a, err1 := clear.LoadMAC(ctx, iep, data)
		b, err2 := mod.LoadMAC(ctx, iep, data)
		c, err3 := clear.UpdateMAC(ctx, iep, data)
		d, err4 := mod.UpdateMAC(ctx, iep, data)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) || !bytes.Equal(c, d) || bytes.Equal(a, c) || len(a) != vsvc.MACLen {
			t.Errorf("MACs over %q: load %X / %X, update %X / %X", data, a, b, c, d)
		}
	}
	if _, err := clear.LoadMAC(ctx, iep[:8], nil); !errors.Is(err, perso.ErrBadInput) {
		t.Errorf("short IEP identifier: %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", clear, clear, clear, clear); strings.Contains(strings.ToUpper(s), "404142") || strings.Contains(s, "64 65 66") {
		t.Errorf("ClearPurseKeys printed its keys: %s", s)
	}
}

// BenchmarkVerifyPurse runs the whole purse check with the MACs in the
// software module.
func BenchmarkVerifyPurse(b *testing.B) {
	s := purseIssuer(b)
	c := purseCard(b, s, "4761739001010051", 0)
	o := purseOptions(s)
	o.Amount = 1
	b.ReportAllocs()
	for n := 1; b.Loop(); n++ {
		if n%40000 == 0 { // the balance and NT would run out
			b.StopTimer()
			c = purseCard(b, s, "4761739001010051", 0)
			b.StartTimer()
		}
		if _, err := vsvc.VerifyPurse(context.Background(), c, o); err != nil {
			b.Fatal(err)
		}
	}
}

// scripted answers with the responses it was given, in order, then 6F00.
type scripted struct{ resps [][]byte }

func (c *scripted) Transmit([]byte) ([]byte, error) {
	if len(c.resps) == 0 {
		return []byte{0x6F, 0x00}, nil
	}
	r := c.resps[0]
	c.resps = c.resps[1:]
	return r, nil
}

// logged keeps a card's responses, framed as a fuzz input (2-byte length,
// bytes).
type logged struct {
	perso.Transport
	out []byte
}

func (l *logged) Transmit(cmd []byte) ([]byte, error) {
	r, err := l.Transport.Transmit(cmd)
	l.out = append(append(l.out, byte(len(r)>>8), byte(len(r))), r...)
	return r, err
}

// FuzzVerifyPurse runs the check against a purse whose every answer the
// fuzzer makes, from a real purse's answers: it must never panic.
func FuzzVerifyPurse(f *testing.F) {
	s := purseIssuer(f)
	o := purseOptions(s)
	o.Update = true
	l := &logged{Transport: purseCard(f, s, "4761739001010069", 10)}
	if _, err := vsvc.VerifyPurse(context.Background(), l, o); err != nil {
		f.Fatal(err)
	}
	f.Add(l.out)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &scripted{}
		for len(in) >= 2 {
			n := min(int(in[0])<<8|int(in[1]), len(in)-2)
			c.resps = append(c.resps, in[2:2+n])
			in = in[2+n:]
		}
		o := purseOptions(s)
		o.Update = true
		if r, _ := vsvc.VerifyPurse(context.Background(), c, o); r == nil {
			t.Fatal("no report")
		}
	})
}
