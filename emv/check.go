package emv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/bcd"
	"github.com/cardperso/perso/internal/crypt"
)

// Step names a step of [VerifyCard], in the order the checks run.
type Step string

const (
	StepSelect      Step = "select"                 // SELECT and the FCI
	StepGPO         Step = "get processing options" // GET PROCESSING OPTIONS: AIP and AFL
	StepRecords     Step = "read records"           // READ RECORD of every AFL record, mandatory data
	StepIssuerCert  Step = "issuer certificate"     // format 02 with the CA key (Book 2 5.3)
	StepSDA         Step = "SDA"                    // format 03 over the static data (Book 2 5.4)
	StepICCCert     Step = "ICC certificate"        // format 04 with the issuer key (Book 2 6.4)
	StepDDA         Step = "DDA"                    // INTERNAL AUTHENTICATE, format 05 (Book 2 6.5)
	StepGenerateAC  Step = "generate AC"            // first GENERATE AC, an ARQC
	StepARQC        Step = "ARQC"                   // the cryptogram, verified by the issuer's module
	StepATC         Step = "ATC"                    // GET DATA 9F36 against the cryptogram's ATC
	StepCompletion  Step = "completion"             // second GENERATE AC (AAC) with CDOL2, verified
	StepPINCounter  Step = "PIN try counter"        // GET DATA 9F17, where the card has one
	stepConfiguring Step = "options"
)

// Errors a failed check wraps, besides the perso.SWError of a refused
// command and the perso certificate errors (perso.ErrCertHash...).
var (
	// ErrCryptogram: the card's application cryptogram is not the one the
	// issuer's module computes.
	ErrCryptogram = errors.New("emv: application cryptogram does not verify")
	// ErrNoCAKey: Options has no certification authority key for the
	// card's RID and CA public key index.
	ErrNoCAKey = errors.New("emv: no certification authority public key for the card")
	// ErrMissingData: a data object the check needs is not on the card,
	// or appears twice.
	ErrMissingData = errors.New("emv: card data missing or duplicated")
	// ErrNoODA: Options.RequireODA is set and the card offers no offline
	// data authentication this check performs (SDA or DDA).
	ErrNoODA = errors.New("emv: no offline data authentication")
)

// CheckError is a failed check: the step and why.
type CheckError struct {
	Step Step
	Err  error
}

func (e *CheckError) Error() string { return fmt.Sprintf("emv: check %s: %v", e.Step, e.Err) }

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// Options configure [VerifyCard].
type Options struct {
	// AID is the application to check; nil means A0000000031010.
	AID []byte
	// CAKeys are the certification authority public keys the terminal
	// holds; the card's is found by its RID (the AID's first five bytes)
	// and index (8F).
	CAKeys []perso.CAPublicKey
	// Deriver and ACMaster verify the cryptograms: the issuer master key
	// for AC in the issuer's security module.
	Deriver  perso.KeyDeriver
	ACMaster perso.KeyRef
	// Method is perso.MethodEMVOptionA or MethodEMVOptionB; 0 takes
	// option A for PANs of up to 16 digits and option B for longer ones
	// (EMV Book 2 A1.4), as the emv profile does.
	Method perso.Method
	// Terminal overrides the terminal's data for the DOLs: amount (9F02),
	// country (9F1A), currency (5F2A), date (9A)... Defaults: an amount of
	// 1.00, the card's country and currency, today's date, transaction
	// type 00, a fresh unpredictable number (9F37) for each command, and
	// zeros for anything else.
	Terminal map[perso.Tag][]byte
	// RequireODA fails the check for a card without SDA or DDA.
	RequireODA bool
	// Now is the date certificates must not have expired at; zero means
	// time.Now.
	Now time.Time
	// Rand is the source of unpredictable numbers; nil means crypto/rand.
	Rand io.Reader
}

// Report is what [VerifyCard] found and checked.
type Report struct {
	AID     perso.HexBytes
	Label   string
	AIP     perso.HexBytes
	AFL     AFL
	Records int    // records read
	PAN     string // masked
	PSN     uint8
	ODA     ODA // the offline data authentication performed
	CAIndex byte
	// Key sizes in bits, where ODA recovered them.
	IssuerKeyBits, ICCKeyBits int
	DAC                       perso.HexBytes // SDA: data authentication code
	ICCDynamicNumber          perso.HexBytes // DDA
	ATC                       uint16         // of the ARQC
	CID                       byte           // of the first GENERATE AC
	ARQC                      perso.HexBytes
	PINTryCounter             int // -1 when the card has none
	Checked                   []Step
	APDUs                     int
}

// VerifyCard checks a personalized EMV application as a terminal and an
// issuer host would: SELECT; GET PROCESSING OPTIONS; READ RECORD of every
// record the AFL lists; offline data authentication as the AIP offers it
// (DDA before SDA, EMV Book 3 10.3): the issuer public key certificate
// recovered with the CA key, then SDA (signed static data) or DDA (the ICC
// public key certificate, then INTERNAL AUTHENTICATE with a fresh
// unpredictable number), each over the static data the AFL marks with the
// AIP; then GENERATE AC for an ARQC over the CDOL1 data, whose cryptogram
// the issuer's security module recomputes (Options.Deriver, over CDOL1
// data || AIP || ATC); GET DATA of the ATC; a second GENERATE AC for an
// AAC over the CDOL2 data, verified alike, which completes the
// transaction; and the PIN try counter where the card has one.
//
// It returns the report of what it checked, and with it, on failure, a
// *CheckError naming the step.
func VerifyCard(ctx context.Context, t perso.Transport, opts Options) (*Report, error) {
	v := &verifier{ctx: ctx, card: NewCard(t), opts: opts, r: &Report{PINTryCounter: -1}}
	err := v.run()
	v.r.APDUs = v.card.Count()
	return v.r, err
}

// verifier is the state of one VerifyCard.
type verifier struct {
	ctx    context.Context
	card   *Card
	opts   Options
	r      *Report
	now    time.Time
	rand   io.Reader
	term   map[perso.Tag][]byte // terminal data
	data   map[perso.Tag][]byte // the card's data objects from the records
	static []byte               // static data to be authenticated
	aid    []byte
	pdol   []byte // the PDOL data
	aip    []byte
	pan    string
}

func (v *verifier) fail(s Step, err error) error { return &CheckError{Step: s, Err: err} }

func (v *verifier) done(s Step) { v.r.Checked = append(v.r.Checked, s) }

// un returns a fresh unpredictable number (9F37).
func (v *verifier) un() ([]byte, error) {
	b := make([]byte, 4)
	_, err := io.ReadFull(v.rand, b)
	return b, err
}

func (v *verifier) run() error {
	o := &v.opts
	if o.Deriver == nil || o.ACMaster.Label == "" {
		return v.fail(stepConfiguring, fmt.Errorf("a KeyDeriver and the AC master key are required: %w", perso.ErrBadInput))
	}
	if v.aid = o.AID; v.aid == nil {
		v.aid = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}
	}
	if v.now = o.Now; v.now.IsZero() {
		v.now = time.Now()
	}
	if v.rand = o.Rand; v.rand == nil {
		v.rand = rand.Reader
	}
	for _, f := range []func() error{v.selectApp, v.gpo, v.records, v.oda, v.generateAC} {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) selectApp() error {
	aid := v.aid
	fci, err := v.card.Select(aid)
	if err != nil {
		return v.fail(StepSelect, err)
	}
	if !bytes.Equal(fci.DFName, aid) {
		return v.fail(StepSelect, fmt.Errorf("DF name %X, selected %X", fci.DFName, aid))
	}
	v.r.AID, v.r.Label = perso.HexBytes(bytes.Clone(aid)), fci.Label
	v.term = map[perso.Tag][]byte{
		0x9F02: {0x00, 0x00, 0x00, 0x00, 0x01, 0x00},
		0x9C:   {0x00},
		0x9F35: {0x22},
		0x9F34: {0x3F, 0x00, 0x00},
		0x8A:   []byte("Z3"), // unable to go online, offline declined
	}
	if d, err := bcd.N(v.now.Format("060102"), 3); err == nil {
		v.term[0x9A] = d
	}
	pdol, err := ParseDOL(fci.PDOL)
	if err != nil {
		return v.fail(StepSelect, fmt.Errorf("PDOL: %w", err))
	}
	v.done(StepSelect)
	if v.pdol, err = v.dolData(pdol); err != nil {
		return v.fail(StepGPO, err)
	}
	return nil
}

// dolData builds the data for a DOL from the terminal data, the options'
// overrides and a fresh unpredictable number.
func (v *verifier) dolData(d DOL) ([]byte, error) {
	un, err := v.un()
	if err != nil {
		return nil, fmt.Errorf("unpredictable number: %w", err)
	}
	vals := make(map[perso.Tag][]byte, len(v.term)+len(v.opts.Terminal)+1)
	for t, b := range v.term {
		vals[t] = b
	}
	vals[0x9F37] = un
	for t, b := range v.opts.Terminal {
		vals[t] = b
	}
	return d.Build(vals), nil
}

func (v *verifier) gpo() error {
	aip, afl, err := v.card.GetProcessingOptions(v.pdol)
	if err != nil {
		return v.fail(StepGPO, err)
	}
	v.aip = aip
	v.r.AIP, v.r.AFL = perso.HexBytes(bytes.Clone(aip)), afl
	v.done(StepGPO)
	return nil
}

// records reads every record the AFL lists, keeps their data objects and
// builds the static data to be authenticated (EMV Book 3 10.3): the value
// of the record template for SFIs 1 to 10, the whole record for the
// others, in AFL order, then the AIP if the SDA tag list (9F4A) names it,
// which is all it may name.
func (v *verifier) records() error {
	v.data = make(map[perso.Tag][]byte)
	for _, e := range v.r.AFL {
		for rec := int(e.First); rec <= int(e.Last); rec++ {
			b, err := v.card.ReadRecord(e.SFI, byte(rec))
			if err != nil {
				return v.fail(StepRecords, err)
			}
			v.r.Records++
			t, err := perso.ParseTLV(b, perso.Lenient)
			if e.SFI <= 10 && (err != nil || t.Tag != 0x70) {
				return v.fail(StepRecords, fmt.Errorf("SFI %d record %d is not a record template (70)", e.SFI, rec))
			}
			if rec-int(e.First) < int(e.ODA) {
				if e.SFI <= 10 {
					v.static = append(v.static, t.Value...)
				} else {
					v.static = append(v.static, b...)
				}
			}
			if err != nil || t.Tag != 0x70 {
				continue
			}
			kids, err := t.Children()
			if err != nil {
				return v.fail(StepRecords, fmt.Errorf("SFI %d record %d: %w", e.SFI, rec, err))
			}
			for _, k := range kids {
				if _, dup := v.data[k.Tag]; dup {
					return v.fail(StepRecords, fmt.Errorf("%w: %v in two places (SFI %d record %d)", ErrMissingData, k.Tag, e.SFI, rec))
				}
				v.data[k.Tag] = k.Value
			}
		}
	}
	for _, tag := range []perso.Tag{0x5A, 0x5F24, 0x8C, 0x8D} {
		if _, ok := v.data[tag]; !ok {
			return v.fail(StepRecords, fmt.Errorf("%w: %v (%s)", ErrMissingData, tag, tag.Name()))
		}
	}
	pan, err := bcd.Digits(v.data[0x5A])
	if err != nil || len(pan) < 8 {
		return v.fail(StepRecords, errors.New("the PAN (5A) is not 8 to 19 digits"))
	}
	v.pan, v.r.PAN = pan, perso.MaskPAN(pan)
	if p, ok := v.data[0x5F34]; ok {
		d, err := bcd.Digits(p)
		n, err2 := strconv.Atoi(d)
		if err != nil || err2 != nil || len(p) != 1 {
			return v.fail(StepRecords, errors.New("the PAN sequence number (5F34) is not 2 digits"))
		}
		v.r.PSN = uint8(n)
	}
	if l, ok := v.data[0x9F4A]; ok {
		if !bytes.Equal(l, []byte{0x82}) {
			return v.fail(StepRecords, fmt.Errorf("SDA tag list %X names other than the AIP (82)", l))
		}
		v.static = append(v.static, v.aip...)
	}
	// The terminal's country and currency default to the card's.
	if c, ok := v.data[0x5F28]; ok {
		v.term[0x9F1A] = c
	}
	if c, ok := v.data[0x9F42]; ok {
		v.term[0x5F2A] = c
	}
	v.done(StepRecords)
	return nil
}

// AIP byte 1 bits (EMV Book 3 Annex C1).
const (
	aipSDA = 0x40
	aipDDA = 0x20
)

// oda performs offline data authentication as the AIP offers it.
func (v *verifier) oda() error {
	switch {
	case v.aip[0]&aipDDA != 0:
		v.r.ODA = ODADDA
	case v.aip[0]&aipSDA != 0:
		v.r.ODA = ODASDA
	default:
		v.r.ODA = ODANone
		if v.opts.RequireODA {
			return v.fail(StepIssuerCert, fmt.Errorf("%w: AIP %X", ErrNoODA, v.aip))
		}
		return nil
	}
	issuer, err := v.issuerKey()
	if err != nil {
		return v.fail(StepIssuerCert, err)
	}
	v.r.IssuerKeyBits = issuer.N.BitLen()
	v.done(StepIssuerCert)
	if v.r.ODA == ODASDA {
		ssad, ok := v.data[0x93]
		if !ok {
			return v.fail(StepSDA, fmt.Errorf("%w: signed static application data (93)", ErrMissingData))
		}
		s, err := perso.VerifySignedStaticData(issuer, ssad, v.static)
		if err != nil {
			return v.fail(StepSDA, err)
		}
		v.r.DAC = perso.HexBytes(s.DAC[:])
		v.done(StepSDA)
		return nil
	}
	cert, ok1 := v.data[0x9F46]
	exp, ok2 := v.data[0x9F47]
	if !ok1 || !ok2 {
		return v.fail(StepICCCert, fmt.Errorf("%w: ICC public key certificate (9F46) or exponent (9F47)", ErrMissingData))
	}
	icc, err := perso.VerifyICCCert(issuer, perso.CertifiedKey{Cert: cert, Remainder: v.data[0x9F48], Exponent: exp}, v.static, v.pan, v.now)
	if err != nil {
		return v.fail(StepICCCert, err)
	}
	v.r.ICCKeyBits = icc.Key.N.BitLen()
	v.done(StepICCCert)
	return v.dda(icc.Key)
}

// issuerKey recovers the issuer public key from its certificate with the
// CA key the card names (EMV Book 2 5.3).
func (v *verifier) issuerKey() (*rsa.PublicKey, error) {
	idx, ok1 := v.data[0x8F]
	cert, ok2 := v.data[0x90]
	exp, ok3 := v.data[0x9F32]
	if !ok1 || !ok2 || !ok3 || len(idx) != 1 {
		return nil, fmt.Errorf("%w: CA public key index (8F), issuer certificate (90) or exponent (9F32)", ErrMissingData)
	}
	v.r.CAIndex = idx[0]
	var rid [5]byte
	copy(rid[:], v.r.AID)
	var ca *rsa.PublicKey
	for _, k := range v.opts.CAKeys {
		if k.RID == rid && k.Index == idx[0] {
			ca = k.Key
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: RID %X index %02X", ErrNoCAKey, rid[:], idx[0])
	}
	ic, err := perso.VerifyIssuerCert(ca, perso.CertifiedKey{Cert: cert, Remainder: v.data[0x92], Exponent: exp}, v.pan, v.now)
	if err != nil {
		return nil, err
	}
	return ic.Key, nil
}

// defaultDDOL is the terminal's default DDOL (EMV Book 3 6.5.9.3): the
// unpredictable number.
var defaultDDOL = DOL{{Tag: 0x9F37, Len: 4}}

// dda runs INTERNAL AUTHENTICATE with the DDOL data and verifies the
// signed dynamic application data with the ICC key (EMV Book 2 6.5).
func (v *verifier) dda(icc *rsa.PublicKey) error {
	ddol := defaultDDOL
	if b, ok := v.data[0x9F49]; ok {
		d, err := ParseDOL(b)
		if err != nil {
			return v.fail(StepDDA, err)
		}
		ddol = d
	}
	ddolData, err := v.dolData(ddol)
	if err != nil {
		return v.fail(StepDDA, err)
	}
	sdad, err := v.card.InternalAuthenticate(ddolData)
	if err != nil {
		return v.fail(StepDDA, err)
	}
	s, err := perso.VerifySignedDynamicData(icc, sdad, ddolData)
	if err != nil {
		return v.fail(StepDDA, err)
	}
	idn, err := s.DynamicNumber()
	if err != nil {
		return v.fail(StepDDA, err)
	}
	v.r.ICCDynamicNumber = idn
	v.term[0x9F4C] = idn
	v.done(StepDDA)
	return nil
}

// method returns the ICC master key derivation for the PAN.
func (v *verifier) method() perso.Method {
	if m := v.opts.Method; m != 0 {
		return m
	}
	if len(v.pan) > 16 {
		return perso.MethodEMVOptionB
	}
	return perso.MethodEMVOptionA
}

// verifyAC has the issuer's module recompute a cryptogram over CDOL data
// || AIP || ATC and compares it with the card's.
func (v *verifier) verifyAC(s Step, ac *AC, cdolData []byte) error {
	data := make([]byte, 0, len(cdolData)+4)
	data = append(append(append(data, cdolData...), v.aip...), byte(ac.ATC>>8), byte(ac.ATC))
	want, err := v.opts.Deriver.Cryptogram(v.ctx, perso.CryptogramRequest{
		Master: v.opts.ACMaster, Method: v.method(), PAN: v.pan, PSN: v.r.PSN, ATC: ac.ATC, Data: data,
	})
	if err != nil {
		return v.fail(s, fmt.Errorf("issuer module: %w", err))
	}
	if !crypt.Equal(want, ac.Cryptogram) {
		return v.fail(s, fmt.Errorf("%w: %v at ATC %d", ErrCryptogram, ac.Type(), ac.ATC))
	}
	v.done(s)
	return nil
}

// generateAC asks for an ARQC, verifies it and the ATC, completes the
// transaction with an AAC, verified too, and reads the PIN try counter.
func (v *verifier) generateAC() error {
	cdol1, err := ParseDOL(v.data[0x8C])
	if err != nil {
		return v.fail(StepGenerateAC, fmt.Errorf("CDOL1: %w", err))
	}
	cdol2, err := ParseDOL(v.data[0x8D])
	if err != nil {
		return v.fail(StepCompletion, fmt.Errorf("CDOL2: %w", err))
	}
	data1, err := v.dolData(cdol1)
	if err != nil {
		return v.fail(StepGenerateAC, err)
	}
	ac, err := v.card.GenerateAC(ARQC, data1)
	if err != nil {
		return v.fail(StepGenerateAC, err)
	}
	v.r.ATC, v.r.CID, v.r.ARQC = ac.ATC, ac.CID, perso.HexBytes(bytes.Clone(ac.Cryptogram))
	v.done(StepGenerateAC)
	if err := v.verifyAC(StepARQC, ac, data1); err != nil {
		return err
	}
	atc, err := v.card.GetData(0x9F36)
	if err != nil {
		return v.fail(StepATC, err)
	}
	if len(atc) != 2 || int(atc[0])<<8|int(atc[1]) != int(ac.ATC) {
		return v.fail(StepATC, fmt.Errorf("GET DATA gives ATC %X, the cryptogram %04X", atc, ac.ATC))
	}
	v.done(StepATC)
	if ac.Type() != ARQC {
		return nil // the card completed the transaction itself
	}
	data2, err := v.dolData(cdol2)
	if err != nil {
		return v.fail(StepCompletion, err)
	}
	ac2, err := v.card.GenerateAC(AAC, data2)
	if err != nil {
		return v.fail(StepCompletion, err)
	}
	if ac2.Type() != AAC || ac2.ATC != ac.ATC {
		return v.fail(StepCompletion, fmt.Errorf("%v at ATC %d after an AAC was asked for at ATC %d", ac2.Type(), ac2.ATC, ac.ATC))
	}
	if err := v.verifyAC(StepCompletion, ac2, data2); err != nil {
		return err
	}
	if ptc, err := v.card.GetData(0x9F17); err == nil && len(ptc) == 1 {
		v.r.PINTryCounter = int(ptc[0])
		v.done(StepPINCounter)
	} else if err != nil && !errors.Is(err, perso.ErrRefDataNotFound) {
		return v.fail(StepPINCounter, err)
	}
	return nil
}
