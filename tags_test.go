package perso_test

import (
	"testing"

	"github.com/cardperso/perso"
	"github.com/google/go-cmp/cmp"
)

// TestTagDictionary checks the EMV Book 3 Annex A tags the dictionary must
// name, and that its templates are exactly the constructed ones.
func TestTagDictionary(t *testing.T) {
	templates := map[perso.Tag]bool{0x61: true, 0x6F: true, 0x70: true, 0x71: true, 0x72: true, 0x73: true, 0x77: true, 0xA5: true, 0xBF0C: true}
	required := []perso.Tag{
		0x42, 0x4F, 0x50, 0x56, 0x57, 0x5A, 0x5F20, 0x5F24, 0x5F25, 0x5F28, 0x5F2A, 0x5F2D, 0x5F30, 0x5F34, 0x5F36,
		0x5F50, 0x5F53, 0x5F54, 0x5F55, 0x5F56, 0x61, 0x6F, 0x70, 0x71, 0x72, 0x73, 0x77, 0x80, 0x81, 0x82, 0x83,
		0x84, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x97,
		0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0xA5, 0xBF0C,
		0x9F01, 0x9F02, 0x9F03, 0x9F04, 0x9F05, 0x9F06, 0x9F07, 0x9F08, 0x9F09, 0x9F0B, 0x9F0D, 0x9F0E, 0x9F0F,
		0x9F10, 0x9F11, 0x9F12, 0x9F13, 0x9F14, 0x9F15, 0x9F16, 0x9F17, 0x9F18, 0x9F1A, 0x9F1B, 0x9F1C, 0x9F1D,
		0x9F1E, 0x9F1F, 0x9F20, 0x9F21, 0x9F22, 0x9F23, 0x9F26, 0x9F27, 0x9F2D, 0x9F2E, 0x9F2F, 0x9F32, 0x9F33,
		0x9F34, 0x9F35, 0x9F36, 0x9F37, 0x9F38, 0x9F39, 0x9F3A, 0x9F3B, 0x9F3C, 0x9F3D, 0x9F40, 0x9F41, 0x9F42,
		0x9F43, 0x9F44, 0x9F45, 0x9F46, 0x9F47, 0x9F48, 0x9F49, 0x9F4A, 0x9F4B, 0x9F4C, 0x9F4D, 0x9F4E, 0x9F4F,
		0x9F51, 0x9F52, 0x9F56, 0x9F57, 0x9F58, 0x9F59, 0x9F5D, 0x9F66, 0x9F68, 0x9F69, 0x9F6B, 0x9F6C, 0x9F6E, 0x9F7C,
	}
	for _, tag := range required {
		info, ok := perso.LookupTag(tag)
		if !ok || info.Name == "" || info.Name != tag.Name() || info.Sensitivity != tag.Sensitivity() {
			t.Errorf("%v: LookupTag = %+v, %v; Name %q", tag, info, ok, tag.Name())
		}
		if info.Sensitivity == perso.Unclassified {
			t.Errorf("%v: in the dictionary but unclassified", tag)
		}
		if !tag.Valid() || tag.Constructed() != templates[tag] {
			t.Errorf("%v: valid %v, constructed %v", tag, tag.Valid(), tag.Constructed())
		}
	}
	if got := perso.Tag(0x9F02).Name(); got != "Amount, Authorised (Numeric)" {
		t.Errorf("9F02 = %q", got)
	}
	if info, ok := perso.LookupTag(0xDF01); ok || info.Name != "" || perso.Tag(0xDF01).Sensitivity() != perso.Unclassified {
		t.Errorf("DF01 = %+v, %v", info, ok)
	}
}

func TestTagSensitivity(t *testing.T) {
	want := map[perso.Tag]perso.Sensitivity{
		0x5A: perso.PANData, 0x57: perso.PANData, 0x56: perso.PANData, 0x9F6B: perso.PANData,
		0x5F20: perso.PersonalData, 0x9F0B: perso.PersonalData, 0x9F1F: perso.PersonalData, 0x9F20: perso.PersonalData, 0x5F53: perso.PersonalData,
		0x99:   perso.SecretData,
		0x5F24: perso.PublicData, 0x9F46: perso.PublicData, 0x70: perso.PublicData, 0x9F10: perso.PublicData,
		0xDF01: perso.Unclassified, 0xC1: perso.Unclassified, 0x9F7F: perso.Unclassified,
	}
	got := map[perso.Tag]perso.Sensitivity{}
	for tag := range want {
		got[tag] = tag.Sensitivity()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	names := []string{}
	for s := perso.Unclassified; s <= perso.SecretData+1; s++ {
		names = append(names, s.String())
	}
	if diff := cmp.Diff([]string{"unclassified", "public", "PAN data", "personal data", "secret", "Sensitivity(5)"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestDGIDictionary(t *testing.T) {
	tests := []struct {
		tag    uint16
		name   string // "" when unknown
		secret bool
	}{
		{0x0101, "SFI 1 record 1", false},
		{0x0203, "SFI 2 record 3", false},
		{0x1EFE, "SFI 30 record 254", false},
		{0x1F01, "", false}, // SFI 31 is not one
		{0x0100, "", false}, // record 0
		{0x01FF, "", false}, // record FF
		{0x8000, "Application DES keys (AC, SMI, SMC)", true},
		{0x9000, "Key check values of DGI 8000", false},
		{0x8010, "Offline PIN block (reference PIN)", true},
		{0x9010, "PIN try counter and PIN try limit", false},
		{0x8201, "ICC private key CRT constant q^-1 mod p", true},
		{0x8202, "ICC private key CRT constant d mod (q-1)", true},
		{0x8203, "ICC private key CRT constant d mod (p-1)", true},
		{0x8204, "ICC private key CRT prime factor q", true},
		{0x8205, "ICC private key CRT prime factor p", true},
		{0x9102, "SELECT response data (FCI proprietary template)", false},
		{0x9104, "GET PROCESSING OPTIONS response data (AIP, AFL)", false},
		{0x8400, "", true}, // unknown, secret by convention
		{0x7FFF, "", false},
	}
	for _, tt := range tests {
		info, ok := perso.LookupDGI(tt.tag)
		if ok != (tt.name != "") || info.Name != tt.name || perso.DGIName(tt.tag) != tt.name || info.Secret != tt.secret || perso.SecretDGI(tt.tag) != tt.secret {
			t.Errorf("%04X: LookupDGI = %+v, %v; want %q, secret %v", tt.tag, info, ok, tt.name, tt.secret)
		}
	}
}
