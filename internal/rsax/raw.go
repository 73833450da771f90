package rsax

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"

	"filippo.io/bigmod"
)

// Private is an RSA private key prepared for raw operations: its moduli and
// CRT values are converted once, so that Raw costs only the exponentiations.
// It is safe for concurrent use. It prints only its size.
type Private struct {
	pub    rsa.PublicKey
	size   int // modulus length in bytes
	n      *bigmod.Modulus
	p, q   *bigmod.Modulus
	dp, dq []byte
	qinv   *bigmod.Nat // q^-1 mod p
	qn     *bigmod.Nat // q as a residue mod n
}

// NewPrivate prepares k for raw operations. k must have two primes; its CRT
// values are taken from k.Precomputed when they are set and computed in
// constant time otherwise. NewPrivate checks that p·q = n; Raw checks every
// result against the public key, so an inconsistent key fails there.
func NewPrivate(k *rsa.PrivateKey) (*Private, error) {
	if k == nil {
		return nil, errors.New("rsax: nil private key")
	}
	n, err := publicModulus(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	if len(k.Primes) != 2 || k.Primes[0] == nil || k.Primes[1] == nil {
		return nil, fmt.Errorf("%w: the key must have exactly two primes", ErrUnsupported)
	}
	p, err := primeModulus(k.Primes[0])
	if err != nil {
		return nil, err
	}
	q, err := primeModulus(k.Primes[1])
	if err != nil {
		return nil, err
	}
	pq, err := bigmod.NewModulusProduct(k.Primes[0].Bytes(), k.Primes[1].Bytes())
	if err != nil || pq.BitLen() != n.BitLen() || pq.Nat().Equal(n.Nat()) != 1 {
		return nil, errors.New("rsax: the primes do not multiply to the modulus")
	}
	dp, dq, qinv, err := crtValues(k, n, p, q)
	if err != nil {
		return nil, err
	}
	qn, err := bigmod.NewNat().SetBytes(k.Primes[1].Bytes(), n)
	if err != nil {
		return nil, errors.New("rsax: q is not below the modulus")
	}
	return &Private{
		pub:  rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E},
		size: n.Size(),
		n:    n, p: p, q: q,
		dp: dp, dq: dq, qinv: qinv, qn: qn,
	}, nil
}

// crtValues returns dp and dq (big-endian) and qinv (mod p) from k's
// precomputed values or, where they are missing, from d, p and q with
// constant-time arithmetic.
func crtValues(k *rsa.PrivateKey, n, p, q *bigmod.Modulus) (dp, dq []byte, qinv *bigmod.Nat, err error) {
	pre := k.Precomputed
	if pre.Dp != nil && pre.Dq != nil && pre.Qinv != nil {
		qinv, err := bigmod.NewNat().SetBytes(pre.Qinv.Bytes(), p)
		if err != nil {
			return nil, nil, nil, errors.New("rsax: CRT coefficient is not below p")
		}
		return pre.Dp.Bytes(), pre.Dq.Bytes(), qinv, nil
	}
	if k.D == nil {
		return nil, nil, nil, errors.New("rsax: the key has neither CRT values nor a private exponent")
	}
	d, err := bigmod.NewNat().SetBytes(k.D.Bytes(), n)
	if err != nil {
		return nil, nil, nil, errors.New("rsax: private exponent is not below the modulus")
	}
	if dp, err = exponentModMinusOne(d, p); err != nil {
		return nil, nil, nil, err
	}
	if dq, err = exponentModMinusOne(d, q); err != nil {
		return nil, nil, nil, err
	}
	// q^-1 = q^(p-2) mod p (Fermat), in constant time.
	pMinus2 := p.Nat().SubOne(p).SubOne(p).Bytes(p)
	qinv = bigmod.NewNat().Mod(q.Nat(), p)
	qinv.Exp(qinv, pMinus2, p)
	return dp, dq, qinv, nil
}

// exponentModMinusOne returns d mod (p-1), big-endian.
func exponentModMinusOne(d *bigmod.Nat, p *bigmod.Modulus) ([]byte, error) {
	pm1, err := bigmod.NewModulus(p.Nat().SubOne(p).Bytes(p))
	if err != nil {
		return nil, errors.New("rsax: invalid prime")
	}
	return bigmod.NewNat().Mod(d, pm1).Bytes(pm1), nil
}

// Public returns the public half of the key.
func (k *Private) Public() *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Set(k.pub.N), E: k.pub.E}
}

// Size returns the modulus length in bytes.
func (k *Private) Size() int { return k.size }

// Raw applies the private key to c, which must be exactly as long as the
// modulus and smaller than it: c^d mod n, computed by the Chinese remainder
// theorem (PKCS #1 v2.2 RSADP, second form) with constant-time arithmetic.
// Before returning m it checks m^e = c, so a computation fault never
// releases a wrong result. m is left-padded to the modulus length.
func (k *Private) Raw(c []byte) ([]byte, error) {
	if len(c) != k.size {
		return nil, fmt.Errorf("rsax: input is %d bytes, the modulus %d", len(c), k.size)
	}
	cn, err := bigmod.NewNat().SetBytes(c, k.n)
	if err != nil {
		return nil, errors.New("rsax: input is not smaller than the modulus")
	}
	m1 := bigmod.NewNat().Mod(cn, k.p)
	m1.Exp(m1, k.dp, k.p)
	m2 := bigmod.NewNat().Mod(cn, k.q)
	m2.Exp(m2, k.dq, k.q)
	// h = qinv·(m1 - m2) mod p; m = m2 + h·q, which is below p·q = n.
	h := bigmod.NewNat().Mod(m2, k.p)
	h = m1.Sub(h, k.p).Mul(k.qinv, k.p)
	m := h.ExpandFor(k.n).Mul(k.qn, k.n)
	m.Add(m2.ExpandFor(k.n), k.n)

	check := bigmod.NewNat().ExpShortVarTime(m, uint(k.pub.E), k.n)
	if check.Equal(cn) != 1 {
		return nil, errors.New("rsax: private key operation failed its public key check")
	}
	return m.Bytes(k.n), nil
}

// String describes the key without its secrets.
func (k *Private) String() string {
	if k == nil {
		return "rsax private key <nil>"
	}
	return fmt.Sprintf("rsax private key (%d bits, e=%d)", k.n.BitLen(), k.pub.E)
}

// GoString is String.
func (k *Private) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *Private) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing the key.
func (k *Private) LogValue() slog.Value { return slog.StringValue(k.String()) }

// PrivateRaw applies the private key k to c with no padding; see
// [Private.Raw]. To apply one key many times, prepare it once with
// [NewPrivate].
func PrivateRaw(k *rsa.PrivateKey, c []byte) ([]byte, error) {
	pk, err := NewPrivate(k)
	if err != nil {
		return nil, err
	}
	return pk.Raw(c)
}

// PublicRaw applies the public key to m with no padding: m^e mod n. m must
// be exactly as long as the modulus and smaller than it; the result is
// left-padded to the modulus length. It is the recovery step of EMV Book 2
// Annex A2.1.
func PublicRaw(pub *rsa.PublicKey, m []byte) ([]byte, error) {
	n, err := publicModulus(pub)
	if err != nil {
		return nil, err
	}
	if len(m) != n.Size() {
		return nil, fmt.Errorf("rsax: input is %d bytes, the modulus %d", len(m), n.Size())
	}
	x, err := bigmod.NewNat().SetBytes(m, n)
	if err != nil {
		return nil, errors.New("rsax: input is not smaller than the modulus")
	}
	return x.ExpShortVarTime(x, uint(pub.E), n).Bytes(n), nil
}

// publicModulus checks a public key and returns its modulus.
func publicModulus(pub *rsa.PublicKey) (*bigmod.Modulus, error) {
	if pub == nil || pub.N == nil {
		return nil, errors.New("rsax: missing public key")
	}
	if pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 || pub.N.BitLen() < 2 {
		return nil, errors.New("rsax: the modulus is not an odd number above one")
	}
	if pub.N.BitLen() > 2*MaxBits {
		return nil, fmt.Errorf("%w: %d-bit modulus", ErrUnsupported, pub.N.BitLen())
	}
	if pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return nil, fmt.Errorf("%w: public exponent %d", ErrUnsupported, pub.E)
	}
	return bigmod.NewModulus(pub.N.Bytes())
}

// primeModulus checks that a prime factor is odd and above one.
func primeModulus(p *big.Int) (*bigmod.Modulus, error) {
	if p.Sign() <= 0 || p.Bit(0) == 0 || p.BitLen() < 2 {
		return nil, errors.New("rsax: a prime factor is not an odd number above one")
	}
	return bigmod.NewModulus(p.Bytes())
}
