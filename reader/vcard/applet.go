package vcard

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/rsax"
)

// applet is an application on the card, as the card's dispatcher sees it.
type applet interface {
	AID() []byte
	lifeCycle() LifeCycle
	// fci is the SELECT response data.
	fci() []byte
	// deselect forgets the transaction state when another application is
	// selected or the card is reset.
	deselect()
	// forwardsSecureChannel reports whether INITIALIZE UPDATE and
	// EXTERNAL AUTHENTICATE go to the security domain's secure channel
	// while the applet is selected.
	forwardsSecureChannel() bool
	// accepts reports whether the applet knows a DGI; STORE DATA answers
	// 6A88 for one it does not.
	accepts(tag uint16) bool
	// personalize takes in the DGIs of a complete personalization, after
	// the last STORE DATA block. An error leaves the applet as it was.
	personalize(dgis []stagedDGI) error
	// process executes a command other than SELECT, GET RESPONSE, the
	// secure channel commands and STORE DATA.
	process(c *Card, cm cmd) ([]byte, uint16)
	// kind is "EMV" or "purse".
	kind() string
	snapshot() AppletState
}

// base is what the EMV and purse applets share: their AID, life cycle
// state, the DGIs they hold, the FCI, the records, and the card's RSA key.
type base struct {
	aid     []byte
	life    LifeCycle
	dgis    []perso.DGI       // clear, in the order received
	fciProp []byte            // the contents of A5 (DGI 9102)
	records map[uint16][]byte // by DGI: SFI << 8 | record number
	icc     *rsax.Private     // from DGIs 8201..8205, nil without
}

func (b *base) AID() []byte { return b.aid }

// state is the part of an applet's AppletState that base holds.
func (b *base) state(kind string) AppletState {
	return AppletState{AID: slices.Clone(b.aid), Kind: kind, State: b.life, DGIs: cloneDGIs(b.dgis)}
}
func (b *base) lifeCycle() LifeCycle { return b.life }

// fci returns the SELECT response (EMV Book 1 11.3.4): 6F { 84 DF name,
// A5 { DGI 9102 } }. An application not yet personalized answers with
// its DF name only, so that a personalization host can select it.
func (b *base) fci() []byte {
	var bl perso.Builder
	bl.AddTLV(0x6F, func(bl *perso.Builder) {
		bl.AddPrimitive(0x84, b.aid)
		if b.life == Personalized {
			bl.AddTLV(0xA5, func(bl *perso.Builder) { bl.AddRaw(b.fciProp) })
		}
	})
	out, err := bl.Bytes()
	if err != nil {
		return nil // the template was checked at personalization
	}
	return out
}

// isRecordDGI reports whether a DGI is a record (EMV CPS v1.1 section
// 4.3.1): SFI (1 to 30) || record number (1 to 255). SFIs 13 and 14 are
// left out: DGIs 0Dxx and 0Exx hold the application's internal data.
func isRecordDGI(tag uint16) bool {
	sfi, rec := tag>>8, tag&0xFF
	return sfi >= 1 && sfi <= 30 && sfi != 0x0D && sfi != 0x0E && rec != 0
}

// isCRTDGI reports the DGIs of the card's RSA key CRT components.
func isCRTDGI(tag uint16) bool { return tag >= dgiQInv && tag <= dgiP }

// DGIs both applets know.
const (
	dgiFCI  = 0x9102
	dgiQInv = 0x8201
	dgiDQ   = 0x8202
	dgiDP   = 0x8203
	dgiQ    = 0x8204
	dgiP    = 0x8205
)

// dgiSet is the clear DGIs of a personalization, by tag.
type dgiSet map[uint16][]byte

// take removes the padding from the staged DGIs that arrived encrypted
// and returns the clear DGIs by tag. fixed gives the clear length of the
// applet's fixed-length DGIs, or -1 for the others; it may look at the
// DGIs already taken (the length of DGI 8000 follows from DGI 9000), so
// the others are taken first. The CRT components are left to crtKey.
func take(staged []stagedDGI, fixed func(tag uint16, s dgiSet) int) (dgiSet, error) {
	s := make(dgiSet, len(staged))
	for _, d := range staged {
		s[d.Tag] = d.Value
	}
	for pass := 0; pass < 2; pass++ {
		for _, d := range staged {
			if !d.encrypted || isCRTDGI(d.Tag) {
				continue
			}
			n := fixed(d.Tag, s)
			switch {
			case pass == 0 && n < 0:
				s[d.Tag] = unpadTLV(d.Value, d.blockSize)
			case pass == 1 && n >= 0:
				u, ok := unpadTo(d.Value, n, d.blockSize)
				if !ok {
					return nil, fmt.Errorf("vcard: DGI %04X: %d bytes do not hold %d bytes of clear data", d.Tag, len(d.Value), n)
				}
				s[d.Tag] = u
			}
		}
	}
	return s, nil
}

// unpadTLV returns a decrypted BER-TLV value without its padding. The
// padding was added only if the clear value is not whole blocks, so it is
// there if removing it leaves a value that is not whole blocks and that is
// a sequence of complete data objects; a clear value of whole blocks that
// happens to end in 80 or 80 00.. leaves a truncated data object when those
// bytes are taken off, and is kept whole. (The one value both readings
// accept ends in the empty data object 80 00, which none of these DGIs
// holds.)
func unpadTLV(v []byte, bs int) []byte {
	u, err := crypt.Unpad2(v, bs)
	if err != nil || len(u)%bs == 0 {
		return v
	}
	if _, err := perso.ParseTLVs(u, perso.Strict); err != nil {
		return v
	}
	return u
}

// unpadTo returns the first n bytes of v, which must be v itself (n a
// multiple of bs) or v followed by ISO/IEC 9797-1 padding method 2 up to
// the next multiple of bs.
func unpadTo(v []byte, n, bs int) ([]byte, bool) {
	switch {
	case len(v) == n && n%bs == 0:
		return v, true
	case n%bs == 0 || len(v) != (n/bs+1)*bs:
		return nil, false
	}
	u, err := crypt.Unpad2(v, bs)
	if err != nil || len(u) != n {
		return nil, false
	}
	return u, true
}

// tlvValue returns the BER-TLV data objects in a DGI value, checked.
func tlvValue(s dgiSet, tag uint16) ([]perso.TLV, error) {
	v, ok := s[tag]
	if !ok {
		return nil, fmt.Errorf("vcard: DGI %04X missing", tag)
	}
	ts, err := perso.ParseTLVs(v, perso.Strict)
	if err != nil {
		return nil, fmt.Errorf("vcard: DGI %04X: %w", tag, err)
	}
	return ts, nil
}

// takeRecords checks the record DGIs (each a 70 template, EMV Book 3
// 10.2) and keeps them.
func (b *base) takeRecords(s dgiSet) error {
	b.records = make(map[uint16][]byte)
	for tag, v := range s {
		if !isRecordDGI(tag) {
			continue
		}
		t, err := perso.ParseTLV(v, perso.Strict)
		if err != nil {
			return fmt.Errorf("vcard: record DGI %04X: %w", tag, err)
		}
		if t.Tag != 0x70 {
			return fmt.Errorf("vcard: record DGI %04X: template %v, want 70", tag, t.Tag)
		}
		b.records[tag] = v
	}
	return nil
}

// findInRecords returns the first data object with the given tag in the
// records, in DGI order.
func (b *base) findInRecords(tag perso.Tag) ([]byte, bool) {
	keys := make([]uint16, 0, len(b.records))
	for k := range b.records {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if t, ok := perso.FindTLV(b.records[k], tag); ok {
			return t.Value, true
		}
	}
	return nil, false
}

// checkKCVs compares the KCV of each double-length key in keys (DGI
// 8000 or 8020) with its entry in kcvs (DGI 9000 or 9020), 3 bytes each, in
// order (EMV CPS v1.1 section 5.5.2).
func checkKCVs(keys, kcvs []byte) error {
	if len(keys) != len(kcvs)/3*16 || len(kcvs)%3 != 0 || len(kcvs) == 0 {
		return fmt.Errorf("vcard: %d key bytes for %d KCV bytes", len(keys), len(kcvs))
	}
	for i := 0; i < len(kcvs)/3; i++ {
		kcv, err := crypt.KCV(keys[16*i : 16*i+16])
		if err != nil {
			return err
		}
		if !crypt.Equal(kcv[:], kcvs[3*i:3*i+3]) {
			return fmt.Errorf("vcard: key %d does not match its KCV", i+1)
		}
	}
	return nil
}

// errNoCRT reports that a personalization has no RSA key.
var errNoCRT = errors.New("vcard: no CRT components")

// crtKey rebuilds the card's RSA private key from DGIs 8201..8205 (qinv,
// dq, dp, q, p) and the ICC public key exponent 9F47 in the records, with
// n = p·q, and checks it (rsax.FromCRT: p·q = n, e·dp = 1 mod p-1, e·dq = 1
// mod q-1, q·qinv = 1 mod p). Where the components arrived encrypted and
// padded (half the modulus length not a multiple of the block size), the
// padding is found from p: a prime's last byte is odd, so a last byte of 00
// or 80 is padding. It returns errNoCRT if none of the five DGIs is there.
func (b *base) crtKey(s dgiSet, staged []stagedDGI) (*rsax.Private, error) {
	var comps [5][]byte
	n := 0
	for _, d := range staged {
		if isCRTDGI(d.Tag) {
			comps[d.Tag-dgiQInv] = d.Value
			n++
		}
	}
	switch {
	case n == 0:
		return nil, errNoCRT
	case n != 5:
		return nil, fmt.Errorf("vcard: %d of the 5 CRT component DGIs", n)
	}
	p := comps[dgiP-dgiQInv]
	half := len(p)
	if len(p) == 0 {
		return nil, errors.New("vcard: empty CRT component")
	}
	bs := 0
	for _, d := range staged {
		if d.Tag == dgiP {
			bs = d.blockSize
		}
	}
	if p[len(p)-1]&1 == 0 && bs > 0 {
		u, err := crypt.Unpad2(p, bs)
		if err != nil {
			return nil, errors.New("vcard: CRT component p is even and not padded")
		}
		half = len(u)
	}
	var crt rsax.CRT
	dst := []*[]byte{&crt.QInv, &crt.DQ, &crt.DP, &crt.Q, &crt.P}
	for i, v := range comps {
		u, ok := unpadTo(v, half, max(bs, 1))
		if !ok {
			return nil, fmt.Errorf("vcard: CRT component DGI %04X is %d bytes, want %d", dgiQInv+i, len(v), half)
		}
		*dst[i] = u
		s[uint16(dgiQInv+i)] = u
	}
	ev, ok := b.findInRecords(0x9F47)
	if !ok || len(ev) == 0 || len(ev) > 4 {
		return nil, errors.New("vcard: no ICC public key exponent (9F47) in the records")
	}
	e := new(big.Int).SetBytes(ev)
	mod := new(big.Int).Mul(new(big.Int).SetBytes(crt.P), new(big.Int).SetBytes(crt.Q))
	pub := &rsa.PublicKey{N: mod, E: int(e.Int64())}
	k, err := rsax.FromCRT(pub, &crt)
	if err != nil {
		return nil, fmt.Errorf("vcard: ICC key: %w", err)
	}
	return rsax.NewPrivate(k)
}

// takeCommon takes in what every applet holds: the FCI proprietary
// template (DGI 9102), the records, and the card's RSA key if the CRT DGIs
// are there.
func (b *base) takeCommon(s dgiSet, staged []stagedDGI) error {
	if _, err := tlvValue(s, dgiFCI); err != nil {
		return err
	}
	b.fciProp = s[dgiFCI]
	if err := b.takeRecords(s); err != nil {
		return err
	}
	icc, err := b.crtKey(s, staged)
	switch {
	case errors.Is(err, errNoCRT):
		icc = nil
	case err != nil:
		return err
	}
	b.icc = icc
	return nil
}

// takeKeys returns the double-length keys of DGI keys once their KCVs
// match those of DGI kcvs; want is the number of keys, or 0 for any.
func takeKeys(s dgiSet, keys, kcvs uint16, want int) ([]byte, error) {
	k, ok1 := s[keys]
	v, ok2 := s[kcvs]
	if !ok1 || !ok2 || want > 0 && len(v) != 3*want {
		return nil, fmt.Errorf("vcard: DGIs %04X (keys) and %04X (their KCVs) are both required", keys, kcvs)
	}
	if err := checkKCVs(k, v); err != nil {
		return nil, err
	}
	return k, nil
}

// keepDGIs stores the clear DGIs in the order they arrived.
func (b *base) keepDGIs(staged []stagedDGI, s dgiSet) {
	b.dgis = make([]perso.DGI, 0, len(staged))
	for _, d := range staged {
		b.dgis = append(b.dgis, perso.DGI{Tag: d.Tag, Value: s[d.Tag]})
	}
}

// readRecord answers READ RECORD (ISO/IEC 7816-4 7.3.3; EMV Book 1 11.2 and
// Book 3 6.5.11): P1 the record number, P2 = SFI << 3 | 100.
func (b *base) readRecord(cm cmd) ([]byte, uint16) {
	switch {
	case cm.CLA != 0x00:
		return nil, swCLAUnsupported
	case cm.P2&0x07 != 0x04 || cm.P1 == 0:
		return nil, swWrongP1P2
	case len(cm.Data) != 0:
		return nil, swWrongLength
	}
	sfi := uint16(cm.P2 >> 3)
	if r, ok := b.records[sfi<<8|uint16(cm.P1)]; ok {
		return r, swOK
	}
	for tag := range b.records {
		if tag>>8 == sfi {
			return nil, swRecordNotFound
		}
	}
	return nil, swNotFound
}

// internalAuthenticate answers INTERNAL AUTHENTICATE (EMV Book 3 6.5.9)
// with signed dynamic application data (EMV Book 2 section 6.5, format 05)
// over the DDOL data the terminal sends, in response format 1: 80 L SDAD.
func (b *base) internalAuthenticate(c *Card, cm cmd) ([]byte, uint16) {
	switch {
	case b.icc == nil:
		return nil, swINSUnsupported
	case cm.CLA != 0x00:
		return nil, swCLAUnsupported
	case cm.P1 != 0 || cm.P2 != 0:
		return nil, swWrongP1P2
	case len(cm.Data) == 0:
		return nil, swWrongLength
	}
	var idn [8]byte
	if _, err := c.rand.Read(idn[:]); err != nil {
		return nil, swNoDiagnosis
	}
	// ICC dynamic data: the length of the ICC dynamic number, then the
	// number (Book 2 table 17; 9F4C).
	dyn := append([]byte{byte(len(idn))}, idn[:]...)
	sdad, err := signDynamicData(b.icc, dyn, cm.Data)
	if err != nil {
		return nil, swWrongLength // terminal data too long for the key
	}
	var bl perso.Builder
	bl.AddPrimitive(0x80, sdad)
	out, err := bl.Bytes()
	if err != nil {
		return nil, swNoDiagnosis
	}
	return out, swOK
}

// signDynamicData signs the signed dynamic application data of EMV Book 2
// section 6.5.1 (format 05, table 17) with the ICC private key: the block
// that perso.SignedDynamicData builds over the ICC dynamic data and the
// terminal dynamic data, through the raw RSA private operation (Book 2
// A2.1).
func signDynamicData(k *rsax.Private, iccDynamic, terminalDynamic []byte) ([]byte, error) {
	s := perso.SignedDynamicData{DynamicData: iccDynamic}
	block, err := s.Block(k.Size(), terminalDynamic)
	if err != nil {
		return nil, err
	}
	return k.Raw(block)
}
