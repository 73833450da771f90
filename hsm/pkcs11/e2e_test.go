package pkcs11

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/reader/vcard"
)

type e2eSource struct{ recs []*perso.Record }

func (s *e2eSource) Next() (*perso.Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return r, nil
}

type e2eSink struct{ w *perso.Writer }

func (s e2eSink) Write(r *perso.Record) error { return s.w.Write(r) }

// TestCrossBackend prepares the same cards with this module and with the
// software module holding the same test keys, and personalizes each batch
// with the other module onto virtual cards that a terminal then checks: a
// record differs between the backends only in its random parts (card keys,
// MAC keys, certificates over them), and both pass the same checks.
func TestCrossBackend(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	sm, err := soft.New(soft.NotForProduction())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.ImportKey(f.imk, perso.KeyDES2, imkValue); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.ImportKey(f.kmc, perso.KeyDES2, kmcValue); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.ImportKEK(f.kek, kekValue); err != nil {
		t.Fatal(err)
	}
	// A test CA in the software module certifies the token's issuer key;
	// the software module gets an issuer key of its own, certified too.
	ca := perso.KeyRef{Label: "CA", Version: 1}
	caPub, err := sm.GenerateRSAKey(ca, 1408, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.GenerateRSAKey(f.issuer, 1024, 3); err != nil {
		t.Fatal(err)
	}
	exp, _ := perso.NewCertDate(time.Now().Year()+5, time.December)
	issuerID := perso.IssuerID{0x47, 0x61, 0x73, 0xFF}
	profile := func(c perso.Certifier) *emv.Profile {
		pub, err := c.PublicKey(ctx, f.issuer)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := perso.CertifyIssuer(ctx, sm, perso.IssuerCertRequest{CA: ca, Cert: perso.IssuerCert{IssuerID: issuerID, Expiry: exp, Serial: [3]byte{0, 0, 7}, Key: pub}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := emv.New(emv.Config{
			AID: perso.HexBytes{0xA0, 0, 0, 0, 3, 0x10, 0x10}, Label: "CROSS", Country: "826", Currency: "978", ODA: emv.ODADDA, ICCKeyBits: 768,
			Keys:   emv.MasterKeys{AC: f.imk, SMI: f.imk, SMC: f.imk},
			Issuer: &perso.IssuerKey{Key: f.issuer, CAIndex: 0x99, Certificate: ck.Cert, Remainder: ck.Remainder, Exponent: ck.Exponent},
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	kcv, err := f.m.KEKCheckValue(ctx, f.kek)
	if err != nil {
		t.Fatal(err)
	}
	prepare := func(m interface {
		perso.KeyDeriver
		perso.Certifier
		perso.Protector
	}) []byte {
		var src e2eSource
		for i := 0; i < 3; i++ {
			body := fmt.Sprintf("476173900000%03d", i)
			r, err := perso.RecordForCard(&perso.CardData{PAN: body + string(perso.LuhnDigit(body)), PSN: 1, Expiry: "301231", ServiceCode: "201", Name: "CROSS/BACKEND"})
			if err != nil {
				t.Fatal(err)
			}
			src.recs = append(src.recs, r)
		}
		var buf bytes.Buffer
		w, err := perso.NewWriter(&buf, &perso.Header{Created: time.Now(), Issuer: issuerID, Profiles: []string{"emv"}, KEKs: []perso.KEKCheck{{KEK: f.kek, KCV: kcv}}})
		if err != nil {
			t.Fatal(err)
		}
		job := &perso.Job{Apps: []perso.Application{profile(m)}, KEK: f.kek}
		if sum, err := (&perso.Preparer{Deriver: m, Certifier: m, Protector: m}).Run(ctx, job, &src, e2eSink{w}); err != nil || sum.Written != 3 {
			t.Fatalf("prepare: %v %+v", err, sum)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	fromToken, fromSoft := prepare(f.m), prepare(sm)

	// Same input, two backends: the DGIs that carry no random part are
	// equal, and the sealed ICC master keys open to the same keys.
	rt, _ := perso.NewReader(bytes.NewReader(fromToken))
	rs, _ := perso.NewReader(bytes.NewReader(fromSoft))
	for i := 0; i < 3; i++ {
		a, err := rt.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := rs.Next()
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := a.Chip()
		cb, _ := b.Chip()
		x, y := ca.Apps[0], cb.Apps[0]
		for _, tag := range []uint16{0x0101, 0x0102, 0x9102, 0x9104, 0x0D01, 0x9010, 0x9000} {
			dx, _ := x.DGI(tag)
			dy, _ := y.DGI(tag)
			if !bytes.Equal(dx.Value, dy.Value) {
				t.Errorf("record %d DGI %04X differs between the backends", i, tag)
			}
		}
		dx, _ := x.DGI(0x8000)
		dy, _ := y.DGI(0x8000)
		kx, err := sm.Open(ctx, f.kek, perso.Sealed(dx.Value))
		if err != nil {
			t.Fatalf("the software module cannot open the token's sealed keys: %v", err)
		}
		ky, _ := sm.Open(ctx, f.kek, perso.Sealed(dy.Value))
		if !bytes.Equal(kx, ky) {
			t.Errorf("record %d: the backends derived different ICC master keys", i)
		}
	}

	// Each batch personalized with the other backend, and every card checked.
	caKeys := []perso.CAPublicKey{{RID: [5]byte{0xA0, 0, 0, 0, 3}, Index: 0x99, Key: caPub}}
	for _, tc := range []struct {
		name  string
		batch []byte
		tr    perso.Translator
	}{{"token batch, software bureau", fromToken, sm}, {"software batch, token bureau", fromSoft, f.m}} {
		t.Run(tc.name, func(t *testing.T) {
			chip, err := perso.NewChipModule(perso.ChipConfig{Translator: tc.tr, KMC: f.kmc, Diversification: perso.MethodCPS, Level: perso.LevelCMACCDEC})
			if err != nil {
				t.Fatal(err)
			}
			var reg perso.Registry
			reg.Register(perso.MICChip, chip)
			reg.Register(perso.MICMagStripe, &perso.RecordingModule{})
			verify := func(ctx context.Context, card *perso.Card, tr perso.Transport) error {
				_, err := emv.VerifyCard(ctx, tr, emv.Options{CAKeys: caKeys, Deriver: f.m, ACMaster: f.imk, RequireODA: true})
				return err
			}
			p := &perso.Personalizer{Translator: tc.tr, Modules: &reg, Verify: verify}
			st := vcard.NewStation("A", false, func(n int) (vcard.Config, error) {
				return vcard.Config{Keys: vcard.Keys{KMC: kmcValue, Method: perso.MethodCPS}, KDD: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, byte(n)},
					SCP: perso.SCP{Version: 2, Param: 0x55}, EMV: [][]byte{{0xA0, 0, 0, 0, 3, 0x10, 0x10}}}, nil
			})
			sum, err := p.Run(ctx, bytes.NewReader(tc.batch), st)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Personalized != 3 {
				t.Errorf("summary %+v, want 3 personalized and verified", sum)
			}
		})
	}
}
