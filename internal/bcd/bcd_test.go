package bcd

import (
	"bytes"
	"testing"
)

func TestBCD(t *testing.T) {
	tests := []struct {
		digits string
		size   int
		n, cn  []byte
	}{
		{"1234", 3, []byte{0x00, 0x12, 0x34}, []byte{0x12, 0x34, 0xFF}},
		{"000000001000", 6, []byte{0, 0, 0, 0, 0x10, 0}, []byte{0, 0, 0, 0, 0x10, 0}},
		{"5", 1, []byte{0x05}, []byte{0x5F}},
		{"", 2, []byte{0, 0}, []byte{0xFF, 0xFF}},
	}
	for _, tt := range tests {
		if tt.n != nil && len(tt.n) > 0 {
			got, err := N(tt.digits, tt.size)
			if err != nil || !bytes.Equal(got, tt.n) {
				t.Errorf("N(%q, %d) = %X, %v; want %X", tt.digits, tt.size, got, err, tt.n)
			}
		}
		if tt.cn != nil {
			got, err := CN(tt.digits, tt.size)
			if err != nil || !bytes.Equal(got, tt.cn) {
				t.Errorf("CN(%q, %d) = %X, %v; want %X", tt.digits, tt.size, got, err, tt.cn)
			}
			back, err := Digits(got)
			if err != nil || back != tt.digits {
				t.Errorf("Digits(%X) = %q, %v; want %q", got, back, err, tt.digits)
			}
		}
	}
	pan, _ := CN("12345678901234567", 0)
	if !bytes.Equal(pan, []byte{0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x7F}) {
		t.Errorf("CN of a 17-digit PAN = %X", pan)
	}
	for _, bad := range [][]byte{{0x1A}, {0xF1}, {0x12, 0xF3}} {
		if _, err := Digits(bad); err == nil {
			t.Errorf("Digits(%X) accepted", bad)
		}
	}
	if _, err := N("123", 1); err == nil {
		t.Error("N accepted digits that do not fit")
	}
	if _, err := CN("12a", 0); err == nil {
		t.Error("CN accepted a non-digit")
	}
}

func FuzzDigits(f *testing.F) {
	f.Add([]byte{0x12, 0x3F})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Digits(b)
		if err != nil {
			return
		}
		enc, err := CN(d, len(b))
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("CN(Digits(%X)) = %X, %v", b, enc, err)
		}
	})
}
