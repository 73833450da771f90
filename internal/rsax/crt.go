package rsax

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"

	"filippo.io/bigmod"
)

// CRT holds the five CRT components of an RSA private key, each big-endian
// and left-padded to half the modulus length, ceil(bits/16) bytes, the form
// of EMV CPS v1.1 DGIs 8201 (qinv), 8202 (dq), 8203 (dp), 8204 (q) and 8205
// (p). qinv is q^-1 mod p.
//
// CRT holds secrets: it prints only its size; call Zero when done with it.
type CRT struct {
	P, Q, DP, DQ, QInv []byte
}

// HalfLen returns the length of each CRT component of a key with a
// modulus of bits bits: ceil(bits/16) bytes.
func HalfLen(bits int) int { return (bits + 15) / 16 }

// ExportCRT returns the CRT components of k. It computes those that
// k.Precomputed lacks in constant time. It fails if a component does not fit
// in half the modulus length, as with primes of unequal size.
func ExportCRT(k *rsa.PrivateKey) (*CRT, error) {
	pk, err := NewPrivate(k)
	if err != nil {
		return nil, err
	}
	l := HalfLen(k.N.BitLen())
	c := &CRT{}
	fields := []struct {
		name string
		dst  *[]byte
		src  []byte
	}{
		{"p", &c.P, k.Primes[0].Bytes()},
		{"q", &c.Q, k.Primes[1].Bytes()},
		{"dp", &c.DP, pk.dp},
		{"dq", &c.DQ, pk.dq},
		{"qinv", &c.QInv, pk.qinv.Bytes(pk.p)},
	}
	for _, f := range fields {
		v, err := leftPad(f.src, l)
		if err != nil {
			c.Zero()
			return nil, fmt.Errorf("rsax: CRT component %s: %w", f.name, err)
		}
		*f.dst = v
	}
	return c, nil
}

// trimZeros returns b without its leading zero bytes.
func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// leftPad returns b without its leading zeros, left-padded with zeros to l
// bytes.
func leftPad(b []byte, l int) ([]byte, error) {
	b = trimZeros(b)
	if len(b) > l {
		return nil, fmt.Errorf("%d bytes do not fit in %d", len(b), l)
	}
	out := make([]byte, l)
	copy(out[l-len(b):], b)
	return out, nil
}

// CPS returns the components in the order of EMV CPS v1.1 DGIs 8201 to
// 8205: qinv, dq, dp, q, p. The slices alias c.
func (c *CRT) CPS() [5][]byte { return [5][]byte{c.QInv, c.DQ, c.DP, c.Q, c.P} }

// Zero overwrites every component.
func (c *CRT) Zero() {
	if c == nil {
		return
	}
	for _, b := range [][]byte{c.P, c.Q, c.DP, c.DQ, c.QInv} {
		clear(b)
	}
}

// String describes the components without their values.
func (c *CRT) String() string {
	if c == nil {
		return "CRT components <nil>"
	}
	return fmt.Sprintf("CRT components (%d bytes each)", len(c.P))
}

// GoString is String.
func (c *CRT) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *CRT) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue keeps slog from printing the components.
func (c *CRT) LogValue() slog.Value { return slog.StringValue(c.String()) }

// FromCRT rebuilds the private key of pub from its CRT components. Each
// component must be exactly half the modulus length (see [HalfLen]). It
// checks that p·q = n, e·dp = 1 mod p-1, e·dq = 1 mod q-1 and
// q·qinv = 1 mod p, derives d = e^-1 mod lcm(p-1, q-1), and returns the key
// validated and precomputed. Error messages never carry component values.
func FromCRT(pub *rsa.PublicKey, c *CRT) (*rsa.PrivateKey, error) {
	if _, err := publicModulus(pub); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("rsax: missing CRT components")
	}
	l := HalfLen(pub.N.BitLen())
	for _, f := range []struct {
		name string
		v    []byte
	}{{"p", c.P}, {"q", c.Q}, {"dp", c.DP}, {"dq", c.DQ}, {"qinv", c.QInv}} {
		if len(f.v) != l {
			return nil, fmt.Errorf("rsax: CRT component %s is %d bytes, want %d", f.name, len(f.v), l)
		}
	}
	p, q := new(big.Int).SetBytes(c.P), new(big.Int).SetBytes(c.Q)
	pm, err := primeModulus(p)
	if err != nil {
		return nil, err
	}
	qm, err := primeModulus(q)
	if err != nil {
		return nil, err
	}
	if new(big.Int).Mul(p, q).Cmp(pub.N) != 0 {
		return nil, errors.New("rsax: CRT components: p·q is not the modulus")
	}
	// The checks of e·dp, e·dq and q·qinv run in constant time.
	if !inverseOfE(c.DP, pub.E, pm) {
		return nil, errors.New("rsax: CRT components: e·dp is not 1 mod p-1")
	}
	if !inverseOfE(c.DQ, pub.E, qm) {
		return nil, errors.New("rsax: CRT components: e·dq is not 1 mod q-1")
	}
	qinv, err := bigmod.NewNat().SetBytes(trimZeros(c.QInv), pm)
	if err != nil || bigmod.NewNat().Mod(qm.Nat(), pm).Mul(qinv, pm).IsOne() != 1 {
		return nil, errors.New("rsax: CRT components: q·qinv is not 1 mod p")
	}

	p1 := new(big.Int).Sub(p, bigOne)
	q1 := new(big.Int).Sub(q, bigOne)
	g := new(big.Int).GCD(nil, nil, p1, q1)
	lambda := new(big.Int).Mul(p1, new(big.Int).Quo(q1, g))
	d := new(big.Int).ModInverse(big.NewInt(int64(pub.E)), lambda)
	if d == nil {
		return nil, errors.New("rsax: CRT components: e is not invertible modulo λ(n)")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Set(pub.N), E: pub.E},
		D:         d,
		Primes:    []*big.Int{p, q},
		Precomputed: rsa.PrecomputedValues{
			Dp:   new(big.Int).SetBytes(c.DP),
			Dq:   new(big.Int).SetBytes(c.DQ),
			Qinv: new(big.Int).SetBytes(c.QInv),
		},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("rsax: CRT components: %w", err)
	}
	return k, nil
}

// inverseOfE reports whether e·dx = 1 mod (x-1), with dx < x-1.
func inverseOfE(dx []byte, e int, x *bigmod.Modulus) bool {
	xm1, err := bigmod.NewModulus(x.Nat().SubOne(x).Bytes(x))
	if err != nil {
		return false
	}
	d, err := bigmod.NewNat().SetBytes(trimZeros(dx), xm1)
	if err != nil {
		return false
	}
	ed := bigmod.NewNat().Mod(bigmod.NewNat().SetUint(uint(e)), xm1)
	return ed.Mul(d, xm1).IsOne() == 1
}
