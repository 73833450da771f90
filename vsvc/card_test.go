package vsvc_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso/vsvc"
)

// paramsRecord is a purse parameters record as the profile builds it.
const paramsRecord = "704B" + "DF010A4761739001010010FFFF" + "DF020100" + "DF03020000" + "DF04020978" + "DF050102" +
	"DF06040000C350" + "DF0703280101" + "DF0803301231" + "DF0903301231" + "DF0A0100" + "DF0B0100" + "DF0C0101" + "DF0D0101" + "8F0199"

func TestParseParams(t *testing.T) {
	rec, _ := hex.DecodeString(paramsRecord)
	p, err := vsvc.ParseParams(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := &vsvc.Params{
		IEPID: rec[5:15], AuthMode: 0, AppProfile: []byte{0, 0}, Currency: "0978", CurrencyExponent: 2, MaxBalance: 50000,
		Activation: "280101", Deactivation: "301231", Expiration: "301231", CardSupplier: []byte{0}, EFType: 0,
		IEPVersion: 1, KeyVersion: 1, CAIndex: 0x99, Static: rec[2:],
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("ParseParams (-want +got):\n%s", diff)
	}
	if pan, err := p.PAN(); err != nil || pan != "4761739001010010" {
		t.Errorf("PAN %q, %v", pan, err)
	}
	for _, tc := range []struct{ name, rec, want string }{
		{"not a record", "7103DF0200", "not a 70 template"},
		{"short IEP id", "7008DF01054761739001", "DF01 of 5 bytes"},
		{"bad currency", "7005DF04020A78", "DF04"},
		{"bad date", "7005DF07022801", "DF07"},
		{"long exponent", "7005DF05020201", "DF05"},
		{"twice", "7008DF020100DF020100", "twice"},
		{"missing", "7004DF020100", "missing"},
		{"trailing", paramsRecord + "00", "not a 70 template"},
	} {
		b, _ := hex.DecodeString(tc.rec)
		if _, err := vsvc.ParseParams(b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseParams(f *testing.F) {
	rec, _ := hex.DecodeString(paramsRecord)
	f.Add(rec)
	f.Add([]byte{0x70, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := vsvc.ParseParams(b)
		if err != nil {
			return
		}
		if len(p.IEPID) != 10 || !bytes.Contains(b, p.Static) || len(p.Static) >= len(b) {
			t.Fatalf("ParseParams(%X): IEP id %X, static data of %d bytes", b, p.IEPID, len(p.Static))
		}
	})
}

func ExampleParseParams() {
	rec, _ := hex.DecodeString(paramsRecord)
	p, err := vsvc.ParseParams(rec)
	if err != nil {
		panic(err)
	}
	fmt.Printf("currency %s exponent %d, maximum %d, valid %s to %s, CA key %02X\n",
		p.Currency, p.CurrencyExponent, p.MaxBalance, p.Activation, p.Deactivation, p.CAIndex)
	// Output: currency 0978 exponent 2, maximum 50000, valid 280101 to 301231, CA key 99
}
