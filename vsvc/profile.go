package vsvc

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/bcd"
)

// DefaultAID is the Visa Cash IEP application identifier.
var DefaultAID = perso.HexBytes{0xA0, 0x00, 0x00, 0x00, 0x03, 0x60, 0x10}

// Keys names the purse master keys in the security module.
type Keys struct {
	KML perso.KeyRef `json:"kml"`
	KMU perso.KeyRef `json:"kmu"`
}

// Config is what an issuer sets per purse product. Zero values take the
// defaults New documents.
type Config struct {
	Name             string          `json:"name,omitempty"`  // default "vsvc"
	AID              perso.HexBytes  `json:"aid,omitempty"`   // default A0000000036010
	Label            string          `json:"label,omitempty"` // default "VISA CASH"
	AuthMode         uint8           `json:"auth_mode,omitempty"`
	AppProfile       perso.HexBytes  `json:"app_profile,omitempty"` // 2 bytes, default 0000
	Currency         string          `json:"currency"`              // ISO 4217 numeric, 3 digits
	CurrencyExponent uint8           `json:"currency_exponent"`
	MaxBalance       uint32          `json:"max_balance"`
	InitialBalance   uint32          `json:"initial_balance,omitempty"`
	ValidityMonths   int             `json:"validity_months,omitempty"` // activation = expiry less this, when the card has no effective date; default 36
	CardSupplier     perso.HexBytes  `json:"card_supplier,omitempty"`   // 1 to 8 bytes, default 00
	EFType           uint8           `json:"ef_type,omitempty"`
	IEPVersion       uint8           `json:"iep_version,omitempty"` // default 1
	KeyVersion       uint8           `json:"key_version,omitempty"` // default 1
	Keys             Keys            `json:"keys"`
	CardKeyBits      int             `json:"card_key_bits,omitempty"` // default 1024
	CardExponent     int             `json:"card_exponent,omitempty"` // default 3
	Issuer           perso.IssuerKey `json:"issuer"`
	ProviderCert     perso.HexBytes  `json:"provider_certificate,omitempty"` // DF10
}

// Profile is the stored-value purse profile; it implements
// perso.Application.
type Profile struct {
	cfg    Config
	certer *perso.CardCertifier
}

// New checks a configuration and returns the profile.
func New(cfg Config) (*Profile, error) {
	if cfg.Name == "" {
		cfg.Name = "vsvc"
	}
	fail := func(field, format string, args ...any) (*Profile, error) {
		return nil, fmt.Errorf("vsvc: profile %s: %s: %s", cfg.Name, field, fmt.Sprintf(format, args...))
	}
	if len(cfg.AID) == 0 {
		cfg.AID = DefaultAID
	}
	if len(cfg.AID) < perso.MinAIDLen || len(cfg.AID) > perso.MaxAIDLen {
		return fail("aid", "%d bytes", len(cfg.AID))
	}
	if cfg.Label == "" {
		cfg.Label = "VISA CASH"
	}
	if len(cfg.AppProfile) == 0 {
		cfg.AppProfile = perso.HexBytes{0, 0}
	}
	if len(cfg.AppProfile) != 2 {
		return fail("app_profile", "%d bytes, want 2", len(cfg.AppProfile))
	}
	if _, err := bcd.N(cfg.Currency, 2); err != nil || len(cfg.Currency) != 3 {
		return fail("currency", "%q is not 3 digits", cfg.Currency)
	}
	if cfg.MaxBalance == 0 || cfg.InitialBalance > cfg.MaxBalance {
		return fail("max_balance", "zero, or below the initial balance")
	}
	if cfg.ValidityMonths == 0 {
		cfg.ValidityMonths = 36
	}
	if len(cfg.CardSupplier) == 0 {
		cfg.CardSupplier = perso.HexBytes{0}
	}
	if len(cfg.CardSupplier) > 8 {
		return fail("card_supplier", "over 8 bytes")
	}
	if cfg.IEPVersion == 0 {
		cfg.IEPVersion = 1
	}
	if cfg.KeyVersion == 0 {
		cfg.KeyVersion = 1
	}
	if cfg.Keys.KML.Label == "" || cfg.Keys.KMU.Label == "" {
		return fail("keys", "KML and KMU must be named")
	}
	if cfg.CardKeyBits == 0 {
		cfg.CardKeyBits = 1024
	}
	if cfg.CardExponent == 0 {
		cfg.CardExponent = 3
	}
	certer, err := perso.NewCardCertifier(cfg.Issuer, cfg.CardKeyBits, cfg.CardExponent)
	if err != nil {
		return fail("issuer", "%v", err)
	}
	return &Profile{cfg: cfg, certer: certer}, nil
}

// Name implements perso.Application.
func (p *Profile) Name() string { return p.cfg.Name }

// AID returns the purse's application identifier.
func (p *Profile) AID() []byte { return p.cfg.AID }

// Config returns the configuration with its defaults filled in.
func (p *Profile) Config() Config { return p.cfg }

// IEPID returns a card's IEP identifier: its PAN in format cn, 10 bytes.
func IEPID(pan string) ([]byte, error) { return bcd.CN(pan, 10) }

// dates returns the activation and deactivation dates of a card.
func (p *Profile) dates(card *perso.CardData) (act, deact string, err error) {
	act, deact = card.Effective, card.Expiry
	if act == "" {
		exp, err := time.Parse("060102", card.Expiry)
		if err != nil {
			return "", "", &perso.FieldError{Field: "expiry", Reason: "not YYMMDD"}
		}
		act = exp.AddDate(0, -p.cfg.ValidityMonths, 1).Format("060102")
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"activation", &act}, {"deactivation", &deact}} {
		if v, ok := card.Field(f.name); ok {
			d, err := perso.NormalizeDate(v)
			if err != nil {
				return "", "", &perso.FieldError{Field: f.name, Reason: err.Error()}
			}
			*f.dst = d
		}
	}
	if act > deact {
		return "", "", &perso.FieldError{Field: "activation", Reason: "after the deactivation date"}
	}
	return act, deact, nil
}

// Build implements perso.Application.
func (p *Profile) Build(ctx context.Context, env *perso.Env, card *perso.CardData) (*perso.App, error) {
	iep, err := IEPID(card.PAN)
	if err != nil {
		return nil, &perso.FieldError{Field: "pan", Reason: "does not fit an IEP identifier"}
	}
	balance := p.cfg.InitialBalance
	if v, ok := card.Field("balance"); ok {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || uint32(n) > p.cfg.MaxBalance {
			return nil, &perso.FieldError{Field: "balance", Reason: fmt.Sprintf("%q is not 0..%d", v, p.cfg.MaxBalance)}
		}
		balance = uint32(n)
	}
	act, deact, err := p.dates(card)
	if err != nil {
		return nil, err
	}

	// KDL and KDU.
	data := iep[2:]
	var keys [2]perso.ProtectedKey
	for i, ref := range []perso.KeyRef{p.cfg.Keys.KML, p.cfg.Keys.KMU} {
		k, err := env.Deriver.Derive(ctx, perso.DeriveRequest{Master: ref, Method: perso.MethodEncryptData, Data: data, KEK: env.KEK})
		if err != nil {
			return nil, fmt.Errorf("vsvc: deriving from %s: %w", ref, err)
		}
		keys[i] = k
	}

	cur, _ := bcd.N(p.cfg.Currency, 2)
	bcdDate := func(s string) []byte { v, _ := bcd.N(s, 3); return v }
	var b perso.Builder
	b.AddTLV(0x70, func(b *perso.Builder) {
		b.AddPrimitive(0xDF01, iep)
		b.AddPrimitive(0xDF02, []byte{p.cfg.AuthMode})
		b.AddPrimitive(0xDF03, p.cfg.AppProfile)
		b.AddPrimitive(0xDF04, cur)
		b.AddPrimitive(0xDF05, []byte{p.cfg.CurrencyExponent})
		b.AddPrimitive(0xDF06, binary.BigEndian.AppendUint32(nil, p.cfg.MaxBalance))
		b.AddPrimitive(0xDF07, bcdDate(act))
		b.AddPrimitive(0xDF08, bcdDate(deact))
		b.AddPrimitive(0xDF09, bcdDate(card.Expiry))
		b.AddPrimitive(0xDF0A, p.cfg.CardSupplier)
		b.AddPrimitive(0xDF0B, []byte{p.cfg.EFType})
		b.AddPrimitive(0xDF0C, []byte{p.cfg.IEPVersion})
		b.AddPrimitive(0xDF0D, []byte{p.cfg.KeyVersion})
		b.AddPrimitive(0x8F, []byte{p.cfg.Issuer.CAIndex})
	})
	params, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("vsvc: purse parameters: %w", err)
	}
	static, _ := perso.ParseTLV(params, perso.Strict)

	cc, err := p.certer.Certify(ctx, env, card.PAN, card.Expiry, static.Value)
	if err != nil {
		return nil, fmt.Errorf("vsvc: card key: %w", err)
	}
	b = perso.Builder{}
	b.AddTLV(0x70, func(b *perso.Builder) {
		p.certer.AddIssuerData(b)
		cc.AddICCData(b)
		if len(p.cfg.ProviderCert) > 0 {
			b.AddPrimitive(0xDF10, p.cfg.ProviderCert)
		}
	})
	certs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("vsvc: certificates record: %w", err)
	}
	b = perso.Builder{}
	b.AddPrimitive(0x50, []byte(p.cfg.Label))
	b.AddPrimitive(0x87, []byte{0x01})
	fci, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("vsvc: FCI: %w", err)
	}

	app := &perso.App{AID: p.cfg.AID}
	app.AddDGI(0x9102, fci)
	app.AddDGI(0x0101, params)
	app.AddDGI(0x0102, certs)
	app.AddDGI(0x9103, binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(nil, balance), 0))
	sealed, err := perso.SealKeysOf(keys[0], keys[1])
	if err != nil {
		return nil, fmt.Errorf("vsvc: %w", err)
	}
	app.AddSecret(0x8020, sealed)
	app.AddDGI(0x9020, append(keys[0].KCV[:], keys[1].KCV[:]...))
	for i, s := range cc.CRT {
		app.AddSecret(0x8201+uint16(i), s)
	}
	return app, nil
}
