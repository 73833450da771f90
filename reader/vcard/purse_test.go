package vcard

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

func purseMAC(t testing.TB, key []byte, parts ...[]byte) []byte {
	t.Helper()
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
	}
	m, err := crypt.MACAlg3(key, nil, data, crypt.Pad2)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

var getBalance = perso.Command{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x02, Le: 4}

// load runs INITIALIZE FOR LOAD and CREDIT FOR LOAD as an issuer host
// would, checking S1 and S3, and returns the new balance.
func load(t *testing.T, h *host, d *purseData, amount uint32, nt uint16) uint32 {
	t.Helper()
	termRand := unhex("0102030405060708")
	ifl := h.expect(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, Data: append(u32(amount), termRand...), Le: 256}, 0x9000)
	if len(ifl) != 22 {
		t.Fatalf("INITIALIZE FOR LOAD response of %d bytes, want 22", len(ifl))
	}
	bal, gotNT, cardRand, s1 := ifl[:4], ifl[4:6], ifl[6:14], ifl[14:]
	if !bytes.Equal(gotNT, u16(nt)) {
		t.Errorf("NT %X, want %04X", gotNT, nt)
	}
	if want := purseMAC(t, d.kdl, d.iep, gotNT, u32(amount), termRand, cardRand); !bytes.Equal(s1, want) {
		t.Fatalf("S1 %X, want %X", s1, want)
	}
	s2 := purseMAC(t, d.kdl, s1, u32(amount))
	cfl := h.expect(perso.Command{CLA: 0x80, INS: 0x52, Data: s2, Le: 256}, 0x9000)
	if len(cfl) != 12 {
		t.Fatalf("CREDIT FOR LOAD response of %d bytes, want 12", len(cfl))
	}
	newBal := binary.BigEndian.Uint32(cfl)
	if newBal != binary.BigEndian.Uint32(bal)+amount {
		t.Errorf("new balance %d after loading %d onto %d", newBal, amount, binary.BigEndian.Uint32(bal))
	}
	if want := purseMAC(t, d.kdl, s2, cfl[:4]); !bytes.Equal(cfl[4:], want) {
		t.Errorf("S3 %X, want %X", cfl[4:], want)
	}
	return newBal
}

func TestPurseLoad(t *testing.T) {
	d := makePurse(t, 1000, 5000, 0)
	c := loadedCard(t, Config{}, nil, d)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(purseAID), 0x9000)
	if got := h.expect(getBalance, 0x9000); !bytes.Equal(got, u32(1000)) {
		t.Fatalf("GET BALANCE %X", got)
	}
	if bal := load(t, h, d, 1500, 0); bal != 2500 {
		t.Errorf("balance %d after a load of 1500", bal)
	}
	if bal := load(t, h, d, 2500, 1); bal != 5000 {
		t.Errorf("balance %d at the maximum", bal)
	}
	if got := h.expect(getBalance, 0x9000); !bytes.Equal(got, u32(5000)) {
		t.Errorf("GET BALANCE %X after loads", got)
	}
	if st, _ := c.Applet(purseAID); st.Balance != 5000 || st.NT != 2 {
		t.Errorf("AppletState balance %d NT %d", st.Balance, st.NT)
	}
	// Over the maximum, zero, wrong lengths and parameters.
	ifl := func(amount uint32) perso.Command {
		return perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, Data: append(u32(amount), make([]byte, 8)...), Le: 256}
	}
	h.expect(ifl(1), 0x6A80)
	h.expect(ifl(0), 0x6A80)
	h.expect(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x01, Data: make([]byte, 12), Le: 256}, 0x6A86)
	h.expect(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, Data: make([]byte, 11), Le: 256}, 0x6700)
	h.expect(perso.Command{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x01, Le: 4}, 0x6A86)
	h.expect(perso.Command{CLA: 0x00, INS: 0x5C, P1: 0x00, P2: 0x02, Le: 4}, 0x6E00)
}

func TestPurseCreditRefused(t *testing.T) {
	d := makePurse(t, 0, 5000, 0)
	c := loadedCard(t, Config{}, nil, d)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(purseAID), 0x9000)
	// CREDIT FOR LOAD without INITIALIZE FOR LOAD.
	h.expect(perso.Command{CLA: 0x80, INS: 0x52, Data: make([]byte, 8), Le: 256}, 0x6985)
	// A wrong S2 credits nothing and cancels the load.
	h.expect(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, Data: append(u32(100), make([]byte, 8)...), Le: 256}, 0x9000)
	h.expect(perso.Command{CLA: 0x80, INS: 0x52, Data: make([]byte, 8), Le: 256}, 0x6982)
	h.expect(perso.Command{CLA: 0x80, INS: 0x52, Data: make([]byte, 8), Le: 256}, 0x6985)
	// Another command between the two cancels the load too.
	ifl := h.expect(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, Data: append(u32(100), make([]byte, 8)...), Le: 256}, 0x9000)
	h.expect(getBalance, 0x9000)
	s2 := purseMAC(t, d.kdl, ifl[14:], u32(100))
	h.expect(perso.Command{CLA: 0x80, INS: 0x52, Data: s2, Le: 256}, 0x6985)
	if got := h.expect(getBalance, 0x9000); !bytes.Equal(got, u32(0)) {
		t.Errorf("balance %X after refused credits", got)
	}
	if st, _ := c.Applet(purseAID); st.NT != 0 {
		t.Errorf("NT %d after refused credits", st.NT)
	}
}

func TestPurseUpdate(t *testing.T) {
	d := makePurse(t, 1000, 5000, 0)
	c := loadedCard(t, Config{}, nil, d)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(purseAID), 0x9000)
	update := func(tag uint16, value []byte, nt uint16, key []byte) perso.Command {
		m := purseMAC(t, key, d.iep, u16(nt), u16(tag), value)
		data := append(append(u16(tag), value...), m...)
		return perso.Command{CLA: 0x80, INS: 0x54, Data: data, Le: perso.LeNone}
	}
	// Wrong key: refused, nothing changes.
	h.expect(update(0xDF06, u32(9000), 0, d.kdl), 0x6982)
	// Raise the maximum, then load beyond the old one.
	h.expect(update(0xDF06, u32(9000), 0, d.kdu), 0x9000)
	// Replaying the same command fails: NT moved on.
	h.expect(update(0xDF06, u32(9000), 0, d.kdu), 0x6982)
	if bal := load(t, h, d, 7000, 1); bal != 8000 {
		t.Errorf("balance %d", bal)
	}
	// The record shows the new maximum.
	rec := h.expect(perso.Command{CLA: 0x00, INS: 0xB2, P1: 1, P2: 1<<3 | 4, Le: 256}, 0x9000)
	if mx, ok := perso.FindTLV(rec, 0xDF06); !ok || !bytes.Equal(mx.Value, u32(9000)) {
		t.Errorf("DF06 after UPDATE: %X", mx.Value)
	}
	for _, tc := range []struct {
		name  string
		tag   uint16
		value []byte
		sw    uint16
	}{
		{"maximum below the balance", 0xDF06, u32(10), 0x6A80},
		{"IEP identifier", 0xDF01, make([]byte, 10), 0x6A88},
		{"unknown tag", 0xDF55, []byte{1}, 0x6A88},
		{"wrong length", 0xDF05, []byte{1, 2}, 0x6700},
	} {
		if got := h.do(update(tc.tag, tc.value, 2, d.kdu)).SW; got != tc.sw {
			t.Errorf("UPDATE %s: SW %04X, want %04X", tc.name, got, tc.sw)
		}
	}
	h.expect(update(0xDF05, []byte{0x03}, 2, d.kdu), 0x9000)
}

func TestPurseInternalAuthenticate(t *testing.T) {
	d := makePurse(t, 0, 5000, 1024)
	c := loadedCard(t, Config{}, nil, d)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(purseAID), 0x9000)
	got := h.expect(perso.Command{CLA: 0x00, INS: 0x88, Data: unhex("CAFEBABE"), Le: 256}, 0x9000)
	if len(got) != 3+128 || got[0] != 0x80 {
		t.Errorf("INTERNAL AUTHENTICATE response %X", got)
	}
}

// TestPurseSecureChannelAfterPerso: once personalized, 80 50 is
// INITIALIZE FOR LOAD, not INITIALIZE UPDATE.
func TestPurseSecureChannelAfterPerso(t *testing.T) {
	d := makePurse(t, 0, 5000, 0)
	c := loadedCard(t, Config{}, nil, d)
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(purseAID), 0x9000)
	h.expect(perso.Command{CLA: 0x80, INS: 0x50, Data: make([]byte, 8), Le: 256}, 0x6A86)
	h.expect(perso.Command{CLA: 0x84, INS: 0x82, P1: 0x01, Data: make([]byte, 16), Le: perso.LeNone}, 0x6982)
}
