package rsax

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRawAgainstMathBig compares both raw operations with a direct
// computation of c^d mod n and m^e mod n.
func TestRawAgainstMathBig(t *testing.T) {
	for _, id := range []keyID{{512, 3}, {768, 65537}, {1000, 3}, {1984, 3}, {1984, 65537}} {
		t.Run(fmt.Sprintf("%d/e=%d", id.bits, id.e), func(t *testing.T) {
			k := testKey(t, id.bits, id.e)
			size := (id.bits + 7) / 8
			r := seeded(uint64(id.bits))
			inputs := [][]byte{
				leftPadded(big.NewInt(0), size),
				leftPadded(big.NewInt(1), size),
				leftPadded(new(big.Int).Sub(k.N, bigOne), size),
			}
			for range 5 {
				m := make([]byte, size)
				if _, err := io.ReadFull(r, m); err != nil {
					t.Fatal(err)
				}
				m[0] = 0
				inputs = append(inputs, m)
			}
			for i, c := range inputs {
				x := new(big.Int).SetBytes(c)
				got, err := PrivateRaw(k, c)
				if err != nil {
					t.Fatalf("input %d: PrivateRaw: %v", i, err)
				}
				if diff := cmp.Diff(leftPadded(new(big.Int).Exp(x, k.D, k.N), size), got); diff != "" {
					t.Errorf("input %d: PrivateRaw (-want +got):\n%s", i, diff)
				}
				got, err = PublicRaw(&k.PublicKey, c)
				if err != nil {
					t.Fatalf("input %d: PublicRaw: %v", i, err)
				}
				if diff := cmp.Diff(leftPadded(new(big.Int).Exp(x, big.NewInt(int64(k.E)), k.N), size), got); diff != "" {
					t.Errorf("input %d: PublicRaw (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func leftPadded(x *big.Int, size int) []byte { return x.FillBytes(make([]byte, size)) }

// TestPrivateWithoutPrecomputed checks the constant-time computation of the
// CRT values from d alone.
func TestPrivateWithoutPrecomputed(t *testing.T) {
	k := testKey(t, 1024, 3)
	bare := &rsa.PrivateKey{PublicKey: k.PublicKey, D: k.D, Primes: []*big.Int{k.Primes[1], k.Primes[0]}}
	c := leftPadded(big.NewInt(0x123456789), 128)
	want, err := PrivateRaw(k, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PrivateRaw(bare, c)
	if err != nil {
		t.Fatalf("PrivateRaw without CRT values (q > p): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("results differ: %X, want %X", got, want)
	}
}

func TestRawErrors(t *testing.T) {
	k := testKey(t, 768, 3)
	n := leftPadded(k.N, 96)
	ok := leftPadded(big.NewInt(2), 96)

	faulty := *k
	faulty.Precomputed.Dp = new(big.Int).Add(k.Precomputed.Dp, bigOne)
	wrongPrimes := *k
	wrongPrimes.Primes = []*big.Int{k.Primes[0], big.NewInt(7)}
	evenPrime := *k
	evenPrime.Primes = []*big.Int{k.Primes[0], big.NewInt(8)}
	noD := &rsa.PrivateKey{PublicKey: k.PublicKey, Primes: k.Primes}
	multi := *k
	multi.Primes = []*big.Int{k.Primes[0], k.Primes[1], big.NewInt(5)}

	privTests := []struct {
		name string
		key  *rsa.PrivateKey
		in   []byte
		want string
	}{
		{"nil key", nil, ok, "nil private key"},
		{"short input", k, ok[1:], "input is 95 bytes"},
		{"long input", k, append([]byte{0}, ok...), "input is 97 bytes"},
		{"input equals n", k, n, "not smaller than the modulus"},
		{"fault in dp", &faulty, ok, "failed its public key check"},
		{"primes do not match n", &wrongPrimes, ok, "do not multiply to the modulus"},
		{"even prime", &evenPrime, ok, "not an odd number above one"},
		{"no d and no CRT values", noD, ok, "neither CRT values nor a private exponent"},
		{"three primes", &multi, ok, "exactly two primes"},
	}
	for _, tt := range privTests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := PrivateRaw(tt.key, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != nil {
				t.Errorf("PrivateRaw = %X, %v; want error containing %q", out, err, tt.want)
			}
		})
	}

	pubTests := []struct {
		name string
		pub  *rsa.PublicKey
		in   []byte
		want string
	}{
		{"nil key", nil, ok, "missing public key"},
		{"nil modulus", &rsa.PublicKey{E: 3}, ok, "missing public key"},
		{"even modulus", &rsa.PublicKey{N: new(big.Int).Add(k.N, bigOne), E: 3}, ok, "not an odd number"},
		{"even exponent", &rsa.PublicKey{N: k.N, E: 4}, ok, "public exponent 4"},
		{"exponent 1", &rsa.PublicKey{N: k.N, E: 1}, ok, "public exponent 1"},
		{"short input", &k.PublicKey, ok[1:], "input is 95 bytes"},
		{"input equals n", &k.PublicKey, n, "not smaller than the modulus"},
	}
	for _, tt := range pubTests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := PublicRaw(tt.pub, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != nil {
				t.Errorf("PublicRaw = %X, %v; want error containing %q", out, err, tt.want)
			}
		})
	}
}

// TestPrivateConcurrent runs one prepared key from several goroutines (run
// with -race).
func TestPrivateConcurrent(t *testing.T) {
	k := testKey(t, 1024, 65537)
	pk, err := NewPrivate(k)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Size() != 128 || pk.Public().N.Cmp(k.N) != 0 {
		t.Fatalf("Size %d, Public mismatch", pk.Size())
	}
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			c := leftPadded(big.NewInt(int64(1000+i)), 128)
			s, err := pk.Raw(c)
			if err == nil {
				var v []byte
				if v, err = PublicRaw(&k.PublicKey, s); err == nil && !bytes.Equal(v, c) {
					err = fmt.Errorf("goroutine %d: round trip mismatch", i)
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestSmallKeysWithoutGODEBUG shows that keys below 1024 bits work here
// while crypto/rsa, without GODEBUG=rsa1024min=0, refuses them.
func TestSmallKeysWithoutGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "rsa1024min=1")
	k := testKey(t, 768, 3)
	if err := k.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	digest := sha256.Sum256([]byte("perso"))
	if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:]); err == nil {
		t.Errorf("crypto/rsa signed with a 768-bit key; the GODEBUG note in the package documentation is stale")
	}
	if _, err := PrivateRaw(k, leftPadded(big.NewInt(42), 96)); err != nil {
		t.Errorf("PrivateRaw: %v", err)
	}
}

func TestPrivateRedacts(t *testing.T) {
	k := testKey(t, 512, 3)
	pk, err := NewPrivate(k)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", pk)
	c, err := ExportCRT(k)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewTextHandler(&logged, nil)).Info("crt", "c", c)
	outputs := []string{
		fmt.Sprint(pk), fmt.Sprintf("%v %+v %#v %s %x %X %q", pk, pk, pk, pk, pk, pk, pk), pk.String(),
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %x %X %q", c, c, c, c, c, c, c), c.String(),
		logged.String(),
	}
	secrets := []string{}
	for _, b := range [][]byte{c.P, c.Q, c.DP, c.DQ, c.QInv} {
		secrets = append(secrets, fmt.Sprintf("%x", b[len(b)-8:]), fmt.Sprintf("%X", b[len(b)-8:]))
	}
	secrets = append(secrets, k.D.Text(16)[:16], k.Primes[0].String()[:16])
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(out), strings.ToLower(s)) {
				t.Errorf("output %q carries secret bytes %s", out, s)
			}
		}
	}
	if want := "rsax private key (512 bits, e=3)"; pk.String() != want {
		t.Errorf("String = %q, want %q", pk.String(), want)
	}
}
