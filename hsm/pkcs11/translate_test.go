package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/protect"
	"github.com/google/go-cmp/cmp"
)

func kcvOf(tb testing.TB, des bool, k []byte) []byte {
	tb.Helper()
	var v [3]byte
	var err error
	if des {
		v, err = crypt.KCV(k)
	} else {
		v, err = crypt.KCVAES(k)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return v[:]
}

// TestSCP02Vector checks the published SCP02 session keys (static keys all
// 404142..4F, sequence counter 0000) and the published encryption of that
// key under the session DEK, which Translate must produce from the key
// sealed under the KEK.
func TestSCP02Vector(t *testing.T) {
	f := fixtureFor(t)
	v := loadVectors(t).SCP02
	if !cmp.Equal([]byte(v.Static), kmcValue) {
		t.Fatal("the fixture's KMC is not the vector's static key")
	}
	ctx := context.Background()
	sk, err := f.m.SessionKeys(ctx, perso.SessionKeyRequest{KMC: f.kmc, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: v.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Zero()
	for _, c := range []struct {
		name      string
		got, want []byte
		kcv       []byte
	}{
		{"S-ENC", sk.ENC, v.ENC, v.ENCKCV},
		{"C-MAC", sk.MAC, v.CMAC, v.CMACKCV},
		{"R-MAC", sk.RMAC, nil, v.RMACKCV},
		{"S-DEK", sk.DEK, v.DEK, v.DEKKCV},
	} {
		if c.name == "S-DEK" && f.m.feat.des3Wrap {
			if sk.DEK != nil {
				t.Error("S-DEK returned although the token wraps under 3DES")
			}
			continue
		}
		if c.want != nil && !crypt.EqualModParity(c.got, c.want) {
			t.Errorf("%s = %X, want %X", c.name, c.got, c.want)
		}
		if got := kcvOf(t, true, c.got); !cmp.Equal(got, []byte(c.kcv)) {
			t.Errorf("%s KCV %X, want %X", c.name, got, []byte(c.kcv))
		}
	}
	out, err := f.m.Translate(ctx, f.kek, sealKeysHost(t, perso.KeyDES2, v.TClear), sk)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(out, []byte(v.TOut)) {
		t.Errorf("translated %X, want %X", out, []byte(v.TOut))
	}
}

// TestSCP03Vector checks the SCP03 session key KCVs published for static
// keys 404142..4F and context 00..09.
func TestSCP03Vector(t *testing.T) {
	f := fixtureFor(t)
	v := loadVectors(t).SCP03
	err := f.m.do(context.Background(), func(s *session) error {
		kmc, err := f.m.masterKey(s, f.kmcAES, false)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			name     string
			constant byte
			kcv      []byte
		}{{"S-ENC", kdf.SCP03SENC, v.SENCKCV}, {"S-MAC", kdf.SCP03SMAC, v.SMACKCV}, {"S-RMAC", kdf.SCP03SRMAC, v.SRMACKCV}} {
			k, err := f.m.scp03Session(s, kmc.h, c.constant, v.Context, 16)
			if err != nil {
				return err
			}
			if got := kcvOf(t, false, k); !cmp.Equal(got, c.kcv) {
				t.Errorf("%s KCV %X, want %X", c.name, got, c.kcv)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSessionKeys compares the session keys with the reference for every
// diversification method.
func TestSessionKeys(t *testing.T) {
	f := fixtureFor(t)
	kdd := crypttestKDD
	seq := []byte{0x00, 0x2A}
	chal := []byte("host-chlcard-chl") // 8 + 8 bytes
	type ref struct{ enc, mac, rmac, dek []byte }
	scp02 := func(div func(k int) []byte) ref {
		s := func(k int, c uint16) []byte {
			v, err := kdf.SCP02SessionKey(div(k), c, seq)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		return ref{s(kdf.ENC, kdf.SCP02ConstENC), s(kdf.MAC, kdf.SCP02ConstCMAC), s(kdf.MAC, kdf.SCP02ConstRMAC), s(kdf.DEK, kdf.SCP02ConstDEK)}
	}
	scp03 := func(div func(k int) []byte) ref {
		s := func(k int, c byte) []byte {
			v, err := kdf.SCP03KDF(div(k), c, chal, 128)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		return ref{s(kdf.ENC, kdf.SCP03SENC), s(kdf.MAC, kdf.SCP03SMAC), s(kdf.MAC, kdf.SCP03SRMAC), nil}
	}
	must := func(v []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		req  perso.SessionKeyRequest
		want ref
	}{
		{"SCP02/KMC", perso.SessionKeyRequest{KMC: f.kmc, SCP: perso.SCP{Version: 2, Param: 0x15}, Sequence: seq},
			scp02(func(int) []byte { return kmcValue })},
		{"SCP02/CPS", perso.SessionKeyRequest{KMC: f.kmc, Method: perso.MethodCPS, KDD: kdd, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: seq},
			scp02(func(k int) []byte { return must(kdf.DiversifyCPS(kmcValue, kdd, k)) })},
		{"SCP02/VISA2", perso.SessionKeyRequest{KMC: f.kmc, Method: perso.MethodVISA2, KDD: kdd, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: seq},
			scp02(func(k int) []byte { return must(kdf.DiversifyVISA2(kmcValue, kdd, k)) })},
		{"SCP03/KMC", perso.SessionKeyRequest{KMC: f.kmcAES, SCP: perso.SCP{Version: 3, Param: 0x70}, Context: chal},
			scp03(func(int) []byte { return kmcValue })},
		{"SCP03/KDF", perso.SessionKeyRequest{KMC: f.kmcAES, Method: perso.MethodSCP03KDF, KDD: kdd, SCP: perso.SCP{Version: 3, Param: 0x70}, Context: chal},
			scp03(func(k int) []byte { return must(kdf.DiversifySCP03(kmcValue, kdd, k)) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sk, err := f.m.SessionKeys(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if sk.SCP != c.req.SCP {
				t.Errorf("SCP %s, want %s", sk.SCP, c.req.SCP)
			}
			for _, k := range []struct {
				name      string
				got, want []byte
			}{{"ENC", sk.ENC, c.want.enc}, {"MAC", sk.MAC, c.want.mac}, {"RMAC", sk.RMAC, c.want.rmac}, {"DEK", sk.DEK, c.want.dek}} {
				if !cmp.Equal(k.got, k.want) {
					t.Errorf("%s = %X, want %X", k.name, k.got, k.want)
				}
			}
			if (sk.DEK == nil) != (sk.Handle != nil) {
				t.Errorf("DEK %v, Handle %v: want exactly one", sk.DEK != nil, sk.Handle != nil)
			}
			if s := fmt.Sprintf("%v %+v %#v", sk, sk, sk); s != "session keys ("+c.req.SCP.String()+") session keys ("+c.req.SCP.String()+") session keys ("+c.req.SCP.String()+")" {
				t.Errorf("session keys print as %q", s)
			}
			sk.Zero()
			for _, k := range [][]byte{sk.ENC, sk.MAC, sk.RMAC, sk.DEK} {
				for _, b := range k {
					if b != 0 {
						t.Fatal("Zero left key bytes")
					}
				}
			}
		})
	}
	for _, c := range []struct {
		name string
		req  perso.SessionKeyRequest
		want error
	}{
		{"SCP01", perso.SessionKeyRequest{KMC: f.kmc, SCP: perso.SCP{Version: 1}}, perso.ErrUnsupported},
		{"SCP02 short sequence", perso.SessionKeyRequest{KMC: f.kmc, SCP: perso.SCP{Version: 2}, Sequence: seq[:1]}, perso.ErrBadInput},
		{"SCP02 with KDF", perso.SessionKeyRequest{KMC: f.kmc, Method: perso.MethodSCP03KDF, KDD: kdd, SCP: perso.SCP{Version: 2}, Sequence: seq}, perso.ErrBadInput},
		{"SCP02 short KDD", perso.SessionKeyRequest{KMC: f.kmc, Method: perso.MethodCPS, KDD: kdd[:8], SCP: perso.SCP{Version: 2}, Sequence: seq}, perso.ErrBadInput},
		{"SCP03 with CPS", perso.SessionKeyRequest{KMC: f.kmcAES, Method: perso.MethodCPS, KDD: kdd, SCP: perso.SCP{Version: 3}, Context: chal}, perso.ErrBadInput},
		{"SCP03 no context", perso.SessionKeyRequest{KMC: f.kmcAES, SCP: perso.SCP{Version: 3}}, perso.ErrBadInput},
		{"SCP02 AES KMC", perso.SessionKeyRequest{KMC: f.kmcAES, SCP: perso.SCP{Version: 2}, Sequence: seq}, perso.ErrUnsupported},
		{"unknown KMC", perso.SessionKeyRequest{KMC: perso.KeyRef{Label: f.prefix + "NONE"}, SCP: perso.SCP{Version: 2}, Sequence: seq}, perso.ErrNoSuchKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.SessionKeys(context.Background(), c.req); !errors.Is(err, c.want) {
				t.Errorf("SessionKeys: %v, want %v", err, c.want)
			}
		})
	}
}

var crypttestKDD = []byte{0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0}

// TestTranslate seals secrets of every form, translates them for SCP02
// and SCP03 cards, and checks the result against the host reference: the
// clear secret encrypted under the card's DEK.
func TestTranslate(t *testing.T) {
	f := fixtureFor(t)
	ctx := context.Background()
	type secret struct {
		name   string
		sealed perso.Sealed
		clear  []byte
	}
	var secrets []secret
	// Card keys derived in the token, sealed one by one.
	var keys []perso.ProtectedKey
	var clearKeys []byte
	for i, pan := range []string{"4761739001010010", "4761739001010028", "4761739001010036"} {
		pk, err := f.m.Derive(ctx, perso.DeriveRequest{Master: f.imk, Method: perso.MethodEMVOptionA, Data: perso.PANPSN(pan, uint8(i)), KEK: f.kek})
		if err != nil {
			t.Fatal(err)
		}
		pk.KEK = perso.KEKID{}
		keys = append(keys, pk)
		clearKeys = append(clearKeys, openKey(t, pk)...)
	}
	s, err := perso.SealKeysOf(keys...)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, secret{"3 DES2 keys", s, clearKeys})
	aesKey := crypttestAESKey
	secrets = append(secrets, secret{"AES key", sealKeysHost(t, perso.KeyAES128, aesKey), aesKey})
	for _, n := range []int{8, 16, 20, 32} {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(0xA0 + i)
		}
		sv, err := f.m.Seal(ctx, f.kek, v)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret{fmt.Sprintf("value %d", n), sv, v})
	}
	ck, err := f.m.GenerateCardKey(ctx, perso.CardKeyRequest{Bits: 1152, Exponent: 3, KEK: f.kek})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range ck.CRT {
		p, _ := s.Parse()
		priv := parseSealedPKCS8(t, openValue(t, p.Wrapped))
		secrets = append(secrets, secret{fmt.Sprintf("CRT %d", i), s, leftPad(crtComponent(priv, p.Component).Bytes(), p.ModLen/2)})
	}

	seq := []byte{0x00, 0x07}
	chal := []byte("0123456789abcdef")
	channels := []struct {
		name string
		req  perso.SessionKeyRequest
		dek  []byte // the reference DEK the card decrypts with
	}{
		{"SCP02", perso.SessionKeyRequest{KMC: f.kmc, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: seq},
			mustBytes(kdf.SCP02SessionKey(kmcValue, kdf.SCP02ConstDEK, seq))},
		{"SCP02/CPS", perso.SessionKeyRequest{KMC: f.kmc, Method: perso.MethodCPS, KDD: crypttestKDD, SCP: perso.SCP{Version: 2, Param: 0x55}, Sequence: seq},
			mustBytes(kdf.SCP02SessionKey(mustBytes(kdf.DiversifyCPS(kmcValue, crypttestKDD, kdf.DEK)), kdf.SCP02ConstDEK, seq))},
		{"SCP03", perso.SessionKeyRequest{KMC: f.kmcAES, SCP: perso.SCP{Version: 3, Param: 0x70}, Context: chal}, kmcValue},
		{"SCP03/KDF", perso.SessionKeyRequest{KMC: f.kmcAES, Method: perso.MethodSCP03KDF, KDD: crypttestKDD, SCP: perso.SCP{Version: 3, Param: 0x70}, Context: chal},
			mustBytes(kdf.DiversifySCP03(kmcValue, crypttestKDD, kdf.DEK))},
	}
	for _, ch := range channels {
		sk, err := f.m.SessionKeys(ctx, ch.req)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			t.Run(ch.name+"/"+sec.name, func(t *testing.T) {
				got, err := f.m.Translate(ctx, f.kek, sec.sealed, sk)
				if err != nil {
					t.Fatal(err)
				}
				want, err := protect.ForCard(ch.req.SCP.Version, ch.dek, sec.clear)
				if err != nil {
					t.Fatal(err)
				}
				if !cmp.Equal(got, want) {
					t.Errorf("translated %X, want %X", got, want)
				}
			})
		}
	}

	sk, err := f.m.SessionKeys(ctx, channels[2].req)
	if err != nil {
		t.Fatal(err)
	}
	tampered := clone(secrets[1].sealed)
	tampered[len(tampered)-1] ^= 1
	badKCV := clone(secrets[0].sealed)
	badKCV[3] ^= 1 // first key's KCV
	for _, c := range []struct {
		name   string
		kek    perso.KEKID
		sealed perso.Sealed
		to     *perso.SessionKeys
		want   error
	}{
		{"no session keys", f.kek, secrets[0].sealed, nil, perso.ErrBadInput},
		{"foreign session keys", f.kek, secrets[0].sealed, &perso.SessionKeys{SCP: perso.SCP{Version: 3}}, perso.ErrBadInput},
		{"malformed", f.kek, perso.Sealed{0x07, 1, 2}, sk, perso.ErrBadInput},
		{"tampered", f.kek, tampered, sk, perso.ErrBadInput},
		{"unknown KEK", f.kekMiss, secrets[0].sealed, sk, perso.ErrNoSuchKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.m.Translate(ctx, c.kek, c.sealed, c.to); !errors.Is(err, c.want) {
				t.Errorf("Translate: %v, want %v", err, c.want)
			}
		})
	}
	// A wrong KCV is caught where the key is opened on the host (SCP02 on
	// a token without 3DES wrap).
	sk02, err := f.m.SessionKeys(ctx, channels[0].req)
	if err != nil {
		t.Fatal(err)
	}
	if sk02.DEK != nil {
		if _, err := f.m.Translate(ctx, f.kek, badKCV, sk02); !errors.Is(err, perso.ErrBadInput) {
			t.Errorf("Translate with a wrong KCV: %v, want ErrBadInput", err)
		}
	}
}

var crypttestAESKey = []byte{0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestCapabilities checks the report against what the token was found to
// do; on SoftHSM2 2.6 it also checks the facts the backend documents.
func TestCapabilities(t *testing.T) {
	f := fixtureFor(t)
	c := f.m.Capabilities()
	if !c.DeriveInModule || !c.KeyGenInModule || !c.SignInModule || !c.MACInModule {
		t.Errorf("capabilities %+v: want derive, key generation, signing and MAC in the module", c)
	}
	if len(c.Schemes) == 0 || c.Schemes[0] != perso.SchemeAESKW {
		t.Errorf("schemes %v: want AES-KW first", c.Schemes)
	}
	if c.TranslateInModule != (f.m.feat.des3Wrap && f.m.feat.aesCBC) || len(c.Fallbacks) == 0 {
		t.Errorf("translate in module %v with fallbacks %q", c.TranslateInModule, c.Fallbacks)
	}
	if f.m.feat.des3Wrap != slices.Contains(c.Schemes, perso.SchemeDES3ECB) {
		t.Errorf("3DES wrap %v, schemes %v", f.m.feat.des3Wrap, c.Schemes)
	}
	c.Fallbacks[0] = "changed"
	if f.m.Capabilities().Fallbacks[0] == "changed" {
		t.Error("Capabilities returns the module's own slice")
	}
	r := CapabilityReport(f.m.Capabilities())
	t.Logf("\n%s", r)
	if ti, err := f.m.ctx.GetInfo(); err == nil && ti.ManufacturerID == "SoftHSM" {
		if f.m.feat.des3Wrap || !f.m.feat.aesCBC || c.TranslateInModule {
			t.Errorf("SoftHSM2: 3DES wrap %v, AES-CBC wrap %v, translate in module %v; want false, true, false", f.m.feat.des3Wrap, f.m.feat.aesCBC, c.TranslateInModule)
		}
	}
}
