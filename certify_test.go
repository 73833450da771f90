package perso

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso/internal/rsax"
)

// memCertifier is an in-memory Certifier for tests. It keeps private keys
// in clear and "seals" card key components by prefixing the SealValue form
// byte, which no real security module would do.
type memCertifier struct {
	mu     sync.Mutex
	random io.Reader
	keys   map[KeyRef]*rsa.PrivateKey
	cards  map[string]*rsa.PrivateKey // generated card keys by modulus
	// sign, when set, replaces the private key operation (fault injection).
	sign func(ref KeyRef, block []byte) ([]byte, error)
}

func newMemCertifier(keys map[KeyRef]*rsa.PrivateKey) *memCertifier {
	return &memCertifier{random: certRand(99), keys: keys, cards: map[string]*rsa.PrivateKey{}}
}

func (m *memCertifier) GenerateCardKey(ctx context.Context, req CardKeyRequest) (*CardKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, err := rsax.GenerateKey(m.random, req.Bits, req.Exponent)
	if errors.Is(err, rsax.ErrUnsupported) {
		return nil, fmt.Errorf("mem: %v: %w", err, ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	crt, err := rsax.ExportCRT(k)
	if err != nil {
		return nil, err
	}
	out := &CardKey{Public: &k.PublicKey}
	for i, c := range crt.CPS() {
		out.CRT[i] = Sealed(append([]byte{byte(SealValue)}, c...))
	}
	m.cards[k.N.Text(16)] = k
	return out, nil
}

func (m *memCertifier) PublicKey(ctx context.Context, ref KeyRef) (*rsa.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[ref]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", ref, ErrNoSuchKey)
	}
	return &k.PublicKey, nil
}

func (m *memCertifier) SignRaw(ctx context.Context, ref KeyRef, block []byte) ([]byte, error) {
	m.mu.Lock()
	k, ok := m.keys[ref]
	sign := m.sign
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", ref, ErrNoSuchKey)
	}
	if sign != nil {
		return sign(ref, block)
	}
	return rsax.PrivateRaw(k, block)
}

// cardKey returns the private key of a card key the certifier generated.
func (m *memCertifier) cardKey(pub *rsa.PublicKey) *rsa.PrivateKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cards[pub.N.Text(16)]
}

func certRand(seed byte) io.Reader { return mrand.NewChaCha8([32]byte{seed, 'c', 'e', 'r', 't'}) }

// Test keys, generated once from fixed seeds.
var (
	certKeyMu  sync.Mutex
	certKeyMap = map[string]*rsa.PrivateKey{}
)

func certKey(t testing.TB, name string, bits, e int) *rsa.PrivateKey {
	t.Helper()
	certKeyMu.Lock()
	defer certKeyMu.Unlock()
	if k, ok := certKeyMap[name]; ok {
		return k
	}
	k, err := rsax.GenerateKey(certRand(byte(len(certKeyMap)+1)), bits, e)
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	certKeyMap[name] = k
	return k
}

var (
	refCA     = KeyRef{Label: "CA/A000000003/92", Version: 1}
	refIssuer = KeyRef{Label: "ISSUER/476173", Version: 1}
	testPAN   = "4761739001010010"
	// certNow is inside the validity of every test certificate.
	certNow = time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
)

// testCA is a test certification authority with a published-style RID and
// index; its 1408-bit key is generated, not published.
func testCA(t testing.TB) *CAPublicKey {
	return &CAPublicKey{RID: [5]byte{0xA0, 0, 0, 0, 0x03}, Index: 0x92, Key: &certKey(t, "ca", 1408, 3).PublicKey}
}

func certHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

var certCmp = cmp.Options{
	cmp.Comparer(func(a, b *rsa.PublicKey) bool { return a.Equal(b) }),
}

// emvCertVectors mirrors testdata/emv_certs.json.
type emvCertVectors struct {
	Vectors []struct {
		Name   string
		Source struct{ Repo, Path, Commit string }
		CA     struct{ RID, Index, Modulus, Exponent, Checksum string }
		PAN    string
		Now    string
		Issuer struct {
			Cert, Remainder, Exponent, Recovered string
			IssuerID                             string `json:"issuer_id"`
			Expiry, Serial, Modulus              string
		}
		SSAD *struct {
			Value      string
			StaticData string `json:"static_data"`
			Recovered  string
			DAC        string
		}
		ICC *struct {
			Cert, Remainder, Exponent string
			StaticData                string `json:"static_data"`
			Recovered                 string
			PAN, Expiry, Serial       string
			Modulus                   string
		}
		SDAD *struct {
			Value         string
			TerminalData  string `json:"terminal_data"`
			Recovered     string
			DynamicData   string `json:"dynamic_data"`
			DynamicNumber string `json:"dynamic_number"`
		}
	}
}

func hexKey(t testing.TB, modulus, exponent string) *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).SetBytes(certHex(t, modulus)), E: int(new(big.Int).SetBytes(certHex(t, exponent)).Int64())}
}

// TestEMVToolsVectors recovers and verifies the public test certificates of
// lumag/emv-tools, and rebuilds each recovered block from its parsed
// content.
func TestEMVToolsVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/emv_certs.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs emvCertVectors
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Vectors) != 2 {
		t.Fatalf("%d vectors, want 2", len(vs.Vectors))
	}
	for _, v := range vs.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			t.Logf("source: %s %s@%s", v.Source.Repo, v.Source.Path, v.Source.Commit)
			now, err := time.Parse(time.DateOnly, v.Now)
			if err != nil {
				t.Fatal(err)
			}
			ca := &CAPublicKey{RID: [5]byte(certHex(t, v.CA.RID)), Index: certHex(t, v.CA.Index)[0], Key: hexKey(t, v.CA.Modulus, v.CA.Exponent)}
			sum, err := ca.Checksum()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%X", sum); got != v.CA.Checksum {
				t.Errorf("CA key check sum %s, want %s", got, v.CA.Checksum)
			}

			// Issuer public key certificate.
			ick := CertifiedKey{Cert: certHex(t, v.Issuer.Cert), Remainder: certHex(t, v.Issuer.Remainder), Exponent: certHex(t, v.Issuer.Exponent)}
			block := recoverWant(t, ca.Key, CertFormatIssuer, ick.Cert, v.Issuer.Recovered)
			ic, err := VerifyIssuerCert(ca.Key, ick, v.PAN, now)
			if err != nil {
				t.Fatalf("VerifyIssuerCert: %v", err)
			}
			want := &IssuerCert{
				IssuerID: IssuerID(certHex(t, v.Issuer.IssuerID)),
				Expiry:   CertDate(certHex(t, v.Issuer.Expiry)),
				Serial:   [3]byte(certHex(t, v.Issuer.Serial)),
				Key:      hexKey(t, v.Issuer.Modulus, v.Issuer.Exponent),
			}
			if diff := cmp.Diff(want, ic, certCmp); diff != "" {
				t.Errorf("issuer certificate (-want +got):\n%s", diff)
			}
			reblock, rem, exp, err := ic.Block(len(block))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([][]byte{block, ick.Remainder, ick.Exponent}, [][]byte{reblock, rem, exp}); diff != "" {
				t.Errorf("issuer certificate rebuilt (-want +got):\n%s", diff)
			}
			expired := now.AddDate(0, 0, 0)
			for !ic.Expiry.ExpiredAt(expired) {
				expired = expired.AddDate(0, 1, 0)
			}
			if _, err := VerifyIssuerCert(ca.Key, ick, v.PAN, expired); !errors.Is(err, ErrCertExpired) {
				t.Errorf("VerifyIssuerCert at %s: %v, want ErrCertExpired", expired.Format(time.DateOnly), err)
			}

			if s := v.SSAD; s != nil {
				static := certHex(t, s.StaticData)
				block := recoverWant(t, ic.Key, CertFormatSSAD, certHex(t, s.Value), s.Recovered)
				got, err := VerifySignedStaticData(ic.Key, certHex(t, s.Value), static)
				if err != nil {
					t.Fatalf("VerifySignedStaticData: %v", err)
				}
				if diff := cmp.Diff(&SignedStaticData{DAC: [2]byte(certHex(t, s.DAC))}, got); diff != "" {
					t.Errorf("SSAD (-want +got):\n%s", diff)
				}
				if reblock, err := got.Block(len(block), static); err != nil || !bytes.Equal(reblock, block) {
					t.Errorf("SSAD rebuilt: %X, %v; want %X", reblock, err, block)
				}
			}

			if c := v.ICC; c != nil {
				static := certHex(t, c.StaticData)
				cck := CertifiedKey{Cert: certHex(t, c.Cert), Remainder: certHex(t, c.Remainder), Exponent: certHex(t, c.Exponent)}
				block := recoverWant(t, ic.Key, CertFormatICC, cck.Cert, c.Recovered)
				icc, err := VerifyICCCert(ic.Key, cck, static, v.PAN, now)
				if err != nil {
					t.Fatalf("VerifyICCCert: %v", err)
				}
				want := &ICCCert{PAN: c.PAN, Expiry: CertDate(certHex(t, c.Expiry)), Serial: [3]byte(certHex(t, c.Serial)), Key: hexKey(t, c.Modulus, c.Exponent)}
				if diff := cmp.Diff(want, icc, certCmp); diff != "" {
					t.Errorf("ICC certificate (-want +got):\n%s", diff)
				}
				reblock, rem, exp, err := icc.Block(len(block), static)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([][]byte{block, nil, cck.Exponent}, [][]byte{reblock, rem, exp}); diff != "" {
					t.Errorf("ICC certificate rebuilt (-want +got):\n%s", diff)
				}

				if d := v.SDAD; d != nil {
					term := certHex(t, d.TerminalData)
					block := recoverWant(t, icc.Key, CertFormatSDAD, certHex(t, d.Value), d.Recovered)
					got, err := VerifySignedDynamicData(icc.Key, certHex(t, d.Value), term)
					if err != nil {
						t.Fatalf("VerifySignedDynamicData: %v", err)
					}
					num, err := got.DynamicNumber()
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff([][]byte{certHex(t, d.DynamicData), certHex(t, d.DynamicNumber)}, [][]byte{got.DynamicData, num}); diff != "" {
						t.Errorf("ICC dynamic data and number (-want +got):\n%s", diff)
					}
					if reblock, err := got.Block(len(block), term); err != nil || !bytes.Equal(reblock, block) {
						t.Errorf("SDAD rebuilt: %X, %v; want %X", reblock, err, block)
					}
					if _, err := VerifySignedDynamicData(icc.Key, certHex(t, d.Value), []byte{0, 0, 0, 1}); !errors.Is(err, ErrCertHash) {
						t.Errorf("SDAD with another unpredictable number: %v, want ErrCertHash", err)
					}
				}
			}
		})
	}
}

// keyAbove returns a test key of the given size whose modulus exceeds v.
func keyAbove(t testing.TB, bits int, v []byte) *rsa.PrivateKey {
	t.Helper()
	for i := 0; ; i++ {
		k := certKey(t, fmt.Sprintf("other%d/%d", bits, i), bits, 3)
		if k.N.Cmp(new(big.Int).SetBytes(v)) > 0 {
			return k
		}
	}
}

// recoverWant recovers cert with key and compares the block with the
// expected hex.
func recoverWant(t *testing.T, key *rsa.PublicKey, format byte, cert []byte, want string) []byte {
	t.Helper()
	block, err := RecoverCert(key, format, cert)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(certHex(t, want), block); diff != "" {
		t.Errorf("recovered %s (-want +got):\n%s", certName(format), diff)
	}
	return block
}

// certChain is a signed test chain: CA, issuer and card keys and what was
// signed with them.
type certChain struct {
	m         *memCertifier
	ca        *CAPublicKey
	issuer    *rsa.PrivateKey
	issuerCK  *CertifiedKey
	icc       *rsa.PrivateKey
	iccCK     *CertifiedKey
	static    []byte
	ssad      []byte
	expiry    CertDate
	sdadBlock func(dynamic, terminal []byte) []byte
}

// newChain certifies an issuer key of issuerBits under a CA key of caBits
// and an ICC key of iccBits under the issuer, and signs static data.
func newChain(t testing.TB, caBits, issuerBits, iccBits, iccE int) *certChain {
	t.Helper()
	caKey := certKey(t, fmt.Sprintf("ca%d", caBits), caBits, 3)
	issuer := certKey(t, fmt.Sprintf("issuer%d", issuerBits), issuerBits, 3)
	icc := certKey(t, fmt.Sprintf("icc%d/%d", iccBits, iccE), iccBits, iccE)
	m := newMemCertifier(map[KeyRef]*rsa.PrivateKey{refCA: caKey, refIssuer: issuer})
	ctx := context.Background()
	expiry, _ := NewCertDate(2029, time.December)
	id, err := NewIssuerID(testPAN[:6])
	if err != nil {
		t.Fatal(err)
	}
	c := &certChain{m: m, ca: &CAPublicKey{RID: [5]byte{0xA0, 0, 0, 0, 0x03}, Index: 0x92, Key: &caKey.PublicKey}, issuer: issuer, icc: icc, expiry: expiry}
	c.issuerCK, err = CertifyIssuer(ctx, m, IssuerCertRequest{
		CA: refCA, Cert: IssuerCert{IssuerID: id, Expiry: expiry, Serial: [3]byte{0x12, 0x34, 0x56}, Key: &issuer.PublicKey}, Now: certNow,
	})
	if err != nil {
		t.Fatalf("CertifyIssuer: %v", err)
	}
	c.static = []byte("\x5A\x08\x47\x61\x73\x90\x01\x01\x00\x10\x5F\x24\x03\x29\x12\x31\x5C\x00")
	c.iccCK, err = CertifyICC(ctx, m, ICCCertRequest{
		Issuer: refIssuer, Cert: ICCCert{PAN: testPAN, Expiry: expiry, Serial: [3]byte{0, 0, 1}, Key: &icc.PublicKey},
		StaticData: c.static, Now: certNow,
	})
	if err != nil {
		t.Fatalf("CertifyICC: %v", err)
	}
	c.ssad, err = SignStaticData(ctx, m, StaticDataRequest{Issuer: refIssuer, DAC: [2]byte{0xDA, 0xC1}, StaticData: c.static})
	if err != nil {
		t.Fatalf("SignStaticData: %v", err)
	}
	return c
}

// signSDAD signs dynamic data as the card does.
func (c *certChain) signSDAD(t testing.TB, dynamic, terminal []byte) []byte {
	t.Helper()
	block, err := (&SignedDynamicData{DynamicData: dynamic}).Block(c.icc.N.BitLen()/8, terminal)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := rsax.PrivateRaw(c.icc, block)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestCertRoundTrip signs every format with several key sizes (keys that
// fit in their certificate and keys with a remainder), recovers and
// verifies it.
func TestCertRoundTrip(t *testing.T) {
	tests := []struct {
		caBits, issuerBits, iccBits, iccE int
		issuerRem, iccRem                 int // remainder lengths
	}{
		{1408, 1024, 512, 3, 0, 0},       // both keys fit, with padding
		{1408, 1152, 1024, 65537, 4, 26}, // both have remainders
		{1984, 1984, 1984, 3, 36, 42},    // the largest EMV keys
		{1024, 1024, 1024, 3, 36, 42},    // keys as long as their certifiers
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("ca%d/issuer%d/icc%d", tt.caBits, tt.issuerBits, tt.iccBits), func(t *testing.T) {
			c := newChain(t, tt.caBits, tt.issuerBits, tt.iccBits, tt.iccE)
			if len(c.issuerCK.Cert) != tt.caBits/8 || len(c.issuerCK.Remainder) != tt.issuerRem {
				t.Errorf("issuer certificate %d bytes, remainder %d; want %d, %d", len(c.issuerCK.Cert), len(c.issuerCK.Remainder), tt.caBits/8, tt.issuerRem)
			}
			if len(c.iccCK.Cert) != tt.issuerBits/8 || len(c.iccCK.Remainder) != tt.iccRem {
				t.Errorf("ICC certificate %d bytes, remainder %d; want %d, %d", len(c.iccCK.Cert), len(c.iccCK.Remainder), tt.issuerBits/8, tt.iccRem)
			}

			ic, err := VerifyIssuerCert(c.ca.Key, *c.issuerCK, testPAN, certNow)
			if err != nil {
				t.Fatalf("VerifyIssuerCert: %v", err)
			}
			wantIssuer := &IssuerCert{IssuerID: IssuerID{0x47, 0x61, 0x73, 0xFF}, Expiry: c.expiry, Serial: [3]byte{0x12, 0x34, 0x56}, Key: &c.issuer.PublicKey}
			if diff := cmp.Diff(wantIssuer, ic, certCmp); diff != "" {
				t.Errorf("issuer certificate (-want +got):\n%s", diff)
			}
			icc, err := VerifyICCCert(ic.Key, *c.iccCK, c.static, testPAN, certNow)
			if err != nil {
				t.Fatalf("VerifyICCCert: %v", err)
			}
			wantICC := &ICCCert{PAN: testPAN, Expiry: c.expiry, Serial: [3]byte{0, 0, 1}, Key: &c.icc.PublicKey}
			if diff := cmp.Diff(wantICC, icc, certCmp); diff != "" {
				t.Errorf("ICC certificate (-want +got):\n%s", diff)
			}
			s, err := VerifySignedStaticData(ic.Key, c.ssad, c.static)
			if err != nil {
				t.Fatalf("VerifySignedStaticData: %v", err)
			}
			if s.DAC != [2]byte{0xDA, 0xC1} {
				t.Errorf("DAC %X", s.DAC)
			}
			dyn := []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4}
			term := []byte{0x01, 0x02, 0x03, 0x04}
			d, err := VerifySignedDynamicData(icc.Key, c.signSDAD(t, dyn, term), term)
			if err != nil {
				t.Fatalf("VerifySignedDynamicData: %v", err)
			}
			num, err := d.DynamicNumber()
			if err != nil || !bytes.Equal(num, dyn[1:]) || !bytes.Equal(d.DynamicData, dyn) {
				t.Errorf("dynamic data %X number %X (%v), want %X", d.DynamicData, num, err, dyn)
			}
		})
	}
}

// resign re-signs a certificate with mutated content: it recovers block
// with the signer's public key, lets mutate change it, recomputes the hash
// over the result (unless mutate returns false) and signs it again.
func resign(t testing.TB, signer *rsa.PrivateKey, cert []byte, mutate func(b []byte) (rehash bool), extra ...[]byte) []byte {
	t.Helper()
	b, err := rsax.PublicRaw(&signer.PublicKey, cert)
	if err != nil {
		t.Fatal(err)
	}
	if mutate(b) {
		h := certHash(b[1:len(b)-1-hashLen], extra...)
		copy(b[len(b)-1-hashLen:], h[:])
	}
	sig, err := rsax.PrivateRaw(signer, b)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestCertErrors checks that each kind of fault gives its own error and
// names the failed field.
func TestCertErrors(t *testing.T) {
	c := newChain(t, 1408, 1152, 1024, 65537) // both keys with remainders
	fit := newChain(t, 1408, 1024, 512, 3)    // both keys fit in their certificates
	// Keys of the right size that recover a certificate into garbage
	// rather than fail because it is above their modulus.
	other := keyAbove(t, 1408, c.issuerCK.Cert)
	otherIssuer := keyAbove(t, 1152, c.iccCK.Cert)
	issuerPub := &c.issuer.PublicKey
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x01; return b }
	with := func(ck *CertifiedKey, f func(ck *CertifiedKey)) CertifiedKey {
		n := CertifiedKey{Cert: bytes.Clone(ck.Cert), Remainder: bytes.Clone(ck.Remainder), Exponent: bytes.Clone(ck.Exponent)}
		f(&n)
		return n
	}
	issuerCert := func(ck CertifiedKey, pan string, now time.Time) func() error {
		return func() error { _, err := VerifyIssuerCert(c.ca.Key, ck, pan, now); return err }
	}
	// reissue re-signs the issuer certificate with a change.
	reissue := func(f func(b []byte) bool) CertifiedKey {
		return with(c.issuerCK, func(ck *CertifiedKey) {
			ck.Cert = resign(t, certKey(t, "ca1408", 1408, 3), ck.Cert, f, ck.Remainder, ck.Exponent)
		})
	}
	reissueFit := func(f func(b []byte) bool) CertifiedKey {
		return with(fit.issuerCK, func(ck *CertifiedKey) {
			ck.Cert = resign(t, certKey(t, "ca1408", 1408, 3), ck.Cert, f, ck.Remainder, ck.Exponent)
		})
	}
	iccCert := func(ck CertifiedKey, static []byte, pan string, now time.Time) func() error {
		return func() error { _, err := VerifyICCCert(issuerPub, ck, static, pan, now); return err }
	}
	reicc := func(f func(b []byte) bool) CertifiedKey {
		return with(c.iccCK, func(ck *CertifiedKey) {
			ck.Cert = resign(t, c.issuer, ck.Cert, f, ck.Remainder, ck.Exponent, c.static)
		})
	}
	ssad := func(sig, static []byte) func() error {
		return func() error { _, err := VerifySignedStaticData(issuerPub, sig, static); return err }
	}
	term := []byte{9, 8, 7, 6}
	sdad := c.signSDAD(t, []byte{0x02, 0xAB, 0xCD}, term)
	iccPub := &c.icc.PublicKey
	sdadCheck := func(sig, terminal []byte) func() error {
		return func() error { _, err := VerifySignedDynamicData(iccPub, sig, terminal); return err }
	}
	after := time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name   string
		verify func() error
		want   error
		format byte
		field  string
	}{
		// Issuer certificate (format 02).
		{"issuer: tampered certificate", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) { ck.Cert = flip(ck.Cert, 40) }), testPAN, certNow), ErrCertTrailer, 0x02, "trailer"},
		{"issuer: wrong CA key", func() error { _, err := VerifyIssuerCert(&other.PublicKey, *c.issuerCK, testPAN, certNow); return err }, ErrCertTrailer, 0x02, "trailer"},
		{"issuer: short certificate", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) { ck.Cert = ck.Cert[1:] }), testPAN, certNow), ErrCertLength, 0x02, "length"},
		{"issuer: certificate above the modulus", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) { ck.Cert = bytes.Repeat([]byte{0xFF}, 176) }), testPAN, certNow), ErrCertLength, 0x02, "recovery"},
		{"issuer: tampered remainder", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) { ck.Remainder = flip(ck.Remainder, 0) }), testPAN, certNow), ErrCertHash, 0x02, "hash result"},
		{"issuer: another exponent", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) { ck.Exponent = []byte{0x01, 0x00, 0x01} }), testPAN, certNow), ErrCertHash, 0x02, "hash result"},
		{"issuer: expired", issuerCert(*c.issuerCK, testPAN, after), ErrCertExpired, 0x02, "expiration date"},
		{"issuer: last day of the month", issuerCert(*c.issuerCK, testPAN, time.Date(2029, 12, 31, 23, 59, 0, 0, time.UTC)), nil, 0, ""},
		{"issuer: wrong PAN", issuerCert(*c.issuerCK, "5413330089020011", certNow), ErrCertPAN, 0x02, "issuer identifier"},
		{"issuer: PAN not digits", issuerCert(*c.issuerCK, "47617390010100X0", certNow), ErrBadInput, 0, ""},
		{"issuer: header", issuerCert(reissue(func(b []byte) bool { b[0] = 0x6B; return true }), testPAN, certNow), ErrCertHeader, 0x02, "header"},
		{"issuer: format", issuerCert(reissue(func(b []byte) bool { b[1] = 0x04; return true }), testPAN, certNow), ErrCertFormat, 0x02, "format"},
		{"issuer: hash algorithm", issuerCert(reissue(func(b []byte) bool { b[11] = 0x02; return true }), testPAN, certNow), ErrCertAlgorithm, 0x02, "hash algorithm indicator"},
		{"issuer: hash result", issuerCert(reissue(func(b []byte) bool { b[20] ^= 0x80; return false }), testPAN, certNow), ErrCertHash, 0x02, "hash result"},
		{"issuer: public key algorithm", issuerCert(reissue(func(b []byte) bool { b[12] = 0x02; return true }), testPAN, certNow), ErrCertAlgorithm, 0x02, "public key algorithm indicator"},
		{"issuer: date not BCD", issuerCert(reissue(func(b []byte) bool { b[6] = 0x1A; return true }), testPAN, certNow), ErrCertDate, 0x02, "expiration date"},
		{"issuer: month 13", issuerCert(reissue(func(b []byte) bool { b[6] = 0x13; return true }), testPAN, certNow), ErrCertDate, 0x02, "expiration date"},
		{"issuer: key longer than the CA's", issuerCert(reissue(func(b []byte) bool { b[13] = 177; return true }), testPAN, certNow), ErrCertKey, 0x02, "public key length"},
		{"issuer: key length zero", issuerCert(reissue(func(b []byte) bool { b[13] = 0; return true }), testPAN, certNow), ErrCertKey, 0x02, "public key length"},
		{"issuer: key length against remainder", issuerCert(reissue(func(b []byte) bool { b[13]++; return true }), testPAN, certNow), ErrCertKey, 0x02, "public key remainder"},
		{"issuer: exponent length", issuerCert(reissue(func(b []byte) bool { b[14] = 3; return true }), testPAN, certNow), ErrCertKey, 0x02, "public key exponent length"},
		{"issuer: identifier with a digit after F", issuerCert(reissue(func(b []byte) bool { b[5] = 0xF1; return true }), testPAN, certNow), ErrCertPAN, 0x02, "issuer identifier"},
		{"issuer: identifier of two digits", issuerCert(reissue(func(b []byte) bool { copy(b[2:6], []byte{0x47, 0xFF, 0xFF, 0xFF}); return true }), testPAN, certNow), ErrCertPAN, 0x02, "issuer identifier"},
		{"issuer: padding", issuerCert(reissueFit(func(b []byte) bool { b[15+128] = 0xBA; return true }), testPAN, certNow), ErrCertKey, 0x02, "public key padding"},
		{"issuer: remainder for a key that fits", issuerCert(with(fit.issuerCK, func(ck *CertifiedKey) {
			ck.Remainder = []byte{1}
			ck.Cert = resign(t, certKey(t, "ca1408", 1408, 3), ck.Cert, func([]byte) bool { return true }, ck.Remainder, ck.Exponent)
		}), testPAN, certNow), ErrCertKey, 0x02, "public key remainder"},
		{"issuer: exponent 5", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) {
			ck.Exponent = []byte{5}
			ck.Cert = resign(t, certKey(t, "ca1408", 1408, 3), ck.Cert, func([]byte) bool { return true }, ck.Remainder, ck.Exponent)
		}), testPAN, certNow), ErrCertKey, 0x02, "public key exponent"},
		{"issuer: even modulus", issuerCert(with(c.issuerCK, func(ck *CertifiedKey) {
			ck.Remainder[len(ck.Remainder)-1] &^= 1
			ck.Cert = resign(t, certKey(t, "ca1408", 1408, 3), ck.Cert, func([]byte) bool { return true }, ck.Remainder, ck.Exponent)
		}), testPAN, certNow), ErrCertKey, 0x02, "public key"},

		// ICC certificate (format 04).
		{"icc: tampered certificate", iccCert(with(c.iccCK, func(ck *CertifiedKey) { ck.Cert = flip(ck.Cert, 3) }), c.static, testPAN, certNow), ErrCertTrailer, 0x04, "trailer"},
		{"icc: wrong issuer key", func() error {
			_, err := VerifyICCCert(&otherIssuer.PublicKey, *c.iccCK, c.static, testPAN, certNow)
			return err
		}, ErrCertTrailer, 0x04, "trailer"},
		{"icc: other static data", iccCert(*c.iccCK, append(bytes.Clone(c.static), 0), testPAN, certNow), ErrCertHash, 0x04, "hash result"},
		{"icc: tampered remainder", iccCert(with(c.iccCK, func(ck *CertifiedKey) { ck.Remainder = flip(ck.Remainder, 5) }), c.static, testPAN, certNow), ErrCertHash, 0x04, "hash result"},
		{"icc: wrong PAN", iccCert(*c.iccCK, c.static, "4761739001010011", certNow), ErrCertPAN, 0x04, "application PAN"},
		{"icc: longer PAN", iccCert(*c.iccCK, c.static, testPAN+"0", certNow), ErrCertPAN, 0x04, "application PAN"},
		{"icc: expired", iccCert(*c.iccCK, c.static, testPAN, after), ErrCertExpired, 0x04, "expiration date"},
		{"icc: format", iccCert(reicc(func(b []byte) bool { b[1] = 0x02; return true }), c.static, testPAN, certNow), ErrCertFormat, 0x04, "format"},
		{"icc: PAN with a digit after F", iccCert(reicc(func(b []byte) bool { b[11] = 0xF1; return true }), c.static, testPAN, certNow), ErrCertPAN, 0x04, "application PAN"},
		{"icc: key longer than the issuer's", iccCert(reicc(func(b []byte) bool { b[19] = 145; return true }), c.static, testPAN, certNow), ErrCertKey, 0x04, "public key length"},
		{"icc: hash algorithm", iccCert(reicc(func(b []byte) bool { b[17] = 0x00; return true }), c.static, testPAN, certNow), ErrCertAlgorithm, 0x04, "hash algorithm indicator"},

		// Signed static application data (format 03).
		{"ssad: other static data", ssad(c.ssad, c.static[1:]), ErrCertHash, 0x03, "hash result"},
		{"ssad: tampered", ssad(flip(c.ssad, 100), c.static), ErrCertTrailer, 0x03, "trailer"},
		{"ssad: wrong key", func() error { _, err := VerifySignedStaticData(&fit.issuer.PublicKey, c.ssad, c.static); return err }, ErrCertLength, 0x03, "length"},
		{"ssad: format", ssad(resign(t, c.issuer, c.ssad, func(b []byte) bool { b[1] = 0x05; return true }, c.static), c.static), ErrCertFormat, 0x03, "format"},
		{"ssad: pad", ssad(resign(t, c.issuer, c.ssad, func(b []byte) bool { b[50] = 0; return true }, c.static), c.static), ErrCertKey, 0x03, "pad pattern"},
		{"ssad: trailer", ssad(resign(t, c.issuer, c.ssad, func(b []byte) bool { b[len(b)-1] = 0xBD; return true }, c.static), c.static), ErrCertTrailer, 0x03, "trailer"},

		// Signed dynamic application data (format 05).
		{"sdad: other unpredictable number", sdadCheck(sdad, []byte{9, 8, 7, 7}), ErrCertHash, 0x05, "hash result"},
		{"sdad: tampered", sdadCheck(flip(sdad, 7), term), ErrCertTrailer, 0x05, "trailer"},
		{"sdad: dynamic data too long", sdadCheck(resign(t, c.icc, sdad, func(b []byte) bool { b[3] = byte(len(b) - 24); return true }, term), term), ErrCertLength, 0x05, "ICC dynamic data length"},
		{"sdad: pad", sdadCheck(resign(t, c.icc, sdad, func(b []byte) bool { b[10] = 0; return true }, term), term), ErrCertKey, 0x05, "pad pattern"},
		{"sdad: header", sdadCheck(resign(t, c.icc, sdad, func(b []byte) bool { b[0] = 0x4A; return true }, term), term), ErrCertHeader, 0x05, "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.verify()
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var ce *CertError
			if tt.field == "" {
				if errors.As(err, &ce) {
					t.Errorf("error %v is a CertError", err)
				}
				return
			}
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CertError", err)
			}
			if ce.Format != tt.format || ce.Field != tt.field {
				t.Errorf("CertError format %02X field %q, want %02X %q (%v)", ce.Format, ce.Field, tt.format, tt.field, err)
			}
			if !strings.HasPrefix(err.Error(), "perso: ") || strings.Count(err.Error(), "perso:") != 1 {
				t.Errorf("error text %q", err)
			}
			if strings.Contains(err.Error(), testPAN) {
				t.Errorf("error %q shows the whole PAN", err)
			}
		})
	}
}

// TestCertifyChecksSignature checks that the signing helpers refuse what a
// faulty security module returns, and pass its errors on.
func TestCertifyChecksSignature(t *testing.T) {
	issuer := certKey(t, "issuer1152", 1152, 3)
	other := certKey(t, "other1152", 1152, 3)
	ctx := context.Background()
	expiry, _ := NewCertDate(2029, time.December)
	req := ICCCertRequest{Issuer: refIssuer, Cert: ICCCert{PAN: testPAN, Expiry: expiry, Key: &certKey(t, "icc768/3", 768, 3).PublicKey}, StaticData: []byte{1}}
	tests := []struct {
		name string
		sign func(KeyRef, []byte) ([]byte, error)
		ref  KeyRef
		want error
	}{
		{"signature by another key", func(_ KeyRef, b []byte) ([]byte, error) { return rsax.PrivateRaw(other, b) }, refIssuer, ErrCertHash},
		{"bit flipped in the signature", func(_ KeyRef, b []byte) ([]byte, error) {
			s, err := rsax.PrivateRaw(issuer, b)
			s[len(s)-1] ^= 1
			return s, err
		}, refIssuer, ErrCertHash},
		{"short signature", func(_ KeyRef, b []byte) ([]byte, error) { s, err := rsax.PrivateRaw(issuer, b); return s[1:], err }, refIssuer, ErrCertLength},
		{"module fails", func(KeyRef, []byte) ([]byte, error) { return nil, ErrUnsupported }, refIssuer, ErrUnsupported},
		{"unknown key", nil, KeyRef{Label: "nope"}, ErrNoSuchKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemCertifier(map[KeyRef]*rsa.PrivateKey{refIssuer: issuer})
			m.sign = tt.sign
			r := req
			r.Issuer = tt.ref
			ck, err := CertifyICC(ctx, m, r)
			if !errors.Is(err, tt.want) || ck != nil {
				t.Errorf("CertifyICC = %v, %v; want %v", ck, err, tt.want)
			}
			sig, err := SignStaticData(ctx, m, StaticDataRequest{Issuer: tt.ref, StaticData: []byte{1}})
			if !errors.Is(err, tt.want) || sig != nil {
				t.Errorf("SignStaticData = %X, %v; want %v", sig, err, tt.want)
			}
		})
	}

	// Requests that cannot be built are refused before signing.
	m := newMemCertifier(map[KeyRef]*rsa.PrivateKey{refIssuer: issuer, refCA: certKey(t, "ca1024", 1024, 3)})
	m.sign = func(KeyRef, []byte) ([]byte, error) { t.Error("signed a bad request"); return nil, errors.New("no") }
	bad := []struct {
		name string
		do   func() error
		want error
	}{
		{"ICC key longer than the issuer's", func() error {
			r := req
			r.Cert.Key = &certKey(t, "issuer1984", 1984, 3).PublicKey
			_, err := CertifyICC(ctx, m, r)
			return err
		}, ErrCertKey},
		{"PAN too short", func() error { r := req; r.Cert.PAN = "1234567"; _, err := CertifyICC(ctx, m, r); return err }, ErrCertPAN},
		{"bad date", func() error {
			r := req
			r.Cert.Expiry = CertDate{0x13, 0x29}
			_, err := CertifyICC(ctx, m, r)
			return err
		}, ErrCertDate},
		{"exponent 17", func() error {
			r := req
			r.Cert.Key = &rsa.PublicKey{N: r.Cert.Key.N, E: 17}
			_, err := CertifyICC(ctx, m, r)
			return err
		}, ErrCertKey},
		{"issuer key longer than the CA's", func() error {
			_, err := CertifyIssuer(ctx, m, IssuerCertRequest{CA: refCA, Cert: IssuerCert{IssuerID: IssuerID{0x47, 0x61, 0x73, 0xFF}, Expiry: expiry, Key: &issuer.PublicKey}})
			return err
		}, ErrCertKey},
		{"issuer identifier malformed", func() error {
			_, err := CertifyIssuer(ctx, m, IssuerCertRequest{CA: refCA, Cert: IssuerCert{IssuerID: IssuerID{0x4F, 0x61, 0x73, 0xFF}, Expiry: expiry, Key: &issuer.PublicKey}})
			return err
		}, ErrCertPAN},
		{"no certifier", func() error { _, err := CertifyICC(ctx, nil, req); return err }, ErrBadInput},
		{"signing key of 1020 bits", func() error {
			r := req
			r.IssuerKey = &rsa.PublicKey{N: new(big.Int).Rsh(issuer.N, 132), E: 3}
			_, err := CertifyICC(ctx, m, r)
			return err
		}, ErrCertKey},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}

	// A certificate that has already expired is refused (before signing:
	// m.sign fails the test).
	r := req
	r.Now = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)
	if _, err := CertifyICC(ctx, m, r); !errors.Is(err, ErrCertExpired) {
		t.Errorf("CertifyICC after expiry: %v, want ErrCertExpired", err)
	}
	if _, err := CertifyIssuer(ctx, m, IssuerCertRequest{CA: refCA, Cert: IssuerCert{IssuerID: IssuerID{0x47, 0x61, 0x73, 0xFF}, Expiry: expiry, Key: &issuer.PublicKey}, Now: r.Now}); !errors.Is(err, ErrCertExpired) {
		t.Errorf("CertifyIssuer after expiry: %v, want ErrCertExpired", err)
	}
}

func TestCertDate(t *testing.T) {
	d, err := NewCertDate(2029, time.December)
	if err != nil {
		t.Fatal(err)
	}
	type info struct {
		Bytes  string
		Valid  bool
		Year   int
		Month  time.Month
		String string
	}
	describe := func(d CertDate) info {
		return info{fmt.Sprintf("%X", d[:]), d.Valid(), d.Year(), d.Month(), d.String()}
	}
	tests := []struct {
		date CertDate
		want info
	}{
		{d, info{"1229", true, 2029, time.December, "12/29"}},
		{CertDate{0x01, 0x49}, info{"0149", true, 2049, time.January, "01/49"}},
		{CertDate{0x01, 0x50}, info{"0150", true, 1950, time.January, "01/50"}},
		{CertDate{0x00, 0x29}, info{"0029", false, 2029, 0, "CertDate(0029)"}},
		{CertDate{0x13, 0x29}, info{"1329", false, 2029, 13, "CertDate(1329)"}},
		{CertDate{0x1A, 0x29}, info{"1A29", false, 2029, 0, "CertDate(1A29)"}},
		{CertDate{0x12, 0x2A}, info{"122A", false, 2030, time.December, "CertDate(122A)"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, describe(tt.date)); diff != "" {
			t.Errorf("%X (-want +got):\n%s", tt.date[:], diff)
		}
	}
	for _, bad := range []struct {
		y int
		m time.Month
	}{{1949, 12}, {2050, 1}, {2029, 0}, {2029, 13}} {
		if _, err := NewCertDate(bad.y, bad.m); !errors.Is(err, ErrBadInput) {
			t.Errorf("NewCertDate(%d, %d): %v", bad.y, bad.m, err)
		}
	}

	// Valid through the last day of the month, in the location of now.
	cet := time.FixedZone("CET", 3600)
	expiry := []struct {
		now  time.Time
		want bool
	}{
		{time.Date(2029, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2030, 1, 1, 0, 30, 0, 0, cet), true}, // 2029-12-31 23:30 UTC, but January in CET
		{time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range expiry {
		if got := d.ExpiredAt(tt.now); got != tt.want {
			t.Errorf("ExpiredAt(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}

	for in, want := range map[string]string{"291231": "1229", "2912": "1229", "490101": "0149"} {
		got, err := CertDateOf(in)
		if err != nil || fmt.Sprintf("%X", got[:]) != want {
			t.Errorf("CertDateOf(%q) = %X, %v; want %s", in, got[:], err, want)
		}
	}
	for _, in := range []string{"", "29123", "2913", "29x2", "291331x"} {
		if _, err := CertDateOf(in); !errors.Is(err, ErrBadInput) {
			t.Errorf("CertDateOf(%q): %v, want ErrBadInput", in, err)
		}
	}
}

func TestIssuerID(t *testing.T) {
	tests := []struct {
		digits string
		id     IssuerID
		match  map[string]bool
	}{
		{"476", IssuerID{0x47, 0x6F, 0xFF, 0xFF}, map[string]bool{testPAN: true, "4671739001010010": false}},
		{"476173", IssuerID{0x47, 0x61, 0x73, 0xFF}, map[string]bool{testPAN: true, "4761749001010010": false}},
		{"47617390", IssuerID{0x47, 0x61, 0x73, 0x90}, map[string]bool{testPAN: true, "4761739101010010": false, "4761739": false}},
	}
	for _, tt := range tests {
		id, err := NewIssuerID(tt.digits)
		if err != nil || id != tt.id {
			t.Errorf("NewIssuerID(%q) = %s, %v; want %s", tt.digits, id, err, tt.id)
		}
		if d, err := id.Digits(); err != nil || d != tt.digits {
			t.Errorf("%s.Digits() = %q, %v", id, d, err)
		}
		for pan, want := range tt.match {
			if got := id.MatchesPAN(pan); got != want {
				t.Errorf("%s.MatchesPAN(%s) = %v, want %v", id, pan, got, want)
			}
		}
	}
	for _, bad := range []string{"47", "476173901", "47a", ""} {
		if _, err := NewIssuerID(bad); !errors.Is(err, ErrBadInput) {
			t.Errorf("NewIssuerID(%q): %v", bad, err)
		}
	}
	for _, bad := range []IssuerID{{0x47, 0xFF, 0xFF, 0xFF}, {0x47, 0x6F, 0x1F, 0xFF}, {0x4A, 0x61, 0x73, 0xFF}, {0xFF, 0xFF, 0xFF, 0xFF}} {
		if _, err := bad.Digits(); !errors.Is(err, ErrCertPAN) {
			t.Errorf("%s.Digits(): %v, want ErrCertPAN", bad, err)
		}
		if bad.MatchesPAN(testPAN) {
			t.Errorf("%s matches a PAN", bad)
		}
	}
}

func TestCAPublicKeyChecksum(t *testing.T) {
	ca := testCA(t)
	sum, err := ca.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := exponentBytes(ca.Key.E)
	want := certHash(append(append([]byte{0xA0, 0, 0, 0, 0x03, 0x92}, ca.Key.N.Bytes()...), e...))
	if sum != want {
		t.Errorf("Checksum %X, want %X", sum, want)
	}
	bad := &CAPublicKey{Key: &rsa.PublicKey{N: big.NewInt(0xFFF1), E: 5}}
	if _, err := bad.Checksum(); !errors.Is(err, ErrBadInput) {
		t.Errorf("Checksum of a key with exponent 5: %v", err)
	}
}

// cardCertifierFixture is an issuer with a certificate, as a profile
// configuration holds it.
func cardCertifierFixture(t testing.TB) (*certChain, IssuerKey) {
	c := newChain(t, 1408, 1152, 768, 3)
	return c, IssuerKey{
		Key: refIssuer, CAIndex: 0x92,
		Certificate: c.issuerCK.Cert, Remainder: c.issuerCK.Remainder, Exponent: c.issuerCK.Exponent,
	}
}

func TestCardCertifier(t *testing.T) {
	c, ik := cardCertifierFixture(t)
	ctx := context.Background()
	cc, err := NewCardCertifier(ik, 1024, 65537)
	if err != nil {
		t.Fatal(err)
	}
	cc.Now = func() time.Time { return certNow }
	env := &Env{KEK: KEKID{Issuer: IssuerID{0x47, 0x61, 0x73, 0xFF}, Version: 1, Scheme: SchemeAESKW}, Certifier: c.m}

	var b Builder
	cc.AddIssuerData(&b)
	issuerData, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tlvs := map[Tag][]byte{}
	for _, tlv := range mustParseTLVs(t, issuerData) {
		tlvs[tlv.Tag] = tlv.Value
	}
	ick := CertifiedKey{Cert: tlvs[0x90], Remainder: tlvs[0x92], Exponent: tlvs[0x9F32]}
	ic, err := VerifyIssuerCert(c.ca.Key, ick, testPAN, certNow)
	if err != nil {
		t.Fatalf("issuer data from AddIssuerData: %v", err)
	}

	static := []byte{0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10, 0x39, 0x00}
	card, err := cc.Certify(ctx, env, testPAN, "291231", static)
	if err != nil {
		t.Fatalf("Certify: %v", err)
	}
	b = Builder{}
	card.AddICCData(&b)
	iccData, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tlvs = map[Tag][]byte{}
	var order []Tag
	for _, tlv := range mustParseTLVs(t, iccData) {
		tlvs[tlv.Tag] = tlv.Value
		order = append(order, tlv.Tag)
	}
	if diff := cmp.Diff([]Tag{0x9F46, 0x9F47, 0x9F48}, order); diff != "" {
		t.Errorf("ICC data objects (-want +got):\n%s", diff)
	}
	icc, err := VerifyICCCert(ic.Key, CertifiedKey{Cert: tlvs[0x9F46], Remainder: tlvs[0x9F48], Exponent: tlvs[0x9F47]}, static, testPAN, certNow)
	if err != nil {
		t.Fatalf("ICC data from AddICCData: %v", err)
	}
	wantDate, _ := NewCertDate(2029, time.December)
	if icc.Expiry != wantDate || !icc.Key.Equal(card.Key) || icc.Key.N.BitLen() != 1024 || icc.Key.E != 65537 {
		t.Errorf("ICC certificate %+v", icc)
	}
	if h := certHash(card.Key.N.Bytes()); icc.Serial != [3]byte(h[:3]) {
		t.Errorf("serial %X, want the first bytes of SHA-1 of the modulus %X", icc.Serial, h[:3])
	}
	// The sealed components belong to the certified key: sign as the card.
	priv := c.m.cardKey(card.Key)
	crt, err := rsax.ExportCRT(priv)
	if err != nil {
		t.Fatal(err)
	}
	for i, comp := range crt.CPS() {
		if !bytes.Equal(card.CRT[i][1:], comp) {
			t.Errorf("CRT component %d is not the card key's", i)
		}
	}
	ssad, err := cc.SignStaticData(ctx, env, []byte{0xDA, 0xC1}, static)
	if err != nil {
		t.Fatalf("SignStaticData: %v", err)
	}
	if s, err := VerifySignedStaticData(ic.Key, ssad, static); err != nil || s.DAC != [2]byte{0xDA, 0xC1} {
		t.Errorf("SSAD: %+v, %v", s, err)
	}

	if _, err := cc.Certify(ctx, &Env{}, testPAN, "291231", static); !errors.Is(err, ErrBadInput) {
		t.Errorf("Certify without a Certifier: %v", err)
	}
	// An expired card is refused before a key is generated.
	cc.Now = func() time.Time { return time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC) }
	keys := len(c.m.cards)
	if _, err := cc.Certify(ctx, env, testPAN, "291231", static); !errors.Is(err, ErrCertExpired) {
		t.Errorf("Certify of an expired card: %v", err)
	}
	if len(c.m.cards) != keys {
		t.Errorf("a card key was generated for an expired card")
	}
	for _, tt := range []struct {
		pan, expiry string
		dac         []byte
	}{{"12", "291231", nil}, {testPAN, "2913", nil}} {
		if _, err := cc.Certify(ctx, env, tt.pan, tt.expiry, static); !errors.Is(err, ErrBadInput) {
			t.Errorf("Certify(%q, %q): %v, want ErrBadInput", tt.pan, tt.expiry, err)
		}
	}
	if _, err := cc.SignStaticData(ctx, env, []byte{1}, static); !errors.Is(err, ErrBadInput) {
		t.Errorf("SignStaticData with a 1-byte DAC: %v", err)
	}
}

func mustParseTLVs(t testing.TB, b []byte) []TLV {
	t.Helper()
	tlvs, err := ParseTLVs(b, Strict)
	if err != nil {
		t.Fatal(err)
	}
	return tlvs
}

// TestCardCertifierIssuerMismatch checks that a certificate that is not the
// module's issuer key is caught before anything is signed.
func TestCardCertifierIssuerMismatch(t *testing.T) {
	c, ik := cardCertifierFixture(t)
	ctx := context.Background()
	env := &Env{Certifier: c.m}
	otherIssuer := certKey(t, "other1152", 1152, 3)
	fit := newChain(t, 1408, 1024, 512, 3)
	tests := []struct {
		name  string
		edit  func(ik *IssuerKey)
		key   *rsa.PrivateKey
		bits  int
		field string
	}{
		{"remainder of another key", func(ik *IssuerKey) {}, otherIssuer, 768, "public key remainder"},
		{"exponent differs", func(ik *IssuerKey) { ik.Exponent = []byte{1, 0, 1} }, nil, 768, "public key exponent"},
		{"remainder for a key that fits", func(ik *IssuerKey) {}, fit.issuer, 768, "public key remainder"},
		{"ICC key longer than the issuer key", func(ik *IssuerKey) {
			ik.Certificate, ik.Remainder = fit.issuerCK.Cert, nil
		}, fit.issuer, 1032, "public key length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ik
			tt.edit(&k)
			m := newMemCertifier(map[KeyRef]*rsa.PrivateKey{refIssuer: c.issuer})
			if tt.key != nil {
				m.keys[refIssuer] = tt.key
			}
			m.sign = func(KeyRef, []byte) ([]byte, error) {
				t.Error("signed with a mismatched issuer key")
				return nil, errors.New("no")
			}
			env.Certifier = m
			cc, err := NewCardCertifier(k, tt.bits, 3)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cc.SignStaticData(ctx, env, []byte{1, 2}, nil)
			var ce *CertError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrCertKey) {
				t.Errorf("error %v, want a CertError for %q", err, tt.field)
			}
		})
	}
}

func TestNewCardCertifierRejects(t *testing.T) {
	_, ik := cardCertifierFixture(t)
	tests := []struct {
		name      string
		edit      func(ik *IssuerKey)
		bits, exp int
		want      error
	}{
		{"no label", func(ik *IssuerKey) { ik.Key.Label = "" }, 1024, 3, ErrBadInput},
		{"short certificate", func(ik *IssuerKey) { ik.Certificate = ik.Certificate[:36] }, 1024, 3, ErrBadInput},
		{"exponent 2", func(ik *IssuerKey) { ik.Exponent = []byte{2} }, 1024, 3, ErrBadInput},
		{"ICC key of 500 bits", func(*IssuerKey) {}, 500, 3, ErrUnsupported},
		{"ICC key of 1992 bits", func(*IssuerKey) {}, 1992, 3, ErrUnsupported},
		{"ICC exponent 17", func(*IssuerKey) {}, 1024, 17, ErrUnsupported},
		{"ICC key longer than the issuer key", func(*IssuerKey) {}, 1160, 3, ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ik
			tt.edit(&k)
			if _, err := NewCardCertifier(k, tt.bits, tt.exp); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}
