package emv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/bcd"
	"github.com/cardperso/perso/internal/crypt"
)

// ODA is the offline data authentication a profile gives its cards.
type ODA string

const (
	ODANone ODA = "none"
	ODASDA  ODA = "sda"
	ODADDA  ODA = "dda"
)

// PIN modes of Config.OfflinePIN.
const (
	PINNone     = "none"     // no offline PIN
	PINSealed   = "sealed"   // the card's "pin_block" field holds the sealed PIN block
	PINGenerate = "generate" // a random PIN, for test batches only
)

// MasterKeys names the issuer master keys in the security module.
type MasterKeys struct {
	AC  perso.KeyRef `json:"ac"`
	SMI perso.KeyRef `json:"smi"`
	SMC perso.KeyRef `json:"smc"`
}

// Config is what an issuer sets per EMV product. JSON field names are the
// job file's. Zero values take the defaults that New documents.
type Config struct {
	Name          string         `json:"name,omitempty"` // profile name in jobs and CardData.Apps; default "emv"
	AID           perso.HexBytes `json:"aid"`
	Label         string         `json:"label"`                    // 50, 1..16 characters
	PreferredName string         `json:"preferred_name,omitempty"` // 9F12
	Priority      uint8          `json:"priority,omitempty"`       // 87, default 1
	Language      string         `json:"language,omitempty"`       // 5F2D, default "en"

	AIP        perso.HexBytes `json:"aip,omitempty"`         // 82; default from ODA: SDA 5800, DDA 3800 (+CVM, TRM), none 1800
	CVMList    perso.HexBytes `json:"cvm_list,omitempty"`    // 8E
	CDOL1      perso.HexBytes `json:"cdol1,omitempty"`       // 8C
	CDOL2      perso.HexBytes `json:"cdol2,omitempty"`       // 8D
	DDOL       perso.HexBytes `json:"ddol,omitempty"`        // 9F49, default 9F3704
	IACDefault perso.HexBytes `json:"iac_default,omitempty"` // 9F0D
	IACDenial  perso.HexBytes `json:"iac_denial,omitempty"`  // 9F0E
	IACOnline  perso.HexBytes `json:"iac_online,omitempty"`  // 9F0F
	AUC        perso.HexBytes `json:"auc,omitempty"`         // 9F07, default FF00
	AppVersion perso.HexBytes `json:"app_version,omitempty"` // 9F08, default 008C
	Country    string         `json:"country"`               // 5F28, ISO 3166 numeric, 3 digits
	Currency   string         `json:"currency"`              // 9F42, ISO 4217 numeric, 3 digits

	LowerOffline uint8  `json:"lower_offline,omitempty"` // 9F14
	UpperOffline uint8  `json:"upper_offline,omitempty"` // 9F23
	PINTryLimit  uint8  `json:"pin_try_limit,omitempty"` // default 3
	OfflinePIN   string `json:"offline_pin,omitempty"`   // none (default), sealed, generate

	ODA         ODA            `json:"oda"`                    // none, sda, dda
	ICCKeyBits  int            `json:"icc_key_bits,omitempty"` // DDA: default 1024
	ICCExponent int            `json:"icc_exponent,omitempty"` // DDA: 3 (default) or 65537
	DAC         perso.HexBytes `json:"dac,omitempty"`          // SDA data authentication code, 2 bytes, default DAC1

	Keys   MasterKeys       `json:"keys"`
	Issuer *perso.IssuerKey `json:"issuer,omitempty"` // SDA and DDA
	// Derivation forces "A" or "B"; default: option A for PANs of up to
	// 16 digits, option B for longer ones (EMV Book 2 A1.4).
	Derivation string `json:"derivation,omitempty"`
}

// Profile is an EMV application profile; it implements perso.Application.
type Profile struct {
	cfg      Config
	aip, afl []byte
	certer   *perso.CardCertifier
	// The DGIs every card of the profile shares, built once.
	fciDGI, gpoDGI, crmDGI []byte
}

var defaultCDOL1 = mustHex("9F02069F03069F1A0295055F2A029A039C019F3704")
var defaultCDOL2 = mustHex("8A029F02069F03069F1A0295055F2A029A039C019F3704")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// New checks a configuration and returns the profile. Defaults: name
// "emv", priority 1, language "en", AUC FF00, application version 008C,
// PIN try limit 3, DDOL 9F3704, CDOL1 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37,
// CDOL2 8A then CDOL1's, CVM list "signature, then no CVM" (0000000000000000
// 1E03 1F00), IACs 0000000000 / 0000000000 / 0000000000, ICC keys of 1024
// bits with exponent 3, and the AIP from the ODA kind.
func New(cfg Config) (*Profile, error) {
	if cfg.Name == "" {
		cfg.Name = "emv"
	}
	fail := func(field, format string, args ...any) (*Profile, error) {
		return nil, fmt.Errorf("emv: profile %s: %s: %s", cfg.Name, field, fmt.Sprintf(format, args...))
	}
	if len(cfg.AID) < perso.MinAIDLen || len(cfg.AID) > perso.MaxAIDLen {
		return fail("aid", "%d bytes, want %d to %d", len(cfg.AID), perso.MinAIDLen, perso.MaxAIDLen)
	}
	if cfg.Label == "" || len(cfg.Label) > 16 {
		return fail("label", "want 1 to 16 characters")
	}
	if cfg.Priority == 0 {
		cfg.Priority = 1
	}
	if cfg.Language == "" {
		cfg.Language = "en"
	}
	if len(cfg.Language)%2 != 0 || len(cfg.Language) > 8 {
		return fail("language", "want 1 to 4 two-letter ISO 639 codes")
	}
	defaults := []struct {
		v   *perso.HexBytes
		def []byte
	}{
		{&cfg.AUC, mustHex("FF00")}, {&cfg.AppVersion, mustHex("008C")}, {&cfg.DDOL, mustHex("9F3704")},
		{&cfg.CDOL1, defaultCDOL1}, {&cfg.CDOL2, defaultCDOL2},
		{&cfg.CVMList, mustHex("00000000000000001E031F00")},
		{&cfg.IACDefault, make([]byte, 5)}, {&cfg.IACDenial, make([]byte, 5)}, {&cfg.IACOnline, make([]byte, 5)},
		{&cfg.DAC, mustHex("DAC1")},
	}
	for _, d := range defaults {
		if len(*d.v) == 0 {
			*d.v = d.def
		}
	}
	for _, c := range []struct {
		name string
		v    []byte
		n    int
	}{{"auc", cfg.AUC, 2}, {"app_version", cfg.AppVersion, 2}, {"iac_default", cfg.IACDefault, 5},
		{"iac_denial", cfg.IACDenial, 5}, {"iac_online", cfg.IACOnline, 5}, {"dac", cfg.DAC, 2}} {
		if len(c.v) != c.n {
			return fail(c.name, "%d bytes, want %d", len(c.v), c.n)
		}
	}
	if len(cfg.CVMList) < 8 || len(cfg.CVMList)%2 != 0 {
		return fail("cvm_list", "want amounts X and Y (8 bytes) and 2-byte rules")
	}
	for _, c := range []struct{ name, v string }{{"country", cfg.Country}, {"currency", cfg.Currency}} {
		if _, err := bcd.N(c.v, 2); err != nil || len(c.v) != 3 {
			return fail(c.name, "%q is not 3 digits", c.v)
		}
	}
	if cfg.PINTryLimit == 0 {
		cfg.PINTryLimit = 3
	}
	if cfg.PINTryLimit > 15 {
		return fail("pin_try_limit", "over 15")
	}
	switch cfg.OfflinePIN {
	case "":
		cfg.OfflinePIN = PINNone
	case PINNone, PINSealed, PINGenerate:
	default:
		return fail("offline_pin", "%q is not none, sealed or generate", cfg.OfflinePIN)
	}
	switch cfg.Derivation {
	case "", "A", "B":
	default:
		return fail("derivation", "%q is not A or B", cfg.Derivation)
	}
	var aip []byte
	switch cfg.ODA {
	case ODANone:
		aip = []byte{0x18, 0x00}
	case ODASDA:
		aip = []byte{0x58, 0x00}
	case ODADDA:
		aip = []byte{0x38, 0x00}
		if cfg.ICCKeyBits == 0 {
			cfg.ICCKeyBits = 1024
		}
		if cfg.ICCExponent == 0 {
			cfg.ICCExponent = 3
		}
		if cfg.ICCExponent != 3 && cfg.ICCExponent != 65537 {
			return fail("icc_exponent", "%d is not 3 or 65537", cfg.ICCExponent)
		}
		if cfg.ICCKeyBits < 512 || cfg.ICCKeyBits > 1984 || cfg.ICCKeyBits%8 != 0 {
			return fail("icc_key_bits", "%d is not a multiple of 8 from 512 to 1984 (EMV Book 2 section 6.1)", cfg.ICCKeyBits)
		}
	default:
		return fail("oda", "%q is not none, sda or dda", cfg.ODA)
	}
	if len(cfg.AIP) == 0 {
		cfg.AIP = aip
	} else if len(cfg.AIP) != 2 {
		return fail("aip", "%d bytes, want 2", len(cfg.AIP))
	}
	if cfg.ODA != ODANone {
		if cfg.Issuer == nil || len(cfg.Issuer.Certificate) == 0 || len(cfg.Issuer.Exponent) == 0 {
			return fail("issuer", "ODA needs the issuer key, certificate and exponent")
		}
	}
	for _, k := range []struct {
		name string
		ref  perso.KeyRef
	}{{"keys.ac", cfg.Keys.AC}, {"keys.smi", cfg.Keys.SMI}, {"keys.smc", cfg.Keys.SMC}} {
		if k.ref.Label == "" {
			return fail(k.name, "no master key label")
		}
	}
	p := &Profile{cfg: cfg, aip: cfg.AIP}
	if cfg.ODA != ODANone {
		var err error
		if p.certer, err = perso.NewCardCertifier(*cfg.Issuer, cfg.ICCKeyBits, cfg.ICCExponent); err != nil {
			return fail("issuer", "%v", err)
		}
	}
	// AFL (EMV Book 3 10.2): SFI 1 records 1-2, both for ODA; SFI 2
	// records 1-2 with the certificates, not for ODA.
	p.afl = []byte{1 << 3, 1, 2, 2}
	if cfg.ODA != ODANone {
		p.afl = append(p.afl, 2<<3, 1, 2, 0)
	}
	var err error
	if p.fciDGI, err = p.fci(); err != nil {
		return nil, err
	}
	var b perso.Builder
	b.AddPrimitive(0x82, p.aip)
	b.AddPrimitive(0x94, p.afl)
	if p.gpoDGI, err = b.Bytes(); err != nil {
		return nil, fmt.Errorf("emv: GPO response: %w", err)
	}
	b = perso.Builder{}
	b.AddPrimitive(0x9F14, []byte{cfg.LowerOffline})
	b.AddPrimitive(0x9F23, []byte{cfg.UpperOffline})
	if p.crmDGI, err = b.Bytes(); err != nil {
		return nil, fmt.Errorf("emv: risk management data: %w", err)
	}
	return p, nil
}

// Name implements perso.Application.
func (p *Profile) Name() string { return p.cfg.Name }

// AID returns the profile's application identifier.
func (p *Profile) AID() []byte { return p.cfg.AID }

// Config returns the profile's configuration with its defaults filled in.
func (p *Profile) Config() Config { return p.cfg }

// method returns the derivation method for pan.
func (p *Profile) method(pan string) perso.Method {
	switch {
	case p.cfg.Derivation == "A":
		return perso.MethodEMVOptionA
	case p.cfg.Derivation == "B", len(pan) > 16:
		return perso.MethodEMVOptionB
	}
	return perso.MethodEMVOptionA
}

// Build implements perso.Application.
func (p *Profile) Build(ctx context.Context, env *perso.Env, card *perso.CardData) (*perso.App, error) {
	if card.ServiceCode == "" {
		return nil, &perso.FieldError{Field: "service_code", Reason: "missing (track 2 equivalent data needs it)"}
	}
	app := &perso.App{AID: p.cfg.AID}

	// ICC master keys.
	method := p.method(card.PAN)
	data := perso.PANPSN(card.PAN, card.PSN)
	var keys [3]perso.ProtectedKey
	for i, ref := range []perso.KeyRef{p.cfg.Keys.AC, p.cfg.Keys.SMI, p.cfg.Keys.SMC} {
		k, err := env.Deriver.Derive(ctx, perso.DeriveRequest{Master: ref, Method: method, Data: data, KEK: env.KEK})
		if err != nil {
			return nil, fmt.Errorf("emv: deriving %s: %w", ref, err)
		}
		keys[i] = k
	}

	rec11, rec12, err := p.staticRecords(card)
	if err != nil {
		return nil, err
	}
	app.AddDGI(0x0101, rec11)
	app.AddDGI(0x0102, rec12)

	var crt [5]perso.Sealed
	if p.cfg.ODA != ODANone {
		recs, c, err := p.odaRecords(ctx, env, card, rec11, rec12)
		if err != nil {
			return nil, err
		}
		app.AddDGI(0x0201, recs[0])
		app.AddDGI(0x0202, recs[1])
		crt = c
	}

	app.AddDGI(0x9102, p.fciDGI)
	app.AddDGI(0x9104, p.gpoDGI)
	app.AddDGI(0x0D01, p.crmDGI)
	app.AddDGI(0x9010, []byte{p.cfg.PINTryLimit, p.cfg.PINTryLimit})

	sealedKeys, err := perso.SealKeysOf(keys[0], keys[1], keys[2])
	if err != nil {
		return nil, fmt.Errorf("emv: %w", err)
	}
	app.AddSecret(0x8000, sealedKeys)
	kcvs := make([]byte, 0, 9)
	for _, k := range keys {
		kcvs = append(kcvs, k.KCV[:]...)
	}
	app.AddDGI(0x9000, kcvs)

	if pin, err := p.pinBlock(ctx, env, card); err != nil {
		return nil, err
	} else if pin != nil {
		app.AddSecret(0x8010, pin)
	}
	if crt[0] != nil {
		for i, s := range crt {
			app.AddSecret(0x8201+uint16(i), s)
		}
	}
	return app, nil
}

// track2 returns the track 2 equivalent data (57): PAN, separator D,
// expiry YYMM, service code, discretionary data, padded with F (EMV Book 3
// Annex A).
func track2(card *perso.CardData) ([]byte, error) {
	s := card.PAN + "D" + card.Expiry[:4] + card.ServiceCode + card.Discretionary
	if len(s)%2 != 0 {
		s += "F"
	}
	if len(s) > 38 {
		return nil, &perso.FieldError{Field: "discretionary", Reason: "track 2 equivalent data over 19 bytes"}
	}
	return hex.DecodeString(s)
}

// staticRecords builds the SFI 1 records, which ODA covers.
func (p *Profile) staticRecords(card *perso.CardData) (rec11, rec12 []byte, err error) {
	t2, err := track2(card)
	if err != nil {
		return nil, nil, err
	}
	var b perso.Builder
	b.AddTLV(0x70, func(b *perso.Builder) {
		b.AddPrimitive(0x57, t2)
		if card.Name != "" {
			b.AddPrimitive(0x5F20, []byte(card.Name))
		}
	})
	if rec11, err = b.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("emv: record 1/1: %w", err)
	}
	pan, _ := bcd.CN(card.PAN, 0)
	exp, _ := bcd.N(card.Expiry, 3)
	psn := []byte{card.PSN/10<<4 | card.PSN%10}
	country, _ := bcd.N(p.cfg.Country, 2)
	currency, _ := bcd.N(p.cfg.Currency, 2)
	svc, _ := bcd.N(card.ServiceCode, 2)
	b = perso.Builder{}
	b.AddTLV(0x70, func(b *perso.Builder) {
		b.AddPrimitive(0x5A, pan)
		b.AddPrimitive(0x5F24, exp)
		if card.Effective != "" {
			eff, _ := bcd.N(card.Effective, 3)
			b.AddPrimitive(0x5F25, eff)
		}
		b.AddPrimitive(0x5F34, psn)
		b.AddPrimitive(0x5F28, country)
		b.AddPrimitive(0x9F42, currency)
		b.AddPrimitive(0x5F30, svc)
		b.AddPrimitive(0x8C, p.cfg.CDOL1)
		b.AddPrimitive(0x8D, p.cfg.CDOL2)
		b.AddPrimitive(0x8E, p.cfg.CVMList)
		b.AddPrimitive(0x9F07, p.cfg.AUC)
		b.AddPrimitive(0x9F0D, p.cfg.IACDefault)
		b.AddPrimitive(0x9F0E, p.cfg.IACDenial)
		b.AddPrimitive(0x9F0F, p.cfg.IACOnline)
		b.AddPrimitive(0x9F08, p.cfg.AppVersion)
		if p.cfg.ODA != ODANone {
			b.AddPrimitive(0x9F4A, []byte{0x82})
		}
	})
	if rec12, err = b.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("emv: record 1/2: %w", err)
	}
	return rec11, rec12, nil
}

// StaticData returns the static data to be authenticated of EMV Book 3
// section 10.3: the values of the ODA records' 70 templates (tag and length
// excluded, as for SFI 1 to 10) in AFL order, then the AIP when the SDA tag
// list is 82.
func StaticData(records [][]byte, aip []byte) ([]byte, error) {
	var out []byte
	for i, r := range records {
		t, err := perso.ParseTLV(r, perso.Strict)
		if err != nil || t.Tag != 0x70 {
			return nil, fmt.Errorf("emv: ODA record %d is not a 70 template", i)
		}
		out = append(out, t.Value...)
	}
	return append(out, aip...), nil
}

// odaRecords builds the SFI 2 records: the issuer certificate, and the
// SSAD (SDA) or the ICC certificate (DDA), whose CRT components it returns.
func (p *Profile) odaRecords(ctx context.Context, env *perso.Env, card *perso.CardData, rec11, rec12 []byte) (recs [2][]byte, crt [5]perso.Sealed, err error) {
	static, err := StaticData([][]byte{rec11, rec12}, p.aip)
	if err != nil {
		return recs, crt, err
	}
	var b perso.Builder
	b.AddTLV(0x70, func(b *perso.Builder) {
		b.AddPrimitive(0x8F, []byte{p.cfg.Issuer.CAIndex})
		p.certer.AddIssuerData(b)
	})
	if recs[0], err = b.Bytes(); err != nil {
		return recs, crt, fmt.Errorf("emv: record 2/1: %w", err)
	}
	b = perso.Builder{}
	switch p.cfg.ODA {
	case ODASDA:
		ssad, err := p.certer.SignStaticData(ctx, env, p.cfg.DAC, static)
		if err != nil {
			return recs, crt, fmt.Errorf("emv: signed static application data: %w", err)
		}
		b.AddTLV(0x70, func(b *perso.Builder) { b.AddPrimitive(0x93, ssad) })
	case ODADDA:
		cc, err := p.certer.Certify(ctx, env, card.PAN, card.Expiry, static)
		if err != nil {
			return recs, crt, fmt.Errorf("emv: ICC key: %w", err)
		}
		b.AddTLV(0x70, func(b *perso.Builder) {
			cc.AddICCData(b)
			b.AddPrimitive(0x9F49, p.cfg.DDOL)
		})
		crt = cc.CRT
	}
	if recs[1], err = b.Bytes(); err != nil {
		return recs, crt, fmt.Errorf("emv: record 2/2: %w", err)
	}
	return recs, crt, nil
}

// fci returns the contents of the FCI proprietary template (DGI 9102).
func (p *Profile) fci() ([]byte, error) {
	var b perso.Builder
	b.AddPrimitive(0x50, []byte(p.cfg.Label))
	b.AddPrimitive(0x87, []byte{p.cfg.Priority})
	b.AddPrimitive(0x5F2D, []byte(p.cfg.Language))
	b.AddPrimitive(0x9F11, []byte{0x01})
	if p.cfg.PreferredName != "" {
		b.AddPrimitive(0x9F12, []byte(p.cfg.PreferredName))
	}
	v, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("emv: FCI: %w", err)
	}
	return v, nil
}

// pinBlock returns the sealed PIN block, or nil without offline PIN.
func (p *Profile) pinBlock(ctx context.Context, env *perso.Env, card *perso.CardData) (perso.Sealed, error) {
	switch p.cfg.OfflinePIN {
	case PINSealed:
		v, ok := card.Field("pin_block")
		if !ok {
			return nil, &perso.FieldError{Field: "pin_block", Reason: "missing (the profile has offline PIN)"}
		}
		s, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return nil, &perso.FieldError{Field: "pin_block", Reason: "not hex"}
		}
		if _, err := perso.Sealed(s).Parse(); err != nil {
			return nil, &perso.FieldError{Field: "pin_block", Reason: "not a sealed value"}
		}
		return perso.Sealed(s), nil
	case PINGenerate:
		var r [2]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		pin := fmt.Sprintf("%04d", binary.BigEndian.Uint16(r[:])%10000)
		block, _ := hex.DecodeString("24" + pin + "FFFFFFFFFF") // ISO 9564-1 format 2
		defer crypt.Zero(block)
		s, err := env.Protector.Seal(ctx, env.KEK, block)
		if err != nil {
			return nil, fmt.Errorf("emv: sealing the PIN block: %w", err)
		}
		return s, nil
	}
	return nil, nil
}
