package kdf

import (
	"bytes"
	"crypto/aes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

var mustHex = crypttest.MustHex

var (
	testIMK = mustHex("0123456789ABCDEFFEDCBA9876543210")
	testKMC = mustHex("404142434445464748494A4B4C4D4E4F")
	testKDD = mustHex("00010203040506070809")
)

func TestPANPSNBlock(t *testing.T) {
	tests := []struct {
		pan  string
		psn  uint8
		want string // "" for an error
	}{
		{"12345678901234567", 1, "4567890123456701"},
		{"1234567890123456", 0, "3456789012345600"},
		{"1234567890123456", 99, "3456789012345699"},
		{"123456789012", 5, "0012345678901205"},
		{"1234", 0, "0000000000123400"},
		{"7", 12, "0000000000000712"},
		{"1234567890123456789", 3, "6789012345678903"},
		{"", 0, ""},
		{"12345678901234567890", 0, ""},
		{"1234567890123A56", 0, ""},
		{"1234567890123456", 100, ""},
		{" 234567890123456", 0, ""},
	}
	for _, c := range tests {
		t.Run(fmt.Sprintf("%s/%d", c.pan, c.psn), func(t *testing.T) {
			got, err := PANPSNBlock(c.pan, c.psn)
			if c.want == "" {
				if err == nil {
					t.Fatalf("PANPSNBlock = %X, want an error", got)
				}
				if len(c.pan) >= 4 && strings.Contains(err.Error(), c.pan[:4]) {
					t.Errorf("error %q shows PAN digits", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(mustHex(c.want), got[:]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestOptionAIsEncryptData checks option A against its definition through
// the other entry point: encrypt the block and its complement.
func TestOptionAIsEncryptData(t *testing.T) {
	for _, pan := range []string{"5413330089600010", "4761739001010010", "12345678901234567", "541333"} {
		y, err := PANPSNBlock(pan, 1)
		if err != nil {
			t.Fatal(err)
		}
		a, err := OptionA(testIMK, pan, 1)
		if err != nil {
			t.Fatal(err)
		}
		e, err := EncryptData(testIMK, y[:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, e) {
			t.Errorf("%s: option A %X, encrypt data %X", pan, a, e)
		}
		// Raw: 3DES-ECB of Y || not Y, then parity.
		b, _ := crypt.NewDES3(testIMK)
		raw := append(bytes.Clone(y[:]), make([]byte, 8)...)
		for i := range 8 {
			raw[8+i] = ^y[i]
		}
		_ = crypt.EncryptECB(b, raw, raw)
		if !crypt.EqualModParity(raw, a) || !crypt.HasOddParity(a) {
			t.Errorf("%s: %X is not %X with odd parity", pan, a, raw)
		}
	}
}

func TestOptionBShortPANIsOptionA(t *testing.T) {
	for _, pan := range []string{"1", "123456789012", "1234567890123456"} {
		a, errA := OptionA(testIMK, pan, 7)
		b, errB := OptionB(testIMK, pan, 7)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: A %X (%v), B %X (%v)", pan, a, errA, b, errB)
		}
	}
	// And long PANs differ from option A.
	a, _ := OptionA(testIMK, "12345678901234567", 1)
	b, _ := OptionB(testIMK, "12345678901234567", 1)
	if bytes.Equal(a, b) {
		t.Error("17-digit PAN: option B equals option A")
	}
}

func TestEMVErrors(t *testing.T) {
	key8, key24 := testIMK[:8], append(bytes.Clone(testIMK), testIMK[:8]...)
	tests := []struct {
		name string
		f    func() ([]byte, error)
	}{
		{"option A, 8-byte IMK", func() ([]byte, error) { return OptionA(key8, "1234567890123456", 0) }},
		{"option A, 24-byte IMK", func() ([]byte, error) { return OptionA(key24, "1234567890123456", 0) }},
		{"option A, bad PAN", func() ([]byte, error) { return OptionA(testIMK, "12345x", 0) }},
		{"option B, bad PAN", func() ([]byte, error) { return OptionB(testIMK, "1234567890123456x", 0) }},
		{"option B, 20 digits", func() ([]byte, error) { return OptionB(testIMK, "12345678901234567890", 0) }},
		{"option B, PSN 100", func() ([]byte, error) { return OptionB(testIMK, "12345678901234567", 100) }},
		{"option B, 8-byte IMK", func() ([]byte, error) { return OptionB(key8, "12345678901234567", 0) }},
		{"session key, 8-byte MK", func() ([]byte, error) { return SessionKey(key8, 1) }},
		{"session key R, 24-byte MK", func() ([]byte, error) { return SessionKeyR(key24, [8]byte{}) }},
		{"AC, 24-byte key", func() ([]byte, error) { return AC(key24, []byte{1}) }},
		{"ARPC, 8-byte key", func() ([]byte, error) { return ARPC1(key8, make([]byte, 8), make([]byte, 2)) }},
		{"ARPC, 4-byte ARQC", func() ([]byte, error) { return ARPC1(testIMK, make([]byte, 4), make([]byte, 2)) }},
		{"ARPC, 3-byte ARC", func() ([]byte, error) { return ARPC1(testIMK, make([]byte, 8), make([]byte, 3)) }},
		{"encrypt data, 7 bytes", func() ([]byte, error) { return EncryptData(testIMK, make([]byte, 7)) }},
		{"encrypt data, 24 bytes", func() ([]byte, error) { return EncryptData(testIMK, make([]byte, 24)) }},
		{"encrypt data, 8-byte key", func() ([]byte, error) { return EncryptData(key8, make([]byte, 8)) }},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.f()
			if err == nil {
				t.Fatalf("got %X, want an error", got)
			}
			if !strings.HasPrefix(err.Error(), "kdf: ") && !strings.HasPrefix(err.Error(), "crypt: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if strings.Contains(strings.ToUpper(err.Error()), "0123456789ABCDEF") {
				t.Errorf("error %q shows key bytes", err)
			}
		})
	}
}

func TestEncryptData16(t *testing.T) {
	d := mustHex("00112233445566778899AABBCCDDEEFF")
	got, err := EncryptData(testIMK, d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := crypt.NewDES3(testIMK)
	want := make([]byte, 16)
	_ = crypt.EncryptECB(b, want, d)
	if !crypt.EqualModParity(got, want) || !crypt.HasOddParity(got) {
		t.Errorf("EncryptData = %X, want %X with odd parity", got, want)
	}
}

func TestSessionKeyATC(t *testing.T) {
	a, _ := SessionKey(testIMK, 0x001C)
	b, _ := SessionKeyR(testIMK, [8]byte{0x00, 0x1C})
	c, _ := SessionKey(testIMK, 0x001D)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("ATC 001C: %X, R: %X, ATC 001D: %X", a, b, c)
	}
}

func TestARPC1Definition(t *testing.T) {
	arqc := mustHex("1234567890ABCDEF")
	arc := mustHex("3030")
	got, err := ARPC1(testIMK, arqc, arc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := crypt.NewDES3(testIMK)
	x := mustHex("2204567890ABCDEF") // ARQC xor ARC || 00*6
	b.Decrypt(x, got)
	if !bytes.Equal(x, mustHex("2204567890ABCDEF")) {
		t.Errorf("3DES^-1(ARPC) = %X", x)
	}
}

func TestDiversifyErrors(t *testing.T) {
	for name, f := range map[string]func([]byte, []byte, int) ([]byte, error){
		"CPS": DiversifyCPS, "VISA2": DiversifyVISA2, "SCP03": DiversifySCP03,
	} {
		t.Run(name, func(t *testing.T) {
			bad := []struct {
				kmc, kdd []byte
				key      int
			}{
				{testKMC, testKDD[:9], ENC},
				{testKMC, append(bytes.Clone(testKDD), 0), ENC},
				{testKMC, testKDD, 0},
				{testKMC, testKDD, 4},
				{testKMC[:8], testKDD, ENC},
				{testKMC[:15], testKDD, ENC},
			}
			if name != "SCP03" {
				bad = append(bad, struct {
					kmc, kdd []byte
					key      int
				}{append(bytes.Clone(testKMC), testKMC[:8]...), testKDD, MAC})
			}
			for i, c := range bad {
				if got, err := f(c.kmc, c.kdd, c.key); err == nil {
					t.Errorf("case %d: %X, want an error", i, got)
				}
			}
		})
	}
}

// TestDiversifyLayouts checks which KDD bytes each layout depends on.
func TestDiversifyLayouts(t *testing.T) {
	tests := []struct {
		name string
		f    func([]byte, []byte, int) ([]byte, error)
		used []int // KDD bytes the key depends on
	}{
		{"CPS", DiversifyCPS, []int{4, 5, 6, 7, 8, 9}},
		{"VISA2", DiversifyVISA2, []int{0, 1, 4, 5, 6, 7}},
		{"SCP03", DiversifySCP03, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			base, err := c.f(testKMC, testKDD, ENC)
			if err != nil {
				t.Fatal(err)
			}
			for i := range testKDD {
				kdd := bytes.Clone(testKDD)
				kdd[i] ^= 0x5A
				got, _ := c.f(testKMC, kdd, ENC)
				used := slices.Contains(c.used, i)
				if changed := !bytes.Equal(got, base); changed != used {
					t.Errorf("KDD byte %d: key changed = %v, want %v", i, changed, used)
				}
			}
			seen := map[string]bool{}
			for k := ENC; k <= DEK; k++ {
				got, _ := c.f(testKMC, testKDD, k)
				seen[string(got)] = true
			}
			if len(seen) != 3 {
				t.Error("ENC, MAC and DEK are not all different")
			}
		})
	}
}

func TestSCP02SessionKeyErrors(t *testing.T) {
	for _, c := range []struct {
		key, seq []byte
	}{
		{testKMC[:8], []byte{0, 0}},
		{append(bytes.Clone(testKMC), testKMC[:8]...), []byte{0, 0}},
		{testKMC, []byte{0}},
		{testKMC, []byte{0, 0, 0}},
	} {
		if got, err := SCP02SessionKey(c.key, SCP02ConstENC, c.seq); err == nil {
			t.Errorf("%d-byte key, %d-byte counter: %X", len(c.key), len(c.seq), got)
		}
	}
	a, _ := SCP02SessionKey(testKMC, SCP02ConstENC, []byte{0, 0})
	b, _ := SCP02SessionKey(testKMC, SCP02ConstENC, []byte{0, 1})
	if bytes.Equal(a, b) {
		t.Error("sequence counter does not change the session key")
	}
}

func TestSCP03KDFLengths(t *testing.T) {
	for _, bits := range []int{0, -8, 7, 65, 255*128 + 8} {
		if got, err := SCP03KDF(testKMC, SCP03SENC, testKDD, bits); err == nil {
			t.Errorf("%d bits: %X, want an error", bits, got)
		}
	}
	if _, err := SCP03KDF(testKMC[:15], SCP03SENC, testKDD, 128); err == nil {
		t.Error("15-byte key: no error")
	}
	// L is part of the input, so a 64-bit output is not a prefix of the
	// 128-bit one, and a 256-bit output has two different blocks.
	k64, _ := SCP03KDF(testKMC, SCP03CardCryptogram, testKDD, 64)
	k128, _ := SCP03KDF(testKMC, SCP03CardCryptogram, testKDD, 128)
	k256, err := SCP03KDF(testKMC, SCP03CardCryptogram, testKDD, 256)
	if err != nil {
		t.Fatal(err)
	}
	if len(k64) != 8 || len(k128) != 16 || len(k256) != 32 {
		t.Fatalf("lengths %d %d %d", len(k64), len(k128), len(k256))
	}
	if bytes.HasPrefix(k128, k64) || bytes.Equal(k256[:16], k256[16:]) {
		t.Error("L or the counter is not bound into the output")
	}
	// The largest output the one-byte counter allows.
	big, err := SCP03KDF(testKMC, SCP03SENC, nil, 255*128)
	if err != nil || len(big) != 255*16 {
		t.Errorf("%d bytes, %v", len(big), err)
	}
}

func TestCounterCMACBlocks(t *testing.T) {
	// Block i is CMAC(prefix || i || suffix); check block 2 directly.
	prefix, suffix := []byte{1, 2, 3}, []byte{9, 9}
	out, err := counterCMAC(testKMC, prefix, suffix, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 20 || cap(out) != 20 {
		t.Fatalf("len %d cap %d", len(out), cap(out))
	}
	b, _ := aes.NewCipher(testKMC)
	want := crypt.CMAC(b, []byte{1, 2, 3, 2, 9, 9})
	if !bytes.Equal(out[16:], want[:4]) {
		t.Errorf("block 2 %X, want %X", out[16:], want[:4])
	}
	if _, err := counterCMAC(testKMC, nil, nil, 0); err == nil {
		t.Error("0 bytes: no error")
	}
}
