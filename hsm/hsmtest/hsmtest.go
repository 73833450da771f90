// Package hsmtest is the conformance suite that every security module
// backend passes: the same derivations, protections, MACs, card keys and
// signatures, checked against public test vectors and against the clear-key
// reference implementations, so that a batch prepared with one backend is
// read by any other.
//
// A backend's test loads the suite's test keys ([TestKeys]) under their
// references and calls [Run]. The suite opens what the module returns with
// the known test KEK on the host, which only works because these are test
// keys.
package hsmtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/protect"
	"github.com/cardperso/perso/internal/rsax"
)

// Module is what a backend implements.
type Module interface {
	perso.KeyDeriver
	perso.Certifier
	perso.Protector
	perso.Translator
}

// Issuer is the suite's test issuer identifier.
var Issuer = perso.IssuerID{0x45, 0x12, 0x3F, 0xFF}

// References of the test keys.
var (
	IMK       = perso.KeyRef{Label: "IMK-AC", Version: 1}
	KMC       = perso.KeyRef{Label: "KMC", Version: 1}
	KMCAES    = perso.KeyRef{Label: "KMC-AES", Version: 1}
	KML       = perso.KeyRef{Label: "KML", Version: 1}
	IssuerKey = perso.KeyRef{Label: "ISSUER", Version: 1}
	KEK       = perso.KEKID{Issuer: Issuer, Version: 1, Scheme: perso.SchemeAESKW}
	KEKDES    = perso.KEKID{Issuer: Issuer, Version: 2, Scheme: perso.SchemeDES3ECB}
)

// TestKey is a symmetric test key with its clear value.
type TestKey struct {
	Ref   perso.KeyRef
	Type  perso.KeyType
	Value []byte
}

// TestKEK is a test KEK with its clear value.
type TestKEK struct {
	ID    perso.KEKID
	Value []byte
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestKeys are the symmetric keys a backend loads before Run: the IMK of the
// pyemv vectors, the GlobalPlatformPro KMC (as DES2 and as AES-128), and a
// KML for the stored-value keys.
var TestKeys = []TestKey{
	{IMK, perso.KeyDES2, mustHex("0123456789ABCDEFFEDCBA9876543210")},
	{KMC, perso.KeyDES2, mustHex("404142434445464748494A4B4C4D4E4F")},
	{KMCAES, perso.KeyAES128, mustHex("404142434445464748494A4B4C4D4E4F")},
	{KML, perso.KeyDES2, mustHex("2315208C9110AD402315208C9110AD40")},
}

// TestKEKs are the KEKs a backend loads before Run; KEKDES only where the
// backend supports SchemeDES3ECB (Options.DES3KEK).
var TestKEKs = []TestKEK{
	{KEK, mustHex("0F0E0D0C0B0A09080706050403020100")},
	{KEKDES, mustHex("1023324554677689981AAB3BCD5DEF7F")},
}

// IssuerBits and IssuerExponent describe the issuer RSA key a backend
// creates under IssuerKey before Run.
const (
	IssuerBits     = 1408
	IssuerExponent = 3
)

// Options says what the backend under test supports.
type Options struct {
	// DES3KEK: the backend holds KEKDES and protects under it.
	DES3KEK bool
	// CardKeys lists the card key sizes and exponents to generate; nil
	// means 1024 bits with e=3 and with e=65537.
	CardKeys []perso.CardKeyRequest
}

func kekValue(id perso.KEKID) []byte {
	for _, k := range TestKEKs {
		if k.ID == id {
			return k.Value
		}
	}
	return nil
}

// hostKEK is the test KEK on the host, to open what the module returns.
func hostKEK(t *testing.T, id perso.KEKID) *protect.KEK {
	t.Helper()
	k, err := protect.NewKEK(int(id.Scheme), kekValue(id))
	if err != nil {
		t.Fatalf("test KEK %s: %v", id, err)
	}
	return k
}

// Run runs the suite against m.
func Run(t *testing.T, m Module, o Options) {
	keks := []perso.KEKID{KEK}
	if o.DES3KEK {
		keks = append(keks, KEKDES)
	}
	for _, kek := range keks {
		t.Run("Derive/"+kek.Scheme.String(), func(t *testing.T) { testDerive(t, m, kek) })
		t.Run("Protect/"+kek.Scheme.String(), func(t *testing.T) { testProtect(t, m, kek) })
	}
	t.Run("SessionKeys", func(t *testing.T) { testSessionKeys(t, m) })
	t.Run("Cryptogram", func(t *testing.T) { testCryptogram(t, m) })
	t.Run("CardKeys", func(t *testing.T) { testCardKeys(t, m, o) })
	t.Run("SignRaw", func(t *testing.T) { testSignRaw(t, m) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, m) })
	t.Run("Capabilities", func(t *testing.T) {
		c := m.Capabilities()
		if c.Module == "" || len(c.Schemes) == 0 {
			t.Errorf("capabilities name no module or scheme: %+v", c)
		}
	})
}

type deriveCase struct {
	name   string
	req    perso.DeriveRequest
	want   []byte // compared modulo parity, when set
	kcv    string // compared, when set
	source string
}

func testDerive(t *testing.T, m Module, kek perso.KEKID) {
	ctx := context.Background()
	hk := hostKEK(t, kek)
	kdd := mustHex("00010203040506070809")
	tests := []deriveCase{
		{"option A", perso.DeriveRequest{Master: IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("12345678901234567", 1)},
			mustHex("73AD54688CEF2934B0979857E3C719F1"), "", "pyemv tests/test_kd_hsm.py"},
		{"option B", perso.DeriveRequest{Master: IMK, Method: perso.MethodEMVOptionB, Data: perso.PANPSN("12345678901234567", 1)},
			mustHex("AD406D7F6D7570916D75E5DCAB8CF737"), "", "pyemv tests/test_kd_hsm.py"},
		{"CPS ENC", perso.DeriveRequest{Master: KMC, Method: perso.MethodCPS, Data: kdd, Key: perso.GPKeyENC}, nil, "C33013", "GlobalPlatformPro TestPlaintextKeys.java"},
		{"CPS MAC", perso.DeriveRequest{Master: KMC, Method: perso.MethodCPS, Data: kdd, Key: perso.GPKeyMAC}, nil, "6F4CA6", "GlobalPlatformPro TestPlaintextKeys.java"},
		{"CPS DEK", perso.DeriveRequest{Master: KMC, Method: perso.MethodCPS, Data: kdd, Key: perso.GPKeyDEK}, nil, "BB8179", "GlobalPlatformPro TestPlaintextKeys.java"},
		{"VISA2 ENC", perso.DeriveRequest{Master: KMC, Method: perso.MethodVISA2, Data: kdd, Key: perso.GPKeyENC}, nil, "2BE598", "GlobalPlatformPro TestPlaintextKeys.java"},
		{"VISA2 MAC", perso.DeriveRequest{Master: KMC, Method: perso.MethodVISA2, Data: kdd, Key: perso.GPKeyMAC}, nil, "58DA38", "GlobalPlatformPro TestPlaintextKeys.java"},
		{"VISA2 DEK", perso.DeriveRequest{Master: KMC, Method: perso.MethodVISA2, Data: kdd, Key: perso.GPKeyDEK}, nil, "3C328E", "GlobalPlatformPro TestPlaintextKeys.java"},
	}
	// References computed with the clear-key implementations.
	kml := TestKeys[3].Value
	ed, err := kdf.EncryptData(kml, mustHex("0011223344556677"))
	if err != nil {
		t.Fatal(err)
	}
	tests = append(tests, deriveCase{"encrypt data", perso.DeriveRequest{Master: KML, Method: perso.MethodEncryptData, Data: mustHex("0011223344556677")}, ed, "", "internal/kdf reference"})
	scp03, err := kdf.DiversifySCP03(TestKeys[2].Value, kdd, kdf.ENC)
	if err != nil {
		t.Fatal(err)
	}
	tests = append(tests, deriveCase{"SCP03 ENC", perso.DeriveRequest{Master: KMCAES, Method: perso.MethodSCP03KDF, Data: kdd, Key: perso.GPKeyENC}, scp03, "", "internal/kdf reference"})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.KEK = kek
			pk, err := m.Derive(ctx, tt.req)
			if errors.Is(err, perso.ErrUnsupported) {
				t.Skipf("backend: %v", err)
			}
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if pk.KEK != kek {
				t.Errorf("KEK = %s, want %s", pk.KEK, kek)
			}
			clear, err := hk.OpenKey(pk)
			if err != nil {
				t.Fatalf("opening the result with the test KEK: %v", err)
			}
			defer crypt.Zero(clear)
			if tt.want != nil && !crypt.EqualModParity(clear, tt.want) {
				t.Errorf("derived key differs from the vector (%s)", tt.source)
			}
			if tt.kcv != "" {
				if got := hex.EncodeToString(pk.KCV[:]); !bytes.EqualFold([]byte(got), []byte(tt.kcv)) {
					t.Errorf("KCV = %s, want %s (%s)", got, tt.kcv, tt.source)
				}
			}
		})
	}
}

func testProtect(t *testing.T, m Module, kek perso.KEKID) {
	ctx := context.Background()
	hk := hostKEK(t, kek)
	for _, n := range []int{1, 8, 16, 17, 48, 128} {
		clear := bytes.Repeat([]byte{0xA5}, n)
		s, err := m.Seal(ctx, kek, clear)
		if err != nil {
			t.Fatalf("Seal %d bytes: %v", n, err)
		}
		if bytes.Contains(s, clear) && n >= 8 {
			t.Errorf("sealed value contains the clear value")
		}
		got, err := hk.OpenSealed(s)
		if err != nil || !bytes.Equal(got, clear) {
			t.Errorf("Seal %d bytes does not open to the value (err %v)", n, err)
		}
	}
	mk, err := m.NewMACKey(ctx, kek)
	if err != nil {
		t.Fatalf("NewMACKey: %v", err)
	}
	if mk.KEK != kek {
		t.Errorf("MAC key KEK = %s", mk.KEK)
	}
	data := []byte("application data from AID through the protected MAC key")
	mac, err := m.MAC(ctx, mk, data)
	if err != nil || len(mac) != 8 {
		t.Fatalf("MAC = %d bytes, %v", len(mac), err)
	}
	clearMK, err := hk.OpenKey(mk)
	if err != nil {
		t.Fatalf("opening the MAC key: %v", err)
	}
	ref, err := protect.MAC(int(kek.Scheme), clearMK, data)
	crypt.Zero(clearMK)
	if err != nil || !bytes.Equal(ref, mac) {
		t.Errorf("MAC differs from the reference (err %v)", err)
	}
	if err := m.VerifyMAC(ctx, mk, data, mac); err != nil {
		t.Errorf("VerifyMAC of a good MAC: %v", err)
	}
	bad := append([]byte(nil), data...)
	bad[3] ^= 0x01
	if err := m.VerifyMAC(ctx, mk, bad, mac); !errors.Is(err, perso.ErrBadMAC) {
		t.Errorf("VerifyMAC of tampered data = %v, want ErrBadMAC", err)
	}
	// Translation of a sealed value and of a key list to both channels.
	pk, err := m.Derive(ctx, perso.DeriveRequest{Master: IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: kek})
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	keys, err := perso.SealKeysOf(pk, pk)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := m.Seal(ctx, kek, mustHex("241234FFFFFFFFFF"))
	if err != nil {
		t.Fatal(err)
	}
	for _, scp := range []perso.SCP{{Version: 2, Param: 0x55}, {Version: 3, Param: 0x70}} {
		kmc := KMC
		req := perso.SessionKeyRequest{KMC: kmc, SCP: scp, Sequence: []byte{0, 1}, Context: mustHex("00010203040506070809")}
		if scp.Version == 3 {
			req.KMC = KMCAES
		}
		sk, err := m.SessionKeys(ctx, req)
		if err != nil {
			t.Fatalf("SessionKeys %s: %v", scp, err)
		}
		for _, s := range []perso.Sealed{keys, pin} {
			ct, err := m.Translate(ctx, kek, s, sk)
			if err != nil {
				t.Fatalf("Translate %s: %v", scp, err)
			}
			clear, err := hk.OpenSealed(s)
			if err != nil {
				t.Fatal(err)
			}
			dek := sk.DEK
			if dek == nil {
				t.Skip("the module keeps the DEK inside; translation checked by the card tests")
			}
			want, err := protect.ForCard(scp.Version, dek, clear)
			if err != nil || !bytes.Equal(ct, want) {
				t.Errorf("Translate %s differs from the reference (err %v)", scp, err)
			}
			crypt.Zero(clear)
		}
		sk.Zero()
	}
}

func testSessionKeys(t *testing.T, m Module) {
	ctx := context.Background()
	kcv := func(k []byte, aes bool) string {
		var v [3]byte
		var err error
		if aes {
			v, err = crypt.KCVAES(k)
		} else {
			v, err = crypt.KCV(k)
		}
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(v[:])
	}
	// GlobalPlatformPro TestPlaintextKeys.java: static keys = KMC, counter 0000.
	sk, err := m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: KMC, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: []byte{0, 0}})
	if err != nil {
		t.Fatalf("SCP02: %v", err)
	}
	got := []string{kcv(sk.ENC, false), kcv(sk.MAC, false), kcv(sk.RMAC, false)}
	want := []string{"f2dcdd", "5fcc69", "9f749a"}
	if sk.DEK != nil {
		got = append(got, kcv(sk.DEK, false))
		want = append(want, "85272e")
	}
	if !equalStrings(got, want) {
		t.Errorf("SCP02 session key KCVs = %v, want %v", got, want)
	}
	// SCP03, context 00..09 (GlobalPlatformPro).
	sk, err = m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: KMCAES, SCP: perso.SCP{Version: 3, Param: 0x70}, Context: mustHex("00010203040506070809")})
	if err != nil {
		t.Fatalf("SCP03: %v", err)
	}
	got = []string{kcv(sk.ENC, true), kcv(sk.MAC, true), kcv(sk.RMAC, true)}
	want = []string{"c25559", "0e12cc", "9acb9c"}
	if !equalStrings(got, want) {
		t.Errorf("SCP03 session key KCVs = %v, want %v", got, want)
	}
	// Diversified card keys: the SCP02 session keys equal those from the
	// reference diversification.
	kdd := mustHex("00010203040506070809")
	sk, err = m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: KMC, Method: perso.MethodCPS, KDD: kdd, SCP: perso.SCP{Version: 2, Param: 0x15}, Sequence: []byte{0, 7}})
	if err != nil {
		t.Fatalf("SCP02 CPS: %v", err)
	}
	enc, _ := kdf.DiversifyCPS(TestKeys[1].Value, kdd, kdf.ENC)
	sENC, _ := kdf.SCP02SessionKey(enc, kdf.SCP02ConstENC, []byte{0, 7})
	if !crypt.EqualModParity(sk.ENC, sENC) {
		t.Errorf("SCP02 S-ENC from CPS-diversified keys differs from the reference")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testCryptogram(t *testing.T, m Module) {
	ctx := context.Background()
	pan, psn, atc := "4761739001010010", uint8(1), uint16(0x001C)
	data := mustHex("000000001000000000000000097800000000000978250101005512345678")
	req := perso.CryptogramRequest{Master: IMK, Method: perso.MethodEMVOptionA, PAN: pan, PSN: psn, ATC: atc, Data: data}
	ac, err := m.Cryptogram(ctx, req)
	if errors.Is(err, perso.ErrUnsupported) {
		t.Skipf("backend: %v", err)
	}
	if err != nil {
		t.Fatalf("Cryptogram: %v", err)
	}
	udk, _ := kdf.OptionA(TestKeys[0].Value, pan, psn)
	sk, _ := kdf.SessionKey(udk, atc)
	want, _ := kdf.AC(sk, data)
	if !bytes.Equal(ac, want) {
		t.Errorf("ARQC = %X, want %X", ac, want)
	}
	req.Data, req.ARC = ac, []byte{0x30, 0x30}
	arpc, err := m.Cryptogram(ctx, req)
	if err != nil {
		t.Fatalf("ARPC: %v", err)
	}
	wantARPC, _ := kdf.ARPC1(sk, ac, req.ARC)
	if !bytes.Equal(arpc, wantARPC) {
		t.Errorf("ARPC = %X, want %X", arpc, wantARPC)
	}
}

func testCardKeys(t *testing.T, m Module, o Options) {
	ctx := context.Background()
	reqs := o.CardKeys
	if reqs == nil {
		reqs = []perso.CardKeyRequest{{Bits: 1024, Exponent: 3}, {Bits: 1024, Exponent: 65537}}
	}
	hk := hostKEK(t, KEK)
	for _, r := range reqs {
		r.KEK = KEK
		ck, err := m.GenerateCardKey(ctx, r)
		if err != nil {
			t.Fatalf("GenerateCardKey %d/%d: %v", r.Bits, r.Exponent, err)
		}
		if ck.Public.N.BitLen() != r.Bits || ck.Public.E != r.Exponent {
			t.Fatalf("card key is %d bits e=%d, want %d e=%d", ck.Public.N.BitLen(), ck.Public.E, r.Bits, r.Exponent)
		}
		var comps [5][]byte // qinv, dq, dp, q, p
		for i, s := range ck.CRT {
			c, err := hk.OpenSealed(s)
			if err != nil {
				t.Fatalf("opening CRT component %d: %v", i, err)
			}
			if len(c) != (r.Bits/8+1)/2 {
				t.Errorf("CRT component %d is %d bytes, want %d", i, len(c), (r.Bits/8+1)/2)
			}
			comps[i] = c
		}
		k, err := rsax.FromCRT(ck.Public, &rsax.CRT{QInv: comps[0], DQ: comps[1], DP: comps[2], Q: comps[3], P: comps[4]})
		if err != nil {
			t.Fatalf("CRT components do not rebuild the key: %v", err)
		}
		msg := new(big.Int).SetBytes(bytes.Repeat([]byte{0x5A}, r.Bits/8-1)).FillBytes(make([]byte, r.Bits/8))
		sig, err := rsax.PrivateRaw(k, msg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := rsax.PublicRaw(ck.Public, sig)
		if err != nil || !bytes.Equal(back, msg) {
			t.Errorf("card key pairwise check failed (err %v)", err)
		}
	}
}

func testSignRaw(t *testing.T, m Module) {
	ctx := context.Background()
	pub, err := m.PublicKey(ctx, IssuerKey)
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	n := (pub.N.BitLen() + 7) / 8
	block := make([]byte, n)
	block[0] = 0x6A
	for i := 1; i < n-1; i++ {
		block[i] = byte(i)
	}
	block[n-1] = 0xBC
	sig, err := m.SignRaw(ctx, IssuerKey, block)
	if err != nil {
		t.Fatalf("SignRaw: %v", err)
	}
	back, err := rsax.PublicRaw(pub, sig)
	if err != nil || !bytes.Equal(back, block) {
		t.Errorf("signature does not recover the block (err %v)", err)
	}
	if _, err := m.SignRaw(ctx, IssuerKey, append([]byte{0xFF}, block[1:]...)); err == nil {
		if pub.N.Cmp(new(big.Int).SetBytes(append([]byte{0xFF}, block[1:]...))) <= 0 {
			t.Errorf("SignRaw accepted a block not smaller than the modulus")
		}
	}
}

func testErrors(t *testing.T, m Module) {
	ctx := context.Background()
	missing := perso.KeyRef{Label: "NO-SUCH-KEY", Version: 9}
	if _, err := m.Derive(ctx, perso.DeriveRequest{Master: missing, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: KEK}); !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("Derive with a missing master key = %v, want ErrNoSuchKey", err)
	}
	noKEK := perso.KEKID{Issuer: Issuer, Version: 99, Scheme: perso.SchemeAESKW}
	if _, err := m.Derive(ctx, perso.DeriveRequest{Master: IMK, Method: perso.MethodEMVOptionA, Data: perso.PANPSN("4761739001010010", 1), KEK: noKEK}); !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("Derive under a missing KEK = %v, want ErrNoSuchKey", err)
	}
	if _, err := m.Derive(ctx, perso.DeriveRequest{Master: IMK, Method: perso.MethodEMVOptionA, Data: []byte("12AB"), KEK: KEK}); !errors.Is(err, perso.ErrBadInput) {
		t.Errorf("Derive with bad data = %v, want ErrBadInput", err)
	}
	if _, err := m.SignRaw(ctx, missing, make([]byte, 128)); !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("SignRaw with a missing key = %v, want ErrNoSuchKey", err)
	}
	if _, err := m.Seal(ctx, noKEK, []byte{1}); !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("Seal under a missing KEK = %v, want ErrNoSuchKey", err)
	}
}

// Importer is a module that takes clear keys, as the software module does.
type Importer interface {
	ImportKey(ref perso.KeyRef, t perso.KeyType, key []byte) ([3]byte, error)
	ImportKEK(id perso.KEKID, key []byte) ([3]byte, error)
}

// Load imports TestKeys and TestKEKs into m.
func Load(tb testing.TB, m Importer) {
	tb.Helper()
	for _, k := range TestKeys {
		if _, err := m.ImportKey(k.Ref, k.Type, k.Value); err != nil {
			tb.Fatalf("importing %s: %v", k.Ref, err)
		}
	}
	for _, k := range TestKEKs {
		if _, err := m.ImportKEK(k.ID, k.Value); err != nil {
			tb.Fatalf("importing %s: %v", k.ID.Label(), err)
		}
	}
}
