package vcard

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/rsax"
)

// loadedCard returns a card whose EMV applet and purse are personalized
// with Load.
func loadedCard(t testing.TB, cfg Config, emv *emvData, purse *purseData) *Card {
	t.Helper()
	c := newTestCard(t, cfg)
	if emv != nil {
		if err := c.Load(emvAID, emv.dgis); err != nil {
			t.Fatalf("Load EMV: %v", err)
		}
	}
	if purse != nil {
		if err := c.Load(purseAID, purse.dgis); err != nil {
			t.Fatalf("Load purse: %v", err)
		}
	}
	return c
}

// dgiValue returns the value of a DGI of the test data.
func dgiValue(t testing.TB, ds []perso.DGI, tag uint16) []byte {
	t.Helper()
	for _, d := range ds {
		if d.Tag == tag {
			return d.Value
		}
	}
	t.Fatalf("test data has no DGI %04X", tag)
	return nil
}

// raw sends one APDU as bytes and splits the response.
func raw(t testing.TB, c *Card, apdu []byte) ([]byte, uint16) {
	t.Helper()
	r, err := c.Transmit(apdu)
	if err != nil {
		t.Fatalf("Transmit(%X): %v", apdu, err)
	}
	if len(r) < 2 {
		t.Fatalf("Transmit(%X): %d bytes", apdu, len(r))
	}
	return r[:len(r)-2], binary.BigEndian.Uint16(r[len(r)-2:])
}

func TestEMVSelect(t *testing.T) {
	emv := makeEMV(t, emvOptions{bits: 1024})
	c := newTestCard(t, Config{})
	h := newHost(t, c, scp02Keys, perso.SCP{})
	// Before personalization: the DF name only.
	got := h.expect(selectCmd(emvAID), 0x9000)
	if want := unhex("6F09" + "8407A0000000031010"); !bytes.Equal(got, want) {
		t.Errorf("FCI before personalization %X, want %X", got, want)
	}
	h.expect(perso.Command{CLA: 0x80, INS: 0xA8, Data: []byte{0x83, 0x00}, Le: 256}, 0x6985)
	if err := c.Load(emvAID, emv.dgis); err != nil {
		t.Fatal(err)
	}
	got = h.expect(selectCmd(emvAID), 0x9000)
	fci := tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x6F, func(b *perso.Builder) {
			b.AddPrimitive(0x84, emvAID)
			b.AddTLV(0xA5, func(b *perso.Builder) { b.AddRaw(dgiValue(t, emv.dgis, 0x9102)) })
		})
	})
	if !bytes.Equal(got, fci) {
		t.Errorf("FCI %X, want %X", got, fci)
	}
	// Partial selection by a right-truncated AID, and no such AID.
	h.expect(selectCmd(emvAID[:5]), 0x9000)
	h.expect(selectCmd(unhex("A0000000041010")), 0x6A82)
}

// emvTransaction runs SELECT and GET PROCESSING OPTIONS.
func emvTransaction(t *testing.T, h *host) []byte {
	t.Helper()
	h.expect(selectCmd(emvAID), 0x9000)
	return h.expect(perso.Command{CLA: 0x80, INS: 0xA8, Data: []byte{0x83, 0x00}, Le: 256}, 0x9000)
}

func TestEMVGPOAndRecords(t *testing.T) {
	emv := makeEMV(t, emvOptions{bits: 1024})
	c := loadedCard(t, Config{}, emv, nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	gpo := emvTransaction(t, h)
	want := tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x77, func(b *perso.Builder) { b.AddRaw(dgiValue(t, emv.dgis, 0x9104)) })
	})
	if !bytes.Equal(gpo, want) {
		t.Errorf("GPO %X, want %X", gpo, want)
	}
	for _, d := range emv.dgis {
		if !isRecordDGI(d.Tag) {
			continue
		}
		got := h.expect(perso.Command{CLA: 0x00, INS: 0xB2, P1: byte(d.Tag), P2: byte(d.Tag>>8)<<3 | 4, Le: 256}, 0x9000)
		if !bytes.Equal(got, d.Value) {
			t.Errorf("READ RECORD %04X: %X, want %X", d.Tag, got, d.Value)
		}
	}
	for _, tc := range []struct {
		name   string
		p1, p2 byte
		cla    byte
		sw     uint16
	}{
		{"record not found", 3, 1<<3 | 4, 0, 0x6A83},
		{"SFI not found", 1, 5<<3 | 4, 0, 0x6A82},
		{"P2 not a record number", 1, 1<<3 | 5, 0, 0x6A86},
		{"record 0", 0, 1<<3 | 4, 0, 0x6A86},
		{"proprietary class", 1, 1<<3 | 4, 0x80, 0x6E00},
	} {
		if got := h.do(perso.Command{CLA: tc.cla, INS: 0xB2, P1: tc.p1, P2: tc.p2, Le: 256}).SW; got != tc.sw {
			t.Errorf("READ RECORD %s: SW %04X, want %04X", tc.name, got, tc.sw)
		}
	}
}

func TestEMVGPOWithPDOL(t *testing.T) {
	emv := makeEMV(t, emvOptions{pdol: true})
	c := loadedCard(t, Config{}, emv, nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(emvAID), 0x9000)
	for _, tc := range []struct {
		data []byte
		sw   uint16
	}{
		{[]byte{0x83, 0x00}, 0x6700},
		{[]byte{0x83, 0x02, 0x09, 0x78}, 0x9000},
		{[]byte{0x82, 0x02, 0x09, 0x78}, 0x6A80},
		{[]byte{0x83, 0x03, 0x09, 0x78}, 0x6A80},
	} {
		if got := h.do(perso.Command{CLA: 0x80, INS: 0xA8, Data: tc.data, Le: 256}).SW; got != tc.sw {
			t.Errorf("GPO %X: SW %04X, want %04X", tc.data, got, tc.sw)
		}
	}
}

func TestEMVGetData(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	c := loadedCard(t, Config{}, emv, nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(emvAID), 0x9000)
	for _, tc := range []struct {
		p1, p2 byte
		want   []byte
		sw     uint16
	}{
		{0x9F, 0x36, unhex("9F36020000"), 0x9000},
		{0x9F, 0x17, unhex("9F170103"), 0x9000},
		{0x9F, 0x14, unhex("9F140103"), 0x9000},
		{0x9F, 0x23, unhex("9F230105"), 0x9000},
		{0x9F, 0x13, nil, 0x6A88},
		{0x00, 0x5A, nil, 0x6A88},
	} {
		r := h.do(perso.Command{CLA: 0x80, INS: 0xCA, P1: tc.p1, P2: tc.p2, Le: 256})
		if r.SW != tc.sw || !bytes.Equal(r.Data, tc.want) {
			t.Errorf("GET DATA %02X%02X: %X %04X, want %X %04X", tc.p1, tc.p2, r.Data, r.SW, tc.want, tc.sw)
		}
	}
}

// cdol1Data is 29 bytes of CDOL1 data: amount, other amount, country,
// TVR, currency, date, type, unpredictable number.
var cdol1Data = unhex("000000001000" + "000000000000" + "0978" + "0000000000" + "0978" + "250601" + "00" + "11223344")

func TestEMVGenerateAC(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	c := loadedCard(t, Config{}, emv, nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	gac := func(p1 byte, data []byte) perso.Response {
		return h.do(perso.Command{CLA: 0x80, INS: 0xAE, P1: p1, Data: data, Le: 256})
	}
	h.expect(selectCmd(emvAID), 0x9000)
	if sw := gac(0x80, cdol1Data).SW; sw != 0x6985 {
		t.Errorf("GENERATE AC before GPO: SW %04X, want 6985", sw)
	}
	for atc := uint16(1); atc <= 3; atc++ {
		emvTransaction(t, h)
		if sw := gac(0x80, cdol1Data[1:]).SW; sw != 0x6700 {
			t.Errorf("GENERATE AC with short CDOL1 data: SW %04X, want 6700", sw)
		}
		for _, p1 := range []byte{0xC0, 0x90, 0x81} {
			if sw := gac(p1, cdol1Data).SW; sw != 0x6A86 {
				t.Errorf("GENERATE AC P1 %02X: SW %04X, want 6A86", p1, sw)
			}
		}
		r := gac(0x80, cdol1Data)
		if r.SW != 0x9000 {
			t.Fatalf("GENERATE AC: SW %04X", r.SW)
		}
		atcb := binary.BigEndian.AppendUint16(nil, atc)
		sk, err := kdf.SessionKey(emv.acKey, atc)
		if err != nil {
			t.Fatal(err)
		}
		ac, err := crypt.MACAlg3(sk, nil, append(append(append([]byte(nil), cdol1Data...), emv.aip...), atcb...), crypt.Pad2)
		if err != nil {
			t.Fatal(err)
		}
		want := tlv(t, func(b *perso.Builder) {
			b.AddTLV(0x77, func(b *perso.Builder) {
				b.AddPrimitive(0x9F27, []byte{0x80})
				b.AddPrimitive(0x9F36, atcb)
				b.AddPrimitive(0x9F26, ac)
				b.AddPrimitive(0x9F10, iad)
			})
		})
		if diff := cmp.Diff(want, r.Data); diff != "" {
			t.Errorf("ARQC response at ATC %d (-want +got):\n%s", atc, diff)
		}
		// Second GENERATE AC: CDOL2 data (ARC 3030 first), TC, same ATC.
		cdol2 := append(unhex("3030"), cdol1Data...)
		if sw := gac(0x80, cdol2).SW; sw != 0x6985 {
			t.Errorf("second GENERATE AC asking for an ARQC: SW %04X, want 6985", sw)
		}
		r = gac(0x40, cdol2)
		if r.SW != 0x9000 {
			t.Fatalf("second GENERATE AC: SW %04X", r.SW)
		}
		cid, _ := perso.FindTLV(r.Data, 0x9F27)
		gotATC, _ := perso.FindTLV(r.Data, 0x9F36)
		if !bytes.Equal(cid.Value, []byte{0x40}) || !bytes.Equal(gotATC.Value, atcb) {
			t.Errorf("TC: CID %X ATC %X, want 40 %X", cid.Value, gotATC.Value, atcb)
		}
		if sw := gac(0x00, cdol2).SW; sw != 0x6985 {
			t.Errorf("third GENERATE AC: SW %04X, want 6985", sw)
		}
	}
	got := h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x36, Le: 256}, 0x9000)
	if !bytes.Equal(got, unhex("9F36020003")) {
		t.Errorf("ATC after three transactions: %X", got)
	}
	if st, _ := c.Applet(emvAID); st.ATC != 3 {
		t.Errorf("AppletState.ATC %d, want 3", st.ATC)
	}
}

func TestEMVInternalAuthenticate(t *testing.T) {
	for _, bits := range []int{1024, 1000, 1152} {
		emv := makeEMV(t, emvOptions{bits: bits})
		c := loadedCard(t, Config{}, emv, nil)
		h := newHost(t, c, scp02Keys, perso.SCP{})
		emvTransaction(t, h)
		un := unhex("01020304")
		data := h.expect(perso.Command{CLA: 0x00, INS: 0x88, Data: un, Le: 256}, 0x9000)
		t80, err := perso.ParseTLV(data, perso.Strict)
		if err != nil || t80.Tag != 0x80 {
			t.Fatalf("INTERNAL AUTHENTICATE response %X: %v", data, err)
		}
		rec, err := rsax.PublicRaw(&emv.icc.PublicKey, t80.Value)
		if err != nil {
			t.Fatal(err)
		}
		n := len(rec)
		if rec[0] != 0x6A || rec[1] != 0x05 || rec[2] != 0x01 || rec[3] != 9 || rec[4] != 8 || rec[n-1] != 0xBC {
			t.Fatalf("%d bits: recovered SDAD header/trailer wrong: %X", bits, rec)
		}
		for _, b := range rec[13 : n-21] {
			if b != 0xBB {
				t.Fatalf("%d bits: padding %X", bits, rec[13:n-21])
			}
		}
		h1 := sha1.New()
		h1.Write(rec[1 : n-21])
		h1.Write(un)
		if !bytes.Equal(h1.Sum(nil), rec[n-21:n-1]) {
			t.Errorf("%d bits: SDAD hash does not verify", bits)
		}
		// Two challenges, two ICC dynamic numbers.
		data2 := h.expect(perso.Command{CLA: 0x00, INS: 0x88, Data: un, Le: 256}, 0x9000)
		if bytes.Equal(data, data2) {
			t.Errorf("%d bits: the same SDAD twice", bits)
		}
		h.expect(perso.Command{CLA: 0x00, INS: 0x88, P1: 1, Data: un, Le: 256}, 0x6A86)
		h.expect(perso.Command{CLA: 0x00, INS: 0x88, Le: 256}, 0x6700)
	}
	// No ICC key: SDA card.
	c := loadedCard(t, Config{}, makeEMV(t, emvOptions{}), nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	emvTransaction(t, h)
	h.expect(perso.Command{CLA: 0x00, INS: 0x88, Data: unhex("01020304"), Le: 256}, 0x6D00)
}

func TestEMVVerify(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	c := loadedCard(t, Config{}, emv, nil)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	emvTransaction(t, h)
	verify := func(block []byte) uint16 {
		return h.do(perso.Command{CLA: 0x00, INS: 0x20, P2: 0x80, Data: block, Le: perso.LeNone}).SW
	}
	wrong := unhex("241235FFFFFFFFFF")
	steps := []struct {
		block []byte
		sw    uint16
	}{
		{nil, 0x63C3}, {wrong, 0x63C2}, {emv.pin, 0x9000}, {wrong, 0x63C2}, {wrong, 0x63C1},
		{wrong, 0x63C0}, {emv.pin, 0x6983}, {nil, 0x6983},
	}
	for i, s := range steps {
		if got := verify(s.block); got != s.sw {
			t.Errorf("step %d: VERIFY %X: SW %04X, want %04X", i, s.block, got, s.sw)
		}
	}
	if got := h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x17, Le: 256}, 0x9000); !bytes.Equal(got, unhex("9F170100")) {
		t.Errorf("PIN try counter %X", got)
	}
	h.expect(perso.Command{CLA: 0x00, INS: 0x20, P2: 0x88, Data: emv.pin, Le: perso.LeNone}, 0x6A81)
}

func TestValidPINBlock(t *testing.T) {
	for _, tc := range []struct {
		block string
		ok    bool
	}{
		{"241234FFFFFFFFFF", true},
		{"2C123456789012FF", true},
		{"341234FFFFFFFFFF", false}, // control field 3
		{"231234FFFFFFFFFF", false}, // 3 digits
		{"2D1234567890123F", false}, // 13 digits
		{"24123AFFFFFFFFFF", false}, // A is not a digit
		{"241234FFFFFFFFF0", false}, // fill not F
		{"241234FFFFFFFF", false},   // 7 bytes
	} {
		if got := validPINBlock(unhex(tc.block)); got != tc.ok {
			t.Errorf("validPINBlock(%s) = %v, want %v", tc.block, got, tc.ok)
		}
	}
}
