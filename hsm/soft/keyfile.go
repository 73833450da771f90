package soft

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

// KeyFile is the JSON key file of the software module. Key values are hex;
// RSA keys are base64 PKCS#8 DER. A key file holds clear keys: it is for
// development and tests, like the module itself.
//
//	{
//	  "keys": [{"label": "IMK-AC", "version": 1, "type": "DES2", "value": "0123456789ABCDEFFEDCBA9876543210"}],
//	  "keks": [{"issuer": "45123FFF", "version": 1, "scheme": "AES-KW", "value": "000102030405060708090A0B0C0D0E0F"}],
//	  "rsa":  [{"label": "ISSUER", "version": 1, "pkcs8": "MIIE..."}]
//	}
type KeyFile struct {
	Keys []KeyFileKey `json:"keys,omitempty"`
	KEKs []KeyFileKEK `json:"keks,omitempty"`
	RSA  []KeyFileRSA `json:"rsa,omitempty"`
}

// KeyFileKey is a symmetric key entry: type is DES2, DES3, AES-128,
// AES-192 or AES-256.
type KeyFileKey struct {
	Label   string `json:"label"`
	Version uint8  `json:"version"`
	Type    string `json:"type"`
	Value   string `json:"value"`
}

// KeyFileKEK is a KEK entry: scheme is AES-KW or 3DES-ECB.
type KeyFileKEK struct {
	Issuer  string `json:"issuer"`
	Version uint8  `json:"version"`
	Scheme  string `json:"scheme"`
	Value   string `json:"value"`
}

// KeyFileRSA is an RSA private key entry.
type KeyFileRSA struct {
	Label   string `json:"label"`
	Version uint8  `json:"version"`
	PKCS8   string `json:"pkcs8"`
}

// ParseKeyType parses a key type name as KeyType.String prints it.
func ParseKeyType(s string) (perso.KeyType, error) {
	for _, t := range []perso.KeyType{perso.KeyDES2, perso.KeyDES3, perso.KeyAES128, perso.KeyAES192, perso.KeyAES256} {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("soft: unknown key type %q", s)
}

// ParseScheme parses a scheme name as Scheme.String prints it.
func ParseScheme(s string) (perso.Scheme, error) {
	for _, sc := range []perso.Scheme{perso.SchemeAESKW, perso.SchemeDES3ECB} {
		if strings.EqualFold(s, sc.String()) {
			return sc, nil
		}
	}
	return 0, fmt.Errorf("soft: unknown scheme %q", s)
}

// ParseIssuerID parses 8 hex digits.
func ParseIssuerID(s string) (perso.IssuerID, error) {
	var id perso.IssuerID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("soft: issuer id %q is not 8 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// LoadKeyFile reads a key file from path into the module.
func (m *Module) LoadKeyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("soft: %w", err)
	}
	defer f.Close()
	return m.ReadKeyFile(f)
}

// ReadKeyFile reads a key file into the module. Errors name the entry,
// never a value.
func (m *Module) ReadKeyFile(r io.Reader) error {
	var kf KeyFile
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return fmt.Errorf("soft: key file: %v", err)
	}
	for i, k := range kf.Keys {
		ref := perso.KeyRef{Label: k.Label, Version: k.Version}
		t, err := ParseKeyType(k.Type)
		if err != nil {
			return fmt.Errorf("soft: key file: keys[%d] %s: %w", i, ref, err)
		}
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			return fmt.Errorf("soft: key file: keys[%d] %s: value is not hex", i, ref)
		}
		_, err = m.ImportKey(ref, t, v)
		crypt.Zero(v)
		if err != nil {
			return fmt.Errorf("soft: key file: keys[%d]: %w", i, err)
		}
	}
	for i, k := range kf.KEKs {
		iss, err := ParseIssuerID(k.Issuer)
		if err != nil {
			return fmt.Errorf("soft: key file: keks[%d]: %w", i, err)
		}
		sc, err := ParseScheme(k.Scheme)
		if err != nil {
			return fmt.Errorf("soft: key file: keks[%d]: %w", i, err)
		}
		id := perso.KEKID{Issuer: iss, Version: k.Version, Scheme: sc}
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			return fmt.Errorf("soft: key file: keks[%d] %s: value is not hex", i, id.Label())
		}
		_, err = m.ImportKEK(id, v)
		crypt.Zero(v)
		if err != nil {
			return fmt.Errorf("soft: key file: keks[%d]: %w", i, err)
		}
	}
	for i, k := range kf.RSA {
		ref := perso.KeyRef{Label: k.Label, Version: k.Version}
		der, err := base64.StdEncoding.DecodeString(k.PKCS8)
		if err != nil {
			return fmt.Errorf("soft: key file: rsa[%d] %s: pkcs8 is not base64", i, ref)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		crypt.Zero(der)
		if err != nil {
			return fmt.Errorf("soft: key file: rsa[%d] %s: not a PKCS#8 private key", i, ref)
		}
		rk, ok := key.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("soft: key file: rsa[%d] %s: not an RSA key", i, ref)
		}
		if err := m.ImportRSAKey(ref, rk); err != nil {
			return fmt.Errorf("soft: key file: rsa[%d]: %w", i, err)
		}
	}
	return nil
}

// WriteKeyFile writes every key of the module as a key file, clear values
// included: it exists to save generated development keys.
func (m *Module) WriteKeyFile(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var kf KeyFile
	for ref, k := range m.sym {
		kf.Keys = append(kf.Keys, KeyFileKey{Label: ref.Label, Version: ref.Version, Type: k.typ.String(), Value: strings.ToUpper(hex.EncodeToString(k.b))})
	}
	for _, e := range m.keks {
		kf.KEKs = append(kf.KEKs, KeyFileKEK{Issuer: e.id.Issuer.String(), Version: e.id.Version, Scheme: e.id.Scheme.String(), Value: strings.ToUpper(hex.EncodeToString(e.key))})
	}
	for ref, k := range m.rsa {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return fmt.Errorf("soft: writing %s: %w", ref, err)
		}
		kf.RSA = append(kf.RSA, KeyFileRSA{Label: ref.Label, Version: ref.Version, PKCS8: base64.StdEncoding.EncodeToString(der)})
	}
	sortKeyFile(&kf)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&kf)
}

func sortKeyFile(kf *KeyFile) {
	sort.Slice(kf.Keys, func(i, j int) bool {
		a, b := kf.Keys[i], kf.Keys[j]
		return a.Label < b.Label || a.Label == b.Label && a.Version < b.Version
	})
	sort.Slice(kf.KEKs, func(i, j int) bool {
		a, b := kf.KEKs[i], kf.KEKs[j]
		return a.Issuer < b.Issuer || a.Issuer == b.Issuer && a.Version < b.Version
	})
	sort.Slice(kf.RSA, func(i, j int) bool {
		a, b := kf.RSA[i], kf.RSA[j]
		return a.Label < b.Label || a.Label == b.Label && a.Version < b.Version
	})
}
