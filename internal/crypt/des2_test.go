package crypt

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDES2Vectors runs the public vectors with a double-length key through
// DES2: the two-key TDEA CMAC examples of SP 800-38B (DES2 as the block
// cipher), the MAC algorithm 3 vectors and the KCV vector.
func TestDES2Vectors(t *testing.T) {
	v := loadVectors(t)
	n := 0
	for _, c := range v.CMAC {
		if c.Cipher != "DES3" || len(c.Key) != 16 {
			continue
		}
		n++
		t.Run("CMAC/"+c.Source, func(t *testing.T) {
			k, err := NewDES2(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.MAC), CMAC(k, c.Msg)); diff != "" {
				t.Errorf("CMAC (-want +got):\n%s", diff)
			}
		})
	}
	if n != 4 {
		t.Errorf("%d two-key TDEA CMAC vectors, want SP 800-38B examples 17 to 20", n)
	}
	for _, c := range v.MACAlg3 {
		t.Run("MACAlg3/"+c.Source+"/"+c.DataASCII, func(t *testing.T) {
			k, err := NewDES2(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.MACAlg3(nil, []byte(c.DataASCII), c.Padding)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]byte(c.MAC), got); diff != "" {
				t.Errorf("MAC (-want +got):\n%s", diff)
			}
		})
	}
	for _, c := range v.KCV {
		if c.Cipher != "DES3" || len(c.Key) != 16 {
			continue
		}
		t.Run("KCV/"+c.Source, func(t *testing.T) {
			k, err := NewDES2(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 8)
			k.Encrypt(got, got)
			if diff := cmp.Diff([]byte(c.KCV), got[:3]); diff != "" {
				t.Errorf("KCV (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDES2IsNewDES3 checks DES2 against the triple-DES cipher NewDES3 makes
// of the same 16 bytes, both ways, in place and not, in ECB and CBC.
func TestDES2IsNewDES3(t *testing.T) {
	for seed := range byte(8) {
		key := pattern(16, 0x40+seed)
		k2, err := NewDES2(key)
		if err != nil {
			t.Fatal(err)
		}
		k3, _ := NewDES3(key)
		if k2.BlockSize() != k3.BlockSize() {
			t.Fatalf("block size %d, want %d", k2.BlockSize(), k3.BlockSize())
		}
		in := pattern(64, seed)
		for _, mode := range []struct {
			name     string
			enc, dec func(b []byte, dst, src []byte) error
		}{
			{"ECB",
				func(_ []byte, dst, src []byte) error { return EncryptECB(k2, dst, src) },
				func(_ []byte, dst, src []byte) error { return DecryptECB(k2, dst, src) }},
			{"CBC",
				func(iv []byte, dst, src []byte) error { return EncryptCBC(k2, iv, dst, src) },
				func(iv []byte, dst, src []byte) error { return DecryptCBC(k2, iv, dst, src) }},
		} {
			iv := pattern(8, 0x77)
			want := make([]byte, len(in))
			if mode.name == "ECB" {
				_ = EncryptECB(k3, want, in)
			} else {
				_ = EncryptCBC(k3, iv, want, in)
			}
			got := make([]byte, len(in))
			if err := mode.enc(iv, got, in); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("key %X %s: DES2 %X, NewDES3 %X", seed, mode.name, got, want)
			}
			if err := mode.dec(iv, got, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, in) {
				t.Errorf("key %X %s: DES2 decrypts in place to %X, want %X", seed, mode.name, got, in)
			}
		}
		// MAC algorithm 3 under the prepared key equals the one-shot
		// function, with and without an initial value.
		for _, iv := range [][]byte{nil, pattern(8, 0x99)} {
			a, errA := k2.MACAlg3(iv, in[:21], Pad2)
			b, errB := MACAlg3(key, iv, in[:21], Pad2)
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("key %X IV %X: DES2.MACAlg3 %X (%v), MACAlg3 %X (%v)", seed, iv, a, errA, b, errB)
			}
		}
	}
}

func TestDES2Errors(t *testing.T) {
	for _, n := range []int{0, 8, 15, 17, 24} {
		key := pattern(n, 0x3C)
		k, err := NewDES2(key)
		if err == nil || k != nil {
			t.Errorf("NewDES2(%d bytes) = %v, %v: want an error", n, k, err)
		}
		checkNoSecret(t, err, key)
	}
	key := pattern(16, 0x31)
	k, err := NewDES2(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		iv   []byte
		data []byte
		p    Padding
	}{
		{"7-byte IV", make([]byte, 7), nil, Pad2},
		{"16-byte IV", make([]byte, 16), nil, Pad2},
		{"partial block, no padding", nil, make([]byte, 12), PadNone},
		{"empty, no padding", nil, nil, PadNone},
		{"unknown padding", nil, nil, Padding(3)},
	} {
		if mac, err := k.MACAlg3(c.iv, c.data, c.p); err == nil {
			t.Errorf("%s: MACAlg3 = %X, want an error", c.name, mac)
		} else {
			checkNoSecret(t, err, key)
		}
	}
}

func TestDES2Allocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	k, _ := NewDES2(pattern(16, 1))
	data := pattern(256, 2)
	buf := make([]byte, 8)
	if n := testing.AllocsPerRun(20, func() { k.Encrypt(buf, buf) }); n != 0 {
		t.Errorf("Encrypt: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = k.MACAlg3(nil, data, Pad2) }); n > 1 {
		t.Errorf("MACAlg3: %v allocations, want at most 1 (the MAC)", n)
	}
}
