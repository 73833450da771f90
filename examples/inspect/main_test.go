package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardperso/perso"
)

func workedBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/worked-example.prso")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkedExampleAgrees(t *testing.T) {
	if got := strings.ToUpper(hex.EncodeToString(workedBytes(t))); got != workedExample {
		t.Errorf("the built-in worked example differs from examples/testdata/worked-example.prso")
	}
}

// runInspect runs inspect with args and returns its exit status and output.
func runInspect(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "batch.prso")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsTheWorkedExample(t *testing.T) {
	code, out, errOut := runInspect(t)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"batch id        6F1C5B2E9A4D4E8B8F3A1D27C0E54B61",
		"KEK             45123FFF/v1/AES-KW, check value C35280",
		`"476173******0010 J SMITH"`,
		"application A0000000031010",
		tagLine(0x5A, "476173******0010"),
		tagLine(0x5F24, "271231"),
		"DGI 8010 (" + perso.DGIName(0x8010) + "): protected (value, AES-KW, KEK 45123FFF/v1/AES-KW, 17 bytes)",
		"MAC key  protected AES-128 key (KEK 45123FFF/v1/AES-KW, KCV 3544E0, 24 bytes)",
		`"CARRIER-1"`,
		"counter  pan-counter = 11",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"4761739001010010", "82B741E7", "1FA68B0A"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows %s", secret)
		}
	}
	// The same from the file.
	code, fromFile, _ := runInspect(t, "../testdata/worked-example.prso")
	_, body, _ := strings.Cut(out, "\n")
	_, fileBody, _ := strings.Cut(fromFile, "\n")
	if code != 0 || body != fileBody {
		t.Errorf("the file prints differently from the built-in example")
	}
}

func TestShowPAN(t *testing.T) {
	_, out, _ := runInspect(t, "-show-pan")
	for _, want := range []string{`"4761739001010010 J SMITH"`, "Number (PAN): 4761739001010010"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "82B741E7") {
		t.Error("-show-pan shows a sealed value")
	}
}

func TestJSON(t *testing.T) {
	code, out, _ := runInspect(t, "-json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Header  headerView   `json:"header"`
		Records []recordView `json:"records"`
		Trailer trailerView  `json:"trailer"`
		Error   *string      `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc.Error != nil || doc.Header.Issuer != "45123FFF" || !doc.Header.Created.Equal(time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("header %+v, error %v", doc.Header, doc.Error)
	}
	if len(doc.Records) != 1 || len(doc.Records[0].Groups) != 3 {
		t.Fatalf("records %+v", doc.Records)
	}
	chip := doc.Records[0].Groups[1]
	if chip.MIC != "01" || len(chip.Apps) != 1 || len(chip.Apps[0].DGIs) != 2 {
		t.Fatalf("chip group %+v", chip)
	}
	pan := chip.Apps[0].DGIs[0].TLV[0].Children[0]
	if pan.Tag != "5A" || pan.Value != "476173******0010" {
		t.Errorf("PAN %+v", pan)
	}
	p := chip.Apps[0].DGIs[1].Protected
	if p == nil || *p != (protectedView{Form: "value", Scheme: "AES-KW", KEK: "45123FFF/v1/AES-KW", Length: 17}) {
		t.Errorf("DGI 8010 %+v", chip.Apps[0].DGIs[1])
	}
	if doc.Trailer.Records != 1 || doc.Trailer.Counters["pan-counter"] != 11 {
		t.Errorf("trailer %+v", doc.Trailer)
	}
}

// redigest recomputes the trailer digest of a patched file.
func redigest(b []byte) []byte {
	sum := sha256.Sum256(b[:len(b)-32])
	copy(b[len(b)-32:], sum[:])
	return b
}

func TestBadFiles(t *testing.T) {
	good := workedBytes(t)
	flipped := bytes.Clone(good)
	flipped[0x80] ^= 1
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", good[:200], "perso: record 0 at offset 56: record: truncated"},
		{"bad magic", []byte("GIF89a........"), "perso: offset 0: magic: not a batch file"},
		{"version 2", redigest(append(append([]byte{}, good[:4]...), append([]byte{2}, good[5:]...)...)), "unknown version"},
		{"digest", flipped, "trailer digest: digest mismatch"},
		{"no trailer", good[:0xD2], "without a trailer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.in)
			for _, args := range [][]string{{p}, {"-json", p}} {
				code, out, errOut := runInspect(t, args...)
				if code != 1 {
					t.Errorf("%v: exit %d", args, code)
				}
				if !strings.HasPrefix(errOut, "inspect: "+p+": ") || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("%v: stderr %q, want one line with %q", args, errOut, tt.want)
				}
				if args[0] == "-json" {
					var doc map[string]any
					if err := json.Unmarshal([]byte(out), &doc); err != nil {
						t.Errorf("-json output is not JSON: %v\n%s", err, out)
					} else if e, _ := doc["error"].(string); !strings.Contains(e, tt.want) {
						t.Errorf("-json error %q", e)
					}
				}
			}
		})
	}
	if code, _, errOut := runInspect(t, filepath.Join(t.TempDir(), "absent")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("absent file: exit %d, %q", code, errOut)
	}
	if code, _, _ := runInspect(t, "a", "b"); code != 2 {
		t.Errorf("two files: exit %d", code)
	}
	if code, _, _ := runInspect(t, "-no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}

func TestBadRecordGoesOn(t *testing.T) {
	// Header KEK version 01 becomes 02: the record's application uses a KEK
	// the header does not list.
	b := bytes.Clone(workedBytes(t))
	b[0x2F] = 2
	code, out, errOut := runInspect(t, writeFile(t, redigest(b)))
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(out, "record 0 at offset 52: BAD: perso: record 0 at offset 104: chip app 0 KEK: malformed: 45123FFF/v1/AES-KW is not in the batch header") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(out, "records  1") || !strings.Contains(errOut, "bad records: 1 of 1") {
		t.Errorf("output:\n%s\nstderr %q", out, errOut)
	}
}

// TestOtherGroups prints a cardholder data group (BER-TLV), a magnetic
// stripe group (text) and a bureau group (binary).
func TestOtherGroups(t *testing.T) {
	var buf bytes.Buffer
	w, err := perso.NewWriter(&buf, &perso.Header{Created: time.Unix(1, 0), Profiles: []string{"emv"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &perso.Record{Groups: []perso.Group{
		{MIC: 0x05, Data: hexBytes("5A08 4761739001010010 5F20 0A 534D4954482F4A4F484E DF8103 03 613D31")},
		{MIC: perso.MICMagStripe, Data: []byte("%B4761739001010010^SMITH/JOHN^2712201000000000?")},
		{MIC: 0xD0, Data: []byte{0x00, 0xFF, 0x10}},
	}}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, buf.Bytes())
	_, out, _ := runInspect(t, p)
	for _, want := range []string{
		"MIC 05 (card data), 30 bytes",
		tagLine(0x5A, "476173******0010"),
		tagLine(0x5F20, "<personal data, 10 bytes>"),
		"DF8103 (not in the tag dictionary): <not in the tag dictionary, 3 bytes>",
		`"%B476173******0010^SMITH/JOHN^271220******0000?"`,
		"MIC D0 (bureau D0), 3 bytes",
		"00FF10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = runInspect(t, "-show-pan", p)
	for _, want := range []string{tagLine(0x5F20, "534D4954482F4A4F484E"), "DF8103 (not in the tag dictionary): 613D31"} {
		if !strings.Contains(out, want) {
			t.Errorf("-show-pan output lacks %q:\n%s", want, out)
		}
	}
}

func hexBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestMasking(t *testing.T) {
	masked, shown := view{}, view{showPAN: true}
	tests := []struct {
		name, got, want string
	}{
		{"text", masked.maskText("PAN 4761739001010010, PSN 01, 123456789012 and 12345678901"), "PAN 476173******0010, PSN 01, 123456**9012 and 12345678901"},
		{"text, 20 digits", masked.maskText("12345678901234567890"), "123456**********7890"},
		{"hex with a BCD PAN", masked.maskText("5A084761739001010010"), "5A084761********0010"},
		{"text shown", shown.maskText("4761739001010010"), "4761739001010010"},
		{"track 2", masked.track2("4761739001010010D27122011234567890"), "476173******0010D2712201**********"},
		{"track 2 shown", shown.track2("4761739001010010D27122011234567890"), "4761739001010010D27122011234567890"},
		{"track 2 without separator", masked.track2("4761739001010010"), "476173******0010"},
		{"track 1", masked.track1("B4761739001010010^SMITH/JOHN^27122011234"), "B476173******0010^<name, 10 characters>^2712201****"},
		{"track 1 shown", shown.track1("B4761739001010010^SMITH/JOHN^27122011234"), "B4761739001010010^SMITH/JOHN^27122011234"},
		{"track 1 malformed", masked.track1("B4761739001010010"), "B476173******0010"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestChipDetails prints an application under a 3DES KEK with sealed card
// keys, key check values in clear, and a DGI that EMV CPS reserves for
// secrets but that the file carries in clear.
func TestChipDetails(t *testing.T) {
	kek := perso.KEKID{Issuer: perso.IssuerID{0x45, 0x12, 0x3F, 0xFF}, Version: 2, Scheme: perso.SchemeDES3ECB}
	keys, err := perso.SealKeysOf(
		perso.ProtectedKey{Type: perso.KeyDES2, Wrapped: bytes.Repeat([]byte{0xB1}, 16)},
		perso.ProtectedKey{Type: perso.KeyDES2, Wrapped: bytes.Repeat([]byte{0xB2}, 16)},
		perso.ProtectedKey{Type: perso.KeyDES2, Wrapped: bytes.Repeat([]byte{0xB3}, 16)},
	)
	if err != nil {
		t.Fatal(err)
	}
	app := perso.App{AID: hexBytes("A0000000031010"), KEK: kek}
	app.AddDGI(0x0201, hexBytes("7013 57 11 4761739001010010D2712201123456789F"))
	app.AddSecret(0x8000, keys)
	app.AddDGI(0x9000, hexBytes("C33013 6F4CA6 BB8179"))
	app.AddDGI(0x8020, hexBytes("0102030405060708"))
	app.AddDGI(0x9104, hexBytes("8202 1980 9404 08010100"))
	app.MACKey = perso.ProtectedKey{KEK: kek, Type: perso.KeyDES2, Wrapped: bytes.Repeat([]byte{0xC4}, 16)}
	app.MAC = bytes.Repeat([]byte{0x3C}, perso.MACLen)
	rec := &perso.Record{}
	if err := rec.PutApp(&app); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := perso.NewWriter(&buf, &perso.Header{Created: time.Unix(1, 0), KEKs: []perso.KEKCheck{{KEK: kek}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runInspect(t, writeFile(t, buf.Bytes()))
	for _, want := range []string{
		tagLine(0x57, "476173******0010D2712201*********"),
		"DGI 8000 (" + perso.DGIName(0x8000) + "): protected (3 keys, 3DES-ECB, KEK 45123FFF/v2/3DES-ECB, 65 bytes)",
		"DGI 9000 (" + perso.DGIName(0x9000) + "), 9 bytes",
		"C330136F4CA6BB8179",
		"DGI 8020, 8 bytes: in clear although EMV CPS reserves this DGI for secrets; value not shown",
		tagLine(0x82, "1980"),
		tagLine(0x94, "08010100"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"B1B1B1", "0102030405060708", "4761739001010010", "123456789"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows %s:\n%s", secret, out)
		}
	}
}

// tagLine is how inspect prints a primitive data object.
func tagLine(tag perso.Tag, value string) string {
	return fmt.Sprintf("%-6v %s: %s", tag, tag.Name(), value)
}
