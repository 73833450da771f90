package vcard

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/gp"
	"github.com/cardperso/perso/internal/rsax"
)

// The fuzz card: an EMV applet and a purse personalized (the EMV applet
// with an ICC key), and a second EMV applet that is not, so that a
// recorded personalization session can run in the seeds.
var (
	fuzzEMV2 = unhex("A0000000032010")

	fuzzOnce  sync.Once
	fuzzEMV   *emvData
	fuzzPurse *purseData
	fuzzICC   *rsax.Private
)

func fuzzSetup(t testing.TB) {
	fuzzOnce.Do(func() {
		fuzzEMV = makeEMV(t, emvOptions{})
		fuzzPurse = makePurse(t, 100, 10000, 0)
		var err error
		if fuzzICC, err = rsax.NewPrivate(iccKey(t, 512)); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzCard makes a fresh fuzz card; everything random on it is seeded, so
// a recorded session replays exactly.
func fuzzCard(t testing.TB) *Card {
	fuzzSetup(t)
	c := loadedCard(t, Config{EMV: [][]byte{emvAID, fuzzEMV2}, Rand: detRand(9)}, fuzzEMV, fuzzPurse)
	c.applets[0].(*emvApplet).icc = fuzzICC
	return c
}

// recorder keeps the APDUs a host sends.
type recorder struct {
	c    *Card
	apdu [][]byte
}

func (r *recorder) Transmit(b []byte) ([]byte, error) {
	r.apdu = append(r.apdu, append([]byte(nil), b...))
	return r.c.Transmit(b)
}

// encodeAPDUs frames APDUs as the fuzz input: 2-byte length, bytes.
func encodeAPDUs(apdus [][]byte) []byte {
	var out []byte
	for _, a := range apdus {
		out = binary.BigEndian.AppendUint16(out, uint16(len(a)))
		out = append(out, a...)
	}
	return out
}

// fuzzSeeds are sessions a terminal, an issuer host and a personalization
// host would run.
func fuzzSeeds(t testing.TB) [][]byte {
	fuzzSetup(t)
	var seeds [][]byte
	// A terminal and an issuer host.
	terminal := [][]byte{
		append(append(unhex("00A4040007"), emvAID...), 0),
		unhex("80A8000002830000"),
		unhex("00B2010C00"), unhex("00B2020C00"), unhex("00B2011400"), unhex("00B2021400"),
		unhex("80CA9F3600"), unhex("80CA9F1700"), unhex("80CA9F1400"),
		unhex("00880000040102030400"),
		append(append(unhex("80AE80001D"), cdol1Data...), 0),
		append(append(unhex("80AE40001F3030"), cdol1Data...), 0),
		unhex("0020008008241234FFFFFFFFFF"),
		append(append(unhex("00A4040007"), purseAID...), 0),
		unhex("805C000204"),
		unhex("805002000C00000064010203040506070800"),
		unhex("8052000008000000000000000000"),
		unhex("805400000BDF05030000000000000000"),
		append(append(unhex("00A4040008"), AIDISD...), 0),
		unhex("80CA9F7F00"), unhex("80CA00E000"), unhex("80CA006600"),
	}
	seeds = append(seeds, encodeAPDUs(terminal))
	// A personalization of the second EMV applet, recorded on a fresh card.
	for _, mode := range []storeMode{storeSplit, storeAppDependent} {
		rec := &recorder{c: fuzzCard(t)}
		h := newHost(t, rec, scp02Keys, perso.SCP{})
		h.personalize(fuzzEMV2, fuzzEMV.dgis, gp.LevelCMAC|gp.LevelCDEC, mode, 90)
		seeds = append(seeds, encodeAPDUs(rec.apdu))
	}
	return seeds
}

// FuzzCardTransmit sends arbitrary APDU sequences to a card: it must
// never panic, always answer at least a status word and never fail with
// an error (no fault is set), keep its responses within an APDU, and keep
// what it stages for personalization within its bound.
func FuzzCardTransmit(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := fuzzCard(t)
		for n := 0; len(in) >= 2 && n < 64; n++ {
			l := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if l > len(in) {
				l = len(in)
			}
			apdu := in[:l]
			in = in[l:]
			r, err := c.Transmit(apdu)
			if err != nil {
				t.Fatalf("APDU %d %X: %v", n, apdu, err)
			}
			if len(r) < 2 || len(r) > perso.MaxLe+2 {
				t.Fatalf("APDU %d %X: response of %d bytes", n, apdu, len(r))
			}
			if c.store != nil && c.store.size > maxStaged {
				t.Fatalf("APDU %d: %d bytes staged", n, c.store.size)
			}
		}
	})
}

// TestFuzzSeedsReplay checks that the recorded personalization seeds
// replay on a fresh card: the fuzzer starts from sessions that go deep.
func TestFuzzSeedsReplay(t *testing.T) {
	seeds := fuzzSeeds(t)
	for i, s := range seeds[1:] {
		c := fuzzCard(t)
		for len(s) >= 2 {
			l := int(binary.BigEndian.Uint16(s))
			if _, err := c.Transmit(s[2 : 2+l]); err != nil {
				t.Fatal(err)
			}
			s = s[2+l:]
		}
		if st, _ := c.Applet(fuzzEMV2); st.State != Personalized {
			t.Errorf("seed %d: the recorded personalization did not replay", i+1)
		}
	}
	if os.Getenv("VCARD_WRITE_SEEDS") != "" {
		dir := filepath.Join("testdata", "fuzz", "FuzzCardTransmit")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
