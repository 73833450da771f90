package rsax

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExportCRT(t *testing.T) {
	for _, id := range []keyID{{512, 3}, {768, 3}, {1000, 65537}, {1024, 3}, {1408, 65537}, {1984, 3}} {
		t.Run(fmt.Sprintf("%d/e=%d", id.bits, id.e), func(t *testing.T) {
			k := testKey(t, id.bits, id.e)
			c, err := ExportCRT(k)
			if err != nil {
				t.Fatal(err)
			}
			l := HalfLen(id.bits)
			pre := k.Precomputed
			want := [][]byte{
				leftPadded(pre.Qinv, l), leftPadded(pre.Dq, l), leftPadded(pre.Dp, l),
				leftPadded(k.Primes[1], l), leftPadded(k.Primes[0], l),
			}
			cps := c.CPS()
			if diff := cmp.Diff(want, cps[:]); diff != "" {
				t.Errorf("components in DGI 8201..8205 order (-want +got):\n%s", diff)
			}
			// Without precomputed values the same components come out.
			bare := &rsa.PrivateKey{PublicKey: k.PublicKey, D: k.D, Primes: k.Primes}
			c2, err := ExportCRT(bare)
			if err != nil {
				t.Fatal(err)
			}
			cps2 := c2.CPS()
			if diff := cmp.Diff(want, cps2[:]); diff != "" {
				t.Errorf("components computed from d (-want +got):\n%s", diff)
			}
			c.Zero()
			for i, b := range c.CPS() {
				if !bytes.Equal(b, make([]byte, l)) {
					t.Errorf("component %d not zeroed", i)
				}
			}
		})
	}
}

func TestHalfLen(t *testing.T) {
	got := []int{HalfLen(512), HalfLen(768), HalfLen(1000), HalfLen(1152), HalfLen(1984), HalfLen(1992)}
	if diff := cmp.Diff([]int{32, 48, 63, 72, 124, 125}, got); diff != "" {
		t.Errorf("HalfLen (-want +got):\n%s", diff)
	}
}

func TestFromCRTRejects(t *testing.T) {
	k := testKey(t, 768, 3)
	other := testKey(t, 768, 65537)
	good, err := ExportCRT(k)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := ExportCRT(other)
	if err != nil {
		t.Fatal(err)
	}
	l := HalfLen(768)
	plusOne := func(b []byte) []byte {
		return leftPadded(new(big.Int).Add(new(big.Int).SetBytes(b), bigOne), l)
	}
	with := func(f func(c *CRT)) *CRT {
		c := &CRT{P: bytes.Clone(good.P), Q: bytes.Clone(good.Q), DP: bytes.Clone(good.DP), DQ: bytes.Clone(good.DQ), QInv: bytes.Clone(good.QInv)}
		f(c)
		return c
	}
	tests := []struct {
		name string
		pub  *rsa.PublicKey
		crt  *CRT
		want string
	}{
		{"nil components", &k.PublicKey, nil, "missing CRT components"},
		{"nil public key", nil, good, "missing public key"},
		{"short p", &k.PublicKey, with(func(c *CRT) { c.P = c.P[1:] }), "component p is 47 bytes, want 48"},
		{"long qinv", &k.PublicKey, with(func(c *CRT) { c.QInv = append([]byte{0}, c.QInv...) }), "component qinv is 49 bytes"},
		{"p and q swapped", &k.PublicKey, with(func(c *CRT) { c.P, c.Q = c.Q, c.P }), "e·dp is not 1 mod p-1"},
		{"another key's p", &k.PublicKey, with(func(c *CRT) { c.P = oc.P }), "p·q is not the modulus"},
		{"even q", &k.PublicKey, with(func(c *CRT) { c.Q = leftPadded(new(big.Int).Sub(new(big.Int).SetBytes(c.Q), bigOne), l) }), "not an odd number above one"},
		{"zero p", &k.PublicKey, with(func(c *CRT) { c.P = make([]byte, l) }), "not an odd number above one"},
		{"wrong dp", &k.PublicKey, with(func(c *CRT) { c.DP = plusOne(c.DP) }), "e·dp is not 1 mod p-1"},
		{"wrong dq", &k.PublicKey, with(func(c *CRT) { c.DQ = plusOne(c.DQ) }), "e·dq is not 1 mod q-1"},
		{"wrong qinv", &k.PublicKey, with(func(c *CRT) { c.QInv = plusOne(c.QInv) }), "q·qinv is not 1 mod p"},
		{"qinv not below p", &k.PublicKey, with(func(c *CRT) { c.QInv = bytes.Repeat([]byte{0xFF}, l) }), "q·qinv is not 1 mod p"},
		{"wrong exponent", &rsa.PublicKey{N: k.N, E: 65537}, good, "e·dp is not 1 mod p-1"},
	}
	secrets := []string{fmt.Sprintf("%x", good.P[40:]), fmt.Sprintf("%x", good.Q[40:]), fmt.Sprintf("%x", good.DP[40:])}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromCRT(tt.pub, tt.crt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || got != nil {
				t.Fatalf("FromCRT = %v, %v; want error containing %q", got != nil, err, tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(err.Error()), s) {
					t.Errorf("error %q carries component bytes", err)
				}
			}
		})
	}
}
