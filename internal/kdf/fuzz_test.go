package kdf

import (
	"strings"
	"testing"
)

// FuzzPANPSNBlock checks that PANPSNBlock never panics, accepts exactly
// 1 to 19 decimal digits with a PSN up to 99, and packs the 16 rightmost
// digits of PAN || PSN; and that option B agrees on what it accepts.
func FuzzPANPSNBlock(f *testing.F) {
	f.Add("12345678901234567", byte(1))
	f.Add("1234567890123456", byte(0))
	f.Add("000000000000000005", byte(23))
	f.Add("", byte(0))
	f.Add("12345678901234567890", byte(100))
	f.Add("1234\x00", byte(9))
	f.Fuzz(func(t *testing.T, pan string, psn byte) {
		y, err := PANPSNBlock(pan, psn)
		valid := len(pan) >= 1 && len(pan) <= 19 && psn <= 99 &&
			strings.Trim(pan, "0123456789") == ""
		if (err == nil) != valid {
			t.Fatalf("PANPSNBlock(%q, %d): err = %v, want valid = %v", pan, psn, err, valid)
		}
		if _, errB := OptionB(testIMK, pan, psn); (errB == nil) != valid {
			t.Fatalf("OptionB(%q, %d): err = %v, want valid = %v", pan, psn, errB, valid)
		}
		if !valid {
			return
		}
		digits := strings.Repeat("0", 16) + pan + string(rune('0'+psn/10)) + string(rune('0'+psn%10))
		digits = digits[len(digits)-16:]
		for i := range 16 {
			d := y[i/2] >> (4 * (1 - i%2)) & 0x0F
			if d != digits[i]-'0' {
				t.Fatalf("PANPSNBlock(%q, %d) = %X, want %s", pan, psn, y, digits)
			}
		}
	})
}
