package perso

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso/internal/crypt"
)

// workedExample returns the bytes of the worked example in doc.go, checking
// that the offset column of each line counts them.
func workedExample(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^//\t([0-9A-F]{4})  (.*)$`)
	var out []byte
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := sc.Text()
		if s == "// # Worked example" {
			in = true
			continue
		}
		m := line.FindStringSubmatch(s)
		if !in || m == nil {
			continue
		}
		off, _ := strconv.ParseUint(m[1], 16, 16)
		if int(off) != len(out) {
			t.Fatalf("doc.go: line %q: offset %04X, want %04X", s, off, len(out))
		}
		hexPart, _, _ := strings.Cut(m[2], "  ")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("doc.go: line %q: %v", s, err)
		}
		out = append(out, b...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("doc.go has no worked example")
	}
	return out
}

func TestWorkedExample(t *testing.T) {
	in := workedExample(t)
	file, err := os.ReadFile("examples/testdata/worked-example.prso")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, file) {
		t.Fatalf("doc.go and examples/testdata/worked-example.prso differ:\n%X\n%X", in, file)
	}

	h, recs, tr, err := readBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	kek := KEKID{Issuer: IssuerID{0x45, 0x12, 0x3F, 0xFF}, Version: 1, Scheme: SchemeAESKW}
	wantH := &Header{
		BatchID:  [16]byte(batchHex("6F1C5B2E9A4D4E8B8F3A1D27C0E54B61")),
		Created:  time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC),
		Issuer:   kek.Issuer,
		Profiles: []string{"emv"},
		KEKs:     []KEKCheck{{KEK: kek, KCV: [3]byte{0xC3, 0x52, 0x80}}},
	}
	if diff := cmp.Diff(wantH, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	rec := recs[0]
	if got := []MIC{rec.Groups[0].MIC, rec.Groups[1].MIC, rec.Groups[2].MIC}; !cmp.Equal(got, []MIC{MICEmboss, MICChip, 0xC0}) {
		t.Errorf("MICs %v", got)
	}
	if g, _ := rec.Group(0xC0); string(g.Data) != "CARRIER-1" {
		t.Errorf("bureau group %q", g.Data)
	}
	cd, err := rec.Chip()
	if err != nil {
		t.Fatal(err)
	}
	app := cd.Apps[0]
	wantApp := App{
		AID: batchHex("A0000000031010"),
		KEK: kek,
		DGIs: []DGI{
			{Tag: 0x0101, Value: batchHex("7010 5A08 4761739001010010 5F2403 271231")},
			{Tag: 0x8010, Value: batchHex("01 82B741E72BACC1F1403DA57AA270B424")},
		},
		Secret: []uint16{0x8010},
		MACKey: ProtectedKey{KEK: kek, Type: KeyAES128, KCV: [3]byte{0x35, 0x44, 0xE0},
			Wrapped: batchHex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")},
		MAC: batchHex("6887FEFA7E76DDF6"),
	}
	if diff := cmp.Diff(wantApp, app, batchIgnoreRaw); diff != "" {
		t.Errorf("application (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&Trailer{Count: 1, Counters: map[string]uint64{"pan-counter": 11}, Digest: [32]byte(in[len(in)-32:])}, tr); diff != "" {
		t.Errorf("trailer (-want +got):\n%s", diff)
	}
	out, err := rewriteBatch(h, recs, tr)
	if err != nil || !bytes.Equal(out, in) {
		t.Errorf("re-encoded file differs (%v):\n%X", err, out)
	}

	// The keys and the MAC are real: the RFC 3394 section 4.1 KEK opens
	// the MAC key (that section's key data, whose wrapping is published),
	// the check values match, the MAC verifies, and the PIN block opens.
	kekKey := batchHex("000102030405060708090A0B0C0D0E0F")
	kb, err := aes.NewCipher(kekKey)
	if err != nil {
		t.Fatal(err)
	}
	if kcv, _ := crypt.KCVAES(kekKey); kcv != h.KEKs[0].KCV {
		t.Errorf("KEK check value %X, want %X", h.KEKs[0].KCV, kcv)
	}
	macKey, err := crypt.Unwrap(kb, app.MACKey.Wrapped)
	if err != nil || !bytes.Equal(macKey, batchHex("00112233445566778899AABBCCDDEEFF")) {
		t.Fatalf("MAC key unwraps to %X, %v", macKey, err)
	}
	if kcv, _ := crypt.KCVAES(macKey); kcv != app.MACKey.KCV {
		t.Errorf("MAC key check value %X, want %X", app.MACKey.KCV, kcv)
	}
	mb, _ := aes.NewCipher(macKey)
	macInput, _ := app.MACInput()
	if !bytes.Equal(macInput, in[0x5C:0xBB]) {
		t.Errorf("MAC input is not bytes 005C..00BA")
	}
	if mac := crypt.CMAC(mb, macInput)[:MACLen]; !bytes.Equal(mac, app.MAC) {
		t.Errorf("MAC %X, want %X", app.MAC, mac)
	}
	parts, err := Sealed(wantApp.DGIs[1].Value).Parse()
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := crypt.UnwrapPad(kb, parts.Wrapped); err != nil || !bytes.Equal(pin, batchHex("241234FFFFFFFFFF")) {
		t.Errorf("PIN block opens to %X, %v", pin, err)
	}
}
