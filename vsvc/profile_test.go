package vsvc_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/vsvc"
)

type source struct {
	recs []*perso.Record
	i    int
}

func (s *source) Next() (*perso.Record, error) {
	if s.i == len(s.recs) {
		return nil, io.EOF
	}
	s.i++
	return s.recs[s.i-1], nil
}

type sink struct{ recs []*perso.Record }

func (s *sink) Write(r *perso.Record) error { s.recs = append(s.recs, r); return nil }

var card = &perso.CardData{PAN: "4761739001010010", PSN: 0, Expiry: "301231", Name: "PURSE/TEST", ServiceCode: "201",
	Emboss: []string{"4761 7390 0101 0010", "PURSE TEST"}, Fields: map[string]string{"balance": "1500"}}

// TestTwoJobs runs an EMV job, then a purse job over its output, as two
// issuer systems would: one record with both applications, every other
// group and the EMV application byte for byte as the first job left them.
func TestTwoJobs(t *testing.T) {
	s, err := demo.New(demo.Options{Seed: []byte("vsvc tests"), CABits: 1152, IssuerBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := perso.RecordForCard(card)
	if err != nil {
		t.Fatal(err)
	}
	rec.Groups = append(rec.Groups, perso.Group{MIC: 0xC7, Data: []byte("carrier insert 7")})
	first := &sink{}
	if _, err := s.Preparer().Run(ctx, &perso.Job{Apps: []perso.Application{e}, KEK: demo.KEK, OtherApps: []string{"vsvc"}}, &source{recs: []*perso.Record{rec}}, first); err != nil {
		t.Fatal(err)
	}
	mid, _ := first.recs[0].Marshal()
	second := &sink{}
	if _, err := s.Preparer().Run(ctx, &perso.Job{Apps: []perso.Application{pv}, KEK: demo.KEK}, &source{recs: []*perso.Record{first.recs[0]}}, second); err != nil {
		t.Fatal(err)
	}
	out, _ := second.recs[0].Marshal()
	before, _ := perso.ParseRecord(mid)
	after, err := perso.ParseRecord(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range before.Groups {
		if g.MIC == perso.MICChip {
			continue
		}
		h, ok := after.Group(g.MIC)
		if !ok || !bytes.Equal(h.Data, g.Data) {
			t.Errorf("group %s changed by the second job", g.MIC)
		}
	}
	cb, _ := before.Chip()
	ca, _ := after.Chip()
	if len(ca.Apps) != 2 {
		t.Fatalf("%d applications, want 2", len(ca.Apps))
	}
	if !bytes.Equal(ca.Apps[0].Raw, cb.Apps[0].Raw) {
		t.Error("the EMV application changed in the second job")
	}
	purse := ca.Apps[1]
	if !bytes.Equal(purse.AID, vsvc.DefaultAID) {
		t.Errorf("second application is %X", purse.AID)
	}
	in, _ := purse.MACInput()
	if err := s.Module.VerifyMAC(ctx, purse.MACKey, in, purse.MAC); err != nil {
		t.Errorf("purse MAC: %v", err)
	}
	var tags []uint16
	for _, d := range purse.DGIs {
		tags = append(tags, d.Tag)
	}
	if diff := cmp.Diff([]uint16{0x9102, 0x0101, 0x0102, 0x9103, 0x8020, 0x9020, 0x8201, 0x8202, 0x8203, 0x8204, 0x8205}, tags); diff != "" {
		t.Errorf("purse DGIs (-want +got):\n%s", diff)
	}
	// KDL and KDU are KML and KMU applied to the IEP identifier.
	d, _ := purse.DGI(0x8020)
	keys, err := s.Module.Open(ctx, purse.KEK, perso.Sealed(d.Value))
	if err != nil {
		t.Fatal(err)
	}
	iep, _ := vsvc.IEPID(card.PAN)
	for i, ref := range []perso.KeyRef{demo.KML, demo.KMU} {
		pk, _ := s.Module.Derive(ctx, perso.DeriveRequest{Master: ref, Method: perso.MethodEncryptData, Data: iep[2:], KEK: demo.KEK})
		want, _ := s.Module.OpenKey(ctx, pk)
		if !bytes.Equal(keys[16*i:16*i+16], want) {
			t.Errorf("purse key %d is not derived from the IEP identifier", i)
		}
	}
	bal, _ := purse.DGI(0x9103)
	if !bytes.Equal(bal.Value, []byte{0, 0, 0x05, 0xDC, 0, 0}) {
		t.Errorf("9103 = %X, want balance 1500 and NT 0", bal.Value)
	}
	// The card certificate verifies over the purse parameters.
	params, _ := purse.DGI(0x0101)
	certs, _ := purse.DGI(0x0102)
	pt, _ := perso.ParseTLV(params.Value, perso.Strict)
	ct, _ := perso.ParseTLV(certs.Value, perso.Strict)
	ic, _ := ct.Find(0x90)
	ir, _ := ct.Find(0x92)
	ie, _ := ct.Find(0x9F32)
	iss, err := perso.VerifyIssuerCert(s.CAKey.Key, perso.CertifiedKey{Cert: ic.Value, Remainder: ir.Value, Exponent: ie.Value}, card.PAN, time.Now())
	if err != nil {
		t.Fatalf("issuer certificate: %v", err)
	}
	cc, _ := ct.Find(0x9F46)
	cr, _ := ct.Find(0x9F48)
	ce, _ := ct.Find(0x9F47)
	if _, err := perso.VerifyICCCert(iss.Key, perso.CertifiedKey{Cert: cc.Value, Remainder: cr.Value, Exponent: ce.Value}, pt.Value, card.PAN, time.Now()); err != nil {
		t.Errorf("card certificate: %v", err)
	}
}

func TestBadBalance(t *testing.T) {
	s, err := demo.New(demo.Options{Seed: []byte("vsvc tests"), CABits: 1024, IssuerBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	c := *card
	c.Fields = map[string]string{"balance": "999999"}
	env := &perso.Env{KEK: demo.KEK, Deriver: s.Module, Certifier: s.Module, Protector: s.Module}
	if _, err := p.Build(context.Background(), env, &c); err == nil {
		t.Error("a balance over the maximum was accepted")
	}
}
