package perso

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPutAppRefusesAsChipData checks that PutApp refuses an application
// exactly as parsing chip data that holds it alone does: the same field,
// offset (within the application's encoding) and message.
func TestPutAppRefusesAsChipData(t *testing.T) {
	edit := func(f func(a *App)) App {
		a := batchApp("A0000000031010", batchKEK)
		f(&a)
		return a
	}
	for _, c := range []struct {
		name  string
		app   App
		field string
	}{
		{"short AID", edit(func(a *App) { a.AID = a.AID[:3] }), "chip app 0 AID length"},
		{"unknown scheme", edit(func(a *App) { a.KEK.Scheme = 9 }), "chip app 0 KEK scheme"},
		{"no DGIs", edit(func(a *App) { a.DGIs = nil }), "chip app 0 DGI sequence"},
		{"secret not stored", edit(func(a *App) { a.Secret = append(a.Secret, 0x8FFF) }), "chip app 0 secret DGIs"},
		{"secrets out of order", edit(func(a *App) { slices.Reverse(a.Secret) }), "chip app 0 secret DGIs"},
		{"secret not sealed", edit(func(a *App) { a.DGIs[1].Value = []byte{0x7F} }), "chip app 0 secret DGI 8010"},
		{"MAC key type", edit(func(a *App) { a.MACKey.Type = KeyDES2 }), "chip app 0 MAC key"},
		{"short MAC", edit(func(a *App) { a.MAC = a.MAC[:4] }), "chip app 0 MAC length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, ferr := c.app.encode()
			if ferr != nil {
				t.Fatal(ferr)
			}
			_, want := parseChipData(slices.Concat([]byte{ChipVersion, 1}, enc), nil)
			if want == nil {
				t.Fatal("the chip data holding the application parses")
			}
			want.shift(-2)
			rec := &Record{}
			err := rec.PutApp(&c.app)
			wantFormatError(t, err, ErrMalformed, want.Offset, c.field)
			if err.Error() != want.Error() {
				t.Errorf("PutApp: %v\nchip data: %v", err, want)
			}
			if len(rec.Groups) != 0 {
				t.Error("a refused PutApp changed the record")
			}
		})
	}
}

// TestAppFieldNames checks that a field that cannot be encoded is named
// with its application's index, whichever application it is in.
func TestAppFieldNames(t *testing.T) {
	good := batchApp("A0000000031010", batchKEK)
	bad := batchApp("A0000000041010", batchKEK)
	bad.Secret = make([]uint16, 256)
	cd := ChipData{Apps: []App{good, bad}}
	_, err := cd.Marshal()
	wantFormatError(t, err, ErrTooLong, -1, "chip app 1 secret DGI count")
	if fe := err.(*FormatError); fe.Field != "chip app 1 secret DGI count" {
		t.Errorf("field %q", fe.Field)
	}
	// Only the first failure is reported, named once.
	cd.Apps[0].MAC = make([]byte, 300)
	_, err = cd.Marshal()
	if fe, ok := err.(*FormatError); !ok || fe.Field != "chip app 0 MAC length" {
		t.Errorf("error %v, want the field chip app 0 MAC length", err)
	}
	// Encoded and parsed back, the good application is the same.
	out, err := (&ChipData{Apps: []App{good}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseChipData(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(good, back.Apps[0], batchIgnoreRaw); diff != "" {
		t.Errorf("(-built +parsed):\n%s", diff)
	}
}
