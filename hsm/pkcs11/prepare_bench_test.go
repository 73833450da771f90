package pkcs11

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
)

// BenchmarkPreparer runs the Preparer over EMV cards with this backend, all
// keys in the token (issuer master keys, KEK, a 1408-bit issuer key
// certified by a 1984-bit CA key), with one worker and one session per CPU.
// SDA cards cost three derivations, a MAC key, a MAC and one signature per
// record; DDA cards add a 1024-bit card key pair (e=3), to be compared with
// BenchmarkTokenKeyGen/1024-e3.
func BenchmarkPreparer(b *testing.B) {
	for _, oda := range []emv.ODA{emv.ODASDA, emv.ODADDA} {
		b.Run(string(oda), func(b *testing.B) {
			f := fixtureFor(b)
			cfg := prepareConfig(b, oda)
			app, err := emv.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			m := benchModule(b, 0) // one session per CPU
			recs := make([]*perso.Record, b.N)
			for i := range recs {
				body := fmt.Sprintf("476173900%06d", i)
				c := &perso.CardData{PAN: body + string(perso.LuhnDigit(body)), PSN: 1, Expiry: "291231", Name: "TEST/CARD", ServiceCode: "201"}
				if recs[i], err = perso.RecordForCard(c); err != nil {
					b.Fatal(err)
				}
			}
			p := &perso.Preparer{Deriver: m, Certifier: m, Protector: m}
			b.ResetTimer()
			sum, err := p.Run(context.Background(), &perso.Job{Apps: []perso.Application{app}, KEK: f.kek}, &recordList{recs: recs}, discard{})
			if err != nil {
				b.Fatal(err)
			}
			if sum.Written != b.N {
				b.Fatalf("%d of %d records written, %d rejected", sum.Written, b.N, sum.Rejected)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

var prepareIssuer struct {
	once sync.Once
	key  perso.IssuerKey
	err  error
}

// prepareConfig returns an EMV configuration over the fixture's keys, with
// an issuer key and certificate made once per run.
func prepareConfig(b *testing.B, oda emv.ODA) emv.Config {
	f := fixtureFor(b)
	pi := &prepareIssuer
	pi.once.Do(func() {
		ctx := context.Background()
		ca := perso.KeyRef{Label: f.prefix + "CA", Version: 1}
		f.labels = append(f.labels, ca.String())
		if _, pi.err = f.m.CreateIssuerKey(ctx, ca, 1984, 3); pi.err != nil {
			return
		}
		issuer := benchIssuer(b, 1408)
		pub, err := f.m.PublicKey(ctx, issuer)
		if err != nil {
			pi.err = err
			return
		}
		exp, _ := perso.NewCertDate(time.Now().Year()+5, time.December)
		ck, err := perso.CertifyIssuer(ctx, f.m, perso.IssuerCertRequest{
			CA:   ca,
			Cert: perso.IssuerCert{IssuerID: perso.IssuerID{0x47, 0x61, 0x73, 0xFF}, Expiry: exp, Serial: [3]byte{0, 0, 1}, Key: pub},
			Now:  time.Now(),
		})
		if err != nil {
			pi.err = err
			return
		}
		pi.key = perso.IssuerKey{Key: issuer, CAIndex: 0x99, Certificate: ck.Cert, Remainder: ck.Remainder, Exponent: ck.Exponent}
	})
	if pi.err != nil {
		b.Fatal(pi.err)
	}
	iss := pi.key
	return emv.Config{
		AID:          perso.HexBytes{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10},
		Label:        "PKCS11 BENCH",
		Country:      "826",
		Currency:     "978",
		LowerOffline: 5,
		UpperOffline: 10,
		OfflinePIN:   emv.PINGenerate,
		ODA:          oda,
		ICCKeyBits:   1024,
		ICCExponent:  3,
		Keys:         emv.MasterKeys{AC: f.imk, SMI: f.imk, SMC: f.imk},
		Issuer:       &iss,
	}
}

// recordList is a RecordSource over records in memory.
type recordList struct {
	recs []*perso.Record
	i    int
}

func (l *recordList) Next() (*perso.Record, error) {
	if l.i == len(l.recs) {
		return nil, io.EOF
	}
	l.i++
	return l.recs[l.i-1], nil
}

// discard is a RecordSink that keeps nothing.
type discard struct{}

func (discard) Write(*perso.Record) error { return nil }
func (discard) SetCounter(string, uint64) {}
