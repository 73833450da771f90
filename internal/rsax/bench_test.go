package rsax

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"testing"
)

// reportKeysPerSecond adds a keys/s metric: with -cpu 1 it is the rate of
// one core.
func reportKeysPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, bits := range []int{768, 1024, 1408, 1984} {
		for _, e := range []int{3, 65537} {
			b.Run(fmt.Sprintf("%d/e=%d", bits, e), func(b *testing.B) {
				for b.Loop() {
					if _, err := GenerateKey(rand.Reader, bits, e); err != nil {
						b.Fatal(err)
					}
				}
				reportKeysPerSecond(b)
			})
		}
	}
}

// BenchmarkStdGenerateKey is crypto/rsa's generator (e = 65537 only), for
// comparison.
func BenchmarkStdGenerateKey(b *testing.B) {
	for _, bits := range []int{1024, 2048} {
		b.Run(fmt.Sprint(bits), func(b *testing.B) {
			for b.Loop() {
				if _, err := rsa.GenerateKey(rand.Reader, bits); err != nil {
					b.Fatal(err)
				}
			}
			reportKeysPerSecond(b)
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
		for b.Loop() {
			if _, err := pk.Raw(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1984/PrivateRaw", func(b *testing.B) {
		for b.Loop() {
			if _, err := PrivateRaw(k, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPublicRaw(b *testing.B) {
	k := testKey(b, 1984, 3)
	c := leftPadded(new(big.Int).Rsh(k.N, 8), 248)
	for b.Loop() {
		if _, err := PublicRaw(&k.PublicKey, c); err != nil {
			b.Fatal(err)
		}
	}
}
