package rsax

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"sync"
)

// Key sizes that GenerateKey accepts, in bits.
const (
	MinBits = 512
	MaxBits = 4096
)

// ErrUnsupported reports a key size or public exponent that this package
// does not generate or operate with.
var ErrUnsupported = errors.New("rsax: unsupported key size or exponent")

// GenerateKey generates an RSA key pair with a modulus of exactly bits bits
// and the public exponent e, which must be 3 or 65537. bits must be a
// multiple of 8 from MinBits to MaxBits. random supplies the random starting
// points of the prime search; with the same stream GenerateKey returns the
// same key.
//
// The key is validated (crypto/rsa Validate, which also rejects primes that
// are too close or a private exponent that is too small), precomputed, and
// checked by a pairwise consistency test before it is returned.
func GenerateKey(random io.Reader, bits, e int) (*rsa.PrivateKey, error) {
	if bits < MinBits || bits > MaxBits || bits%8 != 0 {
		return nil, fmt.Errorf("%w: %d-bit modulus (want a multiple of 8 from %d to %d)", ErrUnsupported, bits, MinBits, MaxBits)
	}
	if e != 3 && e != 65537 {
		return nil, fmt.Errorf("%w: public exponent %d (want 3 or 65537)", ErrUnsupported, e)
	}
	half := bits / 2
	E := big.NewInt(int64(e))
	// |p - q| must exceed 2^(bits/2-100) (FIPS 186-5 A.1.3, which
	// crypto/rsa's Validate checks too).
	minDiff := new(big.Int).Lsh(bigOne, uint(half-100))
	for {
		p, err := randomPrime(random, half, e)
		if err != nil {
			return nil, err
		}
		q, err := randomPrime(random, half, e)
		if err != nil {
			return nil, err
		}
		switch p.Cmp(q) {
		case 0:
			return nil, errBrokenRandom
		case -1:
			p, q = q, p
		}
		if new(big.Int).Sub(p, q).Cmp(minDiff) <= 0 {
			continue
		}
		k, err := assemble(p, q, E, bits)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := pairwiseTest(random, k); err != nil {
			return nil, err
		}
		return k, nil
	}
}

var (
	bigOne          = big.NewInt(1)
	two             = big.NewInt(2)
	errRetry        = errors.New("rsax: retry")
	errBrokenRandom = errors.New("rsax: generated p = q: the random source is broken")
)

// assemble computes the private exponent and the CRT values of the primes
// p > q and validates the key. It returns errRetry for the (negligible) case
// of a private exponent no longer than half the modulus.
func assemble(p, q, e *big.Int, bits int) (*rsa.PrivateKey, error) {
	n := new(big.Int).Mul(p, q)
	if n.BitLen() != bits {
		return nil, fmt.Errorf("rsax: internal error: %d-bit modulus for a %d-bit key", n.BitLen(), bits)
	}
	p1 := new(big.Int).Sub(p, bigOne)
	q1 := new(big.Int).Sub(q, bigOne)
	// d = e^-1 mod λ(n), λ(n) = lcm(p-1, q-1) (FIPS 186-5 A.1.1).
	g := new(big.Int).GCD(nil, nil, p1, q1)
	lambda := new(big.Int).Mul(p1, new(big.Int).Quo(q1, g))
	d := new(big.Int).ModInverse(e, lambda)
	if d == nil {
		return nil, errors.New("rsax: internal error: e is not invertible modulo λ(n)")
	}
	if d.BitLen() <= bits/2 {
		return nil, errRetry
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
		D:         d,
		Primes:    []*big.Int{p, q},
		Precomputed: rsa.PrecomputedValues{
			Dp:   new(big.Int).Mod(d, p1),
			Dq:   new(big.Int).Mod(d, q1),
			Qinv: new(big.Int).ModInverse(q, p),
		},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("rsax: generated key is invalid: %w", err)
	}
	return k, nil
}

// pairwiseTest signs a random block with the raw private operation (which
// checks its own result) and verifies it with the public operation, as FIPS
// 140-3 IG 10.3.A asks of a generated key pair.
func pairwiseTest(random io.Reader, k *rsa.PrivateKey) error {
	m := make([]byte, (k.N.BitLen()+7)/8)
	if _, err := io.ReadFull(random, m[1:]); err != nil {
		return fmt.Errorf("rsax: pairwise test: %w", err)
	}
	m[1] |= 1 // never 0 or 1
	s, err := PrivateRaw(k, m)
	if err != nil {
		return fmt.Errorf("rsax: pairwise test: %w", err)
	}
	v, err := PublicRaw(&k.PublicKey, s)
	if err != nil {
		return fmt.Errorf("rsax: pairwise test: %w", err)
	}
	if !bytesEqual(v, m) {
		return errors.New("rsax: pairwise test failed")
	}
	return nil
}

func bytesEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var x byte
	for i := range a {
		x |= a[i] ^ b[i]
	}
	return x == 0
}

// sieveWindow is how many candidates one random start covers before a new
// start is drawn. Prime gaps average ln(2^bits) ≈ 0.69·bits, so even 2048-bit
// primes are found within a window nearly always.
const sieveWindow = 1 << 13

// randomPrime returns a prime of exactly bits bits with its two top bits set
// and gcd(e, p-1) = 1, for e = 3 or 65537.
func randomPrime(random io.Reader, bits, e int) (*big.Int, error) {
	st := smallPrimes()
	buf := make([]byte, (bits+7)/8)
	excess := uint(len(buf)*8 - bits)
	rounds := millerRabinRounds(bits)
	composite := make([]bool, sieveWindow)

	// For e = 3 the candidates are 5 mod 6 (odd and 2 mod 3, so 3 does not
	// divide p-1); otherwise they are odd.
	step, stepInv := uint(2), st.inv2
	if e == 3 {
		step, stepInv = 6, st.inv6
	}
	x, delta, nm1, fermat := new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	for {
		if _, err := io.ReadFull(random, buf); err != nil {
			return nil, fmt.Errorf("rsax: reading random: %w", err)
		}
		buf[0] &= 0xFF >> excess
		// The two top bits make the product of two primes exactly 2·bits
		// long (and p > sqrt(2)·2^(bits-1), as FIPS 186-5 A.1.3 asks).
		if excess < 7 {
			buf[0] |= 0xC0 >> excess
		} else {
			buf[0] |= 1
			buf[1] |= 0x80
		}
		buf[len(buf)-1] |= 1
		x.SetBytes(buf)
		if e == 3 {
			// x is odd, so x mod 6 is 1, 3 or 5: move it to 5 mod 6.
			x.Add(x, delta.SetUint64(uint64(5-modWord(x, 6))))
		}

		clear(composite)
		st.sieve(x, step, stepInv, composite)
		if e == 65537 {
			markResidue(x, 65537, 1, step, composite)
		}
		for k, c := range composite {
			if c {
				continue
			}
			cand := new(big.Int).Add(x, delta.SetUint64(uint64(k)*uint64(step)))
			if cand.BitLen() != bits {
				break // ran past 2^bits: start again
			}
			// A Fermat test to base 2 rejects nearly every composite that
			// passed the sieve at the cost of one exponentiation, before
			// the full test.
			if fermat.Exp(two, nm1.Sub(cand, bigOne), cand).Cmp(bigOne) != 0 {
				continue
			}
			// ProbablyPrime(n) runs n rounds with random bases, one with
			// base 2 and a strong Lucas test.
			if cand.ProbablyPrime(rounds - 1) {
				return cand, nil
			}
		}
	}
}

// millerRabinRounds returns the number of Miller-Rabin rounds with random
// bases after which a random k-bit odd integer that passes is composite with
// probability below 2^-100, by the Damgård-Landrock-Pomerance bound
// p(k,t) < k^(3/2)·2^t·t^(-1/2)·4^(2-sqrt(t·k)) for 3 <= t <= k/9, k >= 21
// (Handbook of Applied Cryptography, fact 4.48). It gives 4 rounds for
// 1024-bit primes, as FIPS 186-5 Table B.1 does, and more for the smaller
// primes of short ICC keys.
func millerRabinRounds(k int) int {
	kf := float64(k)
	for t := 3; t <= k/9; t++ {
		tf := float64(t)
		log2p := 1.5*math.Log2(kf) + tf - 0.5*math.Log2(tf) + 2*(2-math.Sqrt(tf*kf))
		if log2p <= -100 {
			return t
		}
	}
	return 64 // outside the bound's range: the worst case, 4^-t
}

// sieveTable holds the odd primes below sieveLimit, grouped so that each
// group's product fits in a machine word, and the inverses of the two search
// steps modulo each prime.
type sieveTable struct {
	primes     []uint
	groups     []primeGroup
	inv2, inv6 []uint // 2^-1 and 6^-1 mod primes[i] (inv6 is 0 for 3)
}

type primeGroup struct {
	product    uint
	start, end int // primes[start:end]
}

// sieveLimit bounds the sieving primes. The 6541 odd primes below 2^16 leave
// about 10% of odd candidates for an exponentiation; computing a window's
// residues costs about one 512-bit exponentiation, and more primes would
// save less than they cost.
const sieveLimit = 1 << 16

var smallPrimes = sync.OnceValue(func() *sieveTable {
	isComposite := make([]bool, sieveLimit)
	t := &sieveTable{}
	for i := 3; i < sieveLimit; i += 2 {
		if isComposite[i] {
			continue
		}
		t.primes = append(t.primes, uint(i))
		if i > sieveLimit/i {
			continue // i·i is past the limit (and may overflow a 32-bit int)
		}
		for j := i * i; j < sieveLimit; j += 2 * i {
			isComposite[j] = true
		}
	}
	for i := 0; i < len(t.primes); {
		g := primeGroup{product: 1, start: i}
		for i < len(t.primes) {
			hi, lo := bits.Mul(g.product, t.primes[i])
			if hi != 0 {
				break
			}
			g.product = lo
			i++
		}
		g.end = i
		t.groups = append(t.groups, g)
	}
	t.inv2 = make([]uint, len(t.primes))
	t.inv6 = make([]uint, len(t.primes))
	for i, p := range t.primes {
		t.inv2[i] = (p + 1) / 2
		if p != 3 {
			t.inv6[i] = modInverse(6, p)
		}
	}
	return t
})

// modInverse returns a^-1 mod p for a prime p < 2^32 that does not divide a.
func modInverse(a, p uint) uint {
	// Fermat: a^(p-2) mod p.
	r, b, m := uint64(1), uint64(a%p), uint64(p)
	for e := m - 2; e > 0; e >>= 1 {
		if e&1 == 1 {
			r = r * b % m
		}
		b = b * b % m
	}
	return uint(r)
}

// modWord returns x mod m for a word m.
func modWord(x *big.Int, m uint) uint {
	w := x.Bits()
	var r uint
	for i := len(w) - 1; i >= 0; i-- {
		_, r = bits.Div(r, uint(w[i]), m)
	}
	return r
}

// sieve marks composite[k] for every k such that x + k·step is divisible by
// one of the table's primes.
func (t *sieveTable) sieve(x *big.Int, step uint, stepInv []uint, composite []bool) {
	w := uint(len(composite))
	for _, g := range t.groups {
		r := modWord(x, g.product)
		for i := g.start; i < g.end; i++ {
			p := t.primes[i]
			if stepInv[i] == 0 {
				continue // p divides the step: x's residue never changes
			}
			// x + k·step = 0 mod p  <=>  k = -x·step^-1 mod p.
			k := (p - r%p) % p * stepInv[i] % p
			for ; k < w; k += p {
				composite[k] = true
			}
		}
	}
}

// markResidue marks composite[k] for every k such that
// x + k·step = residue mod m, for a prime m that does not divide step.
func markResidue(x *big.Int, m, residue, step uint, composite []bool) {
	r := modWord(x, m)
	k := uint(uint64((residue+m-r)%m) * uint64(modInverse(step, m)) % uint64(m))
	for w := uint(len(composite)); k < w; k += m {
		composite[k] = true
	}
}
