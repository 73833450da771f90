package vcard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

// Purse applet DGIs (the team's layout for the Visa stored value IEP).
const (
	dgiParams     = 0x0101
	dgiBalance    = 0x9103
	dgiPurseKeys  = 0x8020
	dgiPurseKCVs  = 0x9020
	tagIEPID      = 0xDF01
	tagMaxBalance = 0xDF06
	iepIDLen      = 10
)

// purseApplet is a stored-value purse in the spirit of CEN EN 1546. After
// personalization it answers READ RECORD, GET BALANCE, INITIALIZE FOR
// LOAD and CREDIT FOR LOAD (MACs under KDL), UPDATE (MAC under KDU), and
// INTERNAL AUTHENTICATE with its RSA key.
//
// Every MAC is ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 and a
// zero initial value, 8 bytes.
type purseApplet struct {
	base
	iep      []byte            // DF01, aliases the parameters record
	params   map[uint16][]byte // the DFxx parameters, aliasing the record
	maxBal   uint32
	balance  uint32
	nt       uint16
	kdl, kdu []byte

	// load is the INITIALIZE FOR LOAD that CREDIT FOR LOAD must follow at
	// once.
	load *pendingLoad
}

type pendingLoad struct {
	amount [4]byte
	s1     []byte
}

func newPurseApplet(aid []byte) *purseApplet {
	return &purseApplet{base: base{aid: slices.Clone(aid), life: Selectable}}
}

// forwardsSecureChannel: INITIALIZE UPDATE and INITIALIZE FOR LOAD share
// 80 50; a purse takes it for the secure channel until it is personalized,
// for a load afterwards.
func (a *purseApplet) forwardsSecureChannel() bool { return a.life != Personalized }

func (a *purseApplet) deselect() { a.load = nil }

func (a *purseApplet) accepts(tag uint16) bool {
	switch tag {
	case dgiFCI, dgiBalance, dgiPurseKeys, dgiPurseKCVs:
		return true
	}
	return isRecordDGI(tag) || isCRTDGI(tag)
}

func (a *purseApplet) kind() string { return "purse" }

func (a *purseApplet) snapshot() AppletState {
	s := a.state(a.kind())
	s.Balance, s.NT = a.balance, a.nt
	return s
}

// purseFixed gives the clear length of the purse's fixed-length DGIs.
func purseFixed(tag uint16, _ dgiSet) int {
	switch tag {
	case dgiPurseKeys:
		return 2 * emvKeySize
	case dgiPurseKCVs, dgiBalance:
		return 6
	}
	return -1
}

// personalize checks and takes in a complete personalization: the FCI,
// the purse parameters record (IEP identifier, maximum balance), the
// initial balance and NT, KDL and KDU against their KCVs (DGI 8020 vs
// 9020), and the card's RSA key if the CRT DGIs are there.
func (a *purseApplet) personalize(staged []stagedDGI) error {
	s, err := take(staged, purseFixed)
	if err != nil {
		return err
	}
	n := *a
	keys, err := takeKeys(s, dgiPurseKeys, dgiPurseKCVs, 2)
	if err != nil {
		return err
	}
	n.kdl, n.kdu = keys[:emvKeySize], keys[emvKeySize:]
	if err := n.takeCommon(s, staged); err != nil {
		return err
	}
	rec, ok := n.records[dgiParams]
	if !ok {
		return errors.New("vcard: DGI 0101 (purse parameters) missing")
	}
	t, _ := perso.ParseTLV(rec, perso.Strict)
	kids, err := t.Children()
	if err != nil {
		return fmt.Errorf("vcard: DGI 0101: %w", err)
	}
	n.params = make(map[uint16][]byte)
	for _, k := range kids {
		if k.Tag>>8 == 0xDF && !k.Tag.Constructed() {
			n.params[uint16(k.Tag)] = k.Value
		}
	}
	n.iep = n.params[tagIEPID]
	mx := n.params[tagMaxBalance]
	if len(n.iep) != iepIDLen || len(mx) != 4 {
		return errors.New("vcard: DGI 0101 needs DF01 (10 bytes) and DF06 (4 bytes)")
	}
	n.maxBal = binary.BigEndian.Uint32(mx)
	bal, ok := s[dgiBalance]
	if !ok || len(bal) != 6 {
		return errors.New("vcard: DGI 9103 is not balance (4) || NT (2)")
	}
	n.balance, n.nt = binary.BigEndian.Uint32(bal), binary.BigEndian.Uint16(bal[4:])
	if n.balance > n.maxBal {
		return errors.New("vcard: initial balance over the maximum balance")
	}
	n.keepDGIs(staged, s)
	n.life, n.load = Personalized, nil
	*a = n
	return nil
}

func (a *purseApplet) process(c *Card, cm cmd) ([]byte, uint16) {
	load := a.load
	a.load = nil // CREDIT FOR LOAD must follow INITIALIZE FOR LOAD at once
	switch cm.INS {
	case insReadRecord, insGetBalance, insInitForLoad, insCreditForLoad, insUpdate, insInternalAuth:
	default:
		return nil, swINSUnsupported
	}
	if a.life != Personalized {
		return nil, swConditions
	}
	switch cm.INS {
	case insReadRecord:
		return a.readRecord(cm)
	case insInternalAuth:
		return a.internalAuthenticate(c, cm)
	}
	if cm.CLA != 0x80 {
		return nil, swCLAUnsupported
	}
	switch cm.INS {
	case insGetBalance:
		return a.getBalance(cm)
	case insInitForLoad:
		return a.initializeForLoad(c, cm)
	case insCreditForLoad:
		return a.creditForLoad(cm, load)
	}
	return a.update(cm)
}

// mac is the purse MAC: ISO/IEC 9797-1 MAC algorithm 3, padding method 2,
// zero initial value, over the concatenation of parts.
func mac(key []byte, parts ...[]byte) ([]byte, error) {
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
	}
	return crypt.MACAlg3(key, nil, data, crypt.Pad2)
}

// getBalance answers GET BALANCE (80 5C 00 02, Le 04): the balance, 4
// bytes.
func (a *purseApplet) getBalance(cm cmd) ([]byte, uint16) {
	switch {
	case cm.P1 != 0x00 || cm.P2 != 0x02:
		return nil, swWrongP1P2
	case len(cm.Data) != 0:
		return nil, swWrongLength
	}
	return binary.BigEndian.AppendUint32(nil, a.balance), swOK
}

// initializeForLoad answers INITIALIZE FOR LOAD (80 50 02 00, data: amount
// (4) || terminal random (8)) with balance (4) || NT (2) || card random (8)
// || S1, S1 = MAC(KDL, IEP id || NT || amount || terminal random || card
// random). An amount of zero or one that would take the balance over the
// maximum is refused with 6A80; an exhausted NT with 6985.
func (a *purseApplet) initializeForLoad(c *Card, cm cmd) ([]byte, uint16) {
	switch {
	case cm.P1 != 0x02 || cm.P2 != 0x00:
		return nil, swWrongP1P2
	case len(cm.Data) != 12:
		return nil, swWrongLength
	case a.nt == 0xFFFF:
		return nil, swConditions
	}
	amount := binary.BigEndian.Uint32(cm.Data)
	if amount == 0 || amount > a.maxBal-a.balance {
		return nil, swWrongData
	}
	var cardRand [8]byte
	if _, err := c.rand.Read(cardRand[:]); err != nil {
		return nil, swNoDiagnosis
	}
	nt := binary.BigEndian.AppendUint16(nil, a.nt)
	s1, err := mac(a.kdl, a.iep, nt, cm.Data[:4], cm.Data[4:12], cardRand[:])
	if err != nil {
		return nil, swNoDiagnosis
	}
	l := &pendingLoad{s1: s1}
	copy(l.amount[:], cm.Data)
	a.load = l
	out := binary.BigEndian.AppendUint32(nil, a.balance)
	out = append(append(append(out, nt...), cardRand[:]...), s1...)
	return out, swOK
}

// creditForLoad answers CREDIT FOR LOAD (80 52 00 00, data: S2 =
// MAC(KDL, S1 || amount)) right after INITIALIZE FOR LOAD: it credits the
// amount, increments NT, and returns new balance (4) || S3, S3 = MAC(KDL,
// S2 || new balance). A wrong S2 gets 6982 and credits nothing.
func (a *purseApplet) creditForLoad(cm cmd, load *pendingLoad) ([]byte, uint16) {
	switch {
	case cm.P1 != 0 || cm.P2 != 0:
		return nil, swWrongP1P2
	case len(cm.Data) != 8:
		return nil, swWrongLength
	case load == nil:
		return nil, swConditions
	}
	s2, err := mac(a.kdl, load.s1, load.amount[:])
	if err != nil {
		return nil, swNoDiagnosis
	}
	if !crypt.Equal(s2, cm.Data) {
		return nil, swSecurity
	}
	a.balance += binary.BigEndian.Uint32(load.amount[:])
	a.nt++
	bal := binary.BigEndian.AppendUint32(nil, a.balance)
	s3, err := mac(a.kdl, s2, bal)
	if err != nil {
		return nil, swNoDiagnosis
	}
	return append(bal, s3...), swOK
}

// update answers UPDATE (80 54 00 00, data: tag (2) || value || MAC(KDU,
// IEP id || NT || tag || value)): it replaces the value of a purse
// parameter DFxx of the parameters record (not the IEP identifier DF01)
// with one of the same length and increments NT, so that the same command
// cannot be replayed. A wrong MAC gets 6982 and changes nothing; an unknown
// tag 6A88; a maximum balance below the balance 6A80.
func (a *purseApplet) update(cm cmd) ([]byte, uint16) {
	switch {
	case cm.P1 != 0 || cm.P2 != 0:
		return nil, swWrongP1P2
	case len(cm.Data) < 2+1+8:
		return nil, swWrongLength
	case a.nt == 0xFFFF:
		return nil, swConditions
	}
	tagb, value, got := cm.Data[:2], cm.Data[2:len(cm.Data)-8], cm.Data[len(cm.Data)-8:]
	tag := binary.BigEndian.Uint16(tagb)
	cur, ok := a.params[tag]
	switch {
	case !ok || tag == tagIEPID:
		return nil, swRefNotFound
	case len(value) != len(cur):
		return nil, swWrongLength
	}
	want, err := mac(a.kdu, a.iep, binary.BigEndian.AppendUint16(nil, a.nt), tagb, value)
	if err != nil {
		return nil, swNoDiagnosis
	}
	if !crypt.Equal(want, got) {
		return nil, swSecurity
	}
	if tag == tagMaxBalance {
		mx := binary.BigEndian.Uint32(value)
		if mx < a.balance {
			return nil, swWrongData
		}
		a.maxBal = mx
	}
	copy(cur, value) // in the record, which cur aliases
	a.nt++
	return nil, swOK
}
