package vcard

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// Well-known AIDs.
var (
	// AIDISD is the GlobalPlatform issuer security domain AID of GP Card
	// Specification 2.2 (A000000151000000).
	AIDISD = []byte{0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00}
	// AIDOPCardManager is the Open Platform 2.0.1 card manager AID
	// (A0000000030000) that many cards still use for their ISD.
	AIDOPCardManager = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00}
	// AIDVisaCredit is the Visa credit/debit AID (A0000000031010).
	AIDVisaCredit = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}
	// AIDVisaCash is the Visa Cash IEP AID (A0000000036010).
	AIDVisaCash = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x60, 0x10}
)

// ErrRemoved is what Transmit returns once the card has been pulled from
// the reader (see [FaultRemove] and [FaultTear]), until [Card.Reset].
var ErrRemoved = errors.New("vcard: card removed")

// Keys are the card's static GlobalPlatform keys: either ENC, MAC and DEK
// as the card holds them, or a KMC from which the card's keys are
// diversified with Method and the card's KDD, as a card issuer's key
// ceremony would put them on the card. For SCP02 the keys are 16-byte
// double-length 3DES keys; for SCP03 AES keys of 16, 24 or 32 bytes.
//
// Keys prints no key bytes.
type Keys struct {
	ENC, MAC, DEK []byte
	KMC           []byte
	// Method is perso.MethodCPS, perso.MethodVISA2 or perso.MethodSCP03KDF
	// with a KMC; 0 makes the KMC itself the card's ENC, MAC and DEK.
	Method perso.Method
}

// String describes the keys without their bytes.
func (k Keys) String() string {
	if k.KMC != nil {
		if k.Method == 0 {
			return "card keys (KMC used as ENC/MAC/DEK)"
		}
		return fmt.Sprintf("card keys (KMC, %s diversification)", k.Method)
	}
	return fmt.Sprintf("card keys (ENC/MAC/DEK, %d bytes)", len(k.ENC))
}

// GoString is String.
func (k Keys) GoString() string { return k.String() }

// Format prints String for every verb.
func (k Keys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing key bytes.
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// FaultKind says how a card fails at [Fault.At].
type FaultKind uint8

const (
	// FaultRemove: the card is pulled out before the command reaches it.
	// Transmit returns [ErrRemoved] for that command and every later one
	// until [Card.Reset].
	FaultRemove FaultKind = iota + 1
	// FaultTear: the card executes the command and is pulled out before it
	// answers: its state changes, and Transmit returns [ErrRemoved].
	FaultTear
	// FaultSW: the card answers Fault.SW without executing the command.
	FaultSW
)

// Fault makes the card fail at one APDU, for tests of what a host does
// when a card goes wrong mid-way.
type Fault struct {
	// At is the number of the APDU that fails, counted from 1 over the
	// card's life as [perso.Conn] counts; 0 means no fault.
	At   int
	Kind FaultKind
	SW   uint16 // for FaultSW
}

// Config sets up a virtual card.
type Config struct {
	Keys Keys
	// KDD is the card's key diversification data (10 bytes), returned in
	// INITIALIZE UPDATE and used with a KMC. Nil takes it from the CPLC:
	// IC fabricator || IC type || IC serial number ... as [DefaultKDD].
	KDD []byte
	// CPLC is the card production life cycle data (42 bytes, GP Card
	// Specification 2.2 table H-8), returned by GET DATA 9F7F. Nil gives a
	// fixed test CPLC.
	CPLC []byte
	// KeyVersion is the key version number of the card keys; 0 means
	// 0x01 for SCP02 and 0x30 for SCP03. INITIALIZE UPDATE with P1 00
	// takes the card's key version.
	KeyVersion uint8
	// SCP is the secure channel protocol and its i parameter: SCP02 with
	// i=15 or i=55, SCP03 with i=00, 10 or 70. The zero value means SCP02
	// i=55.
	SCP perso.SCP
	// Sequence is the initial sequence counter: SCP02's 2-byte counter, or
	// SCP03's 3-byte counter for pseudo-random card challenges.
	Sequence uint32
	// ISD is the issuer security domain's AID; nil means [AIDISD].
	ISD []byte
	// EMV lists the AIDs of the EMV applets installed; Purse the AID of the
	// stored-value applet, if one is installed.
	EMV   [][]byte
	Purse []byte
	// ATR is the answer to reset; nil gives [DefaultATR].
	ATR []byte
	// Fault makes one APDU fail.
	Fault Fault
	// Rand is the source of card challenges and ICC dynamic numbers; nil
	// means crypto/rand. Tests make it deterministic.
	Rand io.Reader
}

// DefaultATR is the answer to reset of a card whose Config has no ATR: a
// T=1 card (TD1 = 80, TD2 = 01) with ten historical bytes in proprietary
// format, "perso-card", and its check byte TCK.
var DefaultATR = withTCK([]byte{0x3B, 0x8A, 0x80, 0x01, 'p', 'e', 'r', 's', 'o', '-', 'c', 'a', 'r', 'd'})

// withTCK appends the ATR check byte: the XOR of the bytes from T0 on
// (ISO/IEC 7816-3 section 8.2.5).
func withTCK(atr []byte) []byte {
	var x byte
	for _, b := range atr[1:] {
		x ^= b
	}
	return append(atr, x)
}

// defaultCPLC is the CPLC of a card whose Config has none: fabricator
// 4090, IC type 7500, OS 8211, serial 01020304 and batch 0506, dates left
// zero.
var defaultCPLC = func() []byte {
	c := make([]byte, cplcLen)
	copy(c, []byte{0x40, 0x90, 0x75, 0x00, 0x82, 0x11})
	copy(c[cplcSerial:], []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06})
	return c
}()

// CPLC layout (GP Card Specification 2.2 table H-8): IC fabricator (2), IC
// type (2), operating system identifier (2), operating system release date
// (2) and level (2), IC fabrication date (2), IC serial number (4), IC
// batch identifier (2), ... 42 bytes in all.
const (
	cplcLen    = 42
	cplcSerial = 12
)

// DefaultKDD returns the key diversification data a card derives from its
// CPLC when its Config has no KDD: the IC fabricator and IC type (CPLC
// bytes 0-3) followed by the IC serial number and batch identifier (CPLC
// bytes 12-17), the layout whose bytes 0-1 and 4-7 VISA2 diversification
// takes and whose bytes 4-9 CPS diversification takes.
func DefaultKDD(cplc []byte) ([]byte, error) {
	if len(cplc) != cplcLen {
		return nil, fmt.Errorf("vcard: CPLC is %d bytes, want %d", len(cplc), cplcLen)
	}
	kdd := make([]byte, 0, 10)
	kdd = append(kdd, cplc[0:4]...)
	return append(kdd, cplc[cplcSerial:cplcSerial+6]...), nil
}

// Card is a virtual GlobalPlatform card: an issuer security domain with
// SCP02 or SCP03, and the EMV and stored-value applets of its Config. It
// implements [perso.Transport] in-process.
//
// A Card is safe for use by one goroutine at a time, which is how a card
// in a reader is used; a mutex makes concurrent calls wait for each other
// rather than corrupt the card.
type Card struct {
	mu sync.Mutex

	atr   []byte
	rand  io.Reader
	fault Fault

	sd      *securityDomain
	applets []applet // in installation order, for partial selection

	count   int  // APDUs received
	removed bool // pulled out, until Reset

	selected applet      // nil: the ISD
	session  *session    // the secure channel session, if any
	store    *storeState // the personalization under way in the session
	getResp  []byte      // response data waiting for GET RESPONSE
}

// New returns a card set up from cfg, with every applet installed and
// selectable (GP life cycle state SELECTABLE) and not yet personalized.
func New(cfg Config) (*Card, error) {
	if cfg.SCP == (perso.SCP{}) {
		cfg.SCP = perso.SCP{Version: 0x02, Param: 0x55}
	}
	sd, err := newSecurityDomain(cfg)
	if err != nil {
		return nil, err
	}
	c := &Card{
		atr:   slices.Clone(cfg.ATR),
		rand:  cfg.Rand,
		fault: cfg.Fault,
		sd:    sd,
	}
	if c.atr == nil {
		c.atr = slices.Clone(DefaultATR)
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if err := sd.newGP(c); err != nil {
		return nil, fmt.Errorf("vcard: secure channel: %w", err)
	}
	seen := [][]byte{sd.aid}
	add := func(a applet) error {
		for _, s := range seen {
			if bytes.Equal(s, a.AID()) {
				return fmt.Errorf("vcard: AID %X installed twice", a.AID())
			}
		}
		if n := len(a.AID()); n < 5 || n > 16 {
			return fmt.Errorf("vcard: AID %X is %d bytes, want 5 to 16", a.AID(), n)
		}
		seen = append(seen, a.AID())
		c.applets = append(c.applets, a)
		return nil
	}
	for _, aid := range cfg.EMV {
		if err := add(newEMVApplet(aid)); err != nil {
			return nil, err
		}
	}
	if cfg.Purse != nil {
		if err := add(newPurseApplet(cfg.Purse)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newSecurityDomain checks the key configuration and makes the card's
// static keys.
func newSecurityDomain(cfg Config) (*securityDomain, error) {
	sd := &securityDomain{
		aid:  slices.Clone(cfg.ISD),
		cplc: slices.Clone(cfg.CPLC),
		kdd:  slices.Clone(cfg.KDD),
		kvn:  cfg.KeyVersion,
		scp:  cfg.SCP,
		seq:  cfg.Sequence,
	}
	if sd.aid == nil {
		sd.aid = slices.Clone(AIDISD)
	}
	if n := len(sd.aid); n < 5 || n > 16 {
		return nil, fmt.Errorf("vcard: ISD AID is %d bytes, want 5 to 16", n)
	}
	if sd.cplc == nil {
		sd.cplc = slices.Clone(defaultCPLC)
	}
	if len(sd.cplc) != cplcLen {
		return nil, fmt.Errorf("vcard: CPLC is %d bytes, want %d", len(sd.cplc), cplcLen)
	}
	if sd.kdd == nil {
		sd.kdd, _ = DefaultKDD(sd.cplc)
	}
	if len(sd.kdd) != 10 {
		return nil, fmt.Errorf("vcard: KDD is %d bytes, want 10", len(sd.kdd))
	}
	aes := false
	switch cfg.SCP {
	case perso.SCP{Version: 0x02, Param: 0x15}, perso.SCP{Version: 0x02, Param: 0x55}:
		if sd.kvn == 0 {
			sd.kvn = 0x01
		}
		if sd.seq > 0xFFFF {
			return nil, fmt.Errorf("vcard: SCP02 sequence counter %d does not fit 2 bytes", sd.seq)
		}
	case perso.SCP{Version: 0x03, Param: 0x00}, perso.SCP{Version: 0x03, Param: 0x10}, perso.SCP{Version: 0x03, Param: 0x70}:
		aes = true
		if sd.kvn == 0 {
			sd.kvn = 0x30
		}
		if sd.seq > 0xFFFFFF {
			return nil, fmt.Errorf("vcard: SCP03 sequence counter %d does not fit 3 bytes", sd.seq)
		}
	default:
		return nil, fmt.Errorf("vcard: %s is not supported: %w", cfg.SCP, perso.ErrUnsupported)
	}
	k := cfg.Keys
	switch {
	case k.KMC != nil && k.ENC == nil && k.MAC == nil && k.DEK == nil:
		for i, dst := range []*[]byte{&sd.enc, &sd.mac, &sd.dek} {
			key, err := diversify(k.KMC, k.Method, sd.kdd, i+1, aes)
			if err != nil {
				return nil, err
			}
			*dst = key
		}
	case k.KMC == nil && k.ENC != nil && k.MAC != nil && k.DEK != nil:
		sd.enc, sd.mac, sd.dek = slices.Clone(k.ENC), slices.Clone(k.MAC), slices.Clone(k.DEK)
	default:
		return nil, errors.New("vcard: Keys needs either ENC, MAC and DEK, or a KMC")
	}
	for _, key := range [][]byte{sd.enc, sd.mac, sd.dek} {
		switch {
		case !aes && len(key) != 16:
			return nil, fmt.Errorf("vcard: SCP02 key is %d bytes, want 16", len(key))
		case aes && len(key) != 16 && len(key) != 24 && len(key) != 32:
			return nil, fmt.Errorf("vcard: SCP03 key is %d bytes, want 16, 24 or 32", len(key))
		}
	}
	return sd, nil
}

// diversify makes one static card key from the KMC.
func diversify(kmc []byte, m perso.Method, kdd []byte, key int, aes bool) ([]byte, error) {
	switch {
	case m == 0:
		return slices.Clone(kmc), nil
	case m == perso.MethodCPS && !aes:
		return kdf.DiversifyCPS(kmc, kdd, key)
	case m == perso.MethodVISA2 && !aes:
		return kdf.DiversifyVISA2(kmc, kdd, key)
	case m == perso.MethodSCP03KDF && aes:
		return kdf.DiversifySCP03(kmc, kdd, key)
	}
	return nil, fmt.Errorf("vcard: %s diversification does not apply to these keys: %w", m, perso.ErrUnsupported)
}

// String describes the card without its keys or stored secrets: its
// protocol, its ISD and each applet's AID, kind and life cycle state.
func (c *Card) String() string {
	if c == nil {
		return "virtual card <nil>"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "virtual card (%s, ISD %X", c.sd.scp, c.sd.aid)
	for _, a := range c.applets {
		fmt.Fprintf(&b, ", %s %X %v", a.kind(), a.AID(), a.lifeCycle())
	}
	b.WriteString(")")
	return b.String()
}

// GoString is String, so that %#v shows no keys either.
func (c *Card) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Card) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue keeps slog from printing the card's keys.
func (c *Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ATR returns the card's answer to reset.
func (c *Card) ATR() []byte { return slices.Clone(c.atr) }

// Reset powers the card off and on, as a reader does when a card is
// (re)inserted: a removed card is back, the secure channel session is
// over, the ISD is selected, and applets forget their transaction state.
// What the card stores persists. It returns the ATR.
func (c *Card) Reset() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = false
	c.powerOff()
	return slices.Clone(c.atr)
}

// Count returns the number of APDUs the card has been sent, the failed
// and refused ones included.
func (c *Card) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Transmit executes one command APDU and returns the response APDU (data,
// SW1 SW2). Malformed or refused commands get a status word, never an
// error; the error is [ErrRemoved], after a [Fault] pulled the card.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil, ErrRemoved
	}
	c.count++
	if c.fault.At == c.count {
		switch c.fault.Kind {
		case FaultRemove:
			c.pull()
			return nil, ErrRemoved
		case FaultTear:
			c.process(cmd)
			c.pull()
			return nil, ErrRemoved
		case FaultSW:
			return swBytes(c.fault.SW), nil
		}
	}
	return c.process(cmd), nil
}

// pull takes the card out of the reader: the session is over and every
// later Transmit fails until Reset.
func (c *Card) pull() {
	c.removed = true
	c.powerOff()
}

// powerOff loses what a card keeps in RAM: the secure channel session,
// the selection, and the applets' transaction state.
func (c *Card) powerOff() {
	c.endSession()
	c.selected = nil
	c.getResp = nil
	for _, a := range c.applets {
		a.deselect()
	}
}

// endSession closes the secure channel session, if any, and zeroes its
// keys.
func (c *Card) endSession() {
	c.abandonStore()
	if c.session != nil {
		c.session.close()
		c.session = nil
	}
}

// Applets returns the state of every applet, in installation order.
func (c *Card) Applets() []AppletState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AppletState, 0, len(c.applets))
	for _, a := range c.applets {
		out = append(out, a.snapshot())
	}
	return out
}

// Applet returns the state of the applet with the given AID.
func (c *Card) Applet(aid []byte) (AppletState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.applets {
		if bytes.Equal(a.AID(), aid) {
			return a.snapshot(), true
		}
	}
	return AppletState{}, false
}

// LifeCycle is an application's GlobalPlatform life cycle state (GP Card
// Specification 2.2 section 5.3.1, table 11-5 codings).
type LifeCycle uint8

const (
	Selectable   LifeCycle = 0x07
	Personalized LifeCycle = 0x0F
)

// String names the state.
func (s LifeCycle) String() string {
	switch s {
	case Selectable:
		return "SELECTABLE"
	case Personalized:
		return "PERSONALIZED"
	}
	return fmt.Sprintf("LifeCycle(0x%02X)", uint8(s))
}

// AppletState is what a test may see of an applet: its life cycle state,
// the DGIs it holds in clear (secret DGIs included, decrypted), and its
// counters. It is a copy: changing it changes nothing on the card. DGIs
// print without their secret values (see [perso.DGI]).
type AppletState struct {
	AID   perso.HexBytes
	Kind  string // "EMV" or "purse"
	State LifeCycle
	DGIs  []perso.DGI // in the order the card received them
	// EMV: the application transaction counter and the PIN try counter.
	ATC uint16
	PTC uint8
	// Purse: the balance and the transaction number NT.
	Balance uint32
	NT      uint16
}

// DGI returns the value of the DGI with the given tag, if the applet
// holds it.
func (s AppletState) DGI(tag uint16) ([]byte, bool) {
	for _, d := range s.DGIs {
		if d.Tag == tag {
			return d.Value, true
		}
	}
	return nil, false
}

// cloneDGIs returns a deep copy of ds.
func cloneDGIs(ds []perso.DGI) []perso.DGI {
	out := make([]perso.DGI, len(ds))
	for i, d := range ds {
		out[i] = perso.DGI{Tag: d.Tag, Value: slices.Clone(d.Value)}
	}
	return out
}

// zeroDGIs clears the values of the secret DGIs in ds.
func zeroDGIs(ds []perso.DGI) {
	for _, d := range ds {
		if perso.SecretDGI(d.Tag) {
			crypt.Zero(d.Value)
		}
	}
}

// Load personalizes the applet with the given AID directly with clear
// DGIs, as if they had arrived by STORE DATA in a secure channel session,
// with the same checks after the last block (KCVs, the key, the
// templates). It lets tests and demonstrations set up a personalized card
// without a security module; a host that personalizes cards uses STORE
// DATA. The card keeps copies of the values.
func (c *Card) Load(aid []byte, dgis []perso.DGI) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.applets {
		if !bytes.Equal(a.AID(), aid) {
			continue
		}
		if a.lifeCycle() == Personalized {
			return fmt.Errorf("vcard: applet %X is already personalized", aid)
		}
		staged := make([]stagedDGI, 0, len(dgis))
		for _, d := range dgis {
			if !a.accepts(d.Tag) {
				return fmt.Errorf("vcard: applet %X does not take DGI %04X", aid, d.Tag)
			}
			for _, s := range staged {
				if s.Tag == d.Tag {
					return fmt.Errorf("vcard: DGI %04X given twice", d.Tag)
				}
			}
			staged = append(staged, stagedDGI{DGI: perso.DGI{Tag: d.Tag, Value: slices.Clone(d.Value)}})
		}
		if err := a.personalize(staged); err != nil {
			zeroStaged(staged)
			return err
		}
		return nil
	}
	return fmt.Errorf("vcard: no applet %X", aid)
}
