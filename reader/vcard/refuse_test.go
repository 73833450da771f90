package vcard

import (
	"bytes"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/gp"
)

// wrapped returns the bytes of cmd protected by the host's session, to
// send (or send again) with Transmit.
func (h *host) wrapped(c perso.Command) []byte {
	h.t.Helper()
	w, err := h.hs.Wrap(gp.Command(c))
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := perso.Command(w).Bytes()
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// swOf sends raw bytes and returns the status word.
func swOf(t testing.TB, c *Card, apdu []byte) uint16 {
	t.Helper()
	_, sw := raw(t, c, apdu)
	return sw
}

// TestSecureChannelRefusals: the card side refuses wrong cryptograms, bad
// and replayed MACs, and STORE DATA outside an authenticated session.
func TestSecureChannelRefusals(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	for _, scp := range []perso.SCP{{Version: 2, Param: 0x55}, {Version: 3, Param: 0x70}} {
		t.Run(scp.String(), func(t *testing.T) {
			keys := scp02Keys
			if scp.Version == 3 {
				keys = scp03Keys
			}
			card := newTestCard(t, Config{SCP: scp})
			h := newHost(t, card, keys, scp)
			sd := perso.Command{CLA: 0x80, INS: 0xE2, P1: 0x00, P2: 0x00, Data: perso.AppendDGI(nil, 0x9102, dgiValue(t, emv.dgis, 0x9102)), Le: perso.LeNone}
			sdBytes, _ := sd.Bytes()

			h.expect(selectCmd(emvAID), 0x9000)
			// No session at all.
			if sw := swOf(t, card, sdBytes); sw != 0x6982 {
				t.Errorf("STORE DATA without a session: SW %04X, want 6982", sw)
			}
			// EXTERNAL AUTHENTICATE without INITIALIZE UPDATE.
			if sw := swOf(t, card, unhex("8482010010"+"00000000000000000000000000000000")); sw != 0x6985 {
				t.Errorf("EXTERNAL AUTHENTICATE first: SW %04X, want 6985", sw)
			}

			// A wrong host cryptogram: 6300, and the session is gone.
			hs, err := gp.NewHostSession(gp.HostConfig{Protocol: gp.Protocol{Version: scp.Version, I: scp.Param}, Rand: detRand(7)})
			if err != nil {
				t.Fatal(err)
			}
			iu, _ := hs.InitializeUpdate()
			iub, _ := perso.Command(iu).Bytes()
			data, sw := raw(t, card, iub)
			if sw != 0x9000 {
				t.Fatalf("INITIALIZE UPDATE: SW %04X", sw)
			}
			ir, err := hs.ReadInitializeUpdate(data)
			if err != nil {
				t.Fatal(err)
			}
			ea, err := hs.ExternalAuthenticate(sessionKeys(t, keys, hs, ir), gp.LevelCMAC)
			if err != nil {
				t.Fatal(err)
			}
			bad := ea
			bad.Data = append([]byte(nil), ea.Data...)
			bad.Data[0] ^= 0x01
			badb, _ := perso.Command(bad).Bytes()
			if sw := swOf(t, card, badb); sw != 0x6300 {
				t.Errorf("wrong host cryptogram: SW %04X, want 6300", sw)
			}
			eab, _ := perso.Command(ea).Bytes()
			if sw := swOf(t, card, eab); sw != 0x6985 {
				t.Errorf("EXTERNAL AUTHENTICATE after a failed one: SW %04X, want 6985", sw)
			}

			// A good session, then a replayed and a tampered STORE DATA.
			h.open(gp.LevelCMAC)
			first := h.wrapped(sd)
			if sw := swOf(t, card, first); sw != 0x9000 {
				t.Fatalf("STORE DATA: SW %04X", sw)
			}
			if sw := swOf(t, card, first); sw != 0x6982 {
				t.Errorf("replayed STORE DATA: SW %04X, want 6982", sw)
			}
			sd.P2 = 1
			if sw := swOf(t, card, h.wrapped(sd)); sw != 0x6982 {
				t.Errorf("STORE DATA after the session broke: SW %04X, want 6982", sw)
			}

			h.open(gp.LevelCMAC)
			sd.P2 = 0
			tampered := h.wrapped(sd)
			tampered[len(tampered)-1] ^= 0x80
			if sw := swOf(t, card, tampered); sw != 0x6982 {
				t.Errorf("STORE DATA with a bad C-MAC: SW %04X, want 6982", sw)
			}

			// A command without its C-MAC in a C-MAC session.
			h.open(gp.LevelCMAC)
			if sw := swOf(t, card, sdBytes); sw != 0x6982 {
				t.Errorf("STORE DATA without C-MAC: SW %04X, want 6982", sw)
			}
			if sw := swOf(t, card, h.wrapped(sd)); sw != 0x6982 {
				t.Errorf("STORE DATA after one without C-MAC: SW %04X, want 6982", sw)
			}

			// SELECT ends the session.
			h.open(gp.LevelCMAC)
			h.conn.SetSecureChannel(nil)
			h.expect(selectCmd(emvAID), 0x9000)
			if sw := swOf(t, card, h.wrapped(sd)); sw != 0x6982 {
				t.Errorf("STORE DATA after SELECT: SW %04X, want 6982", sw)
			}

			// Level 00: authenticated but not protected; personalization
			// needs the C-MAC.
			h.open(gp.LevelNone)
			h.conn.SetSecureChannel(nil)
			if sw := swOf(t, card, sdBytes); sw != 0x6982 {
				t.Errorf("STORE DATA at level 00: SW %04X, want 6982", sw)
			}
			if st, _ := card.Applet(emvAID); st.State != Selectable {
				t.Errorf("state %v", st.State)
			}
		})
	}
}

// TestStoreDataRefusals: what the applet refuses in STORE DATA, and that
// a refused personalization leaves it unpersonalized and ready for a new
// attempt.
func TestStoreDataRefusals(t *testing.T) {
	good := makeEMV(t, emvOptions{bits: 1024})
	replace := func(tag uint16, v []byte) []perso.DGI {
		out := make([]perso.DGI, 0, len(good.dgis))
		for _, d := range good.dgis {
			if d.Tag == tag {
				if v == nil {
					continue
				}
				d.Value = v
			}
			out = append(out, d)
		}
		return out
	}
	kcvs := bytes.Clone(dgiValue(t, good.dgis, 0x9000))
	kcvs[4] ^= 1
	p := bytes.Clone(dgiValue(t, good.dgis, 0x8205))
	p[10] ^= 1
	cases := []struct {
		name string
		dgis []perso.DGI
		edit func(cmds []perso.Command) []perso.Command
		sw   uint16 // the status word of the first command refused
	}{
		{name: "KCV mismatch", dgis: replace(0x9000, kcvs), sw: 0x6A80},
		{name: "no KCVs", dgis: replace(0x9000, nil), sw: 0x6A80},
		{name: "no FCI", dgis: replace(0x9102, nil), sw: 0x6A80},
		{name: "bad CRT component", dgis: replace(0x8205, p), sw: 0x6A80},
		{name: "missing CRT component", dgis: replace(0x8203, nil), sw: 0x6A80},
		{name: "record not a 70 template", dgis: replace(0x0101, unhex("7102AB01")), sw: 0x6A80},
		{name: "bad AFL", dgis: replace(0x9104, unhex("8202380094030801")), sw: 0x6A80},
		{name: "bad PIN block", dgis: replace(0x8010, unhex("341234FFFFFFFFFF")), sw: 0x6A80},
		{name: "unknown DGI", dgis: append(replace(0x0000, nil), perso.DGI{Tag: 0x7F01, Value: []byte{1}}), sw: 0x6A88},
		{name: "duplicate DGI", dgis: append(replace(0x0000, nil), good.dgis[0]), sw: 0x6A80},
		{
			name: "secret DGI in clear",
			edit: func(cmds []perso.Command) []perso.Command {
				for i := range cmds {
					cmds[i].P1 &^= 0x60
				}
				return cmds
			},
			sw: 0x6A80,
		},
		{
			name: "block number skipped",
			edit: func(cmds []perso.Command) []perso.Command {
				cmds[1].P2 = 2
				return cmds
			},
			sw: 0x6A86,
		},
		{
			name: "P1 RFU encryption",
			edit: func(cmds []perso.Command) []perso.Command {
				cmds[0].P1 |= 0x40
				cmds[0].P1 &^= 0x20
				return cmds
			},
			sw: 0x6A86,
		},
		{
			name: "P1 BER-TLV format",
			edit: func(cmds []perso.Command) []perso.Command {
				cmds[0].P1 |= 0x10
				return cmds
			},
			sw: 0x6A86,
		},
		{
			name: "DGI cut by the last block",
			edit: func(cmds []perso.Command) []perso.Command {
				cmds[0].P1 |= 0x80
				return cmds[:1]
			},
			sw: 0x6A80,
		},
		{
			name: "encryption changes inside a DGI",
			edit: func(cmds []perso.Command) []perso.Command {
				cmds[1].P1 |= 0x60
				return cmds
			},
			sw: 0x6A80,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, Config{})
			h := newHost(t, card, scp02Keys, perso.SCP{})
			dgis := tc.dgis
			if dgis == nil {
				dgis = good.dgis
			}
			h.expect(selectCmd(emvAID), 0x9000)
			h.open(gp.LevelCMAC)
			chunk := 200
			if tc.edit != nil {
				chunk = 20 // the first DGI spans commands
			}
			cmds := h.storeCommands(dgis, storeAppDependent, chunk)
			if tc.edit != nil {
				cmds = tc.edit(cmds)
			}
			refused := false
			for _, c := range cmds {
				if sw := h.do(c).SW; sw != 0x9000 {
					if sw != tc.sw {
						t.Errorf("STORE DATA %v: SW %04X, want %04X", c, sw, tc.sw)
					}
					refused = true
					break
				}
			}
			if !refused {
				t.Errorf("every STORE DATA accepted, want one refused with %04X", tc.sw)
			}
			if st, _ := card.Applet(emvAID); st.State != Selectable || st.DGIs != nil && len(st.DGIs) != 0 {
				t.Errorf("after a refused personalization: state %v, %d DGIs", st.State, len(st.DGIs))
			}
			// A new attempt in a new session succeeds.
			h.personalize(emvAID, good.dgis, gp.LevelCMAC, storeSplit, 200)
			if st, _ := card.Applet(emvAID); st.State != Personalized {
				t.Errorf("after a good personalization: state %v", st.State)
			}
		})
	}
}

// TestStoreDataAfterPerso: a personalized applet takes no more data.
func TestStoreDataAfterPerso(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	card := newTestCard(t, Config{})
	h := newHost(t, card, scp02Keys, perso.SCP{})
	h.personalize(emvAID, emv.dgis, gp.LevelCMAC, storeSplit, 200)
	h.expect(selectCmd(emvAID), 0x9000)
	h.open(gp.LevelCMAC)
	h.expect(h.storeCommands(emv.dgis[:1], storeSplit, 200)[0], 0x6985)
	if err := card.Load(emvAID, emv.dgis); err == nil {
		t.Error("Load into a personalized applet succeeded")
	}
}

// TestSessionResetByPowerOff: a session and an unfinished
// personalization do not survive a reset.
func TestSessionResetByPowerOff(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	card := newTestCard(t, Config{})
	h := newHost(t, card, scp02Keys, perso.SCP{})
	h.expect(selectCmd(emvAID), 0x9000)
	h.open(gp.LevelCMAC)
	cmds := h.storeCommands(emv.dgis, storeSplit, 40)
	h.expect(cmds[0], 0x9000)
	card.Reset()
	h.conn.SetSecureChannel(nil)
	h.expect(selectCmd(emvAID), 0x9000)
	h.open(gp.LevelCMAC)
	cmds = h.storeCommands(emv.dgis, storeSplit, 40)
	h.expect(cmds[1], 0x6A86) // block numbers start over
	// All of it again from block 0: the DGI of the first attempt is gone,
	// or it would now be a duplicate.
	for _, c := range cmds {
		h.expect(c, 0x9000)
	}
	if st, _ := card.Applet(emvAID); st.State != Personalized {
		t.Errorf("state %v", st.State)
	}
}

// TestSessionReplay: a recorded session replayed on the same card fails
// at EXTERNAL AUTHENTICATE, whatever the card challenge: random (SCP02
// i=15, SCP03 i=00) or pseudo-random from a counter that moved on (SCP02
// i=55, SCP03 i=10).
func TestSessionReplay(t *testing.T) {
	emv := makeEMV(t, emvOptions{})
	for _, scp := range []perso.SCP{{Version: 2, Param: 0x15}, {Version: 2, Param: 0x55}, {Version: 3, Param: 0x00}, {Version: 3, Param: 0x10}} {
		keys := scp02Keys
		if scp.Version == 3 {
			keys = scp03Keys
		}
		card := newTestCard(t, Config{SCP: scp, Rand: detRand(uint64(scp.Param))})
		rec := &recorder{c: card}
		h := newHost(t, rec, keys, scp)
		h.expect(selectCmd(emvAID), 0x9000)
		h.open(gp.LevelCMAC)
		h.expect(h.storeCommands(emv.dgis, storeSplit, 200)[0], 0x9000)
		want := []uint16{0x9000, 0x9000, 0x6300, 0x6982}
		for i, apdu := range rec.apdu {
			if _, sw := raw(t, card, apdu); sw != want[i] && !(i == 1 && sw>>8 == 0x61) {
				t.Errorf("%v: replayed APDU %d: SW %04X, want %04X", scp, i, sw, want[i])
			}
		}
	}
}
