package vsvc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// PurseKeys is the issuer host's side of the purse MACs: it computes
// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 (8 bytes) under a
// purse's KDL or KDU, which it derives from KML or KMU with the purse's
// IEP identifier (perso.MethodEncryptData over its rightmost 8 bytes), as
// the issuer's security module does without exporting them.
//
// Implementations return an error wrapping perso.ErrBadInput for an IEP
// identifier that is not 10 bytes, and must be safe for concurrent use.
type PurseKeys interface {
	// LoadMAC returns MAC(KDL, data) for the purse iep: S1, S2 and S3.
	LoadMAC(ctx context.Context, iep, data []byte) ([]byte, error)
	// UpdateMAC returns MAC(KDU, data) for the purse iep.
	UpdateMAC(ctx context.Context, iep, data []byte) ([]byte, error)
}

// ClearPurseKeys implements PurseKeys over clear KML and KMU (16 bytes
// each), for tests and demonstrations: a production issuer keeps them in
// its security module. ClearPurseKeys prints no key bytes.
type ClearPurseKeys struct {
	KML, KMU []byte
}

func (k ClearPurseKeys) mac(master, iep, data []byte) ([]byte, error) {
	if len(iep) != 10 {
		return nil, fmt.Errorf("vsvc: IEP identifier of %d bytes: %w", len(iep), perso.ErrBadInput)
	}
	key, err := kdf.EncryptData(master, iep[2:])
	if err != nil {
		return nil, err
	}
	defer crypt.Zero(key)
	return crypt.MACAlg3(key, nil, data, crypt.Pad2)
}

// LoadMAC implements PurseKeys.
func (k ClearPurseKeys) LoadMAC(_ context.Context, iep, data []byte) ([]byte, error) {
	return k.mac(k.KML, iep, data)
}

// UpdateMAC implements PurseKeys.
func (k ClearPurseKeys) UpdateMAC(_ context.Context, iep, data []byte) ([]byte, error) {
	return k.mac(k.KMU, iep, data)
}

// String describes the keys without their bytes.
func (ClearPurseKeys) String() string { return "vsvc: clear purse master keys (redacted)" }

// GoString is String.
func (k ClearPurseKeys) GoString() string { return k.String() }

// Format prints String for every verb.
func (k ClearPurseKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue keeps slog from printing key bytes.
func (k ClearPurseKeys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ModuleKeys implements PurseKeys in the issuer's security module: it
// derives the purse's KDL or KDU from KML or KMU there (Deriver,
// perso.MethodEncryptData over the IEP identifier's rightmost 8 bytes),
// protected under a 3DES KEK, and has the module MAC with it (Protector):
// under perso.SchemeDES3ECB the module's MAC is ISO/IEC 9797-1 MAC
// algorithm 3 with padding method 2, the purse MAC. No purse key exists
// in clear outside the module.
type ModuleKeys struct {
	Deriver   perso.KeyDeriver
	Protector perso.Protector
	KML, KMU  perso.KeyRef
	// KEK protects the derived keys between the two calls; its scheme
	// must be perso.SchemeDES3ECB.
	KEK perso.KEKID
}

func (k ModuleKeys) mac(ctx context.Context, master perso.KeyRef, iep, data []byte) ([]byte, error) {
	if len(iep) != 10 {
		return nil, fmt.Errorf("vsvc: IEP identifier of %d bytes: %w", len(iep), perso.ErrBadInput)
	}
	if k.KEK.Scheme != perso.SchemeDES3ECB {
		return nil, fmt.Errorf("vsvc: KEK %s: purse MACs need a 3DES KEK: %w", k.KEK, perso.ErrUnsupported)
	}
	key, err := k.Deriver.Derive(ctx, perso.DeriveRequest{Master: master, Method: perso.MethodEncryptData, Data: iep[2:], KEK: k.KEK})
	if err != nil {
		return nil, fmt.Errorf("vsvc: deriving from %s: %w", master, err)
	}
	return k.Protector.MAC(ctx, key, data)
}

// LoadMAC implements PurseKeys.
func (k ModuleKeys) LoadMAC(ctx context.Context, iep, data []byte) ([]byte, error) {
	return k.mac(ctx, k.KML, iep, data)
}

// UpdateMAC implements PurseKeys.
func (k ModuleKeys) UpdateMAC(ctx context.Context, iep, data []byte) ([]byte, error) {
	return k.mac(ctx, k.KMU, iep, data)
}

// Step names a step of [VerifyPurse], in the order the checks run.
type Step string

const (
	StepSelect      Step = "select"             // SELECT
	StepRecords     Step = "read records"       // the parameters and certificates records
	StepIssuerCert  Step = "issuer certificate" // format 02 with the CA key (EMV Book 2 5.3)
	StepCardCert    Step = "card certificate"   // format 04 over the parameters (Book 2 6.4)
	StepDDA         Step = "DDA"                // INTERNAL AUTHENTICATE with the card key
	StepBalance     Step = "balance"            // GET BALANCE
	StepLoad        Step = "initialize for load"
	StepCredit      Step = "credit for load"
	StepNewBalance  Step = "new balance" // GET BALANCE after the load
	StepUpdate      Step = "update"      // UPDATE of a parameter with its own value
	stepConfiguring Step = "options"
)

// Errors a failed check wraps, besides a refused command's perso.SWError
// and the perso certificate errors.
var (
	// ErrMAC: a MAC from the purse (S1, S3) is not the issuer's.
	ErrMAC = errors.New("vsvc: purse MAC does not verify")
	// ErrNoCAKey: no certification authority key for the purse.
	ErrNoCAKey = errors.New("vsvc: no certification authority public key for the purse")
	// ErrBalance: a balance is not what the load should give.
	ErrBalance = errors.New("vsvc: unexpected balance")
	// ErrFull: the purse has no room for the load.
	ErrFull = errors.New("vsvc: the purse is at its maximum balance")
	// ErrMissingData: a data object the check needs is not on the card.
	ErrMissingData = errors.New("vsvc: purse data missing")
)

// CheckError is a failed check: the step and why.
type CheckError struct {
	Step Step
	Err  error
}

func (e *CheckError) Error() string { return fmt.Sprintf("vsvc: check %s: %v", e.Step, e.Err) }

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// Options configure [VerifyPurse].
type Options struct {
	// AID is the purse's; nil means DefaultAID.
	AID []byte
	// CAKeys are the certification authority keys; the purse's is found
	// by the AID's RID and the index 8F of its parameters.
	CAKeys []perso.CAPublicKey
	// Keys compute the load and update MACs. Required.
	Keys PurseKeys
	// Amount is the load, in minor units; 0 means 100, or what room the
	// purse has if that is less.
	Amount uint32
	// Update also checks UPDATE, by writing the authentication mode (DF02)
	// with its own value under a MAC from Keys.UpdateMAC. It changes no
	// parameter; the transaction number moves on.
	Update bool
	// Now is the date certificates must not have expired at; zero means
	// time.Now.
	Now time.Time
	// Rand is the source of terminal random numbers; nil means crypto/rand.
	Rand io.Reader
}

// Report is what [VerifyPurse] found and checked.
type Report struct {
	AID              perso.HexBytes
	Label            string
	PAN              string // the IEP identifier's digits, masked
	Currency         string
	CurrencyExponent byte
	MaxBalance       uint32
	CAIndex          byte
	IssuerKeyBits    int
	CardKeyBits      int
	ProviderCert     bool // DF10 is present
	BalanceBefore    uint32
	Amount           uint32
	BalanceAfter     uint32
	NT               uint16 // the transaction number of the load
	Checked          []Step
	APDUs            int
}

// VerifyPurse checks a personalized purse as a terminal and the issuer's
// load host would: SELECT; READ RECORD of the parameters (SFI 1 record 1)
// and certificates (SFI 1 record 2); the issuer certificate recovered with
// the CA key and the card certificate (format 04, the IEP identifier as
// the PAN) over the parameters; INTERNAL AUTHENTICATE, which proves that
// the card holds the certified key; GET BALANCE; a load, INITIALIZE FOR
// LOAD with S1 checked through Options.Keys and CREDIT FOR LOAD with S2
// from it and S3 checked; the new balance by GET BALANCE; and, with
// Options.Update, an UPDATE under KDU.
//
// It returns the report of what it checked, and with it, on failure, a
// *CheckError naming the step.
func VerifyPurse(ctx context.Context, t perso.Transport, opts Options) (*Report, error) {
	v := &purseVerifier{ctx: ctx, card: NewCard(t), opts: opts, r: &Report{}}
	err := v.run()
	v.r.APDUs = v.card.Count()
	return v.r, err
}

type purseVerifier struct {
	ctx    context.Context
	card   *Card
	opts   Options
	r      *Report
	now    time.Time
	rand   io.Reader
	aid    []byte
	params *Params
	certs  map[perso.Tag][]byte
	pan    string
}

func (v *purseVerifier) fail(s Step, err error) error { return &CheckError{Step: s, Err: err} }

func (v *purseVerifier) done(s Step) { v.r.Checked = append(v.r.Checked, s) }

func (v *purseVerifier) run() error {
	if v.opts.Keys == nil {
		return v.fail(stepConfiguring, fmt.Errorf("PurseKeys are required: %w", perso.ErrBadInput))
	}
	if v.aid = v.opts.AID; v.aid == nil {
		v.aid = DefaultAID
	}
	if v.now = v.opts.Now; v.now.IsZero() {
		v.now = time.Now()
	}
	if v.rand = v.opts.Rand; v.rand == nil {
		v.rand = rand.Reader
	}
	for _, f := range []func() error{v.selectPurse, v.records, v.certificates, v.load, v.update} {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (v *purseVerifier) selectPurse() error {
	fci, err := v.card.Select(v.aid)
	if err != nil {
		return v.fail(StepSelect, err)
	}
	if !bytes.Equal(fci.DFName, v.aid) {
		return v.fail(StepSelect, fmt.Errorf("DF name %X, selected %X", fci.DFName, v.aid))
	}
	v.r.AID, v.r.Label = perso.HexBytes(bytes.Clone(v.aid)), fci.Label
	v.done(StepSelect)
	return nil
}

func (v *purseVerifier) records() error {
	rec, err := v.card.ReadRecord(1, 1)
	if err != nil {
		return v.fail(StepRecords, err)
	}
	if v.params, err = ParseParams(rec); err != nil {
		return v.fail(StepRecords, err)
	}
	p := v.params
	if v.pan, err = p.PAN(); err != nil {
		return v.fail(StepRecords, fmt.Errorf("IEP identifier: %w", err))
	}
	v.r.PAN, v.r.Currency, v.r.CurrencyExponent = perso.MaskPAN(v.pan), p.Currency, p.CurrencyExponent
	v.r.MaxBalance, v.r.CAIndex = p.MaxBalance, p.CAIndex
	rec, err = v.card.ReadRecord(1, 2)
	if err != nil {
		return v.fail(StepRecords, err)
	}
	t, err := perso.ParseTLV(rec, perso.Lenient)
	if err != nil || t.Tag != 0x70 {
		return v.fail(StepRecords, errors.New("certificates record is not a 70 template"))
	}
	kids, err := t.Children()
	if err != nil {
		return v.fail(StepRecords, err)
	}
	v.certs = make(map[perso.Tag][]byte, len(kids))
	for _, k := range kids {
		v.certs[k.Tag] = k.Value
	}
	_, v.r.ProviderCert = v.certs[0xDF10]
	v.done(StepRecords)
	return nil
}

// certificates verifies the issuer and card certificates and the card's
// key by INTERNAL AUTHENTICATE.
func (v *purseVerifier) certificates() error {
	var rid [5]byte
	copy(rid[:], v.aid)
	var ca *rsa.PublicKey
	for _, k := range v.opts.CAKeys {
		if k.RID == rid && k.Index == v.params.CAIndex {
			ca = k.Key
		}
	}
	if ca == nil {
		return v.fail(StepIssuerCert, fmt.Errorf("%w: RID %X index %02X", ErrNoCAKey, rid[:], v.params.CAIndex))
	}
	c := v.certs
	if c[0x90] == nil || c[0x9F32] == nil {
		return v.fail(StepIssuerCert, fmt.Errorf("%w: issuer certificate (90) or exponent (9F32)", ErrMissingData))
	}
	ic, err := perso.VerifyIssuerCert(ca, perso.CertifiedKey{Cert: c[0x90], Remainder: c[0x92], Exponent: c[0x9F32]}, v.pan, v.now)
	if err != nil {
		return v.fail(StepIssuerCert, err)
	}
	v.r.IssuerKeyBits = ic.Key.N.BitLen()
	v.done(StepIssuerCert)
	if c[0x9F46] == nil || c[0x9F47] == nil {
		return v.fail(StepCardCert, fmt.Errorf("%w: card certificate (9F46) or exponent (9F47)", ErrMissingData))
	}
	cc, err := perso.VerifyICCCert(ic.Key, perso.CertifiedKey{Cert: c[0x9F46], Remainder: c[0x9F48], Exponent: c[0x9F47]}, v.params.Static, v.pan, v.now)
	if err != nil {
		return v.fail(StepCardCert, err)
	}
	v.r.CardKeyBits = cc.Key.N.BitLen()
	v.done(StepCardCert)
	un := make([]byte, 4)
	if _, err := io.ReadFull(v.rand, un); err != nil {
		return v.fail(StepDDA, err)
	}
	sdad, err := v.card.InternalAuthenticate(un)
	if err != nil {
		return v.fail(StepDDA, err)
	}
	s, err := perso.VerifySignedDynamicData(cc.Key, sdad, un)
	if err == nil {
		_, err = s.DynamicNumber()
	}
	if err != nil {
		return v.fail(StepDDA, err)
	}
	v.done(StepDDA)
	return nil
}

// load credits the purse and checks S1, S3 and the balances.
func (v *purseVerifier) load() error {
	bal, err := v.card.GetBalance()
	if err != nil {
		return v.fail(StepBalance, err)
	}
	if bal > v.params.MaxBalance {
		return v.fail(StepBalance, fmt.Errorf("%w: %d over the maximum %d", ErrBalance, bal, v.params.MaxBalance))
	}
	v.r.BalanceBefore = bal
	v.done(StepBalance)
	amount := v.opts.Amount
	if amount == 0 {
		amount = min(100, v.params.MaxBalance-bal)
	}
	if amount == 0 || amount > v.params.MaxBalance-bal {
		return v.fail(StepLoad, fmt.Errorf("%w: balance %d, maximum %d, load %d", ErrFull, bal, v.params.MaxBalance, amount))
	}
	v.r.Amount = amount
	term := make([]byte, 8)
	if _, err := io.ReadFull(v.rand, term); err != nil {
		return v.fail(StepLoad, err)
	}
	li, err := v.card.InitializeForLoad(amount, term)
	if err != nil {
		return v.fail(StepLoad, err)
	}
	if li.Balance != bal {
		return v.fail(StepLoad, fmt.Errorf("%w: %d in INITIALIZE FOR LOAD, %d in GET BALANCE", ErrBalance, li.Balance, bal))
	}
	amt := binary.BigEndian.AppendUint32(nil, amount)
	iep := v.params.IEPID
	s1, err := v.mac(StepLoad, iep, iep, binary.BigEndian.AppendUint16(nil, li.NT), amt, term, li.CardRandom)
	if err != nil {
		return err
	}
	if !crypt.Equal(s1, li.S1) {
		return v.fail(StepLoad, fmt.Errorf("%w: S1", ErrMAC))
	}
	v.r.NT = li.NT
	v.done(StepLoad)
	s2, err := v.mac(StepCredit, iep, li.S1, amt)
	if err != nil {
		return err
	}
	newBal, s3, err := v.card.CreditForLoad(s2)
	if err != nil {
		return v.fail(StepCredit, err)
	}
	want, err := v.mac(StepCredit, iep, s2, binary.BigEndian.AppendUint32(nil, newBal))
	if err != nil {
		return err
	}
	if !crypt.Equal(want, s3) {
		return v.fail(StepCredit, fmt.Errorf("%w: S3", ErrMAC))
	}
	if newBal != bal+amount {
		return v.fail(StepCredit, fmt.Errorf("%w: %d after loading %d onto %d", ErrBalance, newBal, amount, bal))
	}
	v.r.BalanceAfter = newBal
	v.done(StepCredit)
	if got, err := v.card.GetBalance(); err != nil {
		return v.fail(StepNewBalance, err)
	} else if got != newBal {
		return v.fail(StepNewBalance, fmt.Errorf("%w: GET BALANCE %d, CREDIT FOR LOAD %d", ErrBalance, got, newBal))
	}
	v.done(StepNewBalance)
	return nil
}

// mac has the issuer's keys compute the load MAC of purse iep over the
// concatenation of parts.
func (v *purseVerifier) mac(s Step, iep []byte, parts ...[]byte) ([]byte, error) {
	m, err := v.opts.Keys.LoadMAC(v.ctx, iep, bytes.Join(parts, nil))
	if err != nil {
		return nil, v.fail(s, fmt.Errorf("issuer keys: %w", err))
	}
	return m, nil
}

// update writes the authentication mode (DF02) with its own value under a
// MAC from the issuer's KDU, at the transaction number after the load.
func (v *purseVerifier) update() error {
	if !v.opts.Update {
		return nil
	}
	value := []byte{v.params.AuthMode}
	nt := v.r.NT + 1
	data := bytes.Join([][]byte{v.params.IEPID, binary.BigEndian.AppendUint16(nil, nt), {0xDF, 0x02}, value}, nil)
	m, err := v.opts.Keys.UpdateMAC(v.ctx, v.params.IEPID, data)
	if err != nil {
		return v.fail(StepUpdate, fmt.Errorf("issuer keys: %w", err))
	}
	if err := v.card.Update(0xDF02, value, m); err != nil {
		return v.fail(StepUpdate, err)
	}
	v.done(StepUpdate)
	return nil
}
