package emv_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAFL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want emv.AFL
		ok   bool
	}{
		{"08010202", emv.AFL{{SFI: 1, First: 1, Last: 2, ODA: 2}}, true},
		{"0801020210010200", emv.AFL{{1, 1, 2, 2}, {2, 1, 2, 0}}, true},
		{"F0010100", emv.AFL{{30, 1, 1, 0}}, true},
		{"", nil, false},
		{"080102", nil, false},     // not a multiple of 4
		{"00010100", nil, false},   // SFI 0
		{"F8010100", nil, false},   // SFI 31
		{"09010100", nil, false},   // low bits set
		{"08000100", nil, false},   // record 0
		{"08020100", nil, false},   // last before first
		{"08010203", nil, false},   // three ODA records of two
		{"0801020208", nil, false}, // trailing byte
	} {
		got, err := emv.ParseAFL(unhex(t, tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("ParseAFL(%s): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseAFL(%s) (-want +got):\n%s", tc.in, diff)
		}
		if tc.ok && !bytes.Equal(got.Bytes(), unhex(t, tc.in)) {
			t.Errorf("AFL %s encodes as %X", tc.in, got.Bytes())
		}
	}
}

func TestDOL(t *testing.T) {
	cdol, err := emv.ParseDOL(unhex(t, "9F02069F03069F1A0295055F2A029A039C019F370484028A02DF810103"))
	if err != nil {
		t.Fatal(err)
	}
	if n := cdol.Len(); n != 6+6+2+5+2+3+1+4+2+2+3 {
		t.Errorf("Len %d", n)
	}
	vals := map[perso.Tag][]byte{
		0x9F02:   unhex(t, "0000000100"),     // shorter: padded left (n)
		0x9F1A:   unhex(t, "000826"),         // longer: truncated left (n)
		0x95:     unhex(t, "8000"),           // shorter: padded right (b)
		0x9F37:   unhex(t, "0102030405"),     // longer: truncated right (b)
		0x8A:     []byte("Z3"),               // exact
		0xDF8101: unhex(t, "AABBCC"),         // 3-byte tag
		0x84:     unhex(t, "A0000000031010"), // truncated right
	}
	got := cdol.Build(vals)
	want := unhex(t, "000000000100"+"000000000000"+"0826"+"8000000000"+"0000"+"000000"+"00"+"01020304"+"A000"+"5A33"+"AABBCC")
	if !bytes.Equal(got, want) {
		t.Errorf("Build\n got %X\nwant %X", got, want)
	}
	if !bytes.Equal(cdol.Bytes(), unhex(t, "9F02069F03069F1A0295055F2A029A039C019F370484028A02DF810103")) {
		t.Errorf("Bytes %X", cdol.Bytes())
	}
	for _, bad := range []string{"9F", "9F02", "9F0206DF"} {
		if _, err := emv.ParseDOL(unhex(t, bad)); err == nil {
			t.Errorf("ParseDOL(%s) succeeded", bad)
		}
	}
}

func TestParseAC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *emv.AC
	}{
		{"771E9F2701809F360200019F2608" + "1122334455667788" + "9F100706010A03A00000",
			&emv.AC{CID: 0x80, ATC: 1, Cryptogram: unhex(t, "1122334455667788"), IAD: unhex(t, "06010A03A00000")}},
		{"8012" + "40" + "0002" + "1122334455667788" + "06010A03A00000",
			&emv.AC{CID: 0x40, ATC: 2, Cryptogram: unhex(t, "1122334455667788"), IAD: unhex(t, "06010A03A00000")}},
		{"800B" + "00" + "0003" + "1122334455667788", &emv.AC{CID: 0x00, ATC: 3, Cryptogram: unhex(t, "1122334455667788"), IAD: []byte{}}},
		{"800A" + "00" + "0003" + "11223344556677", nil},
		{"77069F2701809F36", nil},
		{"770C9F2701809F3602000188", nil},
		{"6F00", nil},
	} {
		got, err := emv.ParseAC(unhex(t, tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseAC(%s) succeeded", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAC(%s): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseAC(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
	if s := fmt.Sprint(emv.ARQC, emv.TC, emv.AAC, emv.CryptogramType(0xC0)); s != "ARQC TC AAC RFU" {
		t.Errorf("CryptogramType names %q", s)
	}
}

func FuzzParseAFL(f *testing.F) {
	for _, s := range []string{"08010202", "0801020210010200", "F8010100", ""} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := emv.ParseAFL(b)
		if err != nil {
			return
		}
		if !bytes.Equal(a.Bytes(), b) {
			t.Fatalf("ParseAFL(%X).Bytes() = %X", b, a.Bytes())
		}
		if a.Records() < len(a) {
			t.Fatalf("%d records in %d entries", a.Records(), len(a))
		}
	})
}

func FuzzParseDOL(f *testing.F) {
	for _, s := range []string{"9F02069F03069F1A0295055F2A029A039C019F3704", "9F3704", "DF810103", "9F"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := emv.ParseDOL(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Bytes(), b) {
			t.Fatalf("ParseDOL(%X).Bytes() = %X", b, d.Bytes())
		}
		if n := len(d.Build(nil)); n != d.Len() || n > 255*len(b) {
			t.Fatalf("Build gives %d bytes for Len %d", n, d.Len())
		}
	})
}

func FuzzParseAC(f *testing.F) {
	for _, s := range []string{
		"771E9F2701809F360200019F26081122334455667788" + "9F100706010A03A00000",
		"800B0000031122334455667788",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := emv.ParseAC(b)
		if err != nil {
			return
		}
		if len(a.Cryptogram) != 8 || len(a.IAD) > len(b) {
			t.Fatalf("ParseAC(%X): cryptogram of %d bytes, IAD of %d", b, len(a.Cryptogram), len(a.IAD))
		}
	})
}

func ExampleParseDOL() {
	dol, _ := emv.ParseDOL([]byte{0x9F, 0x02, 0x06, 0x9A, 0x03, 0x9F, 0x37, 0x04})
	data := dol.Build(map[perso.Tag][]byte{
		0x9F02: {0x10, 0x00},       // amount: numeric, padded on the left
		0x9A:   {0x25, 0x06, 0x01}, // date
		0x9F37: {0xCA, 0xFE, 0xBA, 0xBE},
	})
	fmt.Printf("%d entries, %d bytes: %X\n", len(dol), dol.Len(), data)
	// Output: 3 entries, 13 bytes: 000000001000250601CAFEBABE
}

func ExampleParseAFL() {
	afl, _ := emv.ParseAFL([]byte{0x08, 0x01, 0x02, 0x02, 0x10, 0x01, 0x02, 0x00})
	for _, e := range afl {
		fmt.Printf("SFI %d records %d-%d, %d for ODA\n", e.SFI, e.First, e.Last, e.ODA)
	}
	// Output:
	// SFI 1 records 1-2, 2 for ODA
	// SFI 2 records 1-2, 0 for ODA
}

// script is a card that answers each instruction with a canned response.
type script map[byte]string

func (s script) Transmit(cmd []byte) ([]byte, error) {
	r, ok := s[cmd[1]]
	if !ok {
		return []byte{0x6D, 0x00}, nil
	}
	return hex.DecodeString(r)
}

// TestCardResponses: the response formats the terminal side accepts, and
// malformed answers it refuses with an error naming what is wrong.
func TestCardResponses(t *testing.T) {
	good := emv.NewCard(script{
		0xA8: "800A" + "5800" + "0801020210010200" + "9000",
		0x88: "77819A9F4B8196" + strings.Repeat("AB", 0x96) + "9000",
		0xCA: "9F3602000A9000",
	})
	aip, afl, err := good.GetProcessingOptions(nil)
	if err != nil || !bytes.Equal(aip, []byte{0x58, 0x00}) || len(afl) != 2 || afl.Records() != 4 {
		t.Errorf("GPO format 1: %X %v %v", aip, afl, err)
	}
	if sdad, err := good.InternalAuthenticate([]byte{1, 2, 3, 4}); err != nil || len(sdad) != 0x96 {
		t.Errorf("INTERNAL AUTHENTICATE format 2: %d bytes, %v", len(sdad), err)
	}
	if atc, err := good.GetData(0x9F36); err != nil || !bytes.Equal(atc, []byte{0, 10}) {
		t.Errorf("GET DATA: %X %v", atc, err)
	}
	if _, err := good.GetData(0xDF8101); err == nil {
		t.Error("GET DATA of a 3-byte tag succeeded")
	}
	if good.Count() != 3 || good.Conn() == nil {
		t.Errorf("Count %d", good.Count())
	}
	for _, tc := range []struct {
		name string
		s    script
		do   func(c *emv.Card) error
		want string
	}{
		{"FCI not 6F", script{0xA4: "A5009000"}, func(c *emv.Card) error { _, err := c.Select(visaAID); return err }, "not an FCI"},
		{"FCI without 84", script{0xA4: "6F02A5009000"}, func(c *emv.Card) error { _, err := c.Select(visaAID); return err }, "DF name"},
		{"FCI without A5", script{0xA4: "6F098407A00000000310109000"}, func(c *emv.Card) error { _, err := c.Select(visaAID); return err }, "proprietary template"},
		{"SELECT refused", script{0xA4: "6A82"}, func(c *emv.Card) error { _, err := c.Select(visaAID); return err }, "6A82"},
		{"GPO without AFL", script{0xA8: "770482023800" + "9000"}, func(c *emv.Card) error { _, _, err := c.GetProcessingOptions(nil); return err }, "AFL"},
		{"GPO other template", script{0xA8: "70009000"}, func(c *emv.Card) error { _, _, err := c.GetProcessingOptions(nil); return err }, "template 70"},
		{"GPO bad AFL", script{0xA8: "8005580008010200" + "9000"}, func(c *emv.Card) error { _, _, err := c.GetProcessingOptions(nil); return err }, "AFL"},
		{"GET DATA other tag", script{0xCA: "9F1701039000"}, func(c *emv.Card) error { _, err := c.GetData(0x9F36); return err }, "not that data object"},
		{"INTERNAL AUTHENTICATE empty", script{0x88: "77009000"}, func(c *emv.Card) error { _, err := c.InternalAuthenticate(nil); return err }, "no signed dynamic"},
		{"READ RECORD refused", script{}, func(c *emv.Card) error { _, err := c.ReadRecord(1, 1); return err }, "SFI 1 record 1"},
		{"GENERATE AC refused", script{0xAE: "6985"}, func(c *emv.Card) error { _, err := c.GenerateAC(emv.ARQC, nil); return err }, "ARQC"},
	} {
		err := tc.do(emv.NewCard(tc.s))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
