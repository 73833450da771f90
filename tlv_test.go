package perso_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/cardperso/perso"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// tlvNode is a parsed data object in comparable form: Value for a primitive
// tag, Children for a constructed one.
type tlvNode struct {
	Tag      string    `json:"tag"`
	Value    string    `json:"value,omitempty"`
	Children []tlvNode `json:"children,omitempty"`
}

func tlvPrim(tag, value string) tlvNode           { return tlvNode{Tag: tag, Value: value} }
func tlvCons(tag string, kids ...tlvNode) tlvNode { return tlvNode{Tag: tag, Children: kids} }

// tlvTree turns parsed data objects into nodes, parsing every template.
func tlvTree(t testing.TB, ts []perso.TLV) []tlvNode {
	t.Helper()
	var out []tlvNode
	for _, x := range ts {
		n := tlvNode{Tag: x.Tag.String()}
		if x.Tag.Constructed() {
			kids, err := x.Children()
			if err != nil {
				t.Fatalf("Children of %v: %v", x.Tag, err)
			}
			n.Children = tlvTree(t, kids)
		} else {
			n.Value = fmt.Sprintf("%X", x.Value)
		}
		out = append(out, n)
	}
	return out
}

// tlvTag reads a tag from hex without checking it, so that tests can
// hand the Builder tags it must refuse.
func tlvTag(t testing.TB, s string) perso.Tag {
	t.Helper()
	var tag perso.Tag
	for _, c := range tlvHex(t, s) {
		tag = tag<<8 | perso.Tag(c)
	}
	return tag
}

func tlvHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// tlvBuild writes nodes with a Builder.
func tlvBuild(t testing.TB, b *perso.Builder, nodes []tlvNode) {
	for _, n := range nodes {
		tag := tlvTag(t, n.Tag)
		if tag.Constructed() {
			b.AddTLV(tag, func(b *perso.Builder) { tlvBuild(t, b, n.Children) })
		} else {
			b.AddPrimitive(tag, tlvHex(t, n.Value))
		}
	}
}

// tlvRebuild re-encodes parsed data objects from their tags and values
// alone, parsing every template.
func tlvRebuild(b *perso.Builder, ts []perso.TLV) {
	for _, x := range ts {
		if !x.Tag.Constructed() {
			b.AddPrimitive(x.Tag, x.Value)
			continue
		}
		b.AddTLV(x.Tag, func(b *perso.Builder) {
			kids, err := x.Children()
			if err != nil {
				b.SetError(err)
				return
			}
			tlvRebuild(b, kids)
		})
	}
}

// tlvWantErr is the part of a *TLVError a test checks.
type tlvWantErr struct {
	Offset int
	Tag    perso.Tag
	Reason string // a substring of Reason
}

func tlvCheckErr(t testing.TB, err error, want *tlvWantErr) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var te *perso.TLVError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want a *TLVError", err)
	}
	if te.Offset != want.Offset || te.Tag != want.Tag || !strings.Contains(te.Reason, want.Reason) {
		t.Fatalf("error = %v (offset %d, tag %v), want offset %d, tag %v, reason containing %q",
			err, te.Offset, te.Tag, want.Offset, want.Tag, want.Reason)
	}
	if !errors.Is(err, perso.ErrBadInput) {
		t.Fatalf("error %v does not wrap ErrBadInput", err)
	}
	if !strings.HasPrefix(err.Error(), "perso: ") {
		t.Fatalf("error %q lacks the package prefix", err)
	}
}

func TestTagProperties(t *testing.T) {
	tests := []struct {
		tag         perso.Tag
		str         string
		len         int
		class       perso.TagClass
		constructed bool
		valid       bool
	}{
		{0x70, "70", 1, perso.ClassApplication, true, true},
		{0x5A, "5A", 1, perso.ClassApplication, false, true},
		{0x82, "82", 1, perso.ClassContextSpecific, false, true},
		{0xA5, "A5", 1, perso.ClassContextSpecific, true, true},
		{0x9F02, "9F02", 2, perso.ClassContextSpecific, false, true},
		{0x5F2A, "5F2A", 2, perso.ClassApplication, false, true},
		{0xBF0C, "BF0C", 2, perso.ClassContextSpecific, true, true},
		{0xDF8101, "DF8101", 3, perso.ClassPrivate, false, true},
		{0xFF8101, "FF8101", 3, perso.ClassPrivate, true, true},
		{0x04, "04", 1, perso.ClassUniversal, false, true},
		{0x30, "30", 1, perso.ClassUniversal, true, true},
		{0x9F00, "9F00", 2, perso.ClassContextSpecific, false, true},
		{0x00, "00", 1, perso.ClassUniversal, false, false},           // padding
		{0x9F, "9F", 1, perso.ClassContextSpecific, false, false},     // announces a second byte
		{0x7002, "7002", 2, perso.ClassApplication, true, false},      // 70 is a one-byte tag
		{0x9F81, "9F81", 2, perso.ClassContextSpecific, false, false}, // announces a third byte
		{0x9F0201, "9F0201", 3, perso.ClassContextSpecific, false, false},
		{0x9F8001, "9F8001", 3, perso.ClassContextSpecific, false, false}, // leading zero
		{0xDF818101, "DF818101", 4, perso.ClassPrivate, false, false},
	}
	for _, tt := range tests {
		got := []any{tt.tag.String(), tt.tag.Len(), tt.tag.Class(), tt.tag.Constructed(), tt.tag.Valid()}
		want := []any{tt.str, tt.len, tt.class, tt.constructed, tt.valid}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Tag %s (-want +got):\n%s", tt.str, diff)
		}
	}
}

func TestTagFormat(t *testing.T) {
	tag := perso.Tag(0x9F02)
	got := fmt.Sprintf("%v %s %X %04x %d %#v %q %6v|", tag, tag, tag, tag, tag, tag, tag, perso.Tag(0x5A))
	want := `9F02 9F02 9F02 9f02 40706 perso.Tag(0x9F02) "9F02"     5A|`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := perso.ClassPrivate.String(); got != "private" {
		t.Errorf("ClassPrivate = %q", got)
	}
}

func TestParseTag(t *testing.T) {
	tests := []struct {
		in  string
		tag perso.Tag
		n   int
		err *tlvWantErr
	}{
		{"9F0201", 0x9F02, 2, nil},
		{"5A", 0x5A, 1, nil},
		{"DF810105", 0xDF8101, 3, nil},
		{"", 0, 0, &tlvWantErr{0, 0, "missing tag"}},
		{"00", 0, 0, &tlvWantErr{0, 0, "padding"}},
		{"9F", 0, 0, &tlvWantErr{0, 0x9F, "truncated tag"}},
		{"DF81", 0, 0, &tlvWantErr{0, 0xDF81, "truncated tag"}},
		{"DF818101", 0, 0, &tlvWantErr{0, 0xDF8181, "more than 3 bytes"}},
		{"9F8001", 0, 0, &tlvWantErr{0, 0x9F80, "leading zero"}},
	}
	for _, tt := range tests {
		tag, n, err := perso.ParseTag(tlvHex(t, tt.in))
		tlvCheckErr(t, err, tt.err)
		if tag != tt.tag || n != tt.n {
			t.Errorf("ParseTag(%s) = %v, %d, want %v, %d", tt.in, tag, n, tt.tag, tt.n)
		}
	}
}

func TestParseTLVs(t *testing.T) {
	const S, L = perso.Strict, perso.Lenient
	tests := []struct {
		name string
		in   string
		mode perso.TLVMode
		want []tlvNode
		err  *tlvWantErr
	}{
		{"empty strict", "", S, nil, nil},
		{"empty lenient", "", L, nil, nil},
		{"zero length", "9F0200", S, []tlvNode{tlvPrim("9F02", "")}, nil},
		{"one byte short", "9F0206 0000000010", S, nil, &tlvWantErr{3, 0x9F02, "length 6 exceeds the 5 bytes left"}},
		{"missing length", "9F02", S, nil, &tlvWantErr{2, 0x9F02, "missing length"}},
		{"truncated tag", "5A0111 9F", L, []tlvNode{tlvPrim("5A", "11")}, &tlvWantErr{3, 0x9F, "truncated tag"}},
		{"4-byte tag", "DF81810100", L, nil, &tlvWantErr{0, 0xDF8181, "more than 3 bytes"}},
		{"3-byte tag", "DF810102AABB", S, []tlvNode{tlvPrim("DF8101", "AABB")}, nil},
		{"3-byte constructed tag FF8101 is no padding", "FF810103DF0100", L,
			[]tlvNode{tlvCons("FF8101", tlvPrim("DF01", ""))}, nil},
		{"leading zero tag strict", "9F800101FF", S, nil, &tlvWantErr{0, 0x9F80, "leading zero"}},
		{"leading zero tag lenient", "9F800101FF", L, []tlvNode{tlvPrim("9F8001", "FF")}, nil},
		{"primitive holding TLV-like bytes", "5A027000", S, []tlvNode{tlvPrim("5A", "7000")}, nil},
		{"constructed", "7007 5A0211229F0700", S, []tlvNode{tlvCons("70", tlvPrim("5A", "1122"), tlvPrim("9F07", ""))}, nil},
		{"empty template", "70009C0101", S, []tlvNode{tlvCons("70"), tlvPrim("9C", "01")}, nil},
		{"nested", "6F07 A505 BF0C02 5000", S, []tlvNode{tlvCons("6F", tlvCons("A5", tlvCons("BF0C", tlvPrim("50", ""))))}, nil},
		{"constructed holding non-TLV", "70025A05", L, nil, &tlvWantErr{4, 0x5A, "length 5 exceeds the 0 bytes left"}},
		{"child overruns its template, not the input", "70035A0511 2233445566", L, nil, &tlvWantErr{4, 0x5A, "exceeds the 1 bytes left"}},
		{"error deep inside", "6F08 A506 BF0C03 5002 41", S, nil, &tlvWantErr{9, 0x50, "exceeds"}},
		{"non-minimal 81 strict", "5A810111", S, nil, &tlvWantErr{1, 0x5A, "non-minimal length 8101"}},
		{"non-minimal 81 lenient", "5A810111", L, []tlvNode{tlvPrim("5A", "11")}, nil},
		{"non-minimal 82 leading zero strict", "5A820080" + strings.Repeat("11", 128), S, nil, &tlvWantErr{1, 0x5A, "non-minimal length 820080"}},
		{"non-minimal 82 leading zero lenient", "5A820080" + strings.Repeat("11", 128), L, []tlvNode{tlvPrim("5A", strings.Repeat("11", 128))}, nil},
		{"non-minimal inside template strict", "70045A810111", S, nil, &tlvWantErr{3, 0x5A, "non-minimal"}},
		{"minimal 81", "5A8180" + strings.Repeat("22", 128), S, []tlvNode{tlvPrim("5A", strings.Repeat("22", 128))}, nil},
		{"indefinite strict", "7080 9C0101 0000", S, nil, &tlvWantErr{1, 0x70, "indefinite"}},
		{"indefinite lenient", "7080 9C0101 0000", L, nil, &tlvWantErr{1, 0x70, "indefinite"}},
		{"5 length bytes", "5A85000000000111", L, nil, &tlvWantErr{1, 0x5A, "at most 4"}},
		{"length byte FF", "5AFF", L, nil, &tlvWantErr{1, 0x5A, "at most 4"}},
		{"truncated length bytes", "5A8201", L, nil, &tlvWantErr{1, 0x5A, "truncated length: 1 of 2"}},
		{"4-byte length overrun", "5A84FFFFFFFF11", L, nil, &tlvWantErr{6, 0x5A, "length 4294967295 exceeds the 1 bytes left"}},
		{"trailing garbage", "5A0111 FF", L, []tlvNode{tlvPrim("5A", "11")}, &tlvWantErr{3, 0xFF, "truncated tag"}},
		{"trailing padding strict", "5A0111 00", S, []tlvNode{tlvPrim("5A", "11")}, &tlvWantErr{3, 0, "padding"}},
		{"trailing padding lenient", "5A0111 0000", L, []tlvNode{tlvPrim("5A", "11")}, nil},
		{"only padding lenient", "000000", L, nil, nil},
		{"only padding strict", "000000", S, nil, &tlvWantErr{0, 0, "padding"}},
		{"padding everywhere lenient", "0000 5A0111 00 7005 005F200141 00", L,
			[]tlvNode{tlvPrim("5A", "11"), tlvCons("70", tlvPrim("5F20", "41"))}, nil},
		{"padding in a template strict", "7003 009C00", S, nil, &tlvWantErr{2, 0, "padding"}},
		{"padding in a template lenient", "7003 009C00", L, []tlvNode{tlvCons("70", tlvPrim("9C", ""))}, nil},
		{"FF is a tag, not padding", "5A0111 FF00", L, []tlvNode{tlvPrim("5A", "11")}, &tlvWantErr{5, 0xFF00, "missing length"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tlvHex(t, tt.in)
			ts, err := perso.ParseTLVs(in, tt.mode)
			tlvCheckErr(t, err, tt.err)
			if diff := cmp.Diff(tt.want, tlvTree(t, ts), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseTLVs(%s) (-want +got):\n%s", tt.in, diff)
			}
			if err == nil && tt.mode == perso.Strict {
				b := perso.NewBuilder(nil)
				tlvRebuild(b, ts)
				if out, err := b.Bytes(); err != nil || !bytes.Equal(out, in) {
					t.Errorf("rebuilt %X, %v; want %X", out, err, in)
				}
			}
		})
	}
}

// TestTLVMaximalLengths parses and builds values at each boundary of the
// length field, up to the 4-byte length, and the same input one byte short.
func TestTLVMaximalLengths(t *testing.T) {
	tests := []struct {
		n      int
		header string
	}{
		{0, "DF0100"},
		{127, "DF017F"},
		{128, "DF018180"},
		{255, "DF0181FF"},
		{256, "DF01820100"},
		{65535, "DF0182FFFF"},
		{65536, "DF0183010000"},
		{1<<24 - 1, "DF0183FFFFFF"},
		{1 << 24, "DF018401000000"},
	}
	for _, tt := range tests {
		value := bytes.Repeat([]byte{0xA5}, tt.n)
		b := perso.NewBuilder(nil)
		b.AddPrimitive(0xDF01, value)
		out, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		hdr := tlvHex(t, tt.header)
		if !bytes.HasPrefix(out, hdr) || len(out) != len(hdr)+tt.n {
			t.Fatalf("%d bytes: header %X, want %s", tt.n, out[:min(len(out), len(hdr))], tt.header)
		}
		got, err := perso.ParseTLV(out, perso.Strict)
		if err != nil || got.Tag != 0xDF01 || !bytes.Equal(got.Value, value) || !bytes.Equal(got.Raw, out) {
			t.Fatalf("%d bytes: ParseTLV = %v, %v", tt.n, got.Tag, err)
		}
		if tt.n == 0 {
			continue
		}
		_, err = perso.ParseTLVs(out[:len(out)-1], perso.Lenient)
		tlvCheckErr(t, err, &tlvWantErr{len(hdr), 0xDF01, fmt.Sprintf("length %d exceeds the %d bytes left", tt.n, tt.n-1)})

		// The same length as a template's, where the Builder moves the
		// contents up once it knows their length.
		b = perso.NewBuilder(nil)
		b.AddTLV(0xFF01, func(b *perso.Builder) { b.AddRaw(value) })
		out, err = b.Bytes()
		hdr[0] = 0xFF
		if err != nil || !bytes.HasPrefix(out, hdr) || !bytes.Equal(out[len(hdr):], value) {
			t.Fatalf("%d bytes in a template: %X.., %v", tt.n, out[:len(hdr)], err)
		}
	}
}

func TestParseTLV(t *testing.T) {
	tests := []struct {
		in   string
		mode perso.TLVMode
		want string // Raw
		err  *tlvWantErr
	}{
		{"5A0111", perso.Strict, "5A0111", nil},
		{"5A0111 00", perso.Strict, "", &tlvWantErr{3, 0, "1 bytes after the data object"}},
		{"00 5A0111 0000", perso.Lenient, "5A0111", nil},
		{"5A0111 9C00", perso.Lenient, "", &tlvWantErr{3, 0, "2 bytes after the data object"}},
		{"5A0111 9C", perso.Lenient, "", &tlvWantErr{3, 0, "1 bytes after"}},
		{"", perso.Strict, "", &tlvWantErr{0, 0, "no data object"}},
		{"0000", perso.Lenient, "", &tlvWantErr{2, 0, "no data object"}},
		{"5A02", perso.Strict, "", &tlvWantErr{2, 0x5A, "exceeds"}},
	}
	for _, tt := range tests {
		got, err := perso.ParseTLV(tlvHex(t, tt.in), tt.mode)
		tlvCheckErr(t, err, tt.err)
		if want := tlvHex(t, tt.want); !bytes.Equal(got.Raw, want) {
			t.Errorf("ParseTLV(%s).Raw = %X, want %X", tt.in, got.Raw, want)
		}
	}
}

func TestTLVReader(t *testing.T) {
	in := tlvHex(t, "00 9F0201FF 00 7003 9C0101 5A01")
	r := perso.NewTLVReader(in, perso.Lenient)
	var got []string
	for !r.Empty() {
		tag, ok := r.PeekTag()
		if !ok {
			t.Fatalf("PeekTag failed at offset %d", r.Offset())
		}
		var x perso.TLV
		out := &x
		if tag == 0x9F02 {
			out = nil // skipped
		}
		if !r.ReadTLV(out) {
			break
		}
		got = append(got, fmt.Sprintf("%v@%d:%X", tag, r.Offset(), x.Raw))
	}
	want := []string{"9F02@5:", "70@11:70039C0101"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	tlvCheckErr(t, r.Err(), &tlvWantErr{13, 0x5A, "exceeds"})
	// The error sticks.
	if r.ReadTLV(nil) || r.Err() == nil || r.Offset() != 11 {
		t.Errorf("read after an error: Err %v, offset %d", r.Err(), r.Offset())
	}
	if _, ok := r.PeekTag(); ok {
		t.Error("PeekTag after an error succeeded")
	}

	// The end of the input is no error.
	r = perso.NewTLVReader(tlvHex(t, "9C0101 0000"), perso.Lenient)
	if !r.ReadTLV(nil) || !r.Empty() || r.ReadTLV(nil) || r.Err() != nil || r.Offset() != 5 {
		t.Errorf("end of input: Empty %v, Err %v, offset %d", r.Empty(), r.Err(), r.Offset())
	}
	// Strict mode has no padding.
	r = perso.NewTLVReader(tlvHex(t, "9C0101 00"), perso.Strict)
	if !r.ReadTLV(nil) || r.Empty() {
		t.Error("strict reader took 00 for padding")
	}
	if _, ok := r.PeekTag(); ok {
		t.Error("strict PeekTag read 00 as a tag")
	}
}

func TestTLVChildren(t *testing.T) {
	if _, err := (perso.TLV{Tag: 0x5A, Value: []byte{1}}).Children(); err == nil {
		t.Error("Children of a primitive succeeded")
	}
	// A TLV made in code with a malformed template.
	_, err := perso.TLV{Tag: 0x70, Value: tlvHex(t, "5A0111 9F")}.Children()
	tlvCheckErr(t, err, &tlvWantErr{3, 0x9F, "truncated tag"})
	// Children are read one level deep: a fault further down is the
	// grandchild's Children's to find.
	kids, err := perso.TLV{Tag: 0x70, Value: tlvHex(t, "A503 5A0511")}.Children()
	if err != nil || len(kids) != 1 {
		t.Fatalf("Children = %v, %v", kids, err)
	}
	if _, err := kids[0].Children(); err == nil {
		t.Error("grandchild's fault not found")
	}
}

func TestTLVVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/tlv_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	type verdict struct {
		OK     bool   `json:"ok"`
		Offset int    `json:"offset"`
		Tag    string `json:"tag"`
	}
	var v struct {
		Decode []struct {
			Source       string    `json:"source"`
			Hex          string    `json:"hex"`
			Lenient      []tlvNode `json:"lenient"`
			LenientError *verdict  `json:"lenient_error"`
			Strict       verdict   `json:"strict"`
		} `json:"decode"`
		DecodeErrors []struct {
			Source  string    `json:"source"`
			Hex     string    `json:"hex"`
			Offset  int       `json:"offset"`
			Tag     string    `json:"tag"`
			Partial []tlvNode `json:"partial"`
		} `json:"decode_errors"`
		Encode []struct {
			Source string    `json:"source"`
			Tree   []tlvNode `json:"tree"`
			Hex    string    `json:"hex"`
			Error  bool      `json:"error"`
		} `json:"encode"`
		Paths []struct {
			Source string   `json:"source"`
			Hex    string   `json:"hex"`
			Path   []string `json:"path"`
			Value  string   `json:"value"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Decode) == 0 || len(v.DecodeErrors) == 0 || len(v.Encode) == 0 || len(v.Paths) == 0 {
		t.Fatal("vector file has an empty section")
	}
	wantErr := func(v *verdict) *tlvWantErr {
		if v == nil || v.OK {
			return nil
		}
		return &tlvWantErr{Offset: v.Offset, Tag: tlvTag(t, v.Tag)}
	}
	for _, d := range v.Decode {
		in := tlvHex(t, d.Hex)
		ts, err := perso.ParseTLVs(in, perso.Lenient)
		if tlvCheckErr(t, err, wantErr(d.LenientError)); err == nil {
			if diff := cmp.Diff(d.Lenient, tlvTree(t, ts), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: lenient %s (-want +got):\n%s", d.Source, d.Hex, diff)
			}
		}
		strict, err := perso.ParseTLVs(in, perso.Strict)
		tlvCheckErr(t, err, wantErr(&d.Strict))
		if err == nil {
			b := perso.NewBuilder(nil)
			tlvRebuild(b, strict)
			if out, err := b.Bytes(); err != nil || !bytes.Equal(out, in) {
				t.Errorf("%s: %s rebuilt as %X, %v", d.Source, d.Hex, out, err)
			}
		}
	}
	for _, d := range v.DecodeErrors {
		ts, err := perso.ParseTLVs(tlvHex(t, d.Hex), perso.Lenient)
		tlvCheckErr(t, err, &tlvWantErr{Offset: d.Offset, Tag: tlvTag(t, d.Tag)})
		if diff := cmp.Diff(d.Partial, tlvTree(t, ts), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: %s read before the error (-want +got):\n%s", d.Source, d.Hex, diff)
		}
	}
	for _, e := range v.Encode {
		b := perso.NewBuilder(nil)
		tlvBuild(t, b, e.Tree)
		out, err := b.Bytes()
		switch {
		case e.Error && err == nil:
			t.Errorf("%s: Builder wrote %X, want an error", e.Source, out)
		case e.Error:
			if !errors.Is(err, perso.ErrBadInput) {
				t.Errorf("%s: error %v does not wrap ErrBadInput", e.Source, err)
			}
		case err != nil || !bytes.Equal(out, tlvHex(t, e.Hex)):
			t.Errorf("%s: Builder wrote %X, %v; want %s", e.Source, out, err, e.Hex)
		}
	}
	for _, p := range v.Paths {
		var path []perso.Tag
		for _, s := range p.Path {
			path = append(path, tlvTag(t, s))
		}
		got, ok := perso.FindTLVPath(tlvHex(t, p.Hex), path...)
		if !ok || fmt.Sprintf("%X", got.Value) != p.Value {
			t.Errorf("%s: FindTLVPath(%v) = %X, %v; want %s", p.Source, p.Path, got.Value, ok, p.Value)
		}
	}
}

func TestBuilder(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *perso.Builder)
		want  string
	}{
		{"nothing", func(b *perso.Builder) {}, ""},
		{"primitive", func(b *perso.Builder) { b.AddPrimitive(0x9F02, tlvHex(t, "000000001000")) }, "9F0206000000001000"},
		{"template", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) {
				b.AddPrimitive(0x5F24, tlvHex(t, "301231"))
				b.AddPrimitive(0x9F07, tlvHex(t, "FF00"))
			})
		}, "700B 5F2403301231 9F0702FF00"},
		{"nil contents", func(b *perso.Builder) { b.AddTLV(0xA5, nil) }, "A500"},
		{"raw", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.AddRaw(tlvHex(t, "5A810111")) })
		}, "7004 5A810111"},
		{"template crossing 127 bytes", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.AddPrimitive(0x5F20, bytes.Repeat([]byte{'A'}, 126)) })
		}, "708181 5F207E" + strings.Repeat("41", 126)},
		{"nested templates each moved up", func(b *perso.Builder) {
			b.AddTLV(0x6F, func(b *perso.Builder) {
				b.AddPrimitive(0x84, tlvHex(t, "A0000000031010"))
				b.AddTLV(0xA5, func(b *perso.Builder) {
					b.AddTLV(0xBF0C, func(b *perso.Builder) {
						b.AddPrimitive(0xDF01, bytes.Repeat([]byte{0xEE}, 300))
					})
				})
			})
		}, "6F820143 8407A0000000031010 A5820136 BF0C820131 DF0182012C" + strings.Repeat("EE", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b perso.Builder
			tt.build(&b)
			out, err := b.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if want := tlvHex(t, tt.want); !bytes.Equal(out, want) {
				t.Fatalf("got %X\nwant %X", out, want)
			}
		})
	}

	b := perso.NewBuilder([]byte("prefix"))
	b.AddPrimitive(0x9C, []byte{1})
	if out, err := b.Bytes(); err != nil || string(out) != "prefix\x9c\x01\x01" {
		t.Errorf("NewBuilder(prefix): %q, %v", out, err)
	}
}

func TestBuilderErrors(t *testing.T) {
	sentinel := errors.New("record 7: bad expiry date")
	tests := []struct {
		name  string
		build func(b *perso.Builder)
		want  string
	}{
		{"incomplete tag", func(b *perso.Builder) { b.AddPrimitive(0x9F, nil) }, "perso: TLV 9F: truncated tag"},
		{"tag 00", func(b *perso.Builder) { b.AddPrimitive(0x00, nil) }, "perso: TLV 00: 00 is padding"},
		{"4-byte tag", func(b *perso.Builder) { b.AddPrimitive(0xDF818101, nil) }, "tag of more than 3 bytes"},
		{"misread tag", func(b *perso.Builder) { b.AddPrimitive(0x5A01, nil) }, "first byte 5A does not announce 2 tag bytes"},
		{"leading zero", func(b *perso.Builder) { b.AddPrimitive(0x9F8001, nil) }, "leading zero"},
		{"primitive tag as template", func(b *perso.Builder) { b.AddTLV(0x5A, nil) }, "perso: TLV 5A: primitive tag used for a template"},
		{"constructed tag as primitive", func(b *perso.Builder) { b.AddPrimitive(0x70, nil) }, "perso: TLV 70: constructed tag given a primitive value"},
		{"nested fault", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.AddPrimitive(0xBF0C, nil) })
		}, "perso: TLV BF0C"},
		{"SetError", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.SetError(sentinel) })
		}, sentinel.Error()},
		{"Bytes inside", func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.Bytes() })
		}, "Builder.Bytes called while a template or DGI is open"},
		{"first error wins", func(b *perso.Builder) {
			b.AddPrimitive(0x9F, nil)
			b.AddTLV(0x5A, nil)
			b.SetError(sentinel)
		}, "perso: TLV 9F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b perso.Builder
			tt.build(&b)
			// Nothing is written after a failure.
			called := false
			b.AddTLV(0x70, func(*perso.Builder) { called = true })
			b.AddDGI(0x0101, func(*perso.Builder) { called = true })
			b.AddPrimitive(0x5A, nil)
			b.AddRaw([]byte{1})
			b.AddDGIValue(0x0101, nil)
			out, err := b.Bytes()
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != nil || called {
				t.Fatalf("Bytes = %X, %v (callback run: %v); want an error containing %q", out, err, called, tt.want)
			}
			if err != sentinel && !errors.Is(err, perso.ErrBadInput) {
				t.Errorf("%v does not wrap ErrBadInput", err)
			}
		})
	}
}

func TestFindTLV(t *testing.T) {
	fci := tlvHex(t, "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000041010500A4D617374657263617264870101")
	dir := tlvHex(t, "BF0C12 6105 50034F4E45 6109 4F02A001 5003545756")
	tests := []struct {
		name string
		got  func() (perso.TLV, bool)
		want string // Raw, "" when not found
	}{
		{"top level", func() (perso.TLV, bool) { return perso.FindTLV(fci, 0x6F) }, fmt.Sprintf("%X", fci)},
		{"deep", func() (perso.TLV, bool) { return perso.FindTLV(fci, 0x87) }, "870101"},
		{"absent", func() (perso.TLV, bool) { return perso.FindTLV(fci, 0x9F38) }, ""},
		{"first in encoding order", func() (perso.TLV, bool) { return perso.FindTLV(dir, 0x50) }, "50034F4E45"},
		{"malformed before", func() (perso.TLV, bool) { return perso.FindTLV(tlvHex(t, "5A05 9C0101"), 0x9C) }, ""},
		{"found before a fault", func() (perso.TLV, bool) { return perso.FindTLV(tlvHex(t, "9C0101 5A05"), 0x9C) }, "9C0101"},
		{"method", func() (perso.TLV, bool) {
			top, _ := perso.ParseTLV(fci, perso.Strict)
			return top.Find(0x4F)
		}, "4F07A0000000041010"},
		{"method excludes itself", func() (perso.TLV, bool) {
			top, _ := perso.ParseTLV(fci, perso.Strict)
			return top.Find(0x6F)
		}, ""},
		{"method on primitive", func() (perso.TLV, bool) {
			return perso.TLV{Tag: 0x5A, Value: tlvHex(t, "5A0111")}.Find(0x5A)
		}, ""},
		{"path", func() (perso.TLV, bool) { return perso.FindTLVPath(fci, 0x6F, 0xA5, 0xBF0C, 0x61, 0x87) }, "870101"},
		{"path to a template", func() (perso.TLV, bool) { return perso.FindTLVPath(fci, 0x6F, 0xA5) }, "A51DBF0C1A61184F07A0000000041010500A4D617374657263617264870101"},
		{"path skips a level", func() (perso.TLV, bool) { return perso.FindTLVPath(fci, 0x6F, 0xBF0C) }, ""},
		{"path tries the next match", func() (perso.TLV, bool) { return perso.FindTLVPath(dir, 0xBF0C, 0x61, 0x4F) }, "4F02A001"},
		{"empty path", func() (perso.TLV, bool) { return perso.FindTLVPath(fci) }, ""},
		{"method path", func() (perso.TLV, bool) {
			top, _ := perso.ParseTLV(dir, perso.Strict)
			return top.FindPath(0x61, 0x50)
		}, "50034F4E45"},
		{"method path on primitive", func() (perso.TLV, bool) {
			return perso.TLV{Tag: 0x5A, Value: tlvHex(t, "5A0111")}.FindPath(0x5A)
		}, ""},
	}
	for _, tt := range tests {
		got, ok := tt.got()
		if ok != (tt.want != "") || fmt.Sprintf("%X", got.Raw) != tt.want {
			t.Errorf("%s: got %X, %v; want %s", tt.name, got.Raw, ok, tt.want)
		}
	}
}

func TestTLVRedaction(t *testing.T) {
	const pan = "5413330089600119"
	rec := perso.TLV{Tag: 0x70, Value: tlvHex(t, "5A08"+pan+" 5713"+pan+"D25122010000000000000F 5F2002412F 9F0702FF00 DF0103123456 7700 9C0101")}
	tests := []struct {
		name string
		tlv  perso.TLV
		want string
	}{
		{"public", perso.TLV{Tag: 0x9F02, Value: tlvHex(t, "000000001000")}, "9F02=000000001000"},
		{"empty", perso.TLV{Tag: 0x9F02}, "9F02="},
		{"PAN", perso.TLV{Tag: 0x5A, Value: tlvHex(t, pan)}, "5A=<PAN data, 8 bytes>"},
		{"PIN data", perso.TLV{Tag: 0x99, Value: tlvHex(t, "1234")}, "99=<secret, 2 bytes>"},
		{"record", rec, "70{5A=<PAN data, 8 bytes> 57=<PAN data, 19 bytes> 5F20=<personal data, 2 bytes> 9F07=FF00 DF01=<unclassified, 3 bytes> 77{} 9C=01}"},
		{"nested", perso.TLV{Tag: 0x6F, Value: tlvHex(t, "A507 BF0C04 5A0211227000 8401AA")}, "6F{A5{BF0C{5A=<PAN data, 2 bytes>}} 70{} 84=AA}"},
		{"malformed", perso.TLV{Tag: 0x70, Value: tlvHex(t, "5A08"+pan[:4])}, "70=<malformed template, 4 bytes>"},
	}
	for _, tt := range tests {
		if got := tt.tlv.String(); got != tt.want {
			t.Errorf("%s: String() = %q\nwant %q", tt.name, got, tt.want)
		}
	}
	// No way of printing shows the PAN.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("record", "tlv", rec, "dgi", perso.DGI{Tag: 0x0101, Value: rec.Value})
	outputs := []string{
		fmt.Sprintf("%v %s %x %X %d %#v %+v %q", rec, rec, rec, rec, rec, rec, rec, rec),
		fmt.Sprint([]perso.TLV{rec}),
		logged.String(),
	}
	for _, out := range outputs {
		if strings.Contains(strings.ToUpper(out), pan) || strings.Contains(out, "[90 8") || strings.Contains(out, "84 19 51") {
			t.Errorf("output shows the PAN: %s", out)
		}
	}
}

func TestParseDGIs(t *testing.T) {
	long := func(n int) string { return strings.Repeat("5A", n) }
	tests := []struct {
		name string
		in   string
		want []perso.DGI // Raw is checked as the concatenation
		err  *perso.DGIError
	}{
		{"empty", "", nil, nil},
		{"empty value", "9102 00", []perso.DGI{{Tag: 0x9102, Value: []byte{}}}, nil},
		{"254: one length byte", "0101 FE" + long(254), []perso.DGI{{Tag: 0x0101, Value: bytes.Repeat([]byte{0x5A}, 254)}}, nil},
		{"255: three length bytes", "0101 FF00FF" + long(255), []perso.DGI{{Tag: 0x0101, Value: bytes.Repeat([]byte{0x5A}, 255)}}, nil},
		{"65535", "8000 FFFFFF" + long(65535), []perso.DGI{{Tag: 0x8000, Value: bytes.Repeat([]byte{0x5A}, 65535)}}, nil},
		{"two", "9000 03 112233 9010 02 0303", []perso.DGI{{Tag: 0x9000, Value: tlvHex(t, "112233")}, {Tag: 0x9010, Value: tlvHex(t, "0303")}}, nil},
		{"non-minimal FF length", "0101 FF00FE" + long(254), nil, &perso.DGIError{Offset: 0, Tag: 0x0101, Reason: "non-minimal length FF00FE"}},
		{"non-minimal FF length zero", "0101 FF0000", nil, &perso.DGIError{Offset: 0, Tag: 0x0101, Reason: "non-minimal length FF0000"}},
		{"truncated identifier", "01", nil, &perso.DGIError{Offset: 0, Reason: "truncated header"}},
		{"truncated header", "0101", nil, &perso.DGIError{Offset: 0, Reason: "truncated header"}},
		{"truncated long length", "0101 FF01", nil, &perso.DGIError{Offset: 0, Tag: 0x0101, Reason: "truncated 3-byte length"}},
		{"truncated value", "9000 03 1122", nil, &perso.DGIError{Offset: 0, Tag: 0x9000, Reason: "length 3 exceeds the 2 bytes left"}},
		{"fault in the second", "9010 02 0303 0102 05 11", []perso.DGI{{Tag: 0x9010, Value: tlvHex(t, "0303")}},
			&perso.DGIError{Offset: 5, Tag: 0x0102, Reason: "length 5 exceeds the 1 bytes left"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tlvHex(t, tt.in)
			got, err := perso.ParseDGIs(in)
			if tt.err == nil && err != nil || tt.err != nil && !cmp.Equal(err, error(tt.err)) {
				t.Fatalf("error = %#v, want %#v", err, tt.err)
			}
			if err != nil && !errors.Is(err, perso.ErrBadInput) {
				t.Errorf("%v does not wrap ErrBadInput", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(perso.DGI{}, "Raw")); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			var raws, rebuilt []byte
			for _, d := range got {
				raws = append(raws, d.Raw...)
				rebuilt = perso.AppendDGI(rebuilt, d.Tag, d.Value)
			}
			if !bytes.HasPrefix(in, raws) || !bytes.Equal(raws, rebuilt) {
				t.Errorf("Raw %X, re-encoded %X", raws, rebuilt)
			}
		})
	}
}

func TestDGIBuilder(t *testing.T) {
	for _, n := range []int{0, 254, 255, 256, 65535} {
		value := bytes.Repeat([]byte{0xC3}, n)
		want := perso.AppendDGI(nil, 0x0202, value)
		var b perso.Builder
		b.AddDGIValue(0x0202, value)
		b.AddDGI(0x0202, func(b *perso.Builder) { b.AddRaw(value) })
		out, err := b.Bytes()
		if err != nil || !bytes.Equal(out, append(want, want...)) {
			t.Fatalf("%d bytes: %X.., %v", n, out[:min(5, len(out))], err)
		}
		hdr := map[int]string{0: "020200", 254: "0202FE", 255: "0202FF00FF", 256: "0202FF0100", 65535: "0202FFFFFF"}[n]
		if !bytes.HasPrefix(want, tlvHex(t, hdr)) || len(want) != len(hdr)/2+n {
			t.Fatalf("%d bytes: AppendDGI header %X", n, want[:len(hdr)/2])
		}
	}

	// A record DGI holding a template.
	var b perso.Builder
	b.AddDGI(0x0101, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0x5A, tlvHex(t, "5413330089600119"))
			b.AddPrimitive(0x5F24, tlvHex(t, "301231"))
		})
	})
	b.AddDGIValue(0x9010, tlvHex(t, "0303"))
	out, err := b.Bytes()
	if want := tlvHex(t, "0101 12 7010 5A085413330089600119 5F2403301231 9010 02 0303"); err != nil || !bytes.Equal(out, want) {
		t.Fatalf("got %X, %v\nwant %X", out, err, want)
	}

	// Too long, either way.
	for _, build := range []func(b *perso.Builder){
		func(b *perso.Builder) { b.AddDGIValue(0x8000, make([]byte, 65536)) },
		func(b *perso.Builder) { b.AddDGI(0x8000, func(b *perso.Builder) { b.AddRaw(make([]byte, 65536)) }) },
	} {
		var b perso.Builder
		build(&b)
		if _, err := b.Bytes(); err == nil || !errors.Is(err, perso.ErrBadInput) || !strings.Contains(err.Error(), "perso: DGI 8000: value of 65536 bytes exceeds 65535") {
			t.Errorf("error = %v", err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendDGI did not panic on 65536 bytes")
		}
	}()
	perso.AppendDGI(nil, 0x8000, make([]byte, 65536))
}

func TestDGIRedaction(t *testing.T) {
	tests := []struct {
		dgi  perso.DGI
		want string
	}{
		{perso.DGI{Tag: 0x8000, Value: bytes.Repeat([]byte{0x11}, 48)}, "8000=<secret, 48 bytes>"},
		{perso.DGI{Tag: 0x8F00, Value: tlvHex(t, "9F0200")}, "8F00=<secret, 3 bytes>"},
		{perso.DGI{Tag: 0x0101, Value: tlvHex(t, "700D 5A085413330089600119 9C0101")}, "0101{70{5A=<PAN data, 8 bytes> 9C=01}}"},
		{perso.DGI{Tag: 0x9104, Value: tlvHex(t, "82025C00 940408010100")}, "9104{82=5C00 94=08010100}"},
		{perso.DGI{Tag: 0x9010, Value: tlvHex(t, "0303")}, "9010=<2 bytes>"},
		{perso.DGI{Tag: 0x9102}, "9102=<0 bytes>"},
	}
	for _, tt := range tests {
		for _, got := range []string{tt.dgi.String(), fmt.Sprintf("%v", tt.dgi), fmt.Sprintf("%#v", tt.dgi), fmt.Sprintf("%x", tt.dgi)} {
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		}
	}
}

// TestTLVAllocationBounded checks that parsing allocates in proportion to
// the input, whatever the lengths claim, the nesting depth, or the number
// of data objects.
func TestTLVAllocationBounded(t *testing.T) {
	deep := perso.NewBuilder(nil)
	var nest func(b *perso.Builder, depth int)
	nest = func(b *perso.Builder, depth int) {
		if depth == 0 {
			b.AddPrimitive(0x9C, []byte{1})
			return
		}
		b.AddTLV(0x70, func(b *perso.Builder) { nest(b, depth-1) })
	}
	nest(deep, 20000)
	deepIn, err := deep.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{
		"deep nesting":   deepIn,
		"many objects":   bytes.Repeat(tlvHex(t, "9C00"), 1<<15),
		"huge length":    append(tlvHex(t, "9F0284FFFFFFFF"), make([]byte, 1<<10)...),
		"padding":        make([]byte, 1<<16),
		"many templates": bytes.Repeat(tlvHex(t, "7000"), 1<<15),
	}
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ts, _ := perso.ParseTLVs(in, perso.Lenient)
		for len(ts) > 0 { // every template, one level at a time
			x := ts[len(ts)-1]
			ts = ts[:len(ts)-1]
			if x.Tag.Constructed() {
				kids, _ := x.Children()
				ts = append(ts, kids...)
			}
		}
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(64*len(in)+1<<16); got > limit {
			t.Errorf("%s: %d bytes allocated for %d bytes of input (limit %d)", name, got, len(in), limit)
		}
	}
}

// tlvCheckRaws checks that ts, parsed from in, cover it exactly: each Raw is
// the input's next bytes after 00 padding, and ends with Value; only
// padding follows the last. Templates are checked the same way.
func tlvCheckRaws(t *testing.T, in []byte, ts []perso.TLV) {
	t.Helper()
	p := 0
	for _, x := range ts {
		for p < len(in) && in[p] == 0 {
			p++
		}
		if len(x.Raw) == 0 || !bytes.Equal(in[p:min(len(in), p+len(x.Raw))], x.Raw) || &in[p] != &x.Raw[0] || !bytes.HasSuffix(x.Raw, x.Value) {
			t.Fatalf("data object %v at %d: Raw %X does not alias the input %X", x.Tag, p, x.Raw, in[p:])
		}
		if x.Tag.Constructed() {
			kids, err := x.Children()
			if err != nil {
				t.Fatalf("Children of a parsed %v: %v", x.Tag, err)
			}
			tlvCheckRaws(t, x.Value, kids)
		}
		p += len(x.Raw)
	}
	if rest := in[p:]; len(bytes.Trim(rest, "\x00")) != 0 {
		t.Fatalf("unparsed bytes after the last data object: %X", rest)
	}
}

func FuzzTLV(f *testing.F) {
	for _, s := range []string{
		"", "9C0101E0055F2A0202089F0200", "6F07A505BF0C025000", "5A810111", "0000700400 9C0000",
		"FF810103DF0100", "9F800101FF", "708181 5F207E" + strings.Repeat("41", 126),
	} {
		f.Add(tlvHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lenient, lerr := perso.ParseTLVs(in, perso.Lenient)
		strict, serr := perso.ParseTLVs(in, perso.Strict)
		for _, err := range []error{lerr, serr} {
			var te *perso.TLVError
			if err != nil && (!errors.As(err, &te) || te.Offset < 0 || te.Offset > len(in)) {
				t.Fatalf("error %v: not a *TLVError within the input", err)
			}
		}
		if lerr == nil {
			// Re-encoding the parsed values (their Raw, and the padding
			// between them) gives the input.
			tlvCheckRaws(t, in, lenient)
		} else if serr == nil {
			t.Fatalf("strict parsing accepted what lenient parsing refused: %v", lerr)
		}
		if serr == nil {
			if len(strict) != len(lenient) {
				t.Fatalf("strict parsing read %d objects, lenient %d", len(strict), len(lenient))
			}
			for i, x := range strict {
				if y := lenient[i]; x.Tag != y.Tag || len(x.Raw) != len(y.Raw) || &x.Raw[0] != &y.Raw[0] || len(x.Value) != len(y.Value) {
					t.Fatalf("object %d: strict %v (%X), lenient %v (%X)", i, x.Tag, x.Raw, y.Tag, y.Raw)
				}
			}
			b := perso.NewBuilder(nil)
			tlvRebuild(b, strict)
			if out, err := b.Bytes(); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("strict parse then build gave %X, %v", out, err)
			}
		}
		// The cursor agrees with ParseTLVs and never panics.
		r := perso.NewTLVReader(in, perso.Lenient)
		n := 0
		for {
			tag, ok := r.PeekTag()
			var x perso.TLV
			if !r.ReadTLV(&x) {
				break
			}
			if !ok || tag != x.Tag || n >= len(lenient) || x.Tag != lenient[n].Tag {
				t.Fatalf("reader object %d: %v (peeked %v, %v)", n, x.Tag, tag, ok)
			}
			n++
		}
		if n != len(lenient) || (r.Err() == nil) != (lerr == nil) {
			t.Fatalf("reader read %d objects, err %v; ParseTLVs %d, %v", n, r.Err(), len(lenient), lerr)
		}
		// Printing and searching never panic.
		for _, x := range lenient {
			_ = x.String()
		}
		_ = perso.TLV{Tag: 0x70, Value: in}.String()
		perso.FindTLV(in, 0x5A)
		perso.FindTLVPath(in, 0x70, 0x57)
	})
}

func FuzzDGI(f *testing.F) {
	for _, s := range []string{
		"", "9102 00", "0101 FE" + strings.Repeat("00", 254), "0101 FF00FF" + strings.Repeat("00", 255),
		"0101 FF00FE", "9000 03 112233 9010 02 0303", "0101 12 7010 5A085413330089600119 5F2403301231",
	} {
		f.Add(tlvHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ds, err := perso.ParseDGIs(in)
		end := len(in)
		if err != nil {
			var de *perso.DGIError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset >= len(in) {
				t.Fatalf("error %v: not a *DGIError within the input", err)
			}
			end = de.Offset
		}
		// Re-encoding gives the input (up to a fault), through AppendDGI
		// and through the Builder.
		var appended []byte
		var b perso.Builder
		for _, d := range ds {
			appended = perso.AppendDGI(appended, d.Tag, d.Value)
			b.AddDGIValue(d.Tag, d.Value)
			_ = d.String()
		}
		built, berr := b.Bytes()
		if !bytes.Equal(appended, in[:end]) || berr != nil || !bytes.Equal(built, appended) {
			t.Fatalf("re-encoded %X / %X (%v), want %X", appended, built, berr, in[:end])
		}
	})
}

// tlvSampleRecord builds about 2 KiB of the nested EMV data a
// personalization record holds: an FCI and the READ RECORD templates of a
// DDA card with a 1408-bit issuer key and a 1024-bit card key.
func tlvSampleRecord(tb testing.TB) (tlvData, dgis []byte) {
	fill := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	fci := func(b *perso.Builder) {
		b.AddTLV(0xA5, func(b *perso.Builder) {
			b.AddPrimitive(0x50, []byte("VISA DEBIT"))
			b.AddPrimitive(0x87, []byte{1})
			b.AddPrimitive(0x5F2D, []byte("enfr"))
			b.AddPrimitive(0x9F38, tlvHex(tb, "9F66049F02069F37045F2A02"))
			b.AddTLV(0xBF0C, func(b *perso.Builder) { b.AddPrimitive(0x9F4D, []byte{0x0B, 0x0A}) })
		})
	}
	records := []func(b *perso.Builder){
		func(b *perso.Builder) {
			b.AddPrimitive(0x57, tlvHex(tb, "4761739001010010D30122011234567890000F"))
			b.AddPrimitive(0x5F20, []byte("CARDHOLDER/TEST"))
			b.AddPrimitive(0x9F1F, fill(24, '0'))
		},
		func(b *perso.Builder) {
			b.AddPrimitive(0x5A, tlvHex(tb, "4761739001010010"))
			b.AddPrimitive(0x5F24, tlvHex(tb, "301231"))
			b.AddPrimitive(0x5F25, tlvHex(tb, "250101"))
			b.AddPrimitive(0x5F28, tlvHex(tb, "0840"))
			b.AddPrimitive(0x5F34, []byte{1})
			b.AddPrimitive(0x8C, tlvHex(tb, "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403"))
			b.AddPrimitive(0x8D, tlvHex(tb, "910A8A0295059F37049F4C08"))
			b.AddPrimitive(0x8E, tlvHex(tb, "000000000000000042031E031F03"))
			b.AddPrimitive(0x9F07, tlvHex(tb, "FF00"))
			b.AddPrimitive(0x9F08, tlvHex(tb, "0096"))
			b.AddPrimitive(0x9F0D, tlvHex(tb, "F040008800"))
			b.AddPrimitive(0x9F0E, tlvHex(tb, "0010000000"))
			b.AddPrimitive(0x9F0F, tlvHex(tb, "F040009800"))
			b.AddPrimitive(0x9F42, tlvHex(tb, "0840"))
			b.AddPrimitive(0x9F44, []byte{2})
			b.AddPrimitive(0x9F4A, []byte{0x82})
		},
		func(b *perso.Builder) {
			b.AddPrimitive(0x8F, []byte{0x92})
			b.AddPrimitive(0x90, fill(176, 0x6A))
			b.AddPrimitive(0x92, fill(36, 0x11))
			b.AddPrimitive(0x9F32, []byte{3})
		},
		func(b *perso.Builder) {
			b.AddPrimitive(0x9F46, fill(176, 0x6A))
			b.AddPrimitive(0x9F47, []byte{3})
			b.AddPrimitive(0x9F48, fill(42, 0x22))
			b.AddPrimitive(0x9F49, tlvHex(tb, "9F3704"))
		},
		func(b *perso.Builder) { b.AddPrimitive(0x93, fill(176, 0x6A)) },
		func(b *perso.Builder) {
			b.AddPrimitive(0x9F2D, fill(128, 0x6A))
			b.AddPrimitive(0x9F2E, []byte{3})
			b.AddPrimitive(0x9F2F, fill(20, 0x33))
			b.AddPrimitive(0x9F14, []byte{3})
			b.AddPrimitive(0x9F23, []byte{9})
		},
	}
	var t, d perso.Builder
	t.AddTLV(0x6F, func(b *perso.Builder) {
		b.AddPrimitive(0x84, tlvHex(tb, "A0000000031010"))
		fci(b)
	})
	d.AddDGI(0x9102, fci)
	for i, rec := range records {
		t.AddTLV(0x70, rec)
		d.AddDGI(0x0101+uint16(i), func(b *perso.Builder) { b.AddTLV(0x70, rec) })
	}
	d.AddDGIValue(0x8000, fill(48, 0x44))
	d.AddDGIValue(0x9000, fill(9, 0x55))
	tlvData, err1 := t.Bytes()
	dgis, err2 := d.Bytes()
	if err := errors.Join(err1, err2); err != nil {
		tb.Fatal(err)
	}
	return tlvData, dgis
}

func BenchmarkParseTLVs(b *testing.B) {
	in, _ := tlvSampleRecord(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := perso.ParseTLVs(in, perso.Strict); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTLVReaderWalk(b *testing.B) {
	in, _ := tlvSampleRecord(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	count := 0
	var walk func(r *perso.TLVReader)
	walk = func(r *perso.TLVReader) {
		var x perso.TLV
		for r.ReadTLV(&x) {
			count++
			if x.Tag.Constructed() {
				walk(perso.NewTLVReader(x.Value, perso.Strict))
			}
		}
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
	}
	for b.Loop() {
		walk(perso.NewTLVReader(in, perso.Strict))
	}
}

func BenchmarkFindTLV(b *testing.B) {
	in, _ := tlvSampleRecord(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := perso.FindTLV(in, 0x9F23); !ok { // the last data object
			b.Fatal("not found")
		}
	}
}

// tlvParsed is a parsed tree, so that BenchmarkBuilder measures building
// alone.
type tlvParsed struct {
	tag   perso.Tag
	value []byte
	kids  []tlvParsed
}

func tlvParseTree(tb testing.TB, ts []perso.TLV) []tlvParsed {
	var out []tlvParsed
	for _, x := range ts {
		p := tlvParsed{tag: x.Tag, value: x.Value}
		if x.Tag.Constructed() {
			kids, err := x.Children()
			if err != nil {
				tb.Fatal(err)
			}
			p.kids = tlvParseTree(tb, kids)
		}
		out = append(out, p)
	}
	return out
}

func tlvBuildParsed(b *perso.Builder, ps []tlvParsed) {
	for _, p := range ps {
		if p.tag.Constructed() {
			b.AddTLV(p.tag, func(b *perso.Builder) { tlvBuildParsed(b, p.kids) })
		} else {
			b.AddPrimitive(p.tag, p.value)
		}
	}
}

func BenchmarkBuilder(b *testing.B) {
	in, _ := tlvSampleRecord(b)
	ts, err := perso.ParseTLVs(in, perso.Strict)
	if err != nil {
		b.Fatal(err)
	}
	tree := tlvParseTree(b, ts)
	buf := make([]byte, 0, len(in))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		bld := perso.NewBuilder(buf[:0])
		tlvBuildParsed(bld, tree)
		if out, err := bld.Bytes(); err != nil || len(out) != len(in) {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDGIs(b *testing.B) {
	_, in := tlvSampleRecord(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := perso.ParseDGIs(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuilderDGI(b *testing.B) {
	_, in := tlvSampleRecord(b)
	ds, err := perso.ParseDGIs(in)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, len(in))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		bld := perso.NewBuilder(buf[:0])
		for _, d := range ds {
			bld.AddDGI(d.Tag, func(b *perso.Builder) { b.AddRaw(d.Value) })
		}
		if _, err := bld.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}
