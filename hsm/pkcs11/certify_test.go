package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/cardperso/perso"
	"github.com/google/go-cmp/cmp"
)

// parseSealedPKCS8 parses the PKCS#8 private key of a SealRSAComponent as
// opened with the test KEK: one DER element, which a token may follow with
// up to 7 zero bytes of padding.
func parseSealedPKCS8(tb testing.TB, b []byte) *rsa.PrivateKey {
	tb.Helper()
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil {
		tb.Fatalf("sealed private key is not DER: %v", err)
	}
	if len(rest) > 7 {
		tb.Fatalf("%d bytes after the PKCS#8 key", len(rest))
	}
	for _, c := range rest {
		if c != 0 {
			tb.Fatal("non-zero padding after the PKCS#8 key")
		}
	}
	k, err := x509.ParsePKCS8PrivateKey(raw.FullBytes)
	if err != nil {
		tb.Fatal(err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("sealed key is a %T", k)
	}
	return rk
}

// crtComponent returns component c (1 p, 2 q, 3 dp, 4 dq, 5 qinv) of k.
func crtComponent(k *rsa.PrivateKey, c uint8) *big.Int {
	switch c {
	case 1:
		return k.Primes[0]
	case 2:
		return k.Primes[1]
	case 3:
		return k.Precomputed.Dp
	case 4:
		return k.Precomputed.Dq
	}
	return k.Precomputed.Qinv
}

func TestGenerateCardKey(t *testing.T) {
	f := fixtureFor(t)
	for _, c := range []struct{ bits, e int }{{1024, 3}, {1152, 65537}, {768, 3}, {1984, 3}} {
		t.Run(fmt.Sprintf("%d/e=%d", c.bits, c.e), func(t *testing.T) {
			if testing.Short() && c.bits > 1152 {
				t.Skip("slow key generation")
			}
			ck, err := f.m.GenerateCardKey(context.Background(), perso.CardKeyRequest{Bits: c.bits, Exponent: c.e, KEK: f.kek})
			if err != nil {
				t.Fatal(err)
			}
			if ck.Public.N.BitLen() != c.bits || ck.Public.E != c.e {
				t.Fatalf("public key of %d bits, e=%d", ck.Public.N.BitLen(), ck.Public.E)
			}
			var priv *rsa.PrivateKey
			for i, s := range ck.CRT {
				p, err := s.Parse()
				if err != nil {
					t.Fatalf("CRT[%d]: %v", i, err)
				}
				if p.Form != perso.SealRSAComponent || p.Component != uint8(5-i) || p.ModLen != c.bits/8 {
					t.Fatalf("CRT[%d]: form %d, component %d, modulus %d bytes; want 3, %d, %d", i, p.Form, p.Component, p.ModLen, 5-i, c.bits/8)
				}
				k := parseSealedPKCS8(t, openValue(t, p.Wrapped))
				if priv == nil {
					priv = k
				} else if !priv.Equal(k) {
					t.Fatalf("CRT[%d] holds another private key", i)
				}
			}
			if err := priv.Validate(); err != nil {
				t.Fatal(err)
			}
			if priv.N.Cmp(ck.Public.N) != 0 || priv.E != c.e {
				t.Fatal("sealed private key does not match the public key")
			}
		})
	}
	for _, c := range []struct {
		name string
		req  perso.CardKeyRequest
		want error
	}{
		{"too big", perso.CardKeyRequest{Bits: 2048, Exponent: 3, KEK: f.kek}, perso.ErrUnsupported},
		{"odd size", perso.CardKeyRequest{Bits: 1020, Exponent: 3, KEK: f.kek}, perso.ErrUnsupported},
		{"exponent 17", perso.CardKeyRequest{Bits: 1024, Exponent: 17, KEK: f.kek}, perso.ErrUnsupported},
		{"3DES KEK", perso.CardKeyRequest{Bits: 1024, Exponent: 3, KEK: f.kekDES}, perso.ErrUnsupported},
		{"unknown KEK", perso.CardKeyRequest{Bits: 1024, Exponent: 3, KEK: f.kekMiss}, perso.ErrNoSuchKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.GenerateCardKey(context.Background(), c.req); !errors.Is(err, c.want) {
				t.Errorf("GenerateCardKey: %v, want %v", err, c.want)
			}
		})
	}
}

func TestSignRaw(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	pub, err := f.m.PublicKey(ctx, f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if pub.N.BitLen() != 1024 || pub.E != 3 {
		t.Fatalf("issuer key of %d bits, e=%d", pub.N.BitLen(), pub.E)
	}
	block := make([]byte, pub.Size())
	rand.Read(block)
	block[0] = 0x6A // EMV Book 2 recovered data header: smaller than any modulus of this length
	sig, err := f.m.SignRaw(ctx, f.issuer, block)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != pub.Size() {
		t.Fatalf("signature of %d bytes", len(sig))
	}
	if err := checkRaw(pub, block, sig); err != nil {
		t.Fatal(err)
	}

	// A known key imported: the token's raw signature is the textbook one.
	known, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ref := perso.KeyRef{Label: f.prefix + "ISSUER-IMPORTED", Version: 2}
	defer f.m.DestroyKeys(ctx, ref.String())
	if _, err := f.m.ImportIssuerKey(ctx, ref, known); err != nil {
		t.Fatal(err)
	}
	sig, err = f.m.SignRaw(ctx, ref, block)
	if err != nil {
		t.Fatal(err)
	}
	want := leftPad(new(big.Int).Exp(new(big.Int).SetBytes(block), known.D, known.N).Bytes(), known.Size())
	if !cmp.Equal(sig, want) {
		t.Errorf("raw signature %X, want %X", sig, want)
	}
	if _, err := f.m.ImportIssuerKey(ctx, ref, known); !errors.Is(err, ErrExists) {
		t.Errorf("importing over an existing key: %v, want ErrExists", err)
	}

	tooBig := leftPad(pub.N.Bytes(), pub.Size())
	for _, c := range []struct {
		name   string
		issuer perso.KeyRef
		block  []byte
		want   error
	}{
		{"short block", f.issuer, block[1:], perso.ErrBadInput},
		{"block = modulus", f.issuer, tooBig, perso.ErrBadInput},
		{"unknown issuer", perso.KeyRef{Label: f.prefix + "NONE", Version: 1}, block, perso.ErrNoSuchKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.SignRaw(ctx, c.issuer, c.block); !errors.Is(err, c.want) {
				t.Errorf("SignRaw: %v, want %v", err, c.want)
			}
		})
	}
}

func TestCheckRaw(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, k.Size())
	block[0], block[k.Size()-1] = 0x6A, 0xBC
	sig := new(big.Int).Exp(new(big.Int).SetBytes(block), k.D, k.N).Bytes()
	if err := checkRaw(&k.PublicKey, block, sig); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	bad := clone(sig)
	bad[len(bad)-1] ^= 1
	if err := checkRaw(&k.PublicKey, block, bad); err == nil {
		t.Error("a wrong signature passed the check")
	}
	if err := checkRaw(&k.PublicKey, block, k.N.Bytes()); err == nil {
		t.Error("a signature equal to the modulus passed the check")
	}
}
