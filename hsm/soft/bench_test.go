package soft_test

import (
	"context"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
)

// BenchmarkDerive derives one card key and protects it under the KEK, as
// a profile does three times per EMV card: the derivation, the key check
// value and the key wrap.
func BenchmarkDerive(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  perso.DeriveRequest
	}{
		{"option A/AES KEK", perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: hsmtest.KEK}},
		{"option A/DES KEK", perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: hsmtest.KEKDES}},
		{"option B/AES KEK", perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionB, Data: perso.PANPSN("4761739001010010123", 1), KEK: hsmtest.KEK}},
		{"CPS/AES KEK", perso.DeriveRequest{Master: hsmtest.KMC, Method: perso.MethodCPS, Data: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Key: perso.GPKeyENC, KEK: hsmtest.KEK}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Derive(ctx, c.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSeal seals a PIN block (8 bytes) and a 48-byte value under each
// kind of KEK.
func BenchmarkSeal(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	for _, kek := range []perso.KEKID{hsmtest.KEK, hsmtest.KEKDES} {
		for _, n := range []int{8, 48} {
			b.Run(kek.Scheme.String()+"/"+itoa(n), func(b *testing.B) {
				v := make([]byte, n)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Seal(ctx, kek, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMAC computes the per-application MAC the Preparer asks for
// (NewMACKey once, MAC over the application) and VerifyMAC as the bureau
// checks it, over 600 bytes, under each kind of KEK.
func BenchmarkMAC(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	data := make([]byte, 600)
	for _, kek := range []perso.KEKID{hsmtest.KEK, hsmtest.KEKDES} {
		key, err := m.NewMACKey(ctx, kek)
		if err != nil {
			b.Fatal(err)
		}
		mac, err := m.MAC(ctx, key, data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("NewMACKey/"+kek.Scheme.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.NewMACKey(ctx, kek); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("MAC/"+kek.Scheme.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.MAC(ctx, key, data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("VerifyMAC/"+kek.Scheme.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := m.VerifyMAC(ctx, key, data, mac); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionKeys derives a card's SCP02 session keys as the bureau
// does per card: the three card keys diversified from the KMC (CPS), then
// the four session keys.
func BenchmarkSessionKeys(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	req := perso.SessionKeyRequest{KMC: hsmtest.KMC, Method: perso.MethodCPS, KDD: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: []byte{0x00, 0x2A}}
	b.ReportAllocs()
	for b.Loop() {
		sk, err := m.SessionKeys(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		sk.Zero()
	}
}

// BenchmarkTranslate translates a sealed set of three card keys from the
// KEK to an SCP02 session DEK, as the bureau does for DGI 8000.
func BenchmarkTranslate(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	var keys []perso.ProtectedKey
	for _, k := range []perso.GPKey{perso.GPKeyENC, perso.GPKeyMAC, perso.GPKeyDEK} {
		pk, err := m.Derive(ctx, perso.DeriveRequest{Master: hsmtest.KMC, Method: perso.MethodCPS, Data: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Key: k, KEK: hsmtest.KEK})
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, pk)
	}
	sealed, err := perso.SealKeysOf(keys...)
	if err != nil {
		b.Fatal(err)
	}
	sk, err := m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: hsmtest.KMC, Method: perso.MethodCPS, KDD: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: []byte{0x00, 0x2A}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Translate(ctx, hsmtest.KEK, sealed, sk); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
