package rsax

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seeded returns a deterministic random stream for reproducible keys.
func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return mrand.NewChaCha8(s)
}

type keyID struct{ bits, e int }

var (
	keyMu    sync.Mutex
	keyCache = map[keyID]*rsa.PrivateKey{}
)

// testKey returns a deterministic key of the given size and exponent,
// generated once per test binary.
func testKey(t testing.TB, bits, e int) *rsa.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	id := keyID{bits, e}
	if k, ok := keyCache[id]; ok {
		return k
	}
	k, err := GenerateKey(seeded(uint64(bits+e)), bits, e)
	if err != nil {
		t.Fatalf("GenerateKey(%d, %d): %v", bits, e, err)
	}
	keyCache[id] = k
	return k
}

var bigCmp = cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })

func TestGenerateKey(t *testing.T) {
	for _, bits := range []int{512, 768, 1000, 1024, 1152, 1408, 1984, 2048} {
		for _, e := range []int{3, 65537} {
			t.Run(fmt.Sprintf("%d/e=%d", bits, e), func(t *testing.T) {
				k := testKey(t, bits, e)
				if got := k.N.BitLen(); got != bits {
					t.Errorf("modulus has %d bits, want %d", got, bits)
				}
				if k.E != e {
					t.Errorf("E = %d, want %d", k.E, e)
				}
				if err := k.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
				checkPrimes(t, k)
				// Pairwise: a random block round-trips through the raw
				// private and public operations.
				m := make([]byte, (bits+7)/8)
				if _, err := io.ReadFull(seeded(9), m[1:]); err != nil {
					t.Fatal(err)
				}
				s, err := PrivateRaw(k, m)
				if err != nil {
					t.Fatalf("PrivateRaw: %v", err)
				}
				v, err := PublicRaw(&k.PublicKey, s)
				if err != nil {
					t.Fatalf("PublicRaw: %v", err)
				}
				if diff := cmp.Diff(m, v); diff != "" {
					t.Errorf("public(private(m)) != m (-want +got):\n%s", diff)
				}
				// The CRT components rebuild the same key.
				c, err := ExportCRT(k)
				if err != nil {
					t.Fatalf("ExportCRT: %v", err)
				}
				k2, err := FromCRT(&k.PublicKey, c)
				if err != nil {
					t.Fatalf("FromCRT: %v", err)
				}
				want := []*big.Int{k.N, k.Primes[0], k.Primes[1], k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv, k.D}
				got := []*big.Int{k2.N, k2.Primes[0], k2.Primes[1], k2.Precomputed.Dp, k2.Precomputed.Dq, k2.Precomputed.Qinv, k2.D}
				if diff := cmp.Diff(want, got, bigCmp); diff != "" {
					t.Errorf("rebuilt key differs (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// checkPrimes checks the properties GenerateKey promises of p and q.
func checkPrimes(t *testing.T, k *rsa.PrivateKey) {
	t.Helper()
	half := k.N.BitLen() / 2
	p, q := k.Primes[0], k.Primes[1]
	e := big.NewInt(int64(k.E))
	for name, x := range map[string]*big.Int{"p": p, "q": q} {
		if x.BitLen() != half || x.Bit(half-2) != 1 {
			t.Errorf("%s has %d bits (bit %d = %d), want %d bits with the top two set", name, x.BitLen(), half-2, x.Bit(half-2), half)
		}
		if !x.ProbablyPrime(20) {
			t.Errorf("%s is not prime", name)
		}
		x1 := new(big.Int).Sub(x, bigOne)
		if g := new(big.Int).GCD(nil, nil, e, x1); g.Cmp(bigOne) != 0 {
			t.Errorf("gcd(e, %s-1) = %v", name, g)
		}
	}
	if p.Cmp(q) <= 0 {
		t.Errorf("p <= q")
	}
	diff := new(big.Int).Sub(p, q)
	if diff.BitLen() <= half-100 {
		t.Errorf("|p-q| has %d bits, want more than %d", diff.BitLen(), half-100)
	}
	if k.D.BitLen() <= half {
		t.Errorf("d has %d bits, want more than %d", k.D.BitLen(), half)
	}
}

func TestGenerateKeyDeterministic(t *testing.T) {
	a, err := GenerateKey(seeded(7), 768, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(seeded(7), 768, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*big.Int{a.N, a.D}, []*big.Int{b.N, b.D}, bigCmp); diff != "" {
		t.Errorf("same stream, different keys:\n%s", diff)
	}
	c, err := GenerateKey(seeded(8), 768, 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.N.Cmp(c.N) == 0 {
		t.Errorf("different streams gave the same modulus")
	}
}

func TestGenerateKeyRejects(t *testing.T) {
	readErr := errors.New("no entropy")
	tests := []struct {
		name    string
		random  io.Reader
		bits, e int
		want    error
	}{
		{"too short", seeded(1), 504, 3, ErrUnsupported},
		{"too long", seeded(1), 4104, 3, ErrUnsupported},
		{"not a multiple of 8", seeded(1), 1020, 3, ErrUnsupported},
		{"exponent 5", seeded(1), 1024, 5, ErrUnsupported},
		{"exponent 17", seeded(1), 1024, 17, ErrUnsupported},
		{"exponent 1", seeded(1), 1024, 1, ErrUnsupported},
		{"reader fails", iotestErrReader{readErr}, 1024, 3, readErr},
		{"reader runs dry", io.LimitReader(seeded(1), 40), 1024, 65537, io.ErrUnexpectedEOF},
		{"reader repeats itself", zeroReader{}, 768, 3, errBrokenRandom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := GenerateKey(tt.random, tt.bits, tt.e)
			if !errors.Is(err, tt.want) || k != nil {
				t.Errorf("GenerateKey(%d, %d) = %v, %v; want error %v", tt.bits, tt.e, k, err, tt.want)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestSieve checks that the sieve marks exactly the candidates that a small
// prime divides, for both search steps.
func TestSieve(t *testing.T) {
	st := smallPrimes()
	x := new(big.Int).SetBytes([]byte{0xC7, 0x21, 0x94, 0x5E, 0x11, 0x02, 0x6F, 0x3B, 0x9D, 0xA1, 0x55, 0xE3, 0x27, 0x80, 0x4D, 0xB5, 0x01})
	for _, tt := range []struct {
		step uint
		inv  []uint
	}{{2, st.inv2}, {6, st.inv6}} {
		composite := make([]bool, 512)
		st.sieve(x, tt.step, tt.inv, composite)
		for k, c := range composite {
			cand := new(big.Int).Add(x, big.NewInt(int64(k)*int64(tt.step)))
			divisible := false
			for _, p := range st.primes {
				if tt.step%p == 0 {
					continue
				}
				if new(big.Int).Mod(cand, big.NewInt(int64(p))).Sign() == 0 {
					divisible = true
					break
				}
			}
			if c != divisible {
				t.Errorf("step %d: candidate %d marked %v, divisible by a table prime %v", tt.step, k, c, divisible)
			}
		}
	}
	composite := make([]bool, 3*65537)
	markResidue(x, 65537, 1, 2, composite)
	for k, c := range composite {
		r := new(big.Int).Add(x, big.NewInt(int64(2*k)))
		want := r.Mod(r, big.NewInt(65537)).Int64() == 1
		if c != want {
			t.Fatalf("markResidue: candidate %d marked %v, want %v", k, c, want)
		}
	}
}

func TestMillerRabinRounds(t *testing.T) {
	got := map[int]int{}
	for _, k := range []int{256, 384, 512, 704, 992, 1024, 2048} {
		got[k] = millerRabinRounds(k)
	}
	// 1024-bit primes: 4 rounds, as FIPS 186-5 Table B.1 gives for an
	// error of 2^-100. The rest follow from the same bound (HAC 4.48).
	want := map[int]int{256: 17, 384: 11, 512: 8, 704: 6, 992: 4, 1024: 4, 2048: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rounds (-want +got):\n%s", diff)
	}
}
