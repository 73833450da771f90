package kdf

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/google/go-cmp/cmp"
)

// des3Ciphers returns the two triple-DES ciphers a caller may hand the
// Cipher forms for a 16-byte key: the three-schedule one of NewDES3, which
// a security module keeps for a master key, and DES2.
func des3Ciphers(t *testing.T, key []byte) map[string]cipher.Block {
	t.Helper()
	b3, err := crypt.NewDES3(key)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := crypt.NewDES2(key)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]cipher.Block{"NewDES3": b3, "NewDES2": b2}
}

// TestCipherFormsVectors runs the public vectors through the Cipher forms
// of the derivations; TestVectorsSCP02 runs them for SCP02SessionKeyCipher.
func TestCipherFormsVectors(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.ICCMasterKey {
		for name, b := range des3Ciphers(t, c.IMK) {
			t.Run("option "+c.Method+"/"+name+"/"+c.Source, func(t *testing.T) {
				f := OptionACipher
				if c.Method == "B" {
					f = OptionBCipher
				}
				got, err := f(b, c.PAN, c.PSN)
				if err != nil {
					t.Fatal(err)
				}
				checkDESKey(t, "option "+c.Method, got, c.MK)
			})
		}
	}
	for _, c := range v.GPDiversify {
		f := map[string]func(cipher.Block, []byte, int) ([]byte, error){
			"CPS": DiversifyCPSCipher, "VISA2": DiversifyVISA2Cipher,
		}[c.Method]
		if f == nil {
			continue
		}
		for name, b := range des3Ciphers(t, c.KMC) {
			t.Run(c.Method+"/"+name+"/"+c.Source, func(t *testing.T) {
				got, err := f(b, c.KDD, c.Key)
				if err != nil {
					t.Fatal(err)
				}
				checkDESKey(t, c.Method, got, c.Value)
				checkKCV(t, c.Method, got, c.KCV, false)
			})
		}
	}
}

// TestCipherFormsEqualByteForms checks each Cipher form against its
// byte-slice form, and EncryptDataCipher against its definition.
func TestCipherFormsEqualByteForms(t *testing.T) {
	for name, b := range des3Ciphers(t, testIMK) {
		for _, pan := range []string{"5413330089600010", "12345678901234567", "541333"} {
			for _, c := range []struct {
				what       string
				byKey, got func() ([]byte, error)
			}{
				{"option A", func() ([]byte, error) { return OptionA(testIMK, pan, 3) }, func() ([]byte, error) { return OptionACipher(b, pan, 3) }},
				{"option B", func() ([]byte, error) { return OptionB(testIMK, pan, 3) }, func() ([]byte, error) { return OptionBCipher(b, pan, 3) }},
			} {
				want, errW := c.byKey()
				got, errG := c.got()
				if errW != nil || errG != nil || !cmp.Equal(want, got) {
					t.Errorf("%s %s %s: %X (%v), byte form %X (%v)", name, c.what, pan, got, errG, want, errW)
				}
			}
		}
		for _, d := range [][]byte{mustHex("0011223344556677"), mustHex("00112233445566778899AABBCCDDEEFF")} {
			want, errW := EncryptData(testIMK, d)
			got, errG := EncryptDataCipher(b, d)
			if errW != nil || errG != nil || !cmp.Equal(want, got) {
				t.Errorf("%s encrypt data %X: %X (%v), byte form %X (%v)", name, d, got, errG, want, errW)
			}
		}
		for _, k := range []int{ENC, MAC, DEK} {
			for what, f := range map[string][2]func() ([]byte, error){
				"CPS":   {func() ([]byte, error) { return DiversifyCPS(testIMK, testKDD, k) }, func() ([]byte, error) { return DiversifyCPSCipher(b, testKDD, k) }},
				"VISA2": {func() ([]byte, error) { return DiversifyVISA2(testIMK, testKDD, k) }, func() ([]byte, error) { return DiversifyVISA2Cipher(b, testKDD, k) }},
				"SCP02": {func() ([]byte, error) { return SCP02SessionKey(testIMK, SCP02ConstENC+uint16(k), []byte{0, 7}) }, func() ([]byte, error) { return SCP02SessionKeyCipher(b, SCP02ConstENC+uint16(k), []byte{0, 7}) }},
			} {
				want, errW := f[0]()
				got, errG := f[1]()
				if errW != nil || errG != nil || !cmp.Equal(want, got) {
					t.Errorf("%s %s key %d: %X (%v), byte form %X (%v)", name, what, k, got, errG, want, errW)
				}
			}
		}
	}
}

// TestCipherFormsRefuse checks that the Cipher forms refuse a cipher that
// is not DES (AES has a 16-byte block) and bad data as the byte forms do.
func TestCipherFormsRefuse(t *testing.T) {
	a, err := aes.NewCipher(testIMK)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := crypt.NewDES2(testIMK)
	for _, c := range []struct {
		name string
		f    func() ([]byte, error)
	}{
		{"option A, AES", func() ([]byte, error) { return OptionACipher(a, "5413330089600010", 0) }},
		{"option B, AES", func() ([]byte, error) { return OptionBCipher(a, "12345678901234567", 0) }},
		{"encrypt data, AES", func() ([]byte, error) { return EncryptDataCipher(a, make([]byte, 16)) }},
		{"CPS, AES", func() ([]byte, error) { return DiversifyCPSCipher(a, testKDD, ENC) }},
		{"VISA2, AES", func() ([]byte, error) { return DiversifyVISA2Cipher(a, testKDD, ENC) }},
		{"SCP02, AES", func() ([]byte, error) { return SCP02SessionKeyCipher(a, SCP02ConstENC, []byte{0, 1}) }},
		{"option A, bad PAN", func() ([]byte, error) { return OptionACipher(d, "54133x", 0) }},
		{"option B, PSN 100", func() ([]byte, error) { return OptionBCipher(d, "12345678901234567", 100) }},
		{"encrypt data, 7 bytes", func() ([]byte, error) { return EncryptDataCipher(d, make([]byte, 7)) }},
		{"CPS, 9-byte KDD", func() ([]byte, error) { return DiversifyCPSCipher(d, testKDD[:9], ENC) }},
		{"VISA2, key 4", func() ([]byte, error) { return DiversifyVISA2Cipher(d, testKDD, 4) }},
		{"SCP02, 3-byte counter", func() ([]byte, error) { return SCP02SessionKeyCipher(d, SCP02ConstENC, []byte{0, 1, 2}) }},
	} {
		if got, err := c.f(); err == nil {
			t.Errorf("%s: %X, want an error", c.name, got)
		}
	}
}
