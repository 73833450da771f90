package emv_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/demo"
)

// genSource hands out n fresh card records.
type genSource struct {
	n, i int
}

func (g *genSource) Next() (*perso.Record, error) {
	if g.i >= g.n {
		return nil, errEOF
	}
	body := fmt.Sprintf("47617390%07d", g.i)
	g.i++
	c := &perso.CardData{PAN: body + string(perso.LuhnDigit(body)), PSN: 1, Expiry: "301231", Name: "BENCH/CARD", ServiceCode: "201"}
	return perso.RecordForCard(c)
}

type discard struct{ n int }

func (d *discard) Write(r *perso.Record) error {
	if _, err := r.Marshal(); err != nil {
		return err
	}
	d.n++
	return nil
}

var benchSetups = map[string]*demo.Setup{}

func benchSetup(b *testing.B, issuerBits, iccBits int) *demo.Setup {
	key := fmt.Sprint(issuerBits, iccBits)
	if s, ok := benchSetups[key]; ok {
		return s
	}
	s, err := demo.New(demo.Options{Seed: []byte("bench"), CABits: 1984, IssuerBits: issuerBits, ICCBits: iccBits, ICCExp: 3})
	if err != nil {
		b.Fatal(err)
	}
	benchSetups[key] = s
	return s
}

// BenchmarkPrepare measures the Preparer with the software module: records
// per second for each kind of offline data authentication, on one worker
// and on every core.
func BenchmarkPrepare(b *testing.B) {
	for _, tc := range []struct {
		oda        emv.ODA
		issuerBits int
		iccBits    int
	}{
		{emv.ODANone, 1984, 1024},
		{emv.ODASDA, 1984, 1024},
		{emv.ODADDA, 1984, 1024},
		{emv.ODADDA, 1984, 1408},
		{emv.ODADDA, 1984, 1984},
	} {
		for _, workers := range []int{1, runtime.NumCPU()} {
			name := fmt.Sprintf("%s-issuer%d", tc.oda, tc.issuerBits)
			if tc.oda == emv.ODADDA {
				name += fmt.Sprintf("-icc%d", tc.iccBits)
			}
			b.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(b *testing.B) {
				s := benchSetup(b, tc.issuerBits, tc.iccBits)
				cfg := s.EMVConfig(tc.oda)
				cfg.OfflinePIN = emv.PINNone
				p, err := emv.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				job := &perso.Job{Apps: []perso.Application{p}, KEK: demo.KEK, Workers: workers}
				out := &discard{}
				b.ResetTimer()
				sum, err := s.Preparer().Run(context.Background(), job, &genSource{n: b.N}, out)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(sum.Written)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

var errEOF = io.EOF
