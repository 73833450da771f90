package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

type vectorFile struct {
	MACAlg3 []struct {
		Source    string
		Key       crypttest.Hex
		DataASCII string `json:"data_ascii"`
		Padding   Padding
		MAC       crypttest.Hex
	} `json:"mac_alg3"`
	CMAC []struct {
		Source string
		Cipher string
		Key    crypttest.Hex
		Msg    crypttest.Hex
		MAC    crypttest.Hex
	}
	Wrap    []wrapVector
	WrapPad []wrapVector `json:"wrap_pad"`
	Modes   []struct {
		Source     string
		Cipher     string
		Mode       string
		Key        crypttest.Hex
		IV         crypttest.Hex
		Plaintext  crypttest.Hex
		Ciphertext crypttest.Hex
	}
	KCV []struct {
		Source string
		Cipher string
		Key    crypttest.Hex
		KCV    crypttest.Hex
	}
}

type wrapVector struct {
	Source  string
	KEK     crypttest.Hex
	Key     crypttest.Hex
	Wrapped crypttest.Hex
}

func loadVectors(t *testing.T) *vectorFile {
	t.Helper()
	var v vectorFile
	crypttest.LoadJSON(t, "testdata/vectors.json", &v)
	return &v
}

// newCipher returns the block cipher a vector names.
func newCipher(t *testing.T, name string, key []byte) cipher.Block {
	t.Helper()
	var (
		b   cipher.Block
		err error
	)
	switch name {
	case "AES":
		b, err = aes.NewCipher(key)
	case "DES3":
		b, err = NewDES3(key)
	case "DES":
		b, err = NewDES(key)
	default:
		t.Fatalf("unknown cipher %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorsMACAlg3(t *testing.T) {
	v := loadVectors(t)
	if len(v.MACAlg3) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.MACAlg3 {
		t.Run(c.Source+"/"+c.DataASCII, func(t *testing.T) {
			got, err := MACAlg3(c.Key, nil, []byte(c.DataASCII), c.Padding)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.MAC), got); diff != "" {
				t.Errorf("MAC (-want +got):\n%s", diff)
			}
			// Algorithm 3 is algorithm 1 with single DES K1 followed by
			// output transformation 3; check it against that definition.
			k1, _ := NewDES(c.Key[:8])
			k2, _ := NewDES(c.Key[8:])
			alt := MACAlg1(k1, nil, []byte(c.DataASCII), c.Padding)
			k2.Decrypt(alt, alt)
			k1.Encrypt(alt, alt)
			if diff := cmp.Diff(got, alt); diff != "" {
				t.Errorf("MAC alg 3 vs alg 1 + output transformation 3 (-alg3 +alg1):\n%s", diff)
			}
		})
	}
}

func TestVectorsCMAC(t *testing.T) {
	v := loadVectors(t)
	if len(v.CMAC) != 20 {
		t.Fatalf("%d CMAC vectors, want the 20 examples of SP 800-38B", len(v.CMAC))
	}
	for _, c := range v.CMAC {
		t.Run(c.Source, func(t *testing.T) {
			got := CMAC(newCipher(t, c.Cipher, c.Key), c.Msg)
			if diff := cmp.Diff([]byte(c.MAC), got); diff != "" {
				t.Errorf("CMAC (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVectorsWrap(t *testing.T) {
	v := loadVectors(t)
	if len(v.Wrap) != 6 || len(v.WrapPad) != 2 {
		t.Fatalf("%d RFC 3394 and %d RFC 5649 vectors, want 6 and 2", len(v.Wrap), len(v.WrapPad))
	}
	run := func(t *testing.T, vs []wrapVector, wrap func(cipher.Block, []byte) ([]byte, error), unwrap func(cipher.Block, []byte) ([]byte, error)) {
		for _, c := range vs {
			t.Run(c.Source, func(t *testing.T) {
				kek := newCipher(t, "AES", c.KEK)
				got, err := wrap(kek, c.Key)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]byte(c.Wrapped), got); diff != "" {
					t.Errorf("wrap (-want +got):\n%s", diff)
				}
				key, err := unwrap(kek, c.Wrapped)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]byte(c.Key), key); diff != "" {
					t.Errorf("unwrap (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Run("RFC 3394", func(t *testing.T) { run(t, v.Wrap, Wrap, Unwrap) })
	t.Run("RFC 5649", func(t *testing.T) { run(t, v.WrapPad, WrapPad, UnwrapPad) })
}

func TestVectorsModes(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Modes {
		t.Run(c.Source, func(t *testing.T) {
			b := newCipher(t, c.Cipher, c.Key)
			enc, dec := EncryptECB, DecryptECB
			if c.Mode == "CBC" {
				enc = func(b cipher.Block, dst, src []byte) error { return EncryptCBC(b, c.IV, dst, src) }
				dec = func(b cipher.Block, dst, src []byte) error { return DecryptCBC(b, c.IV, dst, src) }
			}
			got := make([]byte, len(c.Plaintext))
			if err := enc(b, got, c.Plaintext); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.Ciphertext), got); diff != "" {
				t.Errorf("encrypt (-want +got):\n%s", diff)
			}
			// In place, both ways.
			if err := dec(b, got, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.Plaintext), got); diff != "" {
				t.Errorf("decrypt in place (-want +got):\n%s", diff)
			}
			if err := enc(b, got, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.Ciphertext), got); diff != "" {
				t.Errorf("encrypt in place (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVectorsKCV(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.KCV {
		t.Run(c.Source, func(t *testing.T) {
			var (
				got [3]byte
				err error
			)
			if c.Cipher == "AES" {
				got, err = KCVAES(c.Key)
			} else {
				got, err = KCV(c.Key)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.KCV), got[:]); diff != "" {
				t.Errorf("KCV (-want +got):\n%s", diff)
			}
		})
	}
}
