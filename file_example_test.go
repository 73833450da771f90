package perso_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cardperso/perso"
)

func ExampleWriter() {
	var buf bytes.Buffer
	w, err := perso.NewWriter(&buf, &perso.Header{
		Created:  time.Date(2025, 1, 15, 9, 30, 0, 0, time.UTC),
		Issuer:   perso.IssuerID{0x45, 0x12, 0x3F, 0xFF},
		Profiles: []string{"emv"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"J SMITH", "A N OTHER"} {
		rec := &perso.Record{Groups: []perso.Group{{MIC: perso.MICEmboss, Data: []byte(name)}}}
		if err := w.Write(rec); err != nil {
			fmt.Println(err)
			return
		}
	}
	w.SetCounter("pan-counter", 1002)
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	r, err := perso.NewReader(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("issuer", r.Header().Issuer, "profiles", r.Header().Profiles)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		g, _ := rec.Group(perso.MICEmboss)
		fmt.Printf("%v: %q\n", g.MIC, g.Data)
	}
	fmt.Println("records", r.Trailer().Count, "pan-counter", r.Trailer().Counters["pan-counter"])
	// Output:
	// issuer 45123FFF profiles [emv]
	// emboss: "J SMITH"
	// emboss: "A N OTHER"
	// records 2 pan-counter 1002
}

func ExampleReader_Next_errors() {
	var buf bytes.Buffer
	w, _ := perso.NewWriter(&buf, &perso.Header{Created: time.Unix(1736933400, 0)})
	w.Write(&perso.Record{Groups: []perso.Group{{MIC: perso.MICEmboss, Data: []byte("J SMITH")}}})
	w.Close()
	cut := buf.Bytes()[:buf.Len()-20] // the file loses the end of its digest

	r, _ := perso.NewReader(bytes.NewReader(cut))
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		var fe *perso.FormatError
		if errors.As(err, &fe) {
			fmt.Println(err)
			fmt.Println("offset", fe.Offset, "truncated:", errors.Is(err, perso.ErrTruncated))
			return
		}
	}
	// Output:
	// perso: offset 68: trailer digest: truncated: needs 32 bytes, input ends after 12
	// offset 68 truncated: true
}

func ExampleRecord_PutApp() {
	kek := perso.KEKID{Issuer: perso.IssuerID{0x45, 0x12, 0x3F, 0xFF}, Version: 1, Scheme: perso.SchemeAESKW}
	app := perso.App{AID: []byte{0xA0, 0, 0, 0, 0x03, 0x10, 0x10}, KEK: kek}
	app.AddDGI(0x0101, []byte{0x70, 0x03, 0x5F, 0x34, 0x00})
	// In a Preparer, the security module seals the secrets and makes and
	// uses the MAC key; here they are placeholders of the right lengths.
	app.AddSecret(0x8010, perso.SealValueOf(make([]byte, 16)))
	app.MACKey = perso.ProtectedKey{KEK: kek, Type: perso.KeyAES128, Wrapped: make([]byte, 24)}
	macInput, _ := app.MACInput()
	app.MAC = make([]byte, perso.MACLen)

	rec := &perso.Record{Groups: []perso.Group{{MIC: perso.MICEmboss, Data: []byte("J SMITH")}}}
	if err := rec.PutApp(&app); err != nil {
		fmt.Println(err)
		return
	}
	chip, _ := rec.Chip()
	for _, a := range chip.Apps {
		fmt.Printf("%X under %v: %d DGIs, secret %04X, MAC over %d bytes\n", a.AID, a.KEK, len(a.DGIs), a.Secret, len(macInput))
	}
	for _, g := range rec.Groups {
		fmt.Println(g.MIC)
	}
	// Output:
	// A0000000031010 under 45123FFF/v1/AES-KW: 2 DGIs, secret [8010], MAC over 82 bytes
	// emboss
	// chip
}
