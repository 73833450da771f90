package soft_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
	"github.com/cardperso/perso/hsm/soft"
)

// newTestModule returns a module holding the suite's test keys and a
// generated issuer key.
func newTestModule(t testing.TB) *soft.Module {
	t.Helper()
	m, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("hsmtest")))
	if err != nil {
		t.Fatal(err)
	}
	hsmtest.Load(t, m)
	if _, err := m.GenerateRSAKey(hsmtest.IssuerKey, hsmtest.IssuerBits, hsmtest.IssuerExponent); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSuite(t *testing.T) {
	m := newTestModule(t)
	hsmtest.Run(t, m, hsmtest.Options{
		DES3KEK: true,
		CardKeys: []perso.CardKeyRequest{
			{Bits: 768, Exponent: 3}, {Bits: 1024, Exponent: 3}, {Bits: 1024, Exponent: 65537}, {Bits: 1408, Exponent: 3},
		},
	})
}

func TestRefusesWithoutAcknowledgement(t *testing.T) {
	if _, err := soft.New(); !errors.Is(err, soft.ErrNotAcknowledged) {
		t.Fatalf("New() = %v, want ErrNotAcknowledged", err)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	gen := func() [3]byte {
		m, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("seed")))
		if err != nil {
			t.Fatal(err)
		}
		kcv, err := m.GenerateKey(perso.KeyRef{Label: "K", Version: 1}, perso.KeyDES2)
		if err != nil {
			t.Fatal(err)
		}
		return kcv
	}
	if a, b := gen(), gen(); a != b {
		t.Errorf("same seed, different keys: %X %X", a, b)
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	m := newTestModule(t)
	var buf bytes.Buffer
	if err := m.WriteKeyFile(&buf); err != nil {
		t.Fatal(err)
	}
	m2, err := soft.New(soft.NotForProduction())
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ReadKeyFile(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: hsmtest.KEK}
	a, err := m.Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m2.Derive(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.KCV != b.KCV {
		t.Errorf("derived keys differ after a key file round trip")
	}
	p1, _ := m.PublicKey(ctx, hsmtest.IssuerKey)
	p2, err := m2.PublicKey(ctx, hsmtest.IssuerKey)
	if err != nil || p1.N.Cmp(p2.N) != 0 {
		t.Errorf("issuer key lost in a key file round trip: %v", err)
	}
}

func TestKeyFileErrorsNameTheEntry(t *testing.T) {
	m, _ := soft.New(soft.NotForProduction())
	tests := []struct{ file, want string }{
		{`{"keys":[{"label":"IMK","version":1,"type":"DES2","value":"0011"}]}`, "IMK/v1"},
		{`{"keys":[{"label":"IMK","version":1,"type":"RC4","value":"00"}]}`, "keys[0]"},
		{`{"keks":[{"issuer":"4512","version":1,"scheme":"AES-KW","value":"00"}]}`, "keks[0]"},
		{`{"rsa":[{"label":"ISS","version":1,"pkcs8":"!!"}]}`, "rsa[0] ISS/v1"},
		{`{"unknown":1}`, "key file"},
	}
	for _, tt := range tests {
		err := m.ReadKeyFile(strings.NewReader(tt.file))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadKeyFile(%s) = %v, want an error naming %q", tt.file, err, tt.want)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	m := newTestModule(t)
	ctx := context.Background()
	pk, err := m.Derive(ctx, perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: hsmtest.KEK})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: hsmtest.KMC, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: []byte{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := m.Seal(ctx, hsmtest.KEK, []byte("1234"))
	for _, v := range []any{pk, sk, sealed} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X"} {
			out := fmt.Sprintf(f, v)
			for _, secret := range [][]byte{pk.Wrapped, sk.ENC, sk.MAC, sk.DEK, sealed} {
				if strings.Contains(strings.ToLower(out), fmt.Sprintf("%x", secret[:4])) {
					t.Errorf("%s of %T shows key bytes: %s", f, v, out)
				}
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newTestModule(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				pan := fmt.Sprintf("47617390%08d", g*100+i)
				if _, err := m.Derive(ctx, perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(pan, 0), KEK: hsmtest.KEK}); err != nil {
					errs <- err
					return
				}
				mk, err := m.NewMACKey(ctx, hsmtest.KEK)
				if err != nil {
					errs <- err
					return
				}
				if _, err := m.MAC(ctx, mk, []byte(pan)); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDeriveOptionA(b *testing.B) {
	m := newTestModule(b)
	ctx := context.Background()
	req := perso.DeriveRequest{Master: hsmtest.IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: hsmtest.KEK}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Derive(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCardKey(b *testing.B) {
	for _, r := range []perso.CardKeyRequest{{Bits: 1024, Exponent: 3}, {Bits: 1408, Exponent: 3}, {Bits: 1984, Exponent: 3}, {Bits: 1024, Exponent: 65537}} {
		b.Run(fmt.Sprintf("%d-e%d", r.Bits, r.Exponent), func(b *testing.B) {
			m, _ := soft.New(soft.NotForProduction())
			m.ImportKEK(hsmtest.KEK, hsmtest.TestKEKs[0].Value)
			r.KEK = hsmtest.KEK
			ctx := context.Background()
			for b.Loop() {
				if _, err := m.GenerateCardKey(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
