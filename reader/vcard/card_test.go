package vcard

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/gp"
)

func TestNewErrors(t *testing.T) {
	short := unhex("404142434445464748494A4B4C4D4E")
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no keys", Config{}, "either ENC, MAC and DEK, or a KMC"},
		{"keys and KMC", Config{Keys: Keys{ENC: scp02Keys.ENC, MAC: scp02Keys.MAC, DEK: scp02Keys.DEK, KMC: scp02Keys.ENC}}, "either"},
		{"short SCP02 key", Config{Keys: Keys{ENC: short, MAC: scp02Keys.MAC, DEK: scp02Keys.DEK}}, "SCP02 key is 15 bytes"},
		{"SCP01", Config{Keys: scp02Keys, SCP: perso.SCP{Version: 1, Param: 0x05}}, "not supported"},
		{"SCP02 i=04", Config{Keys: scp02Keys, SCP: perso.SCP{Version: 2, Param: 0x04}}, "not supported"},
		{"SCP03 with a VISA2 KMC", Config{Keys: Keys{KMC: scp03Keys.ENC, Method: perso.MethodVISA2}, SCP: perso.SCP{Version: 3, Param: 0x00}}, "does not apply"},
		{"short KDD", Config{Keys: scp02Keys, KDD: []byte{1, 2, 3}}, "KDD is 3 bytes"},
		{"short CPLC", Config{Keys: scp02Keys, CPLC: []byte{1}}, "CPLC is 1 bytes"},
		{"SCP02 counter", Config{Keys: scp02Keys, Sequence: 0x10000}, "does not fit 2 bytes"},
		{"ISD AID", Config{Keys: scp02Keys, ISD: []byte{1, 2}}, "ISD AID is 2 bytes"},
		{"EMV AID twice", Config{Keys: scp02Keys, EMV: [][]byte{emvAID, emvAID}}, "installed twice"},
		{"purse on the ISD AID", Config{Keys: scp02Keys, Purse: AIDISD}, "installed twice"},
		{"short AID", Config{Keys: scp02Keys, EMV: [][]byte{{0xA0}}}, "want 5 to 16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestKeysRedacted(t *testing.T) {
	k := Keys{ENC: scp02Keys.ENC, MAC: scp02Keys.MAC, DEK: scp02Keys.DEK}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %s", k, k, k, k, k), fmt.Sprint(Config{Keys: k})} {
		if strings.Contains(strings.ToUpper(s), "404142") || strings.Contains(s, "[64 65") {
			t.Errorf("key bytes printed: %s", s)
		}
	}
}

func TestISD(t *testing.T) {
	cplc := make([]byte, 42)
	for i := range cplc {
		cplc[i] = byte(i)
	}
	for _, scp := range []perso.SCP{{Version: 2, Param: 0x15}, {Version: 3, Param: 0x70}} {
		c := newTestCard(t, Config{SCP: scp, CPLC: cplc, ISD: AIDOPCardManager})
		h := newHost(t, c, Keys{}, scp)
		fci := h.expect(selectCmd(AIDOPCardManager), 0x9000)
		if got, ok := perso.FindTLVPath(fci, 0x6F, 0x84); !ok || !bytes.Equal(got.Value, AIDOPCardManager) {
			t.Errorf("ISD FCI %X", fci)
		}
		scpOID, ok := perso.FindTLVPath(fci, 0x6F, 0xA5, 0x73, 0x64, 0x06)
		if want := []byte{0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, scp.Version, scp.Param}; !ok || !bytes.Equal(scpOID.Value, want) {
			t.Errorf("SCP OID %X, want %X", scpOID.Value, want)
		}
		// SELECT with no AID selects the ISD too.
		h.expect(perso.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Le: 256}, 0x9000)
		getData := func(p1, p2 byte) []byte {
			return h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: p1, P2: p2, Le: 256}, 0x9000)
		}
		if got := getData(0x9F, 0x7F); !bytes.Equal(got, append([]byte{0x9F, 0x7F, 42}, cplc...)) {
			t.Errorf("CPLC %X", got)
		}
		// The default KDD comes from the CPLC.
		if got, want := getData(0x00, 0xCF), unhex("CF0A"+"00010203"+"0C0D0E0F1011"); !bytes.Equal(got, want) {
			t.Errorf("KDD %X, want %X", got, want)
		}
		kinfo := "E012C00401018010C00402018010C00403018010"
		if scp.Version == 3 {
			kinfo = "E012C00401308810C00402308810C00403308810"
		}
		if got := getData(0x00, 0xE0); !bytes.Equal(got, unhex(kinfo)) {
			t.Errorf("key information %X, want %s", got, kinfo)
		}
		rec := getData(0x00, 0x66)
		if _, ok := perso.FindTLVPath(rec, 0x66, 0x73, 0x60, 0x06); !ok {
			t.Errorf("card recognition data %X", rec)
		}
		h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x00, P2: 0x42, Le: 256}, 0x6A88)
		h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x7F, Data: []byte{1}, Le: 256}, 0x6700)
		h.expect(perso.Command{CLA: 0x80, INS: 0xF2, P1: 0x80, Le: 256}, 0x6D00)
		// STORE DATA to the ISD without INSTALL [for personalization].
		h.keys = scp02Keys
		if scp.Version == 3 {
			h.keys = scp03Keys
		}
		h.open(gp.LevelCMAC)
		h.expect(perso.Command{CLA: 0x80, INS: 0xE2, P1: 0x80, Data: unhex("9102020000"), Le: perso.LeNone}, 0x6985)
		h.expect(perso.Command{CLA: 0x80, INS: 0xE6, P1: 0x20, Data: unhex("000007A0000000039999000000"), Le: 256}, 0x6A88)
		h.expect(perso.Command{CLA: 0x80, INS: 0xE6, P1: 0x0C, Data: unhex("0000"), Le: 256}, 0x6A86)
		h.expect(perso.Command{CLA: 0x80, INS: 0xE6, P1: 0x20, Data: unhex("0000"), Le: 256}, 0x6A80)
	}
}

// TestSCP02Sequence: each opened SCP02 session moves the sequence
// counter on, so that session keys never repeat.
func TestSCP02Sequence(t *testing.T) {
	c := newTestCard(t, Config{Sequence: 0x0041})
	h := newHost(t, c, scp02Keys, perso.SCP{})
	h.expect(selectCmd(AIDISD), 0x9000)
	for want := uint32(0x41); want < 0x44; want++ {
		h.open(gp.LevelCMAC)
		if got := c.sd.gp.Sequence(); got != want+1 {
			t.Errorf("sequence counter %X after a session from %X", got, want)
		}
	}
}

// TestTransportCases: the card answers the case 1 to 4 commands as a T=0
// card would: 61xx and GET RESPONSE for a response to a command without
// Le, 6Cxx for an Le too short on a case 2 command.
func TestTransportCases(t *testing.T) {
	c := loadedCard(t, Config{}, makeEMV(t, emvOptions{}), nil)
	sel := append(unhex("00A4040007"), emvAID...)
	data, sw := raw(t, c, sel) // case 3: no Le
	if sw>>8 != 0x61 || len(data) != 0 {
		t.Fatalf("SELECT without Le: %X %04X, want 61xx", data, sw)
	}
	n := int(sw & 0xFF)
	data, sw = raw(t, c, []byte{0x00, 0xC0, 0x00, 0x00, byte(n - 5)})
	if sw != 0x6105 || len(data) != n-5 {
		t.Fatalf("partial GET RESPONSE: %d bytes %04X, want %d bytes 6105", len(data), sw, n-5)
	}
	rest, sw := raw(t, c, []byte{0x00, 0xC0, 0x00, 0x00, 0x00})
	if sw != 0x9000 || len(rest) != 5 {
		t.Fatalf("GET RESPONSE: %d bytes %04X", len(rest), sw)
	}
	full, _ := raw(t, c, append(sel, 0x00))
	if !bytes.Equal(append(data, rest...), full) {
		t.Errorf("GET RESPONSE gave %X, SELECT with Le %X", append(data, rest...), full)
	}
	if _, sw := raw(t, c, []byte{0x00, 0xC0, 0x00, 0x00, 0x00}); sw != 0x6985 {
		t.Errorf("GET RESPONSE with nothing held: %04X", sw)
	}
	// Case 2 with a short Le: 6Cxx, then the exact length.
	_, sw = raw(t, c, unhex("00B2010C05"))
	if sw>>8 != 0x6C {
		t.Fatalf("READ RECORD Le 5: %04X, want 6Cxx", sw)
	}
	rec, sw := raw(t, c, append(unhex("00B2010C"), byte(sw)))
	if sw != 0x9000 || len(rec) == 0 {
		t.Errorf("READ RECORD with the exact Le: %d bytes %04X", len(rec), sw)
	}
	// Case 4 with a short Le: the first bytes and 61xx.
	gpo, sw := raw(t, c, unhex("80A8000002830004"))
	if sw>>8 != 0x61 || len(gpo) != 4 {
		t.Errorf("GPO Le 4: %d bytes %04X", len(gpo), sw)
	}
	// perso.Conn hides all of this.
	conn := perso.NewConn(c)
	if _, err := conn.Do(perso.Command{CLA: 0x00, INS: 0xB2, P1: 1, P2: 0x0C, Le: 1}); err != nil {
		t.Errorf("Conn READ RECORD: %v", err)
	}
}

func TestClassAndMalformed(t *testing.T) {
	c := loadedCard(t, Config{}, makeEMV(t, emvOptions{}), nil)
	raw(t, c, append(unhex("00A4040007"), emvAID...))
	for _, tc := range []struct {
		apdu string
		sw   uint16
	}{
		{"00", 0x6700},
		{"00B2", 0x6700},
		{"00B2010C0500", 0x6700}, // Lc 5 with one byte
		{"FFB2010C00", 0x6E00},
		{"01B2010C00", 0x6881},
		{"40B2010C00", 0x6881},
		{"10B2010C00", 0x6884},
		{"0CB2010C00", 0x6882},
		{"00A4000000", 0x6A86},
		{"00A4040100", 0x6A86},
		{"00A404001100000000000000000000000000000000000000", 0x6700},
		{"80B2010C00", 0x6E00},
		{"00A8000002830000", 0x6E00},
		{"8012000000", 0x6D00},
		{"00C0000000", 0x6985},
		{"84E2000000", 0x6982},
	} {
		if _, sw := raw(t, c, unhex(tc.apdu)); sw != tc.sw {
			t.Errorf("%s: SW %04X, want %04X", tc.apdu, sw, tc.sw)
		}
	}
}

func TestFaults(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	t.Run("remove", func(t *testing.T) {
		c := newTestCard(t, Config{Fault: Fault{At: 2, Kind: FaultRemove}})
		h := newHost(t, c, scp02Keys, perso.SCP{})
		h.expect(selectCmd(emvAID), 0x9000)
		if _, err := h.conn.Transmit(selectCmd(emvAID)); !errors.Is(err, ErrRemoved) {
			t.Fatalf("APDU 2: %v, want ErrRemoved", err)
		}
		if _, err := c.Transmit(unhex("00A4040000")); !errors.Is(err, ErrRemoved) {
			t.Errorf("after removal: %v, want ErrRemoved", err)
		}
		if atr := c.Reset(); !bytes.Equal(atr, DefaultATR) {
			t.Errorf("ATR %X", atr)
		}
		h.personalize(emvAID, emv.dgis, gp.LevelCMAC, storeSplit, 200)
		if c.Count() < 5 {
			t.Errorf("Count %d", c.Count())
		}
	})
	t.Run("tear during the last STORE DATA", func(t *testing.T) {
		c0 := newTestCard(t, Config{})
		h0 := newHost(t, c0, scp02Keys, perso.SCP{})
		h0.personalize(emvAID, emv.dgis, gp.LevelCMAC, storeSplit, 200)
		last := c0.Count()
		c := newTestCard(t, Config{Fault: Fault{At: last, Kind: FaultTear}})
		h := newHost(t, c, scp02Keys, perso.SCP{})
		h.expect(selectCmd(emvAID), 0x9000)
		h.open(gp.LevelCMAC)
		cmds := h.storeCommands(emv.dgis, storeSplit, 200)
		for _, cmd := range cmds[:len(cmds)-1] {
			h.expect(cmd, 0x9000)
		}
		if _, err := h.conn.Transmit(cmds[len(cmds)-1]); !errors.Is(err, ErrRemoved) {
			t.Fatalf("last STORE DATA: %v, want ErrRemoved", err)
		}
		// The command ran: the card is personalized although the host
		// never saw the answer.
		if st, _ := c.Applet(emvAID); st.State != Personalized {
			t.Errorf("state %v after a tear on the last block", st.State)
		}
	})
	t.Run("status word", func(t *testing.T) {
		c := newTestCard(t, Config{Fault: Fault{At: 1, Kind: FaultSW, SW: 0x6581}})
		if _, sw := raw(t, c, append(unhex("00A4040007"), emvAID...)); sw != 0x6581 {
			t.Errorf("SW %04X, want 6581", sw)
		}
		if _, sw := raw(t, c, append(append(unhex("00A4040007"), emvAID...), 0x00)); sw != 0x9000 {
			t.Errorf("the next APDU: SW %04X", sw)
		}
	})
}

func TestAppletsState(t *testing.T) {
	c := newTestCard(t, Config{EMV: [][]byte{emvAID, unhex("A0000000032010")}})
	got := c.Applets()
	want := []AppletState{
		{AID: emvAID, Kind: "EMV", State: Selectable, DGIs: []perso.DGI{}},
		{AID: unhex("A0000000032010"), Kind: "EMV", State: Selectable, DGIs: []perso.DGI{}},
		{AID: purseAID, Kind: "purse", State: Selectable, DGIs: []perso.DGI{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Applets (-want +got):\n%s", diff)
	}
	if _, ok := c.Applet(unhex("A0000000041010")); ok {
		t.Error("Applet of an AID not installed")
	}
	// Next occurrence selection across two EMV applets.
	h := newHost(t, c, scp02Keys, perso.SCP{})
	first := h.expect(selectCmd(unhex("A000000003")), 0x9000)
	next := h.expect(perso.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x02, Data: unhex("A000000003"), Le: 256}, 0x9000)
	if bytes.Equal(first, next) {
		t.Error("next occurrence selected the same applet")
	}
	if s := fmt.Sprint(LifeCycle(0x03)); s != "LifeCycle(0x03)" {
		t.Errorf("LifeCycle String %q", s)
	}
}

// TestCardPrintsNoSecrets prints a personalized card and its applets'
// states with every verb and through slog: no key, PIN block or CRT
// component may show, in hex or in decimal.
func TestCardPrintsNoSecrets(t *testing.T) {
	emv := makeEMV(t, emvOptions{bits: 1024})
	purse := makePurse(t, 10, 100, 0)
	c := loadedCard(t, Config{Keys: scp02Keys}, emv, purse)
	var secrets [][]byte
	for _, ds := range [][]perso.DGI{emv.dgis, purse.dgis} {
		for _, d := range ds {
			if perso.SecretDGI(d.Tag) {
				secrets = append(secrets, d.Value)
			}
		}
	}
	secrets = append(secrets, scp02Keys.ENC)
	var out strings.Builder
	var logb bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logb, nil))
	for _, v := range []any{c, c.sd, c.Applets(), Config{Keys: scp02Keys}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		log.Info("card", "value", v)
	}
	out.WriteString(logb.String())
	s := out.String()
	for _, sec := range secrets {
		for _, form := range []string{fmt.Sprintf("%X", sec[:6]), fmt.Sprintf("%x", sec[:6]), strings.Trim(fmt.Sprint(sec[:6]), "[]")} {
			if strings.Contains(s, form) {
				t.Errorf("printed a secret (%s)", form)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(c), "EMV A0000000031010 PERSONALIZED") {
		t.Errorf("String: %s", c)
	}
}
