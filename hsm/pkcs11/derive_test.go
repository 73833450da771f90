package pkcs11

import (
	"context"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/google/go-cmp/cmp"
)

type vectors struct {
	Keys []struct {
		Name   string
		Value  crypttest.Hex
		KCV    crypttest.Hex
		Source string
	}
	Derive []struct {
		Name   string
		Master string
		Method string
		PAN    string
		PSN    uint8
		KDD    crypttest.Hex
		Key    perso.GPKey
		Value  crypttest.Hex
		KCV    crypttest.Hex
		Source string
	}
	SCP02 struct {
		Static, Sequence crypttest.Hex
		ENC, CMAC, DEK   crypttest.Hex
		ENCKCV           crypttest.Hex `json:"enc_kcv"`
		CMACKCV          crypttest.Hex `json:"cmac_kcv"`
		DEKKCV           crypttest.Hex `json:"dek_kcv"`
		RMACKCV          crypttest.Hex `json:"rmac_kcv"`
		TClear           crypttest.Hex `json:"translate_clear"`
		TOut             crypttest.Hex `json:"translate_out"`
	}
	SCP03 struct {
		Static, Context crypttest.Hex
		SENCKCV         crypttest.Hex `json:"senc_kcv"`
		SMACKCV         crypttest.Hex `json:"smac_kcv"`
		SRMACKCV        crypttest.Hex `json:"srmac_kcv"`
	}
}

func loadVectors(tb testing.TB) *vectors {
	tb.Helper()
	var v vectors
	crypttest.LoadJSON(tb, "testdata/vectors.json", &v)
	return &v
}

func TestCeremonyKCVs(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	for _, k := range loadVectors(t).Keys {
		t.Run(k.Name, func(t *testing.T) {
			ref := perso.KeyRef{Label: f.prefix + "KCV-" + k.Name, Version: 1}
			typ, role := perso.KeyDES2, RoleMaster
			if strings.Contains(k.Name, "AES") {
				typ, role = perso.KeyAES128, RoleKMC
			}
			got, err := f.m.CreateKey(ctx, ref, role, typ, k.Value)
			defer f.m.DestroyKeys(ctx, ref.String())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(k.KCV), got[:]); diff != "" {
				t.Errorf("KCV of %s (%s) (-want +got):\n%s", k.Name, k.Source, diff)
			}
			if _, err := f.m.CreateKey(ctx, ref, role, typ, k.Value); !errors.Is(err, ErrExists) {
				t.Errorf("creating %s twice: %v, want ErrExists", ref, err)
			}
		})
	}
}

// TestDeriveVectors derives the published keys in the token, unwraps them
// with the test KEK and compares them, modulo DES parity, with the
// published values and KCVs.
func TestDeriveVectors(t *testing.T) {
	f := fixtureFor(t)
	masters := map[string]perso.KeyRef{"IMK": f.imk, "KMC": f.kmc}
	methods := map[string]perso.Method{"A": perso.MethodEMVOptionA, "B": perso.MethodEMVOptionB, "CPS": perso.MethodCPS, "VISA2": perso.MethodVISA2}
	for _, v := range loadVectors(t).Derive {
		t.Run(v.Name, func(t *testing.T) {
			req := perso.DeriveRequest{Master: masters[v.Master], Method: methods[v.Method], Data: v.KDD, Key: v.Key, KEK: f.kek}
			if v.PAN != "" {
				req.Data = perso.PANPSN(v.PAN, v.PSN)
			}
			pk, err := f.m.Derive(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got := openKey(t, pk)
			if v.Value != nil && !crypt.EqualModParity(got, v.Value) {
				t.Errorf("%s (%s): derived %X, want %X", v.Name, v.Source, got, []byte(v.Value))
			}
			if !crypt.HasOddParity(got) {
				t.Errorf("derived key lacks odd parity")
			}
			kcv, _ := crypt.KCV(got)
			if kcv != pk.KCV {
				t.Errorf("ProtectedKey KCV %X, key's KCV %X", pk.KCV[:], kcv[:])
			}
			if v.KCV != nil && !cmp.Equal(kcv[:], []byte(v.KCV)) {
				t.Errorf("%s (%s): KCV %X, want %X", v.Name, v.Source, kcv[:], []byte(v.KCV))
			}
			if pk.KEK != f.kek || pk.Type != perso.KeyDES2 {
				t.Errorf("ProtectedKey %v: want KEK %s, type DES2", pk, f.kek)
			}
		})
	}
}

// TestDeriveMatchesReference derives keys in the token for many inputs and
// checks each against the clear-key reference implementation.
func TestDeriveMatchesReference(t *testing.T) {
	f := fixtureFor(t)
	type tc struct {
		name string
		req  perso.DeriveRequest
		ref  func() ([]byte, error)
		typ  perso.KeyType
	}
	var cases []tc
	for _, p := range []struct {
		pan string
		psn uint8
	}{{"4761739001010010", 1}, {"541333000001", 0}, {"6011000990139424", 99}, {"1234567890123456789", 7}, {"12345678901234567", 0}} {
		for _, m := range []perso.Method{perso.MethodEMVOptionA, perso.MethodEMVOptionB} {
			ref := kdf.OptionA
			if m == perso.MethodEMVOptionB {
				ref = kdf.OptionB
			}
			cases = append(cases, tc{
				name: fmt.Sprintf("%s/%s/%02d", m, p.pan, p.psn),
				req:  perso.DeriveRequest{Master: f.imk, Method: m, Data: perso.PANPSN(p.pan, p.psn)},
				ref:  func() ([]byte, error) { return ref(imkValue, p.pan, p.psn) },
				typ:  perso.KeyDES2,
			})
		}
	}
	for _, d := range []string{"0011223344556677", "00112233445566778899AABBCCDDEEFF"} {
		data := crypttest.MustHex(d)
		cases = append(cases, tc{
			name: fmt.Sprintf("encrypt data/%d bytes", len(data)),
			req:  perso.DeriveRequest{Master: f.imk, Method: perso.MethodEncryptData, Data: data},
			ref:  func() ([]byte, error) { return kdf.EncryptData(imkValue, data) },
			typ:  perso.KeyDES2,
		})
	}
	for _, n := range []int{16, 32} {
		data := crypttest.MustHex("F0E1D2C3B4A5968778695A4B3C2D1E0F0123456789ABCDEFFEDCBA9876543210")[:n]
		typ, _ := aesKeyType(n)
		cases = append(cases, tc{
			name: fmt.Sprintf("encrypt data/AES/%d bytes", n),
			req:  perso.DeriveRequest{Master: f.mkAES, Method: perso.MethodEncryptData, Data: data},
			ref: func() ([]byte, error) {
				b, _ := aes.NewCipher(mkAESValue)
				out := make([]byte, len(data))
				return out, crypt.EncryptECB(b, out, data)
			},
			typ: typ,
		})
	}
	kdd := crypttest.MustHex("00FF1122334455667788")
	for k := perso.GPKeyENC; k <= perso.GPKeyDEK; k++ {
		cases = append(cases,
			tc{fmt.Sprintf("CPS/%d", k), perso.DeriveRequest{Master: f.kmc, Method: perso.MethodCPS, Data: kdd, Key: k},
				func() ([]byte, error) { return kdf.DiversifyCPS(kmcValue, kdd, int(k)) }, perso.KeyDES2},
			tc{fmt.Sprintf("VISA2/%d", k), perso.DeriveRequest{Master: f.kmc, Method: perso.MethodVISA2, Data: kdd, Key: k},
				func() ([]byte, error) { return kdf.DiversifyVISA2(kmcValue, kdd, int(k)) }, perso.KeyDES2},
			tc{fmt.Sprintf("SCP03 KDF/%d", k), perso.DeriveRequest{Master: f.kmcAES, Method: perso.MethodSCP03KDF, Data: kdd, Key: k},
				func() ([]byte, error) { return kdf.DiversifySCP03(kmcValue, kdd, int(k)) }, perso.KeyAES128},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.KEK = f.kek
			pk, err := f.m.Derive(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := c.ref()
			if err != nil {
				t.Fatal(err)
			}
			got := openKey(t, pk)
			if pk.Type != c.typ || len(got) != c.typ.Len() {
				t.Fatalf("got a %s key of %d bytes, want %s", pk.Type, len(got), c.typ)
			}
			if c.typ.IsDES() {
				if !crypt.EqualModParity(got, want) {
					t.Errorf("derived %X, reference %X", got, want)
				}
			} else if !cmp.Equal(got, want) {
				t.Errorf("derived %X, reference %X", got, want)
			}
			kcv, _ := hostKCV(c.typ, got)
			if kcv != pk.KCV {
				t.Errorf("KCV %X, want %X", pk.KCV[:], kcv[:])
			}
		})
	}
}

func TestDeriveErrors(t *testing.T) {
	f := fixtureFor(t)
	pan := perso.PANPSN("4761739001010010", 1)
	kdd := make([]byte, 10)
	cases := []struct {
		name string
		req  perso.DeriveRequest
		want error
	}{
		{"unknown master", perso.DeriveRequest{Master: perso.KeyRef{Label: f.prefix + "NONE", Version: 1}, Method: perso.MethodEMVOptionA, Data: pan, KEK: f.kek}, perso.ErrNoSuchKey},
		{"unknown KEK", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: pan, KEK: f.kekMiss}, perso.ErrNoSuchKey},
		{"3DES KEK", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: pan, KEK: f.kekDES}, perso.ErrUnsupported},
		{"bad scheme", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: pan, KEK: perso.KEKID{Scheme: 9}}, perso.ErrBadInput},
		{"short PAN", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: []byte("1234501"), KEK: f.kek}, perso.ErrBadInput},
		{"PAN not digits", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionB, Data: []byte("47617390010100A001"), KEK: f.kek}, perso.ErrBadInput},
		{"encrypt data 7 bytes", perso.DeriveRequest{Master: f.imk, Method: perso.MethodEncryptData, Data: make([]byte, 7), KEK: f.kek}, perso.ErrBadInput},
		{"encrypt data 8 bytes AES", perso.DeriveRequest{Master: f.mkAES, Method: perso.MethodEncryptData, Data: make([]byte, 8), KEK: f.kek}, perso.ErrBadInput},
		{"KDD 9 bytes", perso.DeriveRequest{Master: f.kmc, Method: perso.MethodCPS, Data: kdd[:9], Key: perso.GPKeyENC, KEK: f.kek}, perso.ErrBadInput},
		{"GP key 4", perso.DeriveRequest{Master: f.kmc, Method: perso.MethodCPS, Data: kdd, Key: 4, KEK: f.kek}, perso.ErrBadInput},
		{"option A from AES", perso.DeriveRequest{Master: f.mkAES, Method: perso.MethodEMVOptionA, Data: pan, KEK: f.kek}, perso.ErrUnsupported},
		{"SCP03 KDF from 3DES", perso.DeriveRequest{Master: f.kmc, Method: perso.MethodSCP03KDF, Data: kdd, Key: perso.GPKeyENC, KEK: f.kek}, perso.ErrUnsupported},
		{"unknown method", perso.DeriveRequest{Master: f.imk, Method: 99, Data: pan, KEK: f.kek}, perso.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.m.Derive(context.Background(), c.req)
			if !errors.Is(err, c.want) {
				t.Fatalf("Derive: %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "4761739001010010") {
				t.Errorf("error names the PAN: %v", err)
			}
		})
	}
}

// TestCryptogram computes ARQCs and ARPCs in the token and compares them
// with the reference: ICC master key by option A/B, AC session key, MAC
// algorithm 3 / ARPC method 1.
func TestCryptogram(t *testing.T) {
	f := fixtureFor(t)
	cdol := crypttest.MustHex("0000000020000000000000000124000000800001241103090038048230E5800000158D0F0011223344556677")
	for _, n := range []int{1, 7, 8, 9, 29, 43} {
		for _, m := range []perso.Method{perso.MethodEMVOptionA, perso.MethodEMVOptionB} {
			pan, psn, atc := "12345678901234567", uint8(1), uint16(0x001C)
			t.Run(fmt.Sprintf("%s/%d bytes", m, n), func(t *testing.T) {
				got, err := f.m.Cryptogram(context.Background(), perso.CryptogramRequest{Master: f.imk, Method: m, PAN: pan, PSN: psn, ATC: atc, Data: cdol[:n]})
				if err != nil {
					t.Fatal(err)
				}
				want := refAC(t, m, pan, psn, atc, cdol[:n], nil)
				if !cmp.Equal(got, want) {
					t.Errorf("AC %X, reference %X", got, want)
				}
				arc := []byte{0x30, 0x30}
				got, err = f.m.Cryptogram(context.Background(), perso.CryptogramRequest{Master: f.imk, Method: m, PAN: pan, PSN: psn, ATC: atc, Data: want, ARC: arc})
				if err != nil {
					t.Fatal(err)
				}
				if w := refAC(t, m, pan, psn, atc, want, arc); !cmp.Equal(got, w) {
					t.Errorf("ARPC %X, reference %X", got, w)
				}
			})
		}
	}
	for _, c := range []struct {
		name string
		req  perso.CryptogramRequest
		want error
	}{
		{"no data", perso.CryptogramRequest{Master: f.imk, Method: perso.MethodEMVOptionA, PAN: "4761739001010010"}, perso.ErrBadInput},
		{"ARPC short ARQC", perso.CryptogramRequest{Master: f.imk, Method: perso.MethodEMVOptionA, PAN: "4761739001010010", Data: make([]byte, 7), ARC: []byte{0, 0}}, perso.ErrBadInput},
		{"bad PAN", perso.CryptogramRequest{Master: f.imk, Method: perso.MethodEMVOptionA, PAN: "47617390X1010010", Data: cdol}, perso.ErrBadInput},
		{"method", perso.CryptogramRequest{Master: f.imk, Method: perso.MethodCPS, PAN: "4761739001010010", Data: cdol}, perso.ErrUnsupported},
		{"unknown IMK", perso.CryptogramRequest{Master: perso.KeyRef{Label: f.prefix + "NONE"}, Method: perso.MethodEMVOptionA, PAN: "4761739001010010", Data: cdol}, perso.ErrNoSuchKey},
		{"AES master", perso.CryptogramRequest{Master: f.mkAES, Method: perso.MethodEMVOptionA, PAN: "4761739001010010", Data: cdol}, perso.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.Cryptogram(context.Background(), c.req); !errors.Is(err, c.want) {
				t.Errorf("Cryptogram: %v, want %v", err, c.want)
			}
		})
	}
}

// refAC computes an AC (arc nil) or an ARPC with the clear-key reference.
func refAC(tb testing.TB, m perso.Method, pan string, psn uint8, atc uint16, data, arc []byte) []byte {
	tb.Helper()
	mk, err := kdf.OptionA(imkValue, pan, psn)
	if m == perso.MethodEMVOptionB {
		mk, err = kdf.OptionB(imkValue, pan, psn)
	}
	if err != nil {
		tb.Fatal(err)
	}
	sk, err := kdf.SessionKey(mk, atc)
	if err != nil {
		tb.Fatal(err)
	}
	var out []byte
	if arc == nil {
		out, err = kdf.AC(sk, data)
	} else {
		out, err = kdf.ARPC1(sk, data, arc)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestOptionBBlock(t *testing.T) {
	// Option B with a short PAN is option A; a long one differs from it.
	a, _ := kdf.PANPSNBlock("4761739001010010", 1)
	b, err := optionBBlock("4761739001010010", 1)
	if err != nil || a != b {
		t.Errorf("option B block of a 16-digit PAN: %X, %v; want option A's %X", b, err, a)
	}
	if _, err := optionBBlock("1234567890123456A89", 0); err == nil {
		t.Error("option B accepted a non-digit")
	}
	y, err := optionBBlock("1234567890123456789", 99)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range hex.EncodeToString(y[:]) {
		if c < '0' || c > '9' {
			t.Fatalf("option B block %X has a non-decimal digit at %d", y, i)
		}
	}
}
