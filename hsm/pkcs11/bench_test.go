package pkcs11

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardperso/perso"
	p11 "github.com/miekg/pkcs11"
)

// The benchmarks run each operation from GOMAXPROCS goroutines on modules
// with 1 and 2 sessions, and report operations per second.

func benchModule(b *testing.B, sessions int) *Module {
	b.Helper()
	fixtureFor(b)
	cfg, err := ConfigFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	cfg.Sessions = sessions
	m, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// parallel runs op b.N times across goroutines on modules of 1 and 2
// sessions, reporting the rate as unit/s.
func parallel(b *testing.B, unit string, op func(m *Module, i int64) error) {
	for _, sessions := range []int{1, 2} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			m := benchModule(b, sessions)
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(m, n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
		})
	}
}

// BenchmarkDerive: one card key derived and wrapped under the KEK
// (C_DeriveKey, KCV, C_WrapKey, C_DestroyObject).
func BenchmarkDerive(b *testing.B) {
	f := fixtureFor(b)
	parallel(b, "keys", func(m *Module, i int64) error {
		_, err := m.Derive(context.Background(), perso.DeriveRequest{
			Master: f.imk, Method: perso.MethodEMVOptionA, KEK: f.kek,
			Data: perso.PANPSN(fmt.Sprintf("4761%012d", i), 1),
		})
		return err
	})
}

// BenchmarkTokenKeyGen is the token's own RSA key generation rate: bare
// C_GenerateKeyPair of session objects, the baseline GenerateCardKey is
// measured against.
func BenchmarkTokenKeyGen(b *testing.B) {
	for _, c := range []struct{ bits, e int }{{1024, 3}, {1152, 3}, {1408, 3}} {
		b.Run(fmt.Sprintf("%d-e%d", c.bits, c.e), func(b *testing.B) {
			parallel(b, "keys", func(m *Module, _ int64) error {
				return m.do(context.Background(), func(s *session) error {
					pub, priv, err := m.ctx.GenerateKeyPair(s.h, mech(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
						[]*p11.Attribute{
							p11.NewAttribute(p11.CKA_TOKEN, false),
							p11.NewAttribute(p11.CKA_MODULUS_BITS, c.bits),
							p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(c.e)).Bytes()),
						},
						[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_SENSITIVE, true)})
					m.destroy(s, pub)
					m.destroy(s, priv)
					return err
				})
			})
		})
	}
}

// BenchmarkGenerateCardKey: a card key pair generated, its public key read
// and its private key wrapped under the KEK.
func BenchmarkGenerateCardKey(b *testing.B) {
	f := fixtureFor(b)
	for _, c := range []struct{ bits, e int }{{1024, 3}, {1152, 3}, {1408, 3}, {1024, 65537}} {
		b.Run(fmt.Sprintf("%d-e%d", c.bits, c.e), func(b *testing.B) {
			parallel(b, "keys", func(m *Module, _ int64) error {
				_, err := m.GenerateCardKey(context.Background(), perso.CardKeyRequest{Bits: c.bits, Exponent: c.e, KEK: f.kek})
				return err
			})
		})
	}
}

// BenchmarkCardKeyOverhead interleaves the token's bare key generation
// with GenerateCardKey, one after the other on one session, so that both
// see the same machine load, and reports their rates and the ratio: what
// this backend keeps of the token's own key generation rate.
func BenchmarkCardKeyOverhead(b *testing.B) {
	f := fixtureFor(b)
	m := benchModule(b, 1)
	ctx := context.Background()
	var bare, card time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		err := m.do(ctx, func(s *session) error {
			pub, priv, err := m.ctx.GenerateKeyPair(s.h, mech(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
				[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_MODULUS_BITS, 1024), p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{3})},
				[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_SENSITIVE, true)})
			m.destroy(s, pub)
			m.destroy(s, priv)
			return err
		})
		t1 := time.Now()
		if err == nil {
			_, err = m.GenerateCardKey(ctx, perso.CardKeyRequest{Bits: 1024, Exponent: 3, KEK: f.kek})
		}
		if err != nil {
			b.Fatal(err)
		}
		bare += t1.Sub(t0)
		card += time.Since(t1)
	}
	b.ReportMetric(float64(b.N)/bare.Seconds(), "bare-keys/s")
	b.ReportMetric(float64(b.N)/card.Seconds(), "card-keys/s")
	b.ReportMetric(bare.Seconds()/card.Seconds(), "ratio")
}

var benchIssuers sync.Map // bits -> perso.KeyRef

// benchIssuer returns an issuer key of the size, made once per run.
func benchIssuer(b *testing.B, bits int) perso.KeyRef {
	f := fixtureFor(b)
	if bits == 1024 {
		return f.issuer
	}
	if r, ok := benchIssuers.Load(bits); ok {
		return r.(perso.KeyRef)
	}
	ref := perso.KeyRef{Label: fmt.Sprintf("%sISSUER-%d", f.prefix, bits), Version: 1}
	f.labels = append(f.labels, ref.String())
	if _, err := f.m.CreateIssuerKey(context.Background(), ref, bits, 3); err != nil {
		b.Fatal(err)
	}
	benchIssuers.Store(bits, ref)
	return ref
}

// BenchmarkSignRaw: one certificate-sized raw RSA signature with the
// issuer key, checked with the public key.
func BenchmarkSignRaw(b *testing.B) {
	for _, bits := range []int{1024, 1408, 1984} {
		b.Run(fmt.Sprint(bits), func(b *testing.B) {
			ref := benchIssuer(b, bits)
			block := make([]byte, bits/8)
			block[0], block[len(block)-1] = 0x6A, 0xBC
			parallel(b, "signatures", func(m *Module, _ int64) error {
				_, err := m.SignRaw(context.Background(), ref, block)
				return err
			})
		})
	}
}

// BenchmarkSDARecord is the security module's work for one record of an
// EMV card with static data authentication: three ICC master keys (AC,
// SMI, SMC) derived and wrapped, a MAC key generated and wrapped, the
// application MAC, and the signed static application data (a raw
// signature with a 1408-bit issuer key).
func BenchmarkSDARecord(b *testing.B) {
	f := fixtureFor(b)
	issuer := benchIssuer(b, 1408)
	ssad := make([]byte, 1408/8)
	ssad[0], ssad[len(ssad)-1] = 0x6A, 0xBC
	appData := make([]byte, 400)
	parallel(b, "records", func(m *Module, i int64) error {
		ctx := context.Background()
		data := perso.PANPSN(fmt.Sprintf("4761%012d", i), 1)
		for range 3 {
			if _, err := m.Derive(ctx, perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: data, KEK: f.kek}); err != nil {
				return err
			}
		}
		mk, err := m.NewMACKey(ctx, f.kek)
		if err != nil {
			return err
		}
		if _, err := m.MAC(ctx, mk, appData); err != nil {
			return err
		}
		_, err = m.SignRaw(ctx, issuer, ssad)
		return err
	})
}

// BenchmarkMAC: the application MAC under a protected MAC key.
func BenchmarkMAC(b *testing.B) {
	f := fixtureFor(b)
	mk, err := f.m.NewMACKey(context.Background(), f.kek)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 400)
	parallel(b, "MACs", func(m *Module, _ int64) error {
		_, err := m.MAC(context.Background(), mk, data)
		return err
	})
}
