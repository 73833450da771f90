// Command keyceremony puts an issuer's keys on a PKCS#11 token (SoftHSM2
// for tests and examples): the issuer master keys, the KMCs, the transport
// KEK and the issuer RSA key pair, all sensitive and never extractable. It
// prints each key's label and check value, never a key.
//
// By default the symmetric keys are the public test values the tests and
// examples use; -random generates them in the token instead, and -keyfile
// imports the keys of a software module key file (hsm/soft.KeyFile). The
// issuer key pair is generated in the token unless the key file holds one.
//
// The token comes from PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN and
// PERSO_PKCS11_PIN (./scripts/test sets them for a temporary SoftHSM2
// token):
//
//	go run ./examples/keyceremony -issuer 45123FFF -version 1
package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/pkcs11"
	"github.com/cardperso/perso/hsm/soft"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "keyceremony:", err)
		os.Exit(1)
	}
}

// testKey is a symmetric key of the ceremony with its public test value.
type testKey struct {
	label string
	role  pkcs11.Role
	typ   perso.KeyType
	value string
}

// testKeys are the issuer's symmetric keys and their test values: the
// pyemv IMK of the EMV vectors, the GlobalPlatformPro KMC, and keys for
// the stored-value application. They are public: for tests only.
var testKeys = []testKey{
	{"IMK-AC", pkcs11.RoleMaster, perso.KeyDES2, "0123456789ABCDEFFEDCBA9876543210"},
	{"IMK-SMI", pkcs11.RoleMaster, perso.KeyDES2, "FEDCBA98765432100123456789ABCDEF"},
	{"IMK-SMC", pkcs11.RoleMaster, perso.KeyDES2, "89ABCDEF01234567FEDCBA9876543210"},
	{"KML", pkcs11.RoleMaster, perso.KeyDES2, "2315208C9110AD402315208C9110AD40"},
	{"KMU", pkcs11.RoleMaster, perso.KeyDES2, "0102040810204080C1C2C4C8D0E0F1F2"},
	{"KMC", pkcs11.RoleKMC, perso.KeyDES2, "404142434445464748494A4B4C4D4E4F"},
	{"KMC-AES", pkcs11.RoleKMC, perso.KeyAES128, "404142434445464748494A4B4C4D4E4F"},
}

// testKEK is the transport KEK's test value.
const testKEK = "0F0E0D0C0B0A09080706050403020100"

type options struct {
	issuer   perso.IssuerID
	version  uint8
	random   bool
	keyfile  string
	bits     int
	exponent int
	replace  bool
}

func parseFlags(args []string, out io.Writer) (options, error) {
	fs := flag.NewFlagSet("keyceremony", flag.ContinueOnError)
	fs.SetOutput(out)
	issuer := fs.String("issuer", "45123FFF", "issuer identifier, 8 hex digits, for the KEK label")
	version := fs.Uint("version", 1, "key version, 0 to 255, for every label")
	o := options{}
	fs.BoolVar(&o.random, "random", false, "generate the symmetric keys in the token instead of the test values")
	fs.StringVar(&o.keyfile, "keyfile", "", "import the keys of a software module key file instead")
	fs.IntVar(&o.bits, "issuer-bits", 1408, "issuer RSA key size in bits")
	fs.IntVar(&o.exponent, "issuer-exponent", 3, "issuer RSA public exponent, 3 or 65537")
	fs.BoolVar(&o.replace, "replace", false, "destroy keys that already have the labels first")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *version > 255 {
		return o, fmt.Errorf("version %d is more than 255", *version)
	}
	id, err := soft.ParseIssuerID(*issuer)
	if err != nil {
		return o, err
	}
	if o.random && o.keyfile != "" {
		return o, errors.New("-random and -keyfile exclude each other")
	}
	o.issuer, o.version = id, uint8(*version)
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	cfg, err := pkcs11.ConfigFromEnv()
	if err != nil {
		return err
	}
	m, err := pkcs11.Open(cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprint(out, pkcs11.CapabilityReport(m.Capabilities()))

	c := &ceremony{ctx: ctx, m: m, out: out, replace: o.replace}
	if o.keyfile != "" {
		return c.keyFile(o)
	}
	for _, k := range testKeys {
		var value []byte
		if !o.random {
			value, _ = hex.DecodeString(k.value)
		}
		c.key(perso.KeyRef{Label: k.label, Version: o.version}, k.role, k.typ, value)
	}
	var kek []byte
	if !o.random {
		kek, _ = hex.DecodeString(testKEK)
	}
	c.kek(perso.KEKID{Issuer: o.issuer, Version: o.version, Scheme: perso.SchemeAESKW}, kek)
	c.issuerKey(perso.KeyRef{Label: "ISSUER", Version: o.version}, o.bits, o.exponent, nil)
	return c.err
}

// ceremony creates keys one after the other and stops at the first error.
type ceremony struct {
	ctx     context.Context
	m       *pkcs11.Module
	out     io.Writer
	replace bool
	err     error
}

func (c *ceremony) clear(label string) bool {
	if c.err != nil {
		return false
	}
	if c.replace {
		if _, err := c.m.DestroyKeys(c.ctx, label); err != nil {
			c.err = err
			return false
		}
	}
	return true
}

func (c *ceremony) key(ref perso.KeyRef, role pkcs11.Role, typ perso.KeyType, value []byte) {
	if !c.clear(ref.String()) {
		return
	}
	kcv, err := c.m.CreateKey(c.ctx, ref, role, typ, value)
	if err != nil {
		c.err = err
		return
	}
	fmt.Fprintf(c.out, "%-24s %-8s %-12s KCV %X\n", ref, typ, role, kcv[:])
}

func (c *ceremony) kek(id perso.KEKID, value []byte) {
	if !c.clear(id.Label()) {
		return
	}
	kcv, err := c.m.CreateKEK(c.ctx, id, value)
	if err != nil {
		c.err = err
		return
	}
	fmt.Fprintf(c.out, "%-24s %-8s %-12s KCV %X\n", id.Label(), id.Scheme, "KEK", kcv[:])
}

func (c *ceremony) issuerKey(ref perso.KeyRef, bits, e int, known *rsa.PrivateKey) {
	if !c.clear(ref.String()) {
		return
	}
	var pub *rsa.PublicKey
	var err error
	if known != nil {
		pub, err = c.m.ImportIssuerKey(c.ctx, ref, known)
	} else {
		pub, err = c.m.CreateIssuerKey(c.ctx, ref, bits, e)
	}
	if err != nil {
		c.err = err
		return
	}
	fmt.Fprintf(c.out, "%-24s RSA-%d  e=%d\n", ref, pub.N.BitLen(), pub.E)
}

// keyFile imports the keys of a software module key file.
func (c *ceremony) keyFile(o options) error {
	b, err := os.ReadFile(o.keyfile)
	if err != nil {
		return err
	}
	var kf soft.KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return fmt.Errorf("%s: %w", o.keyfile, err)
	}
	for _, k := range kf.Keys {
		t, err := soft.ParseKeyType(k.Type)
		if err != nil {
			return err
		}
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			return fmt.Errorf("%s/v%d: value is not hex", k.Label, k.Version)
		}
		role := pkcs11.RoleMaster
		if strings.HasPrefix(k.Label, "KMC") {
			role = pkcs11.RoleKMC
		}
		c.key(perso.KeyRef{Label: k.Label, Version: k.Version}, role, t, v)
	}
	for _, k := range kf.KEKs {
		id, err := soft.ParseIssuerID(k.Issuer)
		if err != nil {
			return err
		}
		s, err := soft.ParseScheme(k.Scheme)
		if err != nil {
			return err
		}
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			return fmt.Errorf("KEK %s/v%d: value is not hex", k.Issuer, k.Version)
		}
		c.kek(perso.KEKID{Issuer: id, Version: k.Version, Scheme: s}, v)
	}
	for _, k := range kf.RSA {
		der, err := base64.StdEncoding.DecodeString(k.PKCS8)
		if err != nil {
			return fmt.Errorf("%s/v%d: PKCS#8 is not base64", k.Label, k.Version)
		}
		pk, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("%s/v%d: %w", k.Label, k.Version, err)
		}
		rk, ok := pk.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("%s/v%d: not an RSA key", k.Label, k.Version)
		}
		c.issuerKey(perso.KeyRef{Label: k.Label, Version: k.Version}, 0, 0, rk)
	}
	return c.err
}
