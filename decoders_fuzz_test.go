package perso

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fuzz targets of the decoders of card input: the cardholder data group,
// sealed values and the CSV card export. Seed corpora are in
// testdata/fuzz/<target>.

func FuzzCardData(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var c *CardData
		var err error
		boundedAlloc(t, len(in), func() { c, err = ParseCardData(in) })
		if err != nil {
			var fe *FieldError
			var te *TLVError
			if !errors.As(err, &fe) && !errors.As(err, &te) && !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v (%T) is neither a field, a TLV nor an input error", err, err)
			}
			return
		}
		// The encoding is not canonical (tags in any order, a PSN that may
		// be left out), but what decodes encodes to bytes that decode to
		// the same card, and that encoding is canonical.
		enc, err := c.Group()
		if err != nil {
			return // a value the encoder refuses, such as a 4-digit expiry
		}
		again, err := ParseCardData(enc)
		if err != nil {
			t.Fatalf("re-encoded card data does not decode: %v\n%X", err, enc)
		}
		if d := cmp.Diff(c, again); d != "" {
			t.Fatalf("re-encoded card data decodes differently (-first +again):\n%s", d)
		}
		if enc2, err := again.Group(); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not canonical: %X then %X (%v)", enc, enc2, err)
		}
	})
}

func FuzzSealed(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		var p SealedParts
		var err error
		boundedAlloc(t, len(in), func() { p, err = Sealed(in).Parse() })
		if err != nil {
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("error %v does not wrap ErrSealed", err)
			}
			return
		}
		var out Sealed
		switch p.Form {
		case SealValue:
			out = SealValueOf(p.Wrapped)
		case SealKeys:
			out, err = SealKeysOf(p.Keys...)
		case SealRSAComponent:
			out, err = SealRSAComponentOf(p.Component, p.ModLen, p.Wrapped)
		default:
			t.Fatalf("parsed form %v", p.Form)
		}
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoded %X (%v)\nparsed from %X", []byte(out), err, in)
		}
	})
}

// FuzzCSVReader reads a card export to its end. Every row becomes a record
// or an *InputError naming its line; only the header may stop the reading.
// Allocation grows with the rows, which are not length-prefixed, so it is
// not bounded here.
func FuzzCSVReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewCSVReader(bytes.NewReader(in))
		for call := 0; ; call++ {
			if call > len(in)+1 {
				t.Fatalf("%d rows from %d bytes", call, len(in))
			}
			rec, err := r.Next()
			if err == io.EOF {
				return
			}
			var ie *InputError
			switch {
			case errors.As(err, &ie):
				if ie.Line < 1 || ie.Index != call {
					t.Fatalf("row %d: %v at line %d, index %d", call, err, ie.Line, ie.Index)
				}
				continue
			case err != nil && call == 0:
				return // no usable header row
			case err != nil:
				t.Fatalf("row %d: %v is not an input error", call, err)
			}
			b, err := rec.Marshal()
			if err != nil {
				t.Fatalf("row %d: the record does not encode: %v", call, err)
			}
			if _, err := ParseRecord(b); err != nil {
				t.Fatalf("row %d: the record does not decode: %v", call, err)
			}
			c, err := CardDataOf(rec)
			if err != nil {
				t.Fatalf("row %d: card data: %v", call, err)
			}
			if err := c.validateSome(); err != nil {
				t.Fatalf("row %d: an invalid card passed: %v", call, err)
			}
		}
	})
}
