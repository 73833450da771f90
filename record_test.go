package perso

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Test data: the issuer 45123FFF, its KEK version 1 (AES key wrap) and
// version 2 (3DES-ECB). The wrapped bytes are placeholders of the right
// lengths; no key opens them.
var (
	batchIssuer = IssuerID{0x45, 0x12, 0x3F, 0xFF}
	batchKEK    = KEKID{Issuer: batchIssuer, Version: 1, Scheme: SchemeAESKW}
	batchKEK3   = KEKID{Issuer: batchIssuer, Version: 2, Scheme: SchemeDES3ECB}
)

func batchHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func batchFill(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

// batchApp returns a valid application: a record DGI, a sealed PIN block
// (DGI 8010) and sealed card keys (DGI 8000), an AES MAC key and a MAC.
func batchApp(aid string, kek KEKID) App {
	a := App{AID: batchHex(aid), KEK: kek}
	a.AddDGI(0x0101, batchHex("70 10 5A08 4761739001010010 5F24 03 271231"))
	wrapLen, valueLen, mt := 24, 16, KeyAES128
	if kek.Scheme == SchemeDES3ECB {
		wrapLen, valueLen, mt = 16, 8, KeyDES2
	}
	a.AddSecret(0x8010, SealValueOf(batchFill(valueLen, 0xA5)))
	keys, err := SealKeysOf(
		ProtectedKey{Type: KeyDES2, KCV: [3]byte{1, 2, 3}, Wrapped: batchFill(wrapLen, 0xB1)},
		ProtectedKey{Type: KeyDES2, KCV: [3]byte{4, 5, 6}, Wrapped: batchFill(wrapLen, 0xB2)},
	)
	if err != nil {
		panic(err)
	}
	a.AddSecret(0x8000, keys)
	a.AddDGI(0x9000, batchHex("010203 040506"))
	a.MACKey = ProtectedKey{KEK: kek, Type: mt, KCV: [3]byte{0xC1, 0xC2, 0xC3}, Wrapped: batchFill(wrapLen, 0xC4)}
	a.MAC = batchFill(MACLen, 0x3C)
	return a
}

// batchChip encodes apps as chip data without checking them, so that
// tests can make chip data that breaks one rule at a time.
func batchChip(t testing.TB, apps ...App) []byte {
	t.Helper()
	b := builder{}
	b.u8(ChipVersion)
	b.count8(len(apps), "apps")
	for i := range apps {
		b.app(i, &apps[i])
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.buf
}

// batchIgnoreRaw compares parsed values with built ones.
var batchIgnoreRaw = cmp.Options{
	cmpopts.IgnoreFields(App{}, "Raw"),
	cmpopts.IgnoreFields(DGI{}, "Raw"),
	cmpopts.IgnoreFields(Record{}, "Raw"),
	cmpopts.EquateEmpty(),
}

// wantFormatError checks that err is a *FormatError wrapping kind, at the
// offset, with a field naming what.
func wantFormatError(t *testing.T, err error, kind error, off int64, field string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %v does not wrap %v", err, kind)
	}
	if off >= 0 && fe.Offset != off {
		t.Errorf("error %v at offset %d, want %d", err, fe.Offset, off)
	}
	if !strings.Contains(fe.Field, field) {
		t.Errorf("error %v names field %q, want one containing %q", err, fe.Field, field)
	}
}

// formatCase is bytes that a decoder must refuse with a *FormatError
// wrapping kind, for field, at offset off (-1: any offset).
type formatCase struct {
	name  string
	in    []byte
	kind  error
	off   int64
	field string
}

func runFormatCases(t *testing.T, cases []formatCase, decode func([]byte) (any, error)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decode(tt.in)
			if err == nil {
				t.Fatalf("decoded %v, want an error", v)
			}
			wantFormatError(t, err, tt.kind, tt.off, tt.field)
		})
	}
}

func TestChipDataRoundTrip(t *testing.T) {
	apps := []App{batchApp("A0000000031010", batchKEK), batchApp("A0000000032010", batchKEK3)}
	in := batchChip(t, apps...)
	cd, err := ParseChipData(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&ChipData{Apps: apps}, cd, batchIgnoreRaw); diff != "" {
		t.Errorf("parsed chip data (-want +got):\n%s", diff)
	}
	out, err := cd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Errorf("re-encoded\n%X\nwant\n%X", out, in)
	}
	// Raw of each application is its span of the input.
	if got := slices.Concat(in[:2], cd.Apps[0].Raw, cd.Apps[1].Raw); !bytes.Equal(got, in) {
		t.Errorf("application Raw spans do not make up the input")
	}
	a, ok := cd.App(batchHex("A0000000032010"))
	if !ok || a.KEK != batchKEK3 {
		t.Errorf("App(A0000000032010) = %v, %v", a, ok)
	}
	if _, ok := cd.App(batchHex("A0000000039999")); ok {
		t.Error("App found an absent AID")
	}
}

func TestChipDataErrors(t *testing.T) {
	valid := batchApp("A0000000031010", batchKEK)
	// Offsets inside the one application of batchChip(valid):
	// 2 aidLen, 3 AID(7), 10 bodyLen, 14 KEK issuer, 18 version, 19 scheme,
	// 20 dgisLen, 24 DGIs.
	var dgisLen int
	for _, d := range valid.DGIs {
		dgisLen += len(AppendDGI(nil, d.Tag, d.Value))
	}
	secretAt := 24 + dgisLen
	keyAt := secretAt + 1 + 2*len(valid.Secret)
	macAt := keyAt + 5 + len(valid.MACKey.Wrapped)
	end := macAt + 1 + MACLen

	mod := func(f func(a *App)) []byte {
		a := valid
		a.DGIs = slices.Clone(a.DGIs)
		a.Secret = slices.Clone(a.Secret)
		f(&a)
		return batchChip(t, a)
	}
	patch := func(b []byte, at int, v ...byte) []byte {
		b = slices.Clone(b)
		copy(b[at:], v)
		return b
	}
	good := batchChip(t, valid)
	if len(good) != end {
		t.Fatalf("layout: %d bytes, want %d", len(good), end)
	}

	tests := []formatCase{
		{"empty", nil, ErrTruncated, 0, "chip header"},
		{"version only", []byte{1}, ErrTruncated, 0, "chip header"},
		{"unknown version", patch(good, 0, 2), ErrVersion, 0, "chip version"},
		{"no applications", []byte{1, 0}, ErrMalformed, 1, "application count"},
		{"count larger than apps", patch(good, 1, 2), ErrTruncated, int64(end), "chip app 1 AID length"},
		{"trailing byte", append(slices.Clone(good), 0), ErrMalformed, int64(end), "chip data"},
		{"AID length 4", mod(func(a *App) { a.AID = a.AID[:4] }), ErrMalformed, 2, "AID length"},
		{"AID length 17", mod(func(a *App) { a.AID = batchFill(17, 0xA0) }), ErrMalformed, 2, "AID length"},
		{"AID cut", good[:5], ErrTruncated, 3, "AID"},
		{"body length cut", good[:12], ErrTruncated, 10, "chip app 0 length"},
		{"body length larger than left", patch(good, 10, 0, 0, 1, 0), ErrTruncated, 14, "chip app 0 body"},
		{"body length over 4 GiB-1", patch(good, 10, 0xFF, 0xFF, 0xFF, 0xFF), ErrTruncated, 14, "body"},
		{"body one byte short", patch(good[:end-1], 1, 1), ErrTruncated, 14, "body"},
		{"KEK scheme 00", patch(good, 19, 0), ErrMalformed, 19, "KEK scheme"},
		{"KEK scheme 03", patch(good, 19, 3), ErrMalformed, 19, "KEK scheme"},
		{"DGI sequence longer than body", patch(good, 20, 0, 0, 0x10, 0), ErrTruncated, 20, "DGI sequence"},
		{"no DGIs", mod(func(a *App) { a.DGIs, a.Secret = nil, nil }), ErrMalformed, 20, "DGI sequence"},
		{"DGI length non-minimal", patch(mod(func(a *App) {
			a.DGIs = []DGI{{Tag: 0x0101, Value: batchFill(0xFF, 1)}}
			a.Secret = nil
		}), 24+3, 0x00, 0xFE), ErrMalformed, 24, "DGI sequence"},
		{"secret DGI absent", mod(func(a *App) { a.Secret = append(a.Secret, 0x8020) }), ErrMalformed, -1, "secret DGIs"},
		{"secret DGIs out of order", mod(func(a *App) { slices.Reverse(a.Secret) }), ErrMalformed, int64(secretAt + 3), "secret DGIs"},
		{"secret DGI twice in the sequence", mod(func(a *App) { a.DGIs = append(a.DGIs, a.DGIs[1]) }), ErrMalformed, -1, "secret DGIs"},
		{"secret DGI listed twice", mod(func(a *App) { a.Secret = []uint16{0x8000, 0x8000, 0x8010} }), ErrMalformed, -1, "secret DGIs"},
		{"secret value not sealed", mod(func(a *App) { a.DGIs[1].Value = []byte{0x07, 1, 2} }), ErrMalformed, -1, "secret DGI 8010"},
		{"sealed value too short for AES-KW", mod(func(a *App) { a.DGIs[1].Value = SealValueOf(batchFill(8, 1)) }), ErrMalformed, -1, "secret DGI 8010"},
		{"sealed key wrapped to the wrong length", mod(func(a *App) {
			a.DGIs[2].Value, _ = SealKeysOf(ProtectedKey{Type: KeyDES2, Wrapped: batchFill(16, 1)})
		}), ErrMalformed, -1, "secret DGI 8000"},
		{"MAC key type unknown", patch(good, keyAt, 0x7F), ErrMalformed, int64(keyAt), "MAC key type"},
		{"MAC key DES under AES-KW", patch(good, keyAt, byte(KeyDES2)), ErrMalformed, int64(keyAt), "MAC key type"},
		{"MAC key wrapped length", mod(func(a *App) { a.MACKey.Wrapped = batchFill(16, 1) }), ErrMalformed, int64(keyAt + 4), "MAC key length"},
		{"MAC key longer than body", patch(good, keyAt+4, 200), ErrTruncated, int64(keyAt + 4), "wrapped MAC key"},
		{"MAC length 4", mod(func(a *App) { a.MAC = a.MAC[:4] }), ErrMalformed, int64(macAt), "MAC length"},
		{"MAC length 0", mod(func(a *App) { a.MAC = nil }), ErrMalformed, int64(macAt), "MAC length"},
		{"bytes after the MAC", mod(func(a *App) { a.MAC = batchFill(9, 1) }), ErrMalformed, int64(macAt), "MAC length"},
		{"duplicate AID", batchChip(t, valid, valid), ErrMalformed, int64(end), "chip app 1 AID"},
	}
	runFormatCases(t, tests, func(b []byte) (any, error) { return ParseChipData(b) })

	// Every prefix of valid chip data is refused as truncated or malformed,
	// never accepted.
	for n := range len(good) {
		if _, err := ParseChipData(good[:n]); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
			t.Errorf("prefix of %d bytes: error %v", n, err)
		}
	}
}

func TestChipDataLimits(t *testing.T) {
	a := batchApp("A0000000031010", batchKEK)
	a.AID = batchFill(MaxAIDLen, 0xA0)
	a.DGIs = append(a.DGIs, DGI{Tag: 0x0202, Value: batchFill(0xFFFF, 0x55)})
	in := batchChip(t, a)
	cd, err := ParseChipData(in)
	if err != nil {
		t.Fatalf("16-byte AID and a 65535-byte DGI: %v", err)
	}
	if d, ok := cd.Apps[0].DGI(0x0202); !ok || len(d.Value) != 0xFFFF {
		t.Errorf("DGI 0202: %d bytes, %v", len(d.Value), ok)
	}

	a.AID = batchFill(MinAIDLen, 0xA0)
	if _, err := ParseChipData(batchChip(t, a)); err != nil {
		t.Errorf("5-byte AID: %v", err)
	}

	a.DGIs = append(a.DGIs, DGI{Tag: 0x0203, Value: batchFill(0x10000, 0x55)})
	_, err = (&ChipData{Apps: []App{a}}).Marshal()
	wantFormatError(t, err, ErrTooLong, -1, "DGI 0203")

	many := make([]App, 256)
	for i := range many {
		many[i] = batchApp("A00000000310", batchKEK)
		many[i].AID = append(many[i].AID, byte(i>>8), byte(i))
	}
	_, err = (&ChipData{Apps: many}).Marshal()
	wantFormatError(t, err, ErrTooLong, 1, "application count")
	if _, err := (&ChipData{Apps: many[:255]}).Marshal(); err != nil {
		t.Errorf("255 applications: %v", err)
	}

	a = batchApp("A0000000031010", batchKEK)
	a.AID = batchFill(256, 0xA0)
	_, err = (&ChipData{Apps: []App{a}}).Marshal()
	wantFormatError(t, err, ErrTooLong, 2, "AID length")
}

func TestAppBuilders(t *testing.T) {
	var a App
	a.Raw = []byte{1}
	a.AddSecret(0x8010, SealValueOf(batchFill(16, 1)))
	a.AddDGI(0x0101, []byte{0x70, 0})
	a.AddSecret(0x8000, SealValueOf(batchFill(16, 2)))
	a.AddSecret(0x8000, SealValueOf(batchFill(16, 3))) // listed once, stored twice: the parser refuses it
	if a.Raw != nil {
		t.Error("AddDGI kept a stale Raw")
	}
	if want := []uint16{0x8000, 0x8010}; !slices.Equal(a.Secret, want) {
		t.Errorf("Secret = %04X, want %04X", a.Secret, want)
	}
	for tag, want := range map[uint16]bool{0x8000: true, 0x8010: true, 0x0101: false, 0x9000: false} {
		if got := a.IsSecret(tag); got != want {
			t.Errorf("IsSecret(%04X) = %v", tag, got)
		}
	}
	if d, ok := a.DGI(0x8000); !ok || !bytes.Equal(d.Value, SealValueOf(batchFill(16, 2))) {
		t.Errorf("DGI(8000) = %v, %v; want the first one", d, ok)
	}
	if _, ok := a.DGI(0x9000); ok {
		t.Error("DGI(9000) found an absent DGI")
	}
}

func TestMACInput(t *testing.T) {
	a := batchApp("A0000000031010", batchKEK)
	built, err := a.MACInput()
	if err != nil {
		t.Fatal(err)
	}
	enc := batchChip(t, a)[2:]
	if want := enc[:len(enc)-1-MACLen]; !bytes.Equal(built, want) {
		t.Fatalf("MACInput of a built App:\n%X\nwant\n%X", built, want)
	}

	// A parsed App gives the bytes as received, even when they are not what
	// its fields would encode to today.
	cd, err := ParseChipData(batchChip(t, a))
	if err != nil {
		t.Fatal(err)
	}
	p := &cd.Apps[0]
	p.KEK.Version = 9
	got, err := p.MACInput()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, built) {
		t.Errorf("MACInput of a parsed App is not its raw bytes")
	}
	if &got[0] != &p.Raw[0] {
		t.Error("MACInput of a parsed App copied Raw")
	}
	// Without Raw it encodes the fields as they are.
	p.Raw = nil
	if got, _ := p.MACInput(); bytes.Equal(got, built) {
		t.Error("MACInput without Raw ignored a changed field")
	}
	// The MAC does not take part, nor whether it is set yet.
	for _, mac := range [][]byte{batchFill(MACLen, 0x77), nil, {1, 2, 3}} {
		a.MAC = mac
		if got, _ := a.MACInput(); !bytes.Equal(got, built) {
			t.Errorf("with MAC %X, MACInput differs", mac)
		}
	}
	a.DGIs = append(a.DGIs, DGI{Tag: 0x0102, Value: batchFill(0x10000, 1)})
	if _, err := a.MACInput(); !errors.Is(err, ErrTooLong) {
		t.Errorf("MACInput of an unencodable App: %v, want ErrTooLong", err)
	}
}

func TestParseRecord(t *testing.T) {
	chip := batchChip(t, batchApp("A0000000031010", batchKEK))
	group := func(mic MIC, data []byte) []byte {
		out, err := AppendGroup(nil, Group{MIC: mic, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	emboss := group(MICEmboss, []byte("4761 7390 0101 0010"))
	tests := []formatCase{
		{"empty", nil, ErrMalformed, 0, "record"},
		{"MIC twice", slices.Concat(emboss, emboss), ErrMalformed, int64(len(emboss)), "group 1 MIC"},
		{"reserved MIC", slices.Concat(emboss, []byte{0, 0, 0, 0, 0}), ErrMalformed, int64(len(emboss)), "group 1 MIC"},
		{"bad chip data", slices.Concat(emboss, group(MICChip, chip[:len(chip)-1])), ErrTruncated, int64(len(emboss) + 5 + 14), "chip app 0 body"},
		{"chip version", slices.Concat(group(MICChip, []byte{2, 1})), ErrVersion, 5, "chip version"},
	}
	runFormatCases(t, tests, func(b []byte) (any, error) { return ParseRecord(b) })

	// Groups with MICs this package does not know pass through unchanged,
	// in their order.
	in := slices.Concat(group(0xC3, []byte("carrier A")), emboss, group(0x2A, nil), group(MICChip, chip))
	r, err := ParseRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{{0xC3, []byte("carrier A")}, {MICEmboss, []byte("4761 7390 0101 0010")}, {0x2A, nil}, {MICChip, chip}}
	if diff := cmp.Diff(want, r.Groups, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	out, err := r.Marshal()
	if err != nil || !bytes.Equal(out, in) {
		t.Errorf("re-encoded %X, %v; want %X", out, err, in)
	}
	if !bytes.Equal(r.Raw, in) {
		t.Error("Raw is not the input")
	}
	if g, ok := r.Group(0x2A); !ok || len(g.Data) != 0 {
		t.Errorf("Group(2A) = %v, %v", g, ok)
	}
	if _, ok := r.Group(MICGraphics); ok {
		t.Error("Group(graphics) found an absent group")
	}
}

func TestRecordMarshalErrors(t *testing.T) {
	tests := []struct {
		name  string
		rec   Record
		kind  error
		field string
	}{
		{"no groups", Record{}, ErrMalformed, "record"},
		{"reserved MIC", Record{Groups: []Group{{MIC: 0xFF}}}, ErrMalformed, "group 0 MIC"},
		{"MIC twice", Record{Groups: []Group{{MIC: 3}, {MIC: 3}}}, ErrMalformed, "group 1 MIC"},
		{"bad chip data", Record{Groups: []Group{{MIC: MICChip, Data: []byte{1, 0}}}}, ErrMalformed, "chip application count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.rec.AppendTo([]byte("prefix"))
			if string(out) != "prefix" {
				t.Errorf("AppendTo changed dst on error: %q", out)
			}
			wantFormatError(t, err, tt.kind, -1, tt.field)
		})
	}
}

func TestRecordMaxLength(t *testing.T) {
	big := Record{Groups: []Group{{MIC: MICGraphics, Data: make([]byte, MaxGroupLen)}}}
	out, err := big.Marshal()
	if err != nil {
		t.Fatalf("a record of MaxRecordLen bytes: %v", err)
	}
	if len(out) != MaxRecordLen {
		t.Fatalf("encoded %d bytes, want %d", len(out), MaxRecordLen)
	}
	if _, err := ParseRecord(out); err != nil {
		t.Errorf("parsing a record of MaxRecordLen bytes: %v", err)
	}
	big.Groups[0].Data = make([]byte, MaxGroupLen+1)
	_, err = big.Marshal()
	wantFormatError(t, err, ErrTooLong, 1, "group 0 length")
	_, err = ParseRecord(make([]byte, MaxRecordLen+1))
	wantFormatError(t, err, ErrTooLong, 0, "record")
}

func TestPutApp(t *testing.T) {
	a := batchApp("A0000000031010", batchKEK)
	b := batchApp("A0000000041010", batchKEK3)
	// An application whose fields encode differently from its bytes cannot
	// exist (the encoding is canonical), so "byte-identical" is checked by
	// address: the bytes of b must be copied from the old group unchanged.
	chip := batchChip(t, a, b)
	rec := &Record{Groups: []Group{{MIC: MICEmboss, Data: []byte("EMBOSS")}, {MIC: MICChip, Data: chip}}}
	old := slices.Clone(chip)

	a2 := batchApp("A0000000031010", batchKEK)
	a2.AddDGI(0x0202, []byte{0x70, 0x03, 0x9F, 0x08, 0x00})
	if err := rec.PutApp(&a2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chip, old) {
		t.Error("PutApp modified the old chip group's bytes")
	}
	cd, err := rec.Chip()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]App{a2, b}, cd.Apps, batchIgnoreRaw); diff != "" {
		t.Errorf("after replacing (-want +got):\n%s", diff)
	}
	oldB, _ := ParseChipData(old)
	if !bytes.Equal(cd.Apps[1].Raw, oldB.Apps[1].Raw) {
		t.Error("the other application's bytes changed")
	}

	c := batchApp("A0000000651010", batchKEK)
	if err := rec.PutApp(&c); err != nil {
		t.Fatal(err)
	}
	cd, _ = rec.Chip()
	if got := len(cd.Apps); got != 3 || !bytes.Equal(cd.Apps[2].AID, c.AID) {
		t.Errorf("after adding: %d applications, last %X", got, cd.Apps[len(cd.Apps)-1].AID)
	}
	if rec.Groups[0].MIC != MICEmboss || rec.Raw != nil {
		t.Error("PutApp disturbed the other groups or kept Raw")
	}

	// A bad application leaves the record as it was.
	before := slices.Clone(rec.Groups[1].Data)
	bad := batchApp("A0000000031010", batchKEK)
	bad.KEK.Scheme = 9
	if err := rec.PutApp(&bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("PutApp of a bad application: %v", err)
	}
	if !bytes.Equal(rec.Groups[1].Data, before) {
		t.Error("a refused PutApp changed the record")
	}

	// A record without a chip group gets one, at the end.
	rec = &Record{Groups: []Group{{MIC: MICEmboss, Data: []byte("EMBOSS")}}}
	if cd, err := rec.Chip(); cd != nil || err != nil {
		t.Errorf("Chip() without a chip group = %v, %v", cd, err)
	}
	if err := rec.PutApp(&a); err != nil {
		t.Fatal(err)
	}
	if len(rec.Groups) != 2 || rec.Groups[1].MIC != MICChip {
		t.Fatalf("groups %v", rec.Groups)
	}
	if _, err := rec.Marshal(); err != nil {
		t.Error(err)
	}

	// A record whose chip group is bad is refused.
	rec = &Record{Groups: []Group{{MIC: MICChip, Data: []byte{1, 0}}}}
	if err := rec.PutApp(&a); !errors.Is(err, ErrMalformed) {
		t.Errorf("PutApp into bad chip data: %v", err)
	}
}

func TestSetGroup(t *testing.T) {
	r := &Record{Groups: []Group{{MIC: MICEmboss, Data: []byte("A")}}, Raw: []byte{1}}
	if err := r.SetGroup(MICEmboss, []byte("B")); err != nil {
		t.Fatal(err)
	}
	if err := r.SetGroup(0xC0, []byte("C")); err != nil {
		t.Fatal(err)
	}
	want := []Group{{MICEmboss, []byte("B")}, {0xC0, []byte("C")}}
	if diff := cmp.Diff(want, r.Groups); diff != "" || r.Raw != nil {
		t.Errorf("groups (-want +got):\n%s, raw %X", diff, r.Raw)
	}
	if err := r.SetGroup(0x00, nil); !errors.Is(err, ErrBadInput) {
		t.Errorf("SetGroup(00): %v", err)
	}
}

// batchRecord2K returns a record of about 2 KiB: emboss and magnetic stripe
// groups and a chip application with record DGIs, sealed keys and a PIN
// block.
func batchRecord2K(t testing.TB) *Record {
	a := batchApp("A0000000031010", batchKEK)
	for i := range 14 {
		a.AddDGI(0x0201+uint16(i), append([]byte{0x70, 0x7E}, batchFill(0x7E, byte(i))...))
	}
	chip := batchChip(t, a)
	return &Record{Groups: []Group{
		{MIC: MICEmboss, Data: []byte("4761 7390 0101 0010\n12/27\nJ SMITH")},
		{MIC: MICMagStripe, Data: []byte("%B4761739001010010^SMITH/J^2712201000000000?;4761739001010010=27122010000000000?")},
		{MIC: MICChip, Data: chip},
	}}
}

func BenchmarkRecordDecode(b *testing.B) {
	in, err := batchRecord2K(b).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseRecord(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Chip(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordEncode(b *testing.B) {
	r := batchRecord2K(b)
	buf, err := r.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = r.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
