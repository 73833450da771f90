package emv_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/demo"
)

var (
	setupOnce sync.Once
	setup     *demo.Setup
	setupErr  error
)

// demoSetup is shared by the tests: generating the CA and issuer keys is
// the slow part.
func demoSetup(t testing.TB) *demo.Setup {
	t.Helper()
	setupOnce.Do(func() {
		setup, setupErr = demo.New(demo.Options{Seed: []byte("emv tests"), CABits: 1408, IssuerBits: 1152})
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return setup
}

type oneRecord struct {
	rec  *perso.Record
	done bool
}

func (o *oneRecord) Next() (*perso.Record, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	return o.rec, nil
}

type collect struct{ recs []*perso.Record }

func (c *collect) Write(r *perso.Record) error { c.recs = append(c.recs, r); return nil }

var testCard = &perso.CardData{PAN: "4761739001010010", PSN: 1, Expiry: "301231", Effective: "251201", Name: "CARDHOLDER/TEST", ServiceCode: "201", Discretionary: "1234"}

// prepare runs one card through a job with the profile and returns the
// record after a round trip through its encoding.
func prepare(t *testing.T, s *demo.Setup, apps ...perso.Application) *perso.Record {
	t.Helper()
	rec, err := perso.RecordForCard(testCard)
	if err != nil {
		t.Fatal(err)
	}
	out := &collect{}
	sum, err := s.Preparer().Run(context.Background(), &perso.Job{Apps: apps, KEK: demo.KEK}, &oneRecord{rec: rec}, out)
	if err != nil || sum.Written != 1 {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	b, err := out.recs[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := perso.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestPreparedRecord(t *testing.T) {
	s := demoSetup(t)
	ctx := context.Background()
	for _, oda := range []emv.ODA{emv.ODASDA, emv.ODADDA, emv.ODANone} {
		t.Run(string(oda), func(t *testing.T) {
			p, err := s.EMV(oda)
			if err != nil {
				t.Fatal(err)
			}
			rec := prepare(t, s, p)
			cd, err := rec.Chip()
			if err != nil {
				t.Fatal(err)
			}
			app, ok := cd.App(p.AID())
			if !ok {
				t.Fatal("no EMV application in the record")
			}
			var tags []uint16
			for _, d := range app.DGIs {
				tags = append(tags, d.Tag)
			}
			want := []uint16{0x0101, 0x0102, 0x0201, 0x0202, 0x9102, 0x9104, 0x0D01, 0x9010, 0x8000, 0x9000, 0x8010}
			switch oda {
			case emv.ODADDA:
				want = append(want, 0x8201, 0x8202, 0x8203, 0x8204, 0x8205)
			case emv.ODANone:
				want = append(want[:2], want[4:]...)
			}
			if diff := cmp.Diff(want, tags); diff != "" {
				t.Errorf("DGIs (-want +got):\n%s", diff)
			}

			// The MAC verifies, and fails for any flipped bit.
			in, err := app.MACInput()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Module.VerifyMAC(ctx, app.MACKey, in, app.MAC); err != nil {
				t.Fatalf("MAC: %v", err)
			}
			for i := 0; i < len(in); i += 7 {
				bad := bytes.Clone(in)
				bad[i] ^= 0x80
				if err := s.Module.VerifyMAC(ctx, app.MACKey, bad, app.MAC); !errors.Is(err, perso.ErrBadMAC) {
					// A flip inside the wrapped MAC key may also fail to open.
					if err == nil {
						t.Fatalf("bit flip at %d passes the MAC", i)
					}
				}
			}

			// The sealed keys are option A of the card's PAN and PSN.
			d, _ := app.DGI(0x8000)
			keys, err := s.Module.Open(ctx, app.KEK, perso.Sealed(d.Value))
			if err != nil {
				t.Fatal(err)
			}
			for i, ref := range []perso.KeyRef{demo.IMKAC, demo.IMKSMI, demo.IMKSMC} {
				pk, err := s.Module.Derive(ctx, perso.DeriveRequest{Master: ref, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(testCard.PAN, testCard.PSN), KEK: demo.KEK})
				if err != nil {
					t.Fatal(err)
				}
				want, _ := s.Module.OpenKey(ctx, pk)
				if !bytes.Equal(keys[16*i:16*i+16], want) {
					t.Errorf("key %d in 8000 is not option A of the card", i)
				}
			}
			kcv, _ := app.DGI(0x9000)
			for i := 0; i < 3; i++ {
				want, _ := crypt.KCV(keys[16*i : 16*i+16])
				if !bytes.Equal(kcv.Value[3*i:3*i+3], want[:]) {
					t.Errorf("9000 KCV %d does not match key %d", i, i)
				}
			}

			// The records parse, and ODA data recovers and verifies.
			recs := map[uint16]perso.TLV{}
			for _, tag := range []uint16{0x0101, 0x0102, 0x0201, 0x0202} {
				d, ok := app.DGI(tag)
				if !ok {
					continue
				}
				tlv, err := perso.ParseTLV(d.Value, perso.Strict)
				if err != nil || tlv.Tag != 0x70 {
					t.Fatalf("DGI %04X is not a 70 template: %v", tag, err)
				}
				recs[tag] = tlv
			}
			if oda == emv.ODANone {
				return
			}
			static, err := emv.StaticData([][]byte{recs[0x0101].Raw, recs[0x0102].Raw}, p.Config().AIP)
			if err != nil {
				t.Fatal(err)
			}
			r21 := recs[0x0201]
			cert, _ := r21.Find(0x90)
			rem, _ := r21.Find(0x92)
			exp, _ := r21.Find(0x9F32)
			iss, err := perso.VerifyIssuerCert(s.CAKey.Key, perso.CertifiedKey{Cert: cert.Value, Remainder: rem.Value, Exponent: exp.Value}, testCard.PAN, time.Now())
			if err != nil {
				t.Fatalf("issuer certificate: %v", err)
			}
			r22 := recs[0x0202]
			switch oda {
			case emv.ODASDA:
				ssad, _ := r22.Find(0x93)
				if _, err := perso.VerifySignedStaticData(iss.Key, ssad.Value, static); err != nil {
					t.Errorf("SSAD: %v", err)
				}
			case emv.ODADDA:
				c, _ := r22.Find(0x9F46)
				r, _ := r22.Find(0x9F48)
				e, _ := r22.Find(0x9F47)
				icc, err := perso.VerifyICCCert(iss.Key, perso.CertifiedKey{Cert: c.Value, Remainder: r.Value, Exponent: e.Value}, static, testCard.PAN, time.Now())
				if err != nil {
					t.Fatalf("ICC certificate: %v", err)
				}
				// The sealed CRT components are the certified key's.
				var comps [5][]byte
				for i := range comps {
					d, _ := app.DGI(0x8201 + uint16(i))
					if comps[i], err = s.Module.Open(ctx, app.KEK, perso.Sealed(d.Value)); err != nil {
						t.Fatal(err)
					}
				}
				p, q := new(big.Int).SetBytes(comps[4]), new(big.Int).SetBytes(comps[3])
				if new(big.Int).Mul(p, q).Cmp(icc.Key.N) != 0 {
					t.Error("CRT p*q is not the certified modulus")
				}
			}
		})
	}
}

func TestBadCards(t *testing.T) {
	s := demoSetup(t)
	p, err := s.EMV(emv.ODASDA)
	if err != nil {
		t.Fatal(err)
	}
	env := &perso.Env{KEK: demo.KEK, Deriver: s.Module, Certifier: s.Module, Protector: s.Module}
	noSvc := *testCard
	noSvc.ServiceCode = ""
	var fe *perso.FieldError
	if _, err := p.Build(context.Background(), env, &noSvc); !errors.As(err, &fe) || fe.Field != "service_code" {
		t.Errorf("Build without a service code = %v, want a FieldError for service_code", err)
	}
}

func TestConfigErrors(t *testing.T) {
	s := demoSetup(t)
	base := s.EMVConfig(emv.ODADDA)
	tests := []struct {
		name string
		edit func(*emv.Config)
	}{
		{"short AID", func(c *emv.Config) { c.AID = perso.HexBytes{1, 2} }},
		{"no label", func(c *emv.Config) { c.Label = "" }},
		{"bad exponent", func(c *emv.Config) { c.ICCExponent = 17 }},
		{"bad ODA", func(c *emv.Config) { c.ODA = "cda" }},
		{"key too long", func(c *emv.Config) { c.ICCKeyBits = 2048 }},
		{"bad country", func(c *emv.Config) { c.Country = "GB" }},
		{"no AC key", func(c *emv.Config) { c.Keys.AC.Label = "" }},
		{"no issuer", func(c *emv.Config) { c.Issuer = nil }},
		{"bad PIN mode", func(c *emv.Config) { c.OfflinePIN = "maybe" }},
	}
	for _, tt := range tests {
		c := base
		tt.edit(&c)
		if _, err := emv.New(c); err == nil {
			t.Errorf("%s: New accepted the configuration", tt.name)
		}
	}
}
