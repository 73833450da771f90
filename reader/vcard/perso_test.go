package vcard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/gp"
	"github.com/cardperso/perso/internal/kdf"
)

// dgiMap returns DGIs by tag as hex, for comparisons that print no
// structure.
func dgiMap(ds []perso.DGI) map[uint16]string {
	m := make(map[uint16]string, len(ds))
	for _, d := range ds {
		m[d.Tag] = fmt.Sprintf("%X", d.Value)
	}
	return m
}

// TestPersonalize personalizes both applets over every secure channel
// protocol, level and STORE DATA layout, and checks that each applet
// holds exactly the DGIs sent, in clear, and is PERSONALIZED.
func TestPersonalize(t *testing.T) {
	cases := []struct {
		scp   perso.SCP
		level gp.Level
		mode  storeMode
		chunk int
		bits  int
	}{
		{perso.SCP{Version: 2, Param: 0x55}, gp.LevelCMAC, storeSplit, 239, 1024},
		{perso.SCP{Version: 2, Param: 0x15}, gp.LevelCMAC | gp.LevelCDEC, storeAppDependent, 100, 1024},
		{perso.SCP{Version: 2, Param: 0x55}, gp.LevelCMAC, storeAllEncrypted, 37, 1000},
		{perso.SCP{Version: 2, Param: 0x15}, gp.LevelCMAC, storeAppDependent, 7, 1152},
		{perso.SCP{Version: 3, Param: 0x00}, gp.LevelCMAC, storeSplit, 200, 1024},
		{perso.SCP{Version: 3, Param: 0x10}, gp.LevelCMAC | gp.LevelCDEC, storeAllEncrypted, 64, 1000},
		{perso.SCP{Version: 3, Param: 0x70}, gp.LevelCMAC | gp.LevelCDEC | gp.LevelRMAC | gp.LevelRENC, storeAppDependent, 50, 1152},
		{perso.SCP{Version: 3, Param: 0x70}, gp.LevelCMAC | gp.LevelRMAC, storeSplit, 255 - 8 - 16, 0},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%v/level%02X/mode%d/chunk%d/rsa%d", tc.scp, byte(tc.level), tc.mode, tc.chunk, tc.bits)
		t.Run(name, func(t *testing.T) {
			card := newTestCard(t, Config{SCP: tc.scp})
			keys := scp02Keys
			if tc.scp.Version == 3 {
				keys = scp03Keys
			}
			h := newHost(t, card, keys, tc.scp)
			emv := makeEMV(t, emvOptions{bits: tc.bits})
			purse := makePurse(t, 1000, 50000, tc.bits)
			h.personalize(emvAID, emv.dgis, tc.level, tc.mode, tc.chunk)
			h.personalize(purseAID, purse.dgis, tc.level, tc.mode, tc.chunk)
			for _, want := range []struct {
				aid  []byte
				kind string
				dgis []perso.DGI
			}{{emvAID, "EMV", emv.dgis}, {purseAID, "purse", purse.dgis}} {
				st, ok := card.Applet(want.aid)
				if !ok {
					t.Fatalf("no applet %X", want.aid)
				}
				if st.State != Personalized || st.Kind != want.kind {
					t.Errorf("%s applet: state %v kind %q", want.kind, st.State, st.Kind)
				}
				if diff := cmp.Diff(dgiMap(want.dgis), dgiMap(st.DGIs)); diff != "" {
					t.Errorf("%s applet DGIs (-sent +held):\n%s", want.kind, diff)
				}
			}
		})
	}
}

// TestPersonalizeInstall personalizes through the ISD with INSTALL [for
// personalization], GP style.
func TestPersonalizeInstall(t *testing.T) {
	card := newTestCard(t, Config{})
	h := newHost(t, card, scp02Keys, perso.SCP{})
	emv := makeEMV(t, emvOptions{bits: 1024})
	h.expect(selectCmd(AIDISD), 0x9000)
	h.open(gp.LevelCMAC)
	install := append([]byte{0, 0, byte(len(emvAID))}, emvAID...)
	install = append(install, 0, 0, 0)
	if got := h.expect(perso.Command{CLA: 0x80, INS: 0xE6, P1: 0x20, Data: install, Le: 256}, 0x9000); !bytes.Equal(got, []byte{0}) {
		t.Errorf("INSTALL response %X, want 00", got)
	}
	for _, c := range h.storeCommands(emv.dgis, storeSplit, 200) {
		h.expect(c, 0x9000)
	}
	if st, _ := card.Applet(emvAID); st.State != Personalized {
		t.Errorf("state %v after INSTALL and STORE DATA", st.State)
	}
}

// diversificationVectors is testdata/gp_diversification.json.
type diversificationVectors struct {
	Source string         `json:"source"`
	KMC    perso.HexBytes `json:"kmc"`
	KDD    perso.HexBytes `json:"kdd"`
	Cases  []struct {
		Method string         `json:"method"`
		ENC    perso.HexBytes `json:"enc"`
		MAC    perso.HexBytes `json:"mac"`
		DEK    perso.HexBytes `json:"dek"`
		KCVENC perso.HexBytes `json:"kcv_enc"`
		KCVMAC perso.HexBytes `json:"kcv_mac"`
		KCVDEK perso.HexBytes `json:"kcv_dek"`
	} `json:"cases"`
}

// TestDiversifiedKeys sets cards up with a KMC, as an issuer's key
// ceremony would, and personalizes them with keys whose values or KCVs
// are published (testdata/gp_diversification.json): the card diversifies
// as the host expects.
func TestDiversifiedKeys(t *testing.T) {
	b, err := os.ReadFile("testdata/gp_diversification.json")
	if err != nil {
		t.Fatal(err)
	}
	var v diversificationVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	methods := map[string]perso.Method{"CPS": perso.MethodCPS, "VISA2": perso.MethodVISA2}
	for _, tc := range v.Cases {
		t.Run(tc.Method, func(t *testing.T) {
			keys := Keys{ENC: tc.ENC, MAC: tc.MAC, DEK: tc.DEK}
			if keys.ENC == nil {
				// Only the KCVs are published: derive, then check them.
				for i, dst := range []*[]byte{&keys.ENC, &keys.MAC, &keys.DEK} {
					if *dst, err = kdf.DiversifyVISA2(v.KMC, v.KDD, i+1); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, k := range [][]byte{keys.ENC, keys.MAC, keys.DEK} {
				kcv, _ := crypt.KCV(k)
				if want := [][]byte{tc.KCVENC, tc.KCVMAC, tc.KCVDEK}[i]; !bytes.Equal(kcv[:], want) {
					t.Fatalf("key %d: KCV %X, published %X", i+1, kcv, want)
				}
			}
			card := newTestCard(t, Config{Keys: Keys{KMC: v.KMC, Method: methods[tc.Method]}, KDD: v.KDD})
			h := newHost(t, card, keys, perso.SCP{})
			h.personalize(emvAID, makeEMV(t, emvOptions{}).dgis, gp.LevelCMAC, storeSplit, 200)
			h.expect(selectCmd(AIDISD), 0x9000)
			got := h.expect(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x00, P2: 0xCF, Le: 256}, 0x9000)
			if want := append([]byte{0xCF, 0x0A}, v.KDD...); !bytes.Equal(got, want) {
				t.Errorf("GET DATA 00CF: %X, want %X", got, want)
			}
		})
	}
}

// TestEncryptedPadding: DGIs sent encrypted (P1 b7-b6 = 11) are whole
// blocks after encryption; the card finds their clear length whether or
// not they were padded, including values that end in 80 at a block
// boundary.
func TestEncryptedPadding(t *testing.T) {
	for _, tc := range []struct {
		v, want string
		bs      int
	}{
		{"9F1401039F230180", "9F1401039F230180", 8},                                 // whole block, ends in 80: kept
		{"9F14010380000000", "9F140103", 8},                                         // 4 bytes padded
		{"9F1401039F2301058000000000000000", "9F1401039F230105", 16},                // 8 bytes padded to an AES block
		{"9F1401039F2301058000000000000000", "9F1401039F2301058000000000000000", 8}, // whole blocks: never padded
		{"70089F1401039F230105800000000000", "70089F1401039F230105", 8},             // a record, padded
		{"70079F1401039F230105800000000000", "70079F1401039F230105800000000000", 8}, // not a record once stripped: kept
	} {
		if got := fmt.Sprintf("%X", unpadTLV(unhex(tc.v), tc.bs)); got != tc.want {
			t.Errorf("unpadTLV(%s) = %s, want %s", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		v      string
		n, bs  int
		want   string
		wantOK bool
	}{
		{"0102030405060708", 8, 8, "0102030405060708", true},
		{"0102038000000000", 3, 8, "010203", true},
		{"0102030000000000", 3, 8, "", false},                 // no 80
		{"01020380000000000000000000000000", 3, 8, "", false}, // two blocks for 3 bytes
		{"0102030405060708", 3, 8, "", false},
	} {
		got, ok := unpadTo(unhex(tc.v), tc.n, tc.bs)
		if ok != tc.wantOK || fmt.Sprintf("%X", got) != tc.want {
			t.Errorf("unpadTo(%s, %d) = %X %v, want %s %v", tc.v, tc.n, got, ok, tc.want, tc.wantOK)
		}
	}
	// Through the card: every DGI encrypted, risk management data whose
	// clear value ends in 80 on a block boundary for SCP02 and needs
	// padding for SCP03.
	for _, scp := range []perso.SCP{{Version: 2, Param: 0x55}, {Version: 3, Param: 0x00}} {
		emv := makeEMV(t, emvOptions{bits: 1000})
		for i := range emv.dgis {
			if emv.dgis[i].Tag == 0x0D01 {
				emv.dgis[i].Value = unhex("9F1401039F230180")
			}
		}
		keys := scp02Keys
		if scp.Version == 3 {
			keys = scp03Keys
		}
		card := newTestCard(t, Config{SCP: scp})
		newHost(t, card, keys, scp).personalize(emvAID, emv.dgis, gp.LevelCMAC, storeAllEncrypted, 100)
		st, _ := card.Applet(emvAID)
		if diff := cmp.Diff(dgiMap(emv.dgis), dgiMap(st.DGIs)); diff != "" {
			t.Errorf("%v: DGIs (-sent +held):\n%s", scp, diff)
		}
	}
}
