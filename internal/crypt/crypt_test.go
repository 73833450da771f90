package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

var mustHex = crypttest.MustHex

func mustAES(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pattern returns n bytes 0, 1, 2, ... offset by seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)*7 + seed
	}
	return b
}

// checkNoSecret fails if err's text holds key in hex (either case) or as
// Go's %v of a byte slice would print it.
func checkNoSecret(t *testing.T, err error, key []byte) {
	t.Helper()
	if err == nil || len(key) == 0 {
		return
	}
	msg := err.Error()
	for _, s := range []string{hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)), fmt.Sprint(key), fmt.Sprintf("%x", key[:4])} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q shows key bytes", msg)
		}
	}
}

func TestNewDESKeyLengths(t *testing.T) {
	for _, n := range []int{0, 7, 8, 9, 15, 16, 17, 23, 24, 25, 32} {
		key := pattern(n, 0xA1)
		_, err3 := NewDES3(key)
		if want := n == 16 || n == 24; (err3 == nil) != want {
			t.Errorf("NewDES3(%d bytes): err = %v, want ok = %v", n, err3, want)
		}
		checkNoSecret(t, err3, key)
		_, err1 := NewDES(key)
		if (err1 == nil) != (n == 8) {
			t.Errorf("NewDES(%d bytes): err = %v", n, err1)
		}
		checkNoSecret(t, err1, key)
		if err3 != nil && !strings.Contains(err3.Error(), fmt.Sprint(n)) {
			t.Errorf("NewDES3 error %q does not name the length %d", err3, n)
		}
	}
}

func TestNewDES3DoubleLengthIsK1K2K1(t *testing.T) {
	k := pattern(16, 3)
	b2, err := NewDES3(k)
	if err != nil {
		t.Fatal(err)
	}
	b3, err := des.NewTripleDESCipher(append(append([]byte{}, k...), k[:8]...))
	if err != nil {
		t.Fatal(err)
	}
	in := pattern(8, 9)
	got, want := make([]byte, 8), make([]byte, 8)
	b2.Encrypt(got, in)
	b3.Encrypt(want, in)
	if !bytes.Equal(got, want) {
		t.Errorf("16-byte key: %X, K1K2K1: %X", got, want)
	}
	// With K1 = K2 triple DES collapses to single DES.
	kk := append(append([]byte{}, k[:8]...), k[:8]...)
	bb, _ := NewDES3(kk)
	b1, _ := NewDES(k[:8])
	bb.Encrypt(got, in)
	b1.Encrypt(want, in)
	if !bytes.Equal(got, want) {
		t.Errorf("K1K1 triple DES %X, single DES %X", got, want)
	}
}

func TestParity(t *testing.T) {
	for c := range 256 {
		k := []byte{byte(c)}
		SetOddParity(k)
		if bits.OnesCount8(k[0])%2 != 1 {
			t.Errorf("SetOddParity(%02X) = %02X, even parity", c, k[0])
		}
		if k[0]&0xFE != byte(c)&0xFE {
			t.Errorf("SetOddParity(%02X) = %02X changed more than bit 0", c, k[0])
		}
		if got, want := HasOddParity([]byte{byte(c)}), bits.OnesCount8(uint8(c))%2 == 1; got != want {
			t.Errorf("HasOddParity(%02X) = %v", c, got)
		}
	}
	if !HasOddParity(nil) {
		t.Error("HasOddParity(nil) = false")
	}
}

func TestKCVLengths(t *testing.T) {
	for _, n := range []int{0, 7, 8, 16, 24, 32} {
		key := pattern(n, 0x5A)
		_, err := KCV(key)
		if (err == nil) != (n == 8 || n == 16 || n == 24) {
			t.Errorf("KCV(%d bytes): %v", n, err)
		}
		checkNoSecret(t, err, key)
		_, err = KCVAES(key)
		if (err == nil) != (n == 16 || n == 24 || n == 32) {
			t.Errorf("KCVAES(%d bytes): %v", n, err)
		}
		checkNoSecret(t, err, key)
	}
	// A single-length key's KCV is that of the double-length key K K.
	k := pattern(8, 1)
	a, _ := KCV(k)
	b, _ := KCV(append(append([]byte{}, k...), k...))
	if a != b {
		t.Errorf("KCV(K) = %X, KCV(K K) = %X", a, b)
	}
}

func TestModesErrors(t *testing.T) {
	d3, _ := NewDES3(pattern(16, 0))
	a := mustAES(t, pattern(16, 0))
	type fn func(cipher.Block, []byte, []byte) error
	cbcIV := func(iv []byte) (fn, fn) {
		return func(b cipher.Block, d, s []byte) error { return EncryptCBC(b, iv, d, s) },
			func(b cipher.Block, d, s []byte) error { return DecryptCBC(b, iv, d, s) }
	}
	ecE, ecD := cbcIV(nil)
	tests := []struct {
		name     string
		b        cipher.Block
		enc, dec fn
		dst, src int
		ok       bool
	}{
		{"ECB 3DES 16", d3, EncryptECB, DecryptECB, 16, 16, true},
		{"ECB 3DES 0", d3, EncryptECB, DecryptECB, 0, 0, true},
		{"ECB 3DES 12", d3, EncryptECB, DecryptECB, 12, 12, false},
		{"ECB AES 8", a, EncryptECB, DecryptECB, 8, 8, false},
		{"ECB dst short", a, EncryptECB, DecryptECB, 16, 32, false},
		{"ECB dst long", a, EncryptECB, DecryptECB, 48, 32, true},
		{"CBC nil IV", d3, ecE, ecD, 24, 24, true},
		{"CBC 3DES 20", d3, ecE, ecD, 24, 20, false},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range []fn{c.enc, c.dec} {
				err := f(c.b, make([]byte, c.dst), make([]byte, c.src))
				if (err == nil) != c.ok {
					t.Errorf("err = %v, want ok = %v", err, c.ok)
				}
			}
		})
	}
	for _, n := range []int{0, 7, 9, 16} {
		iv := make([]byte, n)
		e, d := cbcIV(iv)
		if e(d3, make([]byte, 8), make([]byte, 8)) == nil || d(d3, make([]byte, 8), make([]byte, 8)) == nil {
			t.Errorf("CBC with a %d-byte IV and 8-byte blocks: no error", n)
		}
	}
}

func TestCBCZeroIV(t *testing.T) {
	b := mustAES(t, pattern(16, 4))
	src := pattern(64, 2)
	x, y := make([]byte, 64), make([]byte, 64)
	if err := EncryptCBC(b, nil, x, src); err != nil {
		t.Fatal(err)
	}
	if err := EncryptCBC(b, make([]byte, 16), y, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Error("nil IV and zero IV differ")
	}
	// Against crypto/cipher.
	iv := pattern(16, 77)
	want := make([]byte, 64)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(want, src)
	if err := EncryptCBC(b, iv, x, src); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, x); diff != "" {
		t.Errorf("EncryptCBC vs crypto/cipher (-want +got):\n%s", diff)
	}
	if err := DecryptCBC(b, iv, y, x); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src, y); diff != "" {
		t.Errorf("DecryptCBC (-want +got):\n%s", diff)
	}
}

func TestPad(t *testing.T) {
	tests := []struct {
		data string
		bs   int
		p    Padding
		want string
	}{
		{"", 8, PadNone, ""},
		{"", 8, Pad1, "0000000000000000"},
		{"", 8, Pad2, "8000000000000000"},
		{"", 16, Pad1, "00000000000000000000000000000000"},
		{"", 16, Pad2, "80000000000000000000000000000000"},
		{"01", 8, Pad1, "0100000000000000"},
		{"01", 8, Pad2, "0180000000000000"},
		{"01020304050607", 8, Pad2, "0102030405060780"},
		{"0102030405060708", 8, PadNone, "0102030405060708"},
		{"0102030405060708", 8, Pad1, "0102030405060708"},
		{"0102030405060708", 8, Pad2, "0102030405060708 8000000000000000"},
		{"010203040506070809", 8, Pad1, "0102030405060708 0900000000000000"},
		{"0102", 3, Pad2, "010280"},
	}
	for _, c := range tests {
		t.Run(fmt.Sprintf("%s/%d/%v", c.data, c.bs, c.p), func(t *testing.T) {
			data := mustHex(c.data)
			orig := bytes.Clone(data)
			got := Pad(data, c.bs, c.p)
			if diff := cmp.Diff(mustHex(c.want), got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("Pad (-want +got):\n%s", diff)
			}
			if !bytes.Equal(data, orig) {
				t.Error("Pad modified its input")
			}
			if len(got) > 0 && len(data) > 0 && &got[0] == &data[0] {
				t.Error("Pad returned its input")
			}
			if c.p == Pad2 {
				back, err := Unpad2(got, c.bs)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(back, data) {
					t.Errorf("Unpad2 = %X, want %X", back, data)
				}
			}
		})
	}
}

func TestPadPanics(t *testing.T) {
	for _, c := range []struct {
		bs int
		p  Padding
	}{{0, Pad1}, {-8, Pad2}, {8, Padding(3)}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Pad(bs %d, %v) did not panic", c.bs, c.p)
				}
			}()
			Pad([]byte{1}, c.bs, c.p)
		}()
	}
}

func TestUnpad2(t *testing.T) {
	tests := []struct {
		data string
		bs   int
		want string // "error" for an error
	}{
		{"8000000000000000", 8, ""},
		{"0102038000000000", 8, "010203"},
		{"0102030405060780", 8, "01020304050607"},
		{"0102030405060708 8000000000000000", 8, "0102030405060708"},
		{"8080000000000000", 8, "80"},
		{"", 8, "error"},
		{"80", 8, "error"},
		{"800000000000000000", 8, "error"},
		{"0000000000000000", 8, "error"},
		{"0102030405060708", 8, "error"},
		{"8000000000000001", 8, "error"},
		{"0102030480000001", 8, "error"},
		{"0102030405060708 0000000000000000", 8, "error"},
		{"0102030405060780 0000000000000000", 8, "error"},
		{"80000000000000000000000000000000", 16, ""},
		{"8000000000000000", 0, "error"},
		{"8000000000000000", -8, "error"},
	}
	for _, c := range tests {
		t.Run(fmt.Sprintf("%s/%d", c.data, c.bs), func(t *testing.T) {
			got, err := Unpad2(mustHex(c.data), c.bs)
			if c.want == "error" {
				if err == nil {
					t.Fatalf("Unpad2 = %X, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(mustHex(c.want), got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("Unpad2 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMACAlg1IsLastCBCBlock checks MAC algorithm 1 against its
// definition: the last block of the CBC encryption of the padded data.
func TestMACAlg1IsLastCBCBlock(t *testing.T) {
	d3, _ := NewDES3(pattern(16, 0x11))
	a := mustAES(t, pattern(16, 0x22))
	for _, b := range []cipher.Block{d3, a} {
		bs := b.BlockSize()
		for _, p := range []Padding{PadNone, Pad1, Pad2} {
			for n := 0; n <= 3*bs+1; n++ {
				if p == PadNone && (n == 0 || n%bs != 0) {
					continue
				}
				for _, iv := range [][]byte{nil, pattern(bs, 0xEE)} {
					data := pattern(n, byte(n))
					padded := Pad(data, bs, p)
					ct := make([]byte, len(padded))
					if err := EncryptCBC(b, iv, ct, padded); err != nil {
						t.Fatal(err)
					}
					got := MACAlg1(b, iv, data, p)
					if diff := cmp.Diff(ct[len(ct)-bs:], got); diff != "" {
						t.Errorf("block %d, %v, %d bytes, iv %v (-cbc +mac):\n%s", bs, p, n, iv != nil, diff)
					}
				}
			}
		}
	}
}

func TestMACAlg1Panics(t *testing.T) {
	d3, _ := NewDES3(pattern(16, 0))
	for _, c := range []struct {
		name string
		iv   []byte
		data []byte
		p    Padding
	}{
		{"partial block, no padding", nil, make([]byte, 9), PadNone},
		{"empty, no padding", nil, nil, PadNone},
		{"short IV", make([]byte, 7), make([]byte, 8), Pad2},
		{"unknown padding", nil, make([]byte, 8), Padding(9)},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			MACAlg1(d3, c.iv, c.data, c.p)
		})
	}
}

func TestMACAlg3Errors(t *testing.T) {
	key := pattern(16, 0x31)
	for _, c := range []struct {
		name string
		key  []byte
		iv   []byte
		data []byte
		p    Padding
	}{
		{"8-byte key", key[:8], nil, nil, Pad2},
		{"24-byte key", pattern(24, 1), nil, nil, Pad2},
		{"7-byte IV", key, make([]byte, 7), nil, Pad2},
		{"partial block, no padding", key, nil, make([]byte, 12), PadNone},
		{"empty, no padding", key, nil, nil, PadNone},
		{"unknown padding", key, nil, nil, Padding(-1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			mac, err := MACAlg3(c.key, c.iv, c.data, c.p)
			if err == nil {
				t.Fatalf("MACAlg3 = %X, want an error", mac)
			}
			checkNoSecret(t, err, c.key)
		})
	}
	// Whole blocks: method 1 adds nothing, so it equals no padding.
	data := pattern(24, 5)
	m0, err0 := MACAlg3(key, nil, data, PadNone)
	m1, err1 := MACAlg3(key, nil, data, Pad1)
	if err0 != nil || err1 != nil || !bytes.Equal(m0, m1) {
		t.Errorf("whole blocks: no padding %X (%v), method 1 %X (%v)", m0, err0, m1, err1)
	}
	// Empty data: method 1 MACs one zero block, method 2 one 80 00.. block.
	for _, p := range []Padding{Pad1, Pad2} {
		got, err := MACAlg3(key, nil, nil, p)
		want, _ := MACAlg3(key, nil, Pad(nil, 8, p), PadNone)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("empty data, %v: %X (%v), want %X", p, got, err, want)
		}
	}
	// A non-zero ICV chains in as SCP02 C-MAC needs: MAC(ICV, D) equals
	// MAC(0, D') with D' = D whose first block is xored with ICV.
	icv := pattern(8, 0x99)
	d := pattern(16, 1)
	withICV, _ := MACAlg3(key, icv, d, Pad2)
	d2 := bytes.Clone(d)
	for i := range icv {
		d2[i] ^= icv[i]
	}
	without, _ := MACAlg3(key, nil, d2, Pad2)
	if !bytes.Equal(withICV, without) {
		t.Errorf("ICV: %X vs %X", withICV, without)
	}
}

type oddBlock struct{ cipher.Block }

func (oddBlock) BlockSize() int { return 32 }

func TestCMACBlockSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("CMAC with a 256-bit block did not panic")
		}
	}()
	CMAC(oddBlock{mustAES(t, make([]byte, 16))}, nil)
}

func TestCMACLeavesInput(t *testing.T) {
	b := mustAES(t, pattern(16, 9))
	for n := range 50 {
		data := pattern(n, 3)
		orig := bytes.Clone(data)
		m := CMAC(b, data)
		if !bytes.Equal(data, orig) {
			t.Fatalf("%d bytes: CMAC modified its input", n)
		}
		if len(m) != 16 {
			t.Fatalf("%d bytes: MAC of %d bytes", n, len(m))
		}
	}
	// The complete and the padded last block must not collide for data
	// that pads into the other.
	x := CMAC(b, []byte{1, 2, 3})
	y := CMAC(b, Pad([]byte{1, 2, 3}, 16, Pad2))
	if bytes.Equal(x, y) {
		t.Error("CMAC(M) = CMAC(M || 80 00..)")
	}
}

func TestWrapErrors(t *testing.T) {
	kek := mustAES(t, pattern(16, 0x42))
	d3, _ := NewDES3(pattern(16, 0))
	for _, n := range []int{0, 8, 12, 17, 23} {
		if _, err := Wrap(kek, make([]byte, n)); err == nil {
			t.Errorf("Wrap of %d bytes: no error", n)
		}
	}
	for _, n := range []int{0, 8, 16, 20, 25} {
		if _, err := Unwrap(kek, make([]byte, n)); err == nil || errors.Is(err, ErrUnwrap) {
			t.Errorf("Unwrap of %d bytes: %v, want a length error", n, err)
		}
	}
	for _, n := range []int{0, 8, 12, 20} {
		if _, err := UnwrapPad(kek, make([]byte, n)); err == nil || errors.Is(err, ErrUnwrap) {
			t.Errorf("UnwrapPad of %d bytes: %v, want a length error", n, err)
		}
	}
	if _, err := WrapPad(kek, nil); err == nil {
		t.Error("WrapPad of nothing: no error")
	}
	for name, f := range map[string]func(cipher.Block, []byte) ([]byte, error){
		"Wrap": Wrap, "Unwrap": Unwrap, "WrapPad": WrapPad, "UnwrapPad": UnwrapPad,
	} {
		if _, err := f(d3, make([]byte, 32)); err == nil {
			t.Errorf("%s with a 64-bit block cipher: no error", name)
		}
	}
}

func TestWrapTamper(t *testing.T) {
	kek := mustAES(t, pattern(16, 0x42))
	other := mustAES(t, pattern(16, 0x43))
	key := pattern(16, 0x10)
	for _, c := range []struct {
		name   string
		wrap   func(cipher.Block, []byte) ([]byte, error)
		unwrap func(cipher.Block, []byte) ([]byte, error)
		key    []byte
	}{
		{"RFC 3394", Wrap, Unwrap, key},
		{"RFC 5649 one block", WrapPad, UnwrapPad, key[:5]},
		{"RFC 5649", WrapPad, UnwrapPad, pattern(21, 0x10)},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := c.wrap(kek, c.key)
			if err != nil {
				t.Fatal(err)
			}
			for i := range w {
				for _, bit := range []byte{0x01, 0x80} {
					tw := bytes.Clone(w)
					tw[i] ^= bit
					got, err := c.unwrap(kek, tw)
					if !errors.Is(err, ErrUnwrap) || got != nil {
						t.Fatalf("byte %d bit %02X flipped: %X, %v; want ErrUnwrap", i, bit, got, err)
					}
				}
			}
			if _, err := c.unwrap(other, w); !errors.Is(err, ErrUnwrap) {
				t.Errorf("wrong KEK: %v", err)
			}
		})
	}
	// The two schemes must not accept each other's output.
	w, _ := Wrap(kek, key)
	if _, err := UnwrapPad(kek, w); !errors.Is(err, ErrUnwrap) {
		t.Errorf("UnwrapPad of an RFC 3394 wrap: %v", err)
	}
	wp, _ := WrapPad(kek, key)
	if _, err := Unwrap(kek, wp); !errors.Is(err, ErrUnwrap) {
		t.Errorf("Unwrap of an RFC 5649 wrap: %v", err)
	}
}

// TestUnwrapPadChecks builds ciphertexts whose initial value is right but
// whose length indicator or padding is not (RFC 5649 section 3).
func TestUnwrapPadChecks(t *testing.T) {
	kek := mustAES(t, pattern(24, 0x61))
	single := func(mli uint32, p []byte) []byte {
		out := make([]byte, 16)
		out[0], out[1], out[2], out[3] = 0xA6, 0x59, 0x59, 0xA6
		out[4], out[5], out[6], out[7] = byte(mli>>24), byte(mli>>16), byte(mli>>8), byte(mli)
		copy(out[8:], p)
		kek.Encrypt(out, out)
		return out
	}
	multi := func(mli uint32, p []byte) []byte {
		return wrapRegisters(kek, uint64(wrapPadIV)<<32|uint64(mli), p, len(p))
	}
	tests := []struct {
		name string
		ct   []byte
		want []byte // nil for ErrUnwrap
	}{
		{"one block, MLI 3", single(3, []byte{1, 2, 3}), []byte{1, 2, 3}},
		{"one block, MLI 8", single(8, pattern(8, 1)), pattern(8, 1)},
		{"one block, MLI 0", single(0, nil), nil},
		{"one block, MLI 9", single(9, pattern(8, 1)), nil},
		{"one block, MLI 2^32-1", single(0xFFFFFFFF, pattern(8, 1)), nil},
		{"one block, non-zero padding", single(3, []byte{1, 2, 3, 0, 0, 0, 0, 1}), nil},
		{"three blocks, MLI 17", multi(17, append(pattern(17, 1), make([]byte, 7)...)), pattern(17, 1)},
		{"three blocks, MLI 24", multi(24, pattern(24, 1)), pattern(24, 1)},
		{"three blocks, MLI 16", multi(16, append(pattern(16, 1), make([]byte, 8)...)), nil},
		{"three blocks, MLI 25", multi(25, pattern(24, 1)), nil},
		{"three blocks, non-zero padding", multi(17, append(pattern(17, 1), 0, 0, 0, 0, 0, 0, 1)), nil},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			buf := make([]byte, len(c.ct)+8)
			got, err := unwrapPad(kek, c.ct, buf)
			if c.want == nil {
				if !errors.Is(err, ErrUnwrap) {
					t.Fatalf("got %X, %v; want ErrUnwrap", got, err)
				}
				if !bytes.Equal(buf, make([]byte, len(buf))) {
					t.Errorf("buffer not cleared after failure: %X", buf)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnwrapClearsOnFailure(t *testing.T) {
	kek := mustAES(t, pattern(16, 0x42))
	w, _ := Wrap(kek, pattern(32, 0x10))
	w[len(w)-1] ^= 1
	buf := make([]byte, len(w)+8)
	if _, err := unwrap(kek, w, buf); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("buffer not cleared after failure: %X", buf)
	}
}

func TestWrapPadRoundTrip(t *testing.T) {
	kek := mustAES(t, pattern(32, 0x77))
	for n := 1; n <= 72; n++ {
		key := pattern(n, byte(n))
		w, err := WrapPad(kek, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := (n+7)/8*8 + 8; len(w) != want {
			t.Errorf("%d bytes wrap to %d, want %d", n, len(w), want)
		}
		got, err := UnwrapPad(kek, w)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, key) {
			t.Errorf("%d bytes: round trip %X", n, got)
		}
		if n%8 == 0 && n >= 16 {
			w3, _ := Wrap(kek, key)
			k3, err := Unwrap(kek, w3)
			if err != nil || !bytes.Equal(k3, key) {
				t.Errorf("RFC 3394 %d bytes: %X, %v", n, k3, err)
			}
		}
	}
}

// TestCompare covers the two comparisons: exact (Equal) and modulo the
// DES parity bits (EqualModParity).
func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b          string
		equal, parity bool
	}{
		{"", "", true, true},
		{"01", "01", true, true},
		{"01", "00", false, true},
		{"01", "02", false, false},
		{"0102", "01", false, false},
		{"A1C72E74EA3FA9B6", "A1C72E74EA3FA9B7", false, true},
		{"0123456789ABCDEF", "0022446688AACCEE", false, true},
		{"0123456789ABCDEF", "0123456789ABCDED", false, false},
		{"0123456789ABCDEF", "0123456789ABCDEF", true, true},
	} {
		a, b := mustHex(c.a), mustHex(c.b)
		if got := Equal(a, b); got != c.equal {
			t.Errorf("Equal(%s, %s) = %v", c.a, c.b, got)
		}
		if got := EqualModParity(a, b); got != c.parity {
			t.Errorf("EqualModParity(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestZero(t *testing.T) {
	b := pattern(33, 1)
	Zero(b)
	if !bytes.Equal(b, make([]byte, 33)) {
		t.Errorf("Zero left %X", b)
	}
	Zero(nil)
}

func TestPaddingString(t *testing.T) {
	for p, want := range map[Padding]string{
		PadNone: "no padding", Pad1: "ISO 9797-1 padding method 1", Pad2: "ISO 9797-1 padding method 2", 7: "Padding(7)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d: %q, want %q", int(p), got, want)
		}
	}
}

// TestAllocations pins the allocation counts that the hot paths rely on.
func TestAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	d3, _ := NewDES3(pattern(16, 0))
	a := mustAES(t, pattern(16, 0))
	buf := make([]byte, 256)
	data := pattern(1024, 0)
	kek := mustAES(t, pattern(16, 1))
	key := pattern(16, 2)
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"EncryptECB", 0, func() { _ = EncryptECB(d3, buf, buf) }},
		{"EncryptCBC", 0, func() { _ = EncryptCBC(a, nil, buf, buf) }},
		{"DecryptCBC", 0, func() { _ = DecryptCBC(a, nil, buf, buf) }},
		{"MACAlg1", 1, func() { MACAlg1(d3, nil, data, Pad2) }},
		{"CMAC", 1, func() { CMAC(a, data) }},
		{"Wrap", 1, func() { _, _ = Wrap(kek, key) }},
		{"Unpad2", 0, func() { _, _ = Unpad2(buf[:16:16], 8) }},
	} {
		if n := testing.AllocsPerRun(20, c.f); n > c.max {
			t.Errorf("%s: %v allocations, want at most %v", c.name, n, c.max)
		}
	}
}
