package vcard

import (
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/gp"
)

// benchAPDU measures one APDU on a personalized card after SELECT and
// GET PROCESSING OPTIONS.
func benchAPDU(b *testing.B, emv *emvData, apdu []byte) {
	c := loadedCard(b, Config{}, emv, nil)
	raw(b, c, append(append(unhex("00A4040007"), emvAID...), 0))
	raw(b, c, unhex("80A8000002830000"))
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.Transmit(apdu)
		if err != nil || len(r) < 2 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "APDU/s")
}

func BenchmarkReadRecord(b *testing.B) {
	benchAPDU(b, makeEMV(b, emvOptions{}), unhex("00B2020C00"))
}

func BenchmarkGetData(b *testing.B) {
	benchAPDU(b, makeEMV(b, emvOptions{}), unhex("80CA9F3600"))
}

// BenchmarkInternalAuthenticate signs format 05 dynamic data with a
// 1024-bit ICC key.
func BenchmarkInternalAuthenticate(b *testing.B) {
	benchAPDU(b, makeEMV(b, emvOptions{bits: 1024}), unhex("00880000040102030400"))
}

// BenchmarkGenerateAC runs GET PROCESSING OPTIONS and GENERATE AC (ARQC:
// session key derivation and the MAC) per iteration.
func BenchmarkGenerateAC(b *testing.B) {
	c := loadedCard(b, Config{}, makeEMV(b, emvOptions{}), nil)
	raw(b, c, append(append(unhex("00A4040007"), emvAID...), 0))
	gpo, gac := unhex("80A8000002830000"), append(append(unhex("80AE80001D"), cdol1Data...), 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Transmit(gpo); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Transmit(gac); err != nil {
			b.Fatal(err)
		}
		if c.applets[0].(*emvApplet).atc == 0xFFFF {
			c.applets[0].(*emvApplet).atc = 0
		}
	}
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "APDU/s")
}

// BenchmarkPersonalize personalizes a DDA EMV applet (1024-bit ICC key)
// over SCP02 with C-MAC and C-DEC, host side included: SELECT,
// INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and the STORE DATA commands,
// then the card's checks (KCVs, the CRT key).
func BenchmarkPersonalize(b *testing.B) {
	emv := makeEMV(b, emvOptions{bits: 1024})
	apdus := 0
	b.ReportAllocs()
	for b.Loop() {
		c := newTestCard(b, Config{})
		h := newHost(b, c, scp02Keys, perso.SCP{})
		h.personalize(emvAID, emv.dgis, gp.LevelCMAC|gp.LevelCDEC, storeSplit, 239)
		apdus = c.Count()
	}
	b.ReportMetric(float64(apdus), "APDUs/card")
}
