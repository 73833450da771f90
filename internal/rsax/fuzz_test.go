package rsax

import (
	"bytes"
	"testing"
)

// FuzzFromCRT feeds arbitrary components to FromCRT: it must not panic, and
// whatever it accepts must be the key itself.
func FuzzFromCRT(f *testing.F) {
	k := testKey(f, 512, 3)
	good, err := ExportCRT(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.P, good.Q, good.DP, good.DQ, good.QInv)
	f.Add(good.Q, good.P, good.DQ, good.DP, good.QInv)
	f.Add([]byte{}, []byte{1}, []byte{3}, good.DQ, good.QInv)
	f.Fuzz(func(t *testing.T, p, q, dp, dq, qinv []byte) {
		got, err := FromCRT(&k.PublicKey, &CRT{P: p, Q: q, DP: dp, DQ: dq, QInv: qinv})
		if err != nil {
			return
		}
		if got.D.Cmp(k.D) != 0 || got.Primes[0].Cmp(k.Primes[0]) != 0 && got.Primes[0].Cmp(k.Primes[1]) != 0 {
			t.Fatalf("FromCRT accepted components of another key")
		}
	})
}

// FuzzRaw checks that the public and private operations invert each other
// on every input the public operation accepts.
func FuzzRaw(f *testing.F) {
	k := testKey(f, 512, 65537)
	f.Add(bytes.Repeat([]byte{0x01}, 64))
	f.Add(k.N.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, m []byte) {
		c, err := PublicRaw(&k.PublicKey, m)
		if err != nil {
			return
		}
		got, err := PrivateRaw(k, c)
		if err != nil {
			t.Fatalf("PrivateRaw: %v", err)
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("private(public(m)) = %X, want %X", got, m)
		}
	})
}
