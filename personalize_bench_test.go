package perso_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
)

// minAPDUs is the fewest APDUs a record's chip data needs: per application
// SELECT, INITIALIZE UPDATE and EXTERNAL AUTHENTICATE, and its DGIs, secret
// ones as the card receives them (the clear value padded to 8 bytes),
// packed into STORE DATA commands of maxData bytes with nothing else.
func minAPDUs(t testing.TB, m interface {
	Open(context.Context, perso.KEKID, perso.Sealed) ([]byte, error)
}, rec *perso.Record, maxData int) int {
	cd, err := rec.Chip()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range cd.Apps {
		size := 0
		for _, d := range a.DGIs {
			l := len(d.Value)
			if a.IsSecret(d.Tag) {
				clear, err := m.Open(context.Background(), a.KEK, perso.Sealed(d.Value))
				if err != nil {
					t.Fatal(err)
				}
				l = (len(clear) + 7) / 8 * 8
			}
			size += len(perso.AppendDGI(nil, d.Tag, make([]byte, l)))
		}
		n += 3 + (size+maxData-1)/maxData
	}
	return n
}

// BenchmarkPersonalize measures personalization onto in-process virtual
// cards: cards per second and APDUs per card, with SCP02 C-MAC and the two
// STORE DATA modes, on one station and on two.
func BenchmarkPersonalize(b *testing.B) {
	s := demoSetup(b)
	e, err := s.EMV(emv.ODADDA)
	if err != nil {
		b.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		b.Fatal(err)
	}
	const cards = 64
	path := prepareBatch(b, s, cards, e, pv)
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := perso.NewReader(bytes.NewReader(raw))
	first, _ := r.Next()
	floor := minAPDUs(b, s.Module, first, 239)
	scp := perso.SCP{Version: 2, Param: 0x55}
	for _, mode := range []perso.StoreDataMode{perso.StoreSeparate, perso.StoreAppDependent} {
		for _, stations := range []int{1, 2} {
			b.Run(fmt.Sprintf("mode=%d/stations=%d", mode, stations), func(b *testing.B) {
				chip, err := perso.NewChipModule(perso.ChipConfig{Translator: s.Module, KMC: demo.KMC, Diversification: perso.MethodCPS, SCP: scp, Level: perso.LevelCMAC, Mode: mode})
				if err != nil {
					b.Fatal(err)
				}
				rec := &perso.RecordingModule{}
				var reg perso.Registry
				reg.Register(perso.MICChip, chip)
				reg.Register(perso.MICEmboss, rec)
				reg.Register(perso.MICMagStripe, rec)
				p := &perso.Personalizer{Translator: s.Module, Modules: &reg}
				var sts []perso.Station
				for i := 0; i < stations; i++ {
					sts = append(sts, vcard.NewStation(fmt.Sprint(i), false, cardConfig(scp, vcard.Fault{})))
				}
				total, apdus := 0, 0
				b.ResetTimer()
				for b.Loop() {
					sum, err := p.Run(context.Background(), bytes.NewReader(raw), sts...)
					if err != nil || sum.Personalized != cards {
						b.Fatalf("Run: %v %+v", err, sum)
					}
					total += sum.Records
					apdus += sum.APDUs
				}
				b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "cards/s")
				b.ReportMetric(float64(apdus)/float64(total), "APDUs/card")
				b.ReportMetric(float64(floor), "min-APDUs/card")
			})
		}
	}
}
