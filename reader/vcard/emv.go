package vcard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// EMV applet DGIs (the team's layout after EMV CPS v1.1 and VSDC).
const (
	dgiGPO     = 0x9104
	dgiRisk    = 0x0D01
	dgiKeys    = 0x8000
	dgiKCVs    = 0x9000
	dgiPIN     = 0x8010
	dgiPINTry  = 0x9010
	emvKeySize = 16
)

// iad is the issuer application data (9F10) the EMV applet returns: a
// fixed 7-byte VSDC-style value (length 06, derivation key index 01,
// cryptogram version 0A, card verification results 03 A0 00 00).
var iad = []byte{0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00}

// Cryptogram types, GENERATE AC P1 b8-b7 and CID b8-b7 (EMV Book 3 6.5.5,
// tables 12 and 14).
const (
	acAAC  = 0x00
	acTC   = 0x40
	acARQC = 0x80
	acRFU  = 0xC0
)

// emvApplet is a VSDC-style EMV application. After personalization it
// answers SELECT with the FCI of DGI 9102, GET PROCESSING OPTIONS with
// DGI 9104 (format 2), READ RECORD from the record DGIs, GET DATA from DGI
// 0D01 and its counters, INTERNAL AUTHENTICATE with format 05 signed
// dynamic data, GENERATE AC with cryptograms under the AC session key, and
// VERIFY with the plaintext offline PIN.
type emvApplet struct {
	base
	aip      []byte
	gpoResp  []byte // 77 { 82 AIP, 94 AFL }
	pdolLen  int    // -1 without a PDOL
	cdol1Len int
	cdol2Len int // -1 without a CDOL2
	risk     []perso.TLV
	acKey    []byte // the ICC master key for AC, from DGI 8000
	pin      []byte // the plaintext PIN block, DGI 8010; nil without
	ptc, ptl uint8  // PIN try counter and limit, DGI 9010
	hasPTC   bool
	atc      uint16

	// The transaction: GET PROCESSING OPTIONS done, and how far GENERATE
	// AC went (0 none, 1 an ARQC, 2 completed).
	gpoDone bool
	acStep  int
}

func newEMVApplet(aid []byte) *emvApplet {
	return &emvApplet{base: base{aid: slices.Clone(aid), life: Selectable}}
}

func (a *emvApplet) forwardsSecureChannel() bool { return true }

func (a *emvApplet) deselect() { a.gpoDone, a.acStep = false, 0 }

func (a *emvApplet) accepts(tag uint16) bool {
	switch tag {
	case dgiFCI, dgiGPO, dgiRisk, dgiKeys, dgiKCVs, dgiPIN, dgiPINTry:
		return true
	}
	return isRecordDGI(tag) || isCRTDGI(tag)
}

func (a *emvApplet) kind() string { return "EMV" }

func (a *emvApplet) snapshot() AppletState {
	s := a.state(a.kind())
	s.ATC, s.PTC = a.atc, a.ptc
	return s
}

// emvFixed gives the clear length of the EMV applet's DGIs whose length is
// known, or -1.
func emvFixed(tag uint16, s dgiSet) int {
	switch tag {
	case dgiKeys:
		// Keys of 16 bytes are whole blocks: never padded.
		return len(s[dgiKeys])
	case dgiKCVs:
		// 3 bytes for each key of DGI 8000.
		if k, ok := s[dgiKeys]; ok {
			return len(k) / emvKeySize * 3
		}
		return -1
	case dgiPIN:
		return 8
	case dgiPINTry:
		return 2
	}
	return -1
}

// personalize checks and takes in a complete personalization: the FCI
// and GPO response templates, the keys against their KCVs (DGI 8000 vs
// 9000), the records (CDOL1 required), the PIN data, and the ICC key.
func (a *emvApplet) personalize(staged []stagedDGI) error {
	s, err := take(staged, emvFixed)
	if err != nil {
		return err
	}
	n := *a // the applet as it will be; a is changed only on success
	gpo, err := tlvValue(s, dgiGPO)
	if err != nil {
		return err
	}
	var afl []byte
	n.aip = nil
	for _, t := range gpo {
		switch t.Tag {
		case 0x82:
			n.aip = t.Value
		case 0x94:
			afl = t.Value
		}
	}
	if len(n.aip) != 2 {
		return errors.New("vcard: DGI 9104 has no 2-byte AIP (82)")
	}
	if err := checkAFL(afl); err != nil {
		return err
	}
	var b perso.Builder
	b.AddTLV(0x77, func(b *perso.Builder) { b.AddRaw(s[dgiGPO]) })
	if n.gpoResp, err = b.Bytes(); err != nil {
		return fmt.Errorf("vcard: DGI 9104: %w", err)
	}

	keys, err := takeKeys(s, dgiKeys, dgiKCVs, 0)
	if err != nil {
		return err
	}
	n.acKey = keys[:emvKeySize]
	if err := n.takeCommon(s, staged); err != nil {
		return err
	}
	n.pdolLen = -1
	if t, ok := perso.FindTLV(n.fciProp, 0x9F38); ok {
		if n.pdolLen, err = dolLen(t.Value); err != nil {
			return fmt.Errorf("vcard: PDOL: %w", err)
		}
	}
	cdol1, ok := n.findInRecords(0x8C)
	if !ok {
		return errors.New("vcard: no CDOL1 (8C) in the records")
	}
	if n.cdol1Len, err = dolLen(cdol1); err != nil {
		return fmt.Errorf("vcard: CDOL1: %w", err)
	}
	n.cdol2Len = -1
	if cdol2, ok := n.findInRecords(0x8D); ok {
		if n.cdol2Len, err = dolLen(cdol2); err != nil {
			return fmt.Errorf("vcard: CDOL2: %w", err)
		}
	}
	n.risk = nil
	if _, ok := s[dgiRisk]; ok {
		if n.risk, err = tlvValue(s, dgiRisk); err != nil {
			return err
		}
	}
	n.pin, n.hasPTC, n.ptc, n.ptl = nil, false, 0, 0
	if v, ok := s[dgiPINTry]; ok {
		if len(v) != 2 || v[0] > v[1] || v[1] > 15 {
			return errors.New("vcard: DGI 9010 is not PIN try counter || limit (2 bytes, counter <= limit <= 15)")
		}
		n.hasPTC, n.ptc, n.ptl = true, v[0], v[1]
	}
	if v, ok := s[dgiPIN]; ok {
		if !n.hasPTC {
			return errors.New("vcard: DGI 8010 without DGI 9010")
		}
		if !validPINBlock(v) {
			return errors.New("vcard: DGI 8010 is not an ISO 9564-1 format 2 PIN block")
		}
		n.pin = v
	}
	n.keepDGIs(staged, s)
	n.life, n.atc, n.gpoDone, n.acStep = Personalized, 0, false, 0
	*a = n
	return nil
}

// checkAFL checks an application file locator (EMV Book 3 10.2): entries
// of 4 bytes, SFI 1 to 30 in b8-b4 of the first, first record >= 1, last
// >= first, and no more ODA records than the entry has.
func checkAFL(afl []byte) error {
	if len(afl) == 0 || len(afl)%4 != 0 {
		return fmt.Errorf("vcard: AFL of %d bytes, want a positive multiple of 4", len(afl))
	}
	for i := 0; i < len(afl); i += 4 {
		e := afl[i : i+4]
		sfi := e[0] >> 3
		if sfi == 0 || sfi > 30 || e[0]&7 != 0 || e[1] == 0 || e[2] < e[1] || int(e[3]) > int(e[2]-e[1])+1 {
			return fmt.Errorf("vcard: AFL entry %X at offset %d is malformed", e, i)
		}
	}
	return nil
}

// dolLen returns the length of the data a data object list (EMV Book 3
// 5.4) asks for: the sum of its length bytes.
func dolLen(dol []byte) (int, error) {
	total := 0
	for off := 0; off < len(dol); {
		_, n, err := perso.ParseTag(dol[off:])
		if err != nil {
			return 0, fmt.Errorf("DOL entry at offset %d: %w", off, err)
		}
		off += n
		if off >= len(dol) {
			return 0, fmt.Errorf("DOL entry at offset %d has no length", off-n)
		}
		total += int(dol[off])
		off++
	}
	return total, nil
}

// validPINBlock checks an ISO 9564-1 format 2 PIN block: control field 2,
// PIN length 4 to 12, PIN digits, F fill.
func validPINBlock(b []byte) bool {
	if len(b) != 8 || b[0]>>4 != 2 {
		return false
	}
	l := int(b[0] & 0x0F)
	if l < 4 || l > 12 {
		return false
	}
	for i := 0; i < 14; i++ {
		d := b[1+i/2] >> (4 * (1 - i%2)) & 0x0F
		if i < l && d > 9 || i >= l && d != 0x0F {
			return false
		}
	}
	return true
}

func (a *emvApplet) process(c *Card, cm cmd) ([]byte, uint16) {
	switch cm.INS {
	case insGPO, insReadRecord, insGetData, insInternalAuth, insGenerateAC, insVerify:
	default:
		return nil, swINSUnsupported
	}
	if a.life != Personalized {
		return nil, swConditions
	}
	switch cm.INS {
	case insGPO:
		return a.getProcessingOptions(cm)
	case insReadRecord:
		return a.readRecord(cm)
	case insGetData:
		return a.getData(cm)
	case insInternalAuth:
		return a.internalAuthenticate(c, cm)
	case insGenerateAC:
		return a.generateAC(cm)
	}
	return a.verify(cm)
}

// getProcessingOptions answers GET PROCESSING OPTIONS (EMV Book 3 6.5.8)
// in format 2: 77 { 82 AIP, 94 AFL }. The command data is the 83
// template of the PDOL data, empty without a PDOL.
func (a *emvApplet) getProcessingOptions(cm cmd) ([]byte, uint16) {
	switch {
	case cm.CLA != 0x80:
		return nil, swCLAUnsupported
	case cm.P1 != 0 || cm.P2 != 0:
		return nil, swWrongP1P2
	}
	t, err := perso.ParseTLV(cm.Data, perso.Strict)
	if err != nil || t.Tag != 0x83 {
		return nil, swWrongData
	}
	if len(t.Value) != max(a.pdolLen, 0) {
		return nil, swWrongLength
	}
	a.gpoDone, a.acStep = true, 0
	return a.gpoResp, swOK
}

// getData answers GET DATA (EMV Book 3 6.5.7): the ATC (9F36), the PIN
// try counter (9F17), or a data object of DGI 0D01, as tag || length ||
// value.
func (a *emvApplet) getData(cm cmd) ([]byte, uint16) {
	if cm.CLA != 0x80 {
		return nil, swCLAUnsupported
	}
	if len(cm.Data) != 0 {
		return nil, swWrongLength
	}
	tag := perso.Tag(cm.P1)<<8 | perso.Tag(cm.P2)
	if cm.P1 == 0 {
		tag = perso.Tag(cm.P2)
	}
	var v []byte
	switch {
	case tag == 0x9F36:
		v = binary.BigEndian.AppendUint16(nil, a.atc)
	case tag == 0x9F17 && a.hasPTC:
		v = []byte{a.ptc}
	default:
		for _, t := range a.risk {
			if t.Tag == tag {
				return t.Raw, swOK
			}
		}
		return nil, swRefNotFound
	}
	var b perso.Builder
	b.AddPrimitive(tag, v)
	out, err := b.Bytes()
	if err != nil {
		return nil, swRefNotFound
	}
	return out, swOK
}

// generateAC answers GENERATE AC (EMV Book 3 6.5.5) in format 2: 77 { 9F27
// CID, 9F36 ATC, 9F26 AC, 9F10 IAD }. The first GENERATE AC of a
// transaction takes the CDOL1 data and increments the ATC; after an ARQC a
// second one takes the CDOL2 data and completes with a TC or an AAC. The
// cryptogram is ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 over
// CDOL data || AIP || ATC under the AC session key (EMV Book 2 A1.3 with
// the ATC, from the AC master key of DGI 8000). The applet grants the type
// P1 asks for.
func (a *emvApplet) generateAC(cm cmd) ([]byte, uint16) {
	typ := cm.P1 & 0xC0
	switch {
	case cm.CLA != 0x80:
		return nil, swCLAUnsupported
	case typ == acRFU || cm.P1&0x3F != 0 || cm.P2 != 0:
		// CDA (b5) is not supported; the other bits are RFU.
		return nil, swWrongP1P2
	case !a.gpoDone || a.acStep == 2:
		return nil, swConditions
	case a.acStep == 1 && (typ == acARQC || a.cdol2Len < 0):
		return nil, swConditions
	}
	want := a.cdol1Len
	if a.acStep == 1 {
		want = a.cdol2Len
	}
	if len(cm.Data) != want {
		return nil, swWrongLength
	}
	if a.acStep == 0 {
		if a.atc == 0xFFFF {
			return nil, swConditions
		}
		a.atc++
	}
	atc := binary.BigEndian.AppendUint16(nil, a.atc)
	sk, err := kdf.SessionKey(a.acKey, a.atc)
	if err != nil {
		return nil, swNoDiagnosis
	}
	defer crypt.Zero(sk)
	data := make([]byte, 0, len(cm.Data)+4)
	data = append(append(append(data, cm.Data...), a.aip...), atc...)
	ac, err := kdf.AC(sk, data)
	if err != nil {
		return nil, swNoDiagnosis
	}
	if a.acStep == 0 && typ == acARQC {
		a.acStep = 1
	} else {
		a.acStep = 2
	}
	var b perso.Builder
	b.AddTLV(0x77, func(b *perso.Builder) {
		b.AddPrimitive(0x9F27, []byte{typ})
		b.AddPrimitive(0x9F36, atc)
		b.AddPrimitive(0x9F26, ac)
		b.AddPrimitive(0x9F10, iad)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, swNoDiagnosis
	}
	return out, swOK
}

// verify answers VERIFY (EMV Book 3 6.5.12) with a plaintext offline PIN
// (P2 80): 9000 and the try counter reset on a match, 63Cx with x tries
// left on a mismatch, 6983 once blocked. Without data it reports the
// tries left.
func (a *emvApplet) verify(cm cmd) ([]byte, uint16) {
	switch {
	case cm.CLA != 0x00:
		return nil, swCLAUnsupported
	case cm.P1 != 0:
		return nil, swWrongP1P2
	case cm.P2 == 0x88:
		// Enciphered offline PIN needs an ICC PIN encipherment key.
		return nil, swFuncUnsupported
	case cm.P2 != 0x80:
		return nil, swWrongP1P2
	case a.pin == nil:
		return nil, swRefNotFound
	case a.ptc == 0:
		return nil, swBlocked
	case len(cm.Data) == 0:
		return nil, 0x63C0 | uint16(a.ptc)
	case len(cm.Data) != 8:
		return nil, swWrongLength
	}
	if crypt.Equal(cm.Data, a.pin) {
		a.ptc = a.ptl
		return nil, swOK
	}
	a.ptc--
	return nil, 0x63C0 | uint16(a.ptc)
}
