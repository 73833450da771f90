package rsax

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// rate measures a benchmark's throughput in units (keys, ops) per second
// of wall time and, where the platform reports it, per CPU second: the rate
// of one core, which a loaded machine does not distort. Run with -cpu 1.
type rate struct {
	unit string
	cpu0 time.Duration
}

func startRate(unit string) *rate {
	cpu, _ := processCPU()
	return &rate{unit: unit, cpu0: cpu}
}

func (r *rate) report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), r.unit+"/s")
	if cpu, ok := processCPU(); ok && cpu > r.cpu0 {
		b.ReportMetric(float64(b.N)/(cpu-r.cpu0).Seconds(), r.unit+"/cpu-s")
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, bits := range []int{768, 1024, 1408, 1984} {
		for _, e := range []int{3, 65537} {
			b.Run(fmt.Sprintf("%d/e=%d", bits, e), func(b *testing.B) {
				rate := startRate("keys")
				for b.Loop() {
					if _, err := GenerateKey(rand.Reader, bits, e); err != nil {
						b.Fatal(err)
					}
				}
				rate.report(b)
			})
		}
	}
}

// BenchmarkStdGenerateKey is crypto/rsa's generator (e = 65537 only), for
// comparison.
func BenchmarkStdGenerateKey(b *testing.B) {
	for _, bits := range []int{1024, 2048} {
		b.Run(fmt.Sprint(bits), func(b *testing.B) {
			rate := startRate("keys")
			for b.Loop() {
				if _, err := rsa.GenerateKey(rand.Reader, bits); err != nil {
					b.Fatal(err)
				}
			}
			rate.report(b)
		})
	}
}

func BenchmarkPrivateRaw(b *testing.B) {
	k := testKey(b, 1984, 3)
	c := leftPadded(new(big.Int).Rsh(k.N, 8), 248)
	b.Run("1984/prepared", func(b *testing.B) {
		pk, err := NewPrivate(k)
		if err != nil {
			b.Fatal(err)
		}
		rate := startRate("ops")
		for b.Loop() {
			if _, err := pk.Raw(c); err != nil {
				b.Fatal(err)
			}
		}
		rate.report(b)
	})
	b.Run("1984/PrivateRaw", func(b *testing.B) {
		rate := startRate("ops")
		for b.Loop() {
			if _, err := PrivateRaw(k, c); err != nil {
				b.Fatal(err)
			}
		}
		rate.report(b)
	})
}

func BenchmarkPublicRaw(b *testing.B) {
	k := testKey(b, 1984, 3)
	c := leftPadded(new(big.Int).Rsh(k.N, 8), 248)
	rate := startRate("ops")
	for b.Loop() {
		if _, err := PublicRaw(&k.PublicKey, c); err != nil {
			b.Fatal(err)
		}
	}
	rate.report(b)
}
