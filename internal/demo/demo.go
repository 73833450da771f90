// Package demo sets up a complete demonstration issuer in the software
// security module: a test certification authority, an issuer key pair with
// its certificate, issuer master keys, purse master keys, a KMC and a KEK,
// and the profiles that use them. The quickstart, the examples and the end
// to end tests share it. Its keys are test keys.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/vsvc"
)

// IssuerID is the demonstration issuer: BIN 476173 (a range of public test
// cards), padded with F.
var IssuerID = perso.IssuerID{0x47, 0x61, 0x73, 0xFF}

// PANPrefix is the prefix of the demonstration card numbers.
const PANPrefix = "4761739001"

// References of the demonstration keys.
var (
	CA     = perso.KeyRef{Label: "CA", Version: 1}
	Issuer = perso.KeyRef{Label: "ISSUER", Version: 1}
	IMKAC  = perso.KeyRef{Label: "IMK-AC", Version: 1}
	IMKSMI = perso.KeyRef{Label: "IMK-SMI", Version: 1}
	IMKSMC = perso.KeyRef{Label: "IMK-SMC", Version: 1}
	KML    = perso.KeyRef{Label: "KML", Version: 1}
	KMU    = perso.KeyRef{Label: "KMU", Version: 1}
	KMC    = perso.KeyRef{Label: "KMC", Version: 1}
	KMCAES = perso.KeyRef{Label: "KMC-AES", Version: 1}
	KEK    = perso.KEKID{Issuer: IssuerID, Version: 1, Scheme: perso.SchemeAESKW}
	// KEKDES is the issuer host's 3DES KEK, under which the purse checks
	// have the module compute purse MACs (vsvc.ModuleKeys).
	KEKDES = perso.KEKID{Issuer: IssuerID, Version: 2, Scheme: perso.SchemeDES3ECB}
)

// CARID and CAIndex name the demonstration certification authority key.
var (
	CARID   = [5]byte{0xA0, 0x00, 0x00, 0x00, 0x03}
	CAIndex = byte(0x99)
)

// KMCValue is the card manager master key of the virtual cards: the
// GlobalPlatform default test key 404142..4F.
var KMCValue = mustHex("404142434445464748494A4B4C4D4E4F")

// Options sizes the demonstration issuer.
type Options struct {
	Seed       []byte // key generation seed; default "perso demo"
	CABits     int    // default 1984
	IssuerBits int    // default 1408
	ICCBits    int    // default 1024
	ICCExp     int    // default 3
}

// Setup is a demonstration issuer.
type Setup struct {
	Module *soft.Module
	CAKey  perso.CAPublicKey
	Issuer perso.IssuerKey
	KEKKCV [3]byte
	opts   Options
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// New makes a demonstration issuer in a fresh software module.
func New(o Options) (*Setup, error) {
	if o.Seed == nil {
		o.Seed = []byte("perso demo")
	}
	if o.CABits == 0 {
		o.CABits = 1984
	}
	if o.IssuerBits == 0 {
		o.IssuerBits = 1408
	}
	if o.ICCBits == 0 {
		o.ICCBits = 1024
	}
	if o.ICCExp == 0 {
		o.ICCExp = 3
	}
	m, err := soft.New(soft.NotForProduction(), soft.WithSeed(o.Seed), soft.WithName("demo"))
	if err != nil {
		return nil, err
	}
	for _, ref := range []perso.KeyRef{IMKAC, IMKSMI, IMKSMC, KML, KMU} {
		if _, err := m.GenerateKey(ref, perso.KeyDES2); err != nil {
			return nil, err
		}
	}
	if _, err := m.ImportKey(KMC, perso.KeyDES2, KMCValue); err != nil {
		return nil, err
	}
	if _, err := m.ImportKey(KMCAES, perso.KeyAES128, KMCValue); err != nil {
		return nil, err
	}
	s := &Setup{Module: m, opts: o}
	if s.KEKKCV, err = m.GenerateKEK(KEK); err != nil {
		return nil, err
	}
	if _, err = m.GenerateKEK(KEKDES); err != nil {
		return nil, err
	}
	caPub, err := m.GenerateRSAKey(CA, o.CABits, 3)
	if err != nil {
		return nil, err
	}
	s.CAKey = perso.CAPublicKey{RID: CARID, Index: CAIndex, Key: caPub}
	issPub, err := m.GenerateRSAKey(Issuer, o.IssuerBits, 3)
	if err != nil {
		return nil, err
	}
	exp, err := perso.NewCertDate(time.Now().Year()+8, time.December)
	if err != nil {
		return nil, err
	}
	ck, err := perso.CertifyIssuer(context.Background(), m, perso.IssuerCertRequest{
		CA:   CA,
		Cert: perso.IssuerCert{IssuerID: IssuerID, Expiry: exp, Serial: [3]byte{0x00, 0x00, 0x01}, Key: issPub},
		Now:  time.Now(),
	})
	if err != nil {
		return nil, fmt.Errorf("demo: issuer certificate: %w", err)
	}
	s.Issuer = perso.IssuerKey{Key: Issuer, CAIndex: CAIndex, Certificate: ck.Cert, Remainder: ck.Remainder, Exponent: ck.Exponent}
	return s, nil
}

// IssuerPublicKey returns the issuer's public key.
func (s *Setup) IssuerPublicKey() *rsa.PublicKey {
	k, _ := s.Module.PublicKey(context.Background(), Issuer)
	return k
}

// EMVConfig returns a credit/debit configuration with the given offline
// data authentication.
func (s *Setup) EMVConfig(oda emv.ODA) emv.Config {
	iss := s.Issuer
	return emv.Config{
		AID:          perso.HexBytes{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10},
		Label:        "PERSO DEMO",
		Country:      "826",
		Currency:     "978",
		LowerOffline: 5,
		UpperOffline: 10,
		OfflinePIN:   emv.PINGenerate,
		ODA:          oda,
		ICCKeyBits:   s.opts.ICCBits,
		ICCExponent:  s.opts.ICCExp,
		Keys:         emv.MasterKeys{AC: IMKAC, SMI: IMKSMI, SMC: IMKSMC},
		Issuer:       &iss,
	}
}

// EMV returns a credit/debit profile.
func (s *Setup) EMV(oda emv.ODA) (*emv.Profile, error) { return emv.New(s.EMVConfig(oda)) }

// PurseConfig returns a stored-value configuration.
func (s *Setup) PurseConfig() vsvc.Config {
	return vsvc.Config{
		Currency:         "978",
		CurrencyExponent: 2,
		MaxBalance:       50000,
		InitialBalance:   0,
		Keys:             vsvc.Keys{KML: KML, KMU: KMU},
		CardKeyBits:      s.opts.ICCBits,
		CardExponent:     s.opts.ICCExp,
		Issuer:           s.Issuer,
	}
}

// Purse returns a stored-value profile.
func (s *Setup) Purse() (*vsvc.Profile, error) { return vsvc.New(s.PurseConfig()) }

// Header returns a batch header for the demonstration issuer.
func (s *Setup) Header(profiles ...string) *perso.Header {
	h := &perso.Header{Created: time.Now(), Issuer: IssuerID, Profiles: profiles, KEKs: []perso.KEKCheck{{KEK: KEK, KCV: s.KEKKCV}}}
	copy(h.BatchID[:], "demo-")
	rand.Read(h.BatchID[5:])
	return h
}

// Preparer returns a Preparer over the demonstration module.
func (s *Setup) Preparer() *perso.Preparer {
	return &perso.Preparer{Deriver: s.Module, Certifier: s.Module, Protector: s.Module}
}

// Verifier returns a check of each personalized card as a terminal and the
// issuer host would run it, for perso.Personalizer.Verify: every EMV
// application with emv.VerifyCard (ODA required, ARQC verified with the
// issuer master key), the purse with vsvc.VerifyPurse (a load and an
// update, their MACs computed in the module).
func (s *Setup) Verifier() func(ctx context.Context, card *perso.Card, t perso.Transport) error {
	ca := []perso.CAPublicKey{s.CAKey}
	purseKeys := vsvc.ModuleKeys{Deriver: s.Module, Protector: s.Module, KML: KML, KMU: KMU, KEK: KEKDES}
	return func(ctx context.Context, card *perso.Card, t perso.Transport) error {
		cd, err := card.Record.Chip()
		if err != nil || cd == nil {
			return err
		}
		for _, a := range cd.Apps {
			if bytes.Equal(a.AID, vsvc.DefaultAID) {
				if _, err := vsvc.VerifyPurse(ctx, t, vsvc.Options{AID: a.AID, CAKeys: ca, Keys: purseKeys, Update: true}); err != nil {
					return err
				}
				continue
			}
			if _, err := emv.VerifyCard(ctx, t, emv.Options{AID: a.AID, CAKeys: ca, Deriver: s.Module, ACMaster: IMKAC}); err != nil {
				return err
			}
		}
		return nil
	}
}
