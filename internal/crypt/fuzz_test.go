package crypt

import (
	"bytes"
	"errors"
	"testing"
)

// blockSize maps a fuzzed byte to a block size from 1 to 32.
func blockSize(b byte) int { return int(b%32) + 1 }

// FuzzUnpad2 checks that Unpad2 never panics, and that whatever it
// accepts is the unique method-2 padding of what it returns.
func FuzzUnpad2(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0}, byte(7))
	f.Add([]byte{1, 2, 3, 0x80, 0, 0, 0, 0}, byte(7))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, byte(7))
	f.Add([]byte{}, byte(15))
	f.Fuzz(func(t *testing.T, data []byte, b byte) {
		bs := blockSize(b)
		orig := bytes.Clone(data)
		got, err := Unpad2(data, bs)
		if !bytes.Equal(data, orig) {
			t.Fatal("Unpad2 modified its input")
		}
		if err != nil {
			return
		}
		if len(got) >= len(data) || len(data)-len(got) > bs {
			t.Fatalf("Unpad2 removed %d bytes of %d with %d-byte blocks", len(data)-len(got), len(data), bs)
		}
		if re := Pad(got, bs, Pad2); !bytes.Equal(re, data) {
			t.Fatalf("Pad(Unpad2(%X)) = %X", data, re)
		}
	})
}

// FuzzPad checks the shape of both padding methods and that method 2
// round-trips through Unpad2.
func FuzzPad(f *testing.F) {
	f.Add([]byte{}, byte(7))
	f.Add([]byte{1, 2, 3}, byte(7))
	f.Add(bytes.Repeat([]byte{0x80}, 16), byte(15))
	f.Fuzz(func(t *testing.T, data []byte, b byte) {
		bs := blockSize(b)
		for _, p := range []Padding{Pad1, Pad2} {
			got := Pad(data, bs, p)
			if len(got) == 0 || len(got)%bs != 0 || !bytes.HasPrefix(got, data) {
				t.Fatalf("%v: Pad(%X, %d) = %X", p, data, bs, got)
			}
			extra := len(got) - len(data)
			switch p {
			case Pad1:
				wantExtra := (bs - len(data)%bs) % bs
				if len(data) == 0 {
					wantExtra = bs // a positive multiple: one zero block
				}
				if extra != wantExtra {
					t.Fatalf("method 1 added %d bytes to %d", extra, len(data))
				}
				if !bytes.Equal(got[len(data):], make([]byte, extra)) {
					t.Fatalf("method 1 padding not zeros: %X", got)
				}
			case Pad2:
				if extra < 1 || extra > bs {
					t.Fatalf("method 2 added %d bytes", extra)
				}
				back, err := Unpad2(got, bs)
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("Unpad2(Pad(%X)) = %X, %v", data, back, err)
				}
			}
		}
	})
}

var fuzzKEK = []byte{
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
}

// FuzzUnwrap checks that Unwrap never panics, that anything it accepts
// wraps back to the same bytes, and that anything wrappable round-trips.
func FuzzUnwrap(f *testing.F) {
	kek := mustAES(f, fuzzKEK)
	w, _ := Wrap(kek, mustHex("00112233445566778899AABBCCDDEEFF"))
	f.Add(w)
	f.Add(make([]byte, 24))
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := Unwrap(kek, data)
		if err == nil {
			re, err := Wrap(kek, key)
			if err != nil || !bytes.Equal(re, data) {
				t.Fatalf("Wrap(Unwrap(%X)) = %X, %v", data, re, err)
			}
		} else if key != nil {
			t.Fatalf("Unwrap returned %X with error %v", key, err)
		}
		if len(data) >= 16 && len(data)%8 == 0 {
			w, err := Wrap(kek, data)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Unwrap(kek, w)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("Unwrap(Wrap(%X)) = %X, %v", data, back, err)
			}
		}
	})
}

// FuzzUnwrapPad is FuzzUnwrap for RFC 5649.
func FuzzUnwrapPad(f *testing.F) {
	kek := mustAES(f, fuzzKEK)
	for _, n := range []int{1, 8, 9, 20} {
		w, _ := WrapPad(kek, pattern(n, 1))
		f.Add(w)
	}
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := UnwrapPad(kek, data)
		if err == nil {
			re, err := WrapPad(kek, key)
			if err != nil || !bytes.Equal(re, data) {
				t.Fatalf("WrapPad(UnwrapPad(%X)) = %X, %v", data, re, err)
			}
		} else if key != nil {
			t.Fatalf("UnwrapPad returned %X with error %v", key, err)
		} else if len(data) >= 16 && len(data)%8 == 0 && !errors.Is(err, ErrUnwrap) {
			t.Fatalf("well-sized ciphertext: %v, want ErrUnwrap", err)
		}
		if len(data) > 0 {
			w, err := WrapPad(kek, data)
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnwrapPad(kek, w)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("UnwrapPad(WrapPad(%X)) = %X, %v", data, back, err)
			}
		}
	})
}
