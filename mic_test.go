package perso

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMICString(t *testing.T) {
	for mic, want := range map[MIC]string{
		MICChip: "chip", MICMagStripe: "magnetic stripe", MICEmboss: "emboss", MICGraphics: "graphics",
		0x05: "card data", 0x06: "MIC 06", 0xBF: "MIC BF", 0xC0: "bureau C0", 0xFE: "bureau FE", 0x00: "reserved 00", 0xFF: "reserved FF",
	} {
		if got := mic.String(); got != want {
			t.Errorf("MIC(%02X).String() = %q, want %q", uint8(mic), got, want)
		}
	}
	for m := range 256 {
		mic := MIC(m)
		if got, want := mic.Reserved(), m == 0 || m == 0xFF; got != want {
			t.Errorf("MIC(%02X).Reserved() = %v", m, got)
		}
		if got, want := mic.BureauDefined(), m >= 0xC0 && m <= 0xFE; got != want {
			t.Errorf("MIC(%02X).BureauDefined() = %v", m, got)
		}
	}
}

func TestParseGroups(t *testing.T) {
	ok := []struct {
		name string
		in   []byte
		want []Group
	}{
		{"empty", nil, nil},
		{"empty group", []byte{0x03, 0, 0, 0, 0}, []Group{{MIC: MICEmboss}}},
		{"chip and emboss", batchHex("01 00000002 0102 03 00000003 414243"),
			[]Group{{MICChip, []byte{1, 2}}, {MICEmboss, []byte("ABC")}}},
		{"unknown MIC carried", batchHex("2A 00000001 FF"), []Group{{0x2A, []byte{0xFF}}}},
		{"bureau MIC carried", batchHex("C7 00000002 C7C7"), []Group{{0xC7, []byte{0xC7, 0xC7}}}},
		{"same MIC twice (a record's rule, not the codec's)", batchHex("04 00000000 04 00000000"),
			[]Group{{MIC: MICGraphics}, {MIC: MICGraphics}}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			gs, err := ParseGroups(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, gs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			var out []byte
			for _, g := range gs {
				if out, err = AppendGroup(out, g); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out, tt.in) {
				t.Errorf("re-encoded %X, want %X", out, tt.in)
			}
		})
	}

	tests := []formatCase{
		{"MIC only", []byte{0x01}, ErrTruncated, 0, "group 0 header"},
		{"length one byte short", batchHex("01 000000"), ErrTruncated, 0, "group 0 header"},
		{"data one byte short", batchHex("01 00000003 0102"), ErrTruncated, 5, "group 0 data"},
		{"length larger than left", batchHex("03 00000000 01 00000100 00"), ErrTruncated, 10, "group 1 data"},
		{"length over bound", batchHex("01 01000000"), ErrTooLong, 1, "group 0 length"},
		{"length FFFFFFFF", batchHex("01 FFFFFFFF"), ErrTooLong, 1, "group 0 length"},
		{"MIC 00", batchHex("00 00000000"), ErrMalformed, 0, "group 0 MIC"},
		{"MIC FF", batchHex("03 00000000 FF 00000000"), ErrMalformed, 5, "group 1 MIC"},
	}
	runFormatCases(t, tests, func(b []byte) (any, error) { return ParseGroups(b) })
}

func TestGroupMaxLength(t *testing.T) {
	data := make([]byte, MaxGroupLen)
	enc, err := AppendGroup(nil, Group{MIC: MICGraphics, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := ParseGroups(enc)
	if err != nil || len(gs) != 1 || len(gs[0].Data) != MaxGroupLen {
		t.Fatalf("a group of MaxGroupLen bytes: %v", err)
	}
	_, err = AppendGroup([]byte{9}, Group{MIC: MICGraphics, Data: make([]byte, MaxGroupLen+1)})
	wantFormatError(t, err, ErrTooLong, 1, "group 0 length")
	_, err = AppendGroup(nil, Group{MIC: 0xFF})
	wantFormatError(t, err, ErrMalformed, 0, "group 0 MIC")
}

type recordingModule struct {
	mu   sync.Mutex
	seen []string
}

func (m *recordingModule) Personalize(_ context.Context, card *Card, g Group) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, fmt.Sprintf("%d:%v:%s", card.Index, g.MIC, g.Data))
	return nil
}

func TestRegistry(t *testing.T) {
	var r Registry
	if _, ok := r.Lookup(MICChip); ok {
		t.Error("an empty registry found a module")
	}
	emb := &recordingModule{}
	if err := r.Register(MICEmboss, emb); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("no ribbon")
	if err := r.Register(0xC1, ModuleFunc(func(context.Context, *Card, Group) error { return refuse })); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mic MIC
		m   Module
	}{{MICEmboss, emb}, {0x00, emb}, {0xFF, emb}, {MICChip, nil}} {
		if err := r.Register(tc.mic, tc.m); !errors.Is(err, ErrBadInput) {
			t.Errorf("Register(%v, %v) = %v, want ErrBadInput", tc.mic, tc.m, err)
		}
	}
	if got, want := r.MICs(), []MIC{MICEmboss, 0xC1}; !slices.Equal(got, want) {
		t.Errorf("MICs() = %v, want %v", got, want)
	}

	// Dispatch a record's groups the way a personalizer does, from several
	// goroutines at once.
	rec := &Record{Groups: []Group{{MICEmboss, []byte("E")}, {0xC1, []byte("C")}, {0x2A, []byte("?")}}}
	var wg sync.WaitGroup
	errs := make([][]error, 4)
	for i := range 4 {
		wg.Go(func() {
			card := &Card{Index: i, Record: rec}
			for _, g := range rec.Groups {
				m, ok := r.Lookup(g.MIC)
				if !ok {
					errs[i] = append(errs[i], fmt.Errorf("no module for %v", g.MIC))
					continue
				}
				errs[i] = append(errs[i], m.Personalize(context.Background(), card, g))
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if len(e) != 3 || e[0] != nil || !errors.Is(e[1], refuse) || e[2] == nil {
			t.Errorf("card %d: %v", i, e)
		}
	}
	slices.Sort(emb.seen)
	if want := []string{"0:emboss:E", "1:emboss:E", "2:emboss:E", "3:emboss:E"}; !slices.Equal(emb.seen, want) {
		t.Errorf("emboss module saw %q", emb.seen)
	}
}

func ExampleParseGroups() {
	// An emboss group, then a group for a bureau's carrier printer.
	in := []byte("\x03\x00\x00\x00\x0bJOHN SMITH\n\xc2\x00\x00\x00\x02A4")
	groups, err := ParseGroups(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range groups {
		fmt.Printf("%v: %q\n", g.MIC, g.Data)
	}
	_, err = ParseGroups(in[:len(in)-1])
	fmt.Println(err)
	// Output:
	// emboss: "JOHN SMITH\n"
	// bureau C2: "A4"
	// perso: offset 21: group 1 data: truncated: needs 2 bytes, 1 left
}
