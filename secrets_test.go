package perso_test

// The secrets check: a whole run, data preparation from a card export and
// personalization onto virtual cards, good records and failing ones, with
// every key involved known to the test (the demonstration module's keys,
// the card keys it derives, the card keys of the virtual cards and the
// secure channel session keys the security module hands out). No output
// of the run may hold any of them, whole or in part, raw or in
// hexadecimal: not the batch file (which holds keys only wrapped under the
// KEK), the reject log, the audit log, log output, error messages, nor
// what fmt and slog print of the values that hold keys.

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/reader/vcard"
)

// demoKeyFile returns every key of the demonstration module, in clear.
func demoKeyFile(t testing.TB, s *demo.Setup) soft.KeyFile {
	t.Helper()
	var b bytes.Buffer
	if err := s.Module.WriteKeyFile(&b); err != nil {
		t.Fatal(err)
	}
	var kf soft.KeyFile
	if err := json.Unmarshal(b.Bytes(), &kf); err != nil {
		t.Fatal(err)
	}
	return kf
}

// secretWindow is the shortest run of a secret's bytes that counts as a
// leak: a quarter of an AES-256 key, half of a DES2 key.
const secretWindow = 8

// secretSet is key material that must not appear in any output.
type secretSet struct {
	values  map[string]string // hex of a whole value: its name
	windows map[[secretWindow]byte]window
}

// window is a run of secretWindow bytes of a secret: its name and where the
// run starts in it.
type window struct {
	name string
	at   int
}

func newSecretSet() *secretSet {
	return &secretSet{values: map[string]string{}, windows: map[[secretWindow]byte]window{}}
}

// add adds a secret value and every run of secretWindow of its bytes that
// looks random (at least 5 distinct byte values), so that structured runs
// such as padding cannot match by chance.
func (s *secretSet) add(name string, v []byte) {
	if len(v) < secretWindow {
		return
	}
	k := hex.EncodeToString(v)
	if _, ok := s.values[k]; ok {
		return
	}
	s.values[k] = name
	for i := 0; i+secretWindow <= len(v); i++ {
		w := [secretWindow]byte(v[i : i+secretWindow])
		distinct := map[byte]bool{}
		for _, c := range w {
			distinct[c] = true
		}
		if len(distinct) >= 5 {
			s.windows[w] = window{name, i}
		}
	}
}

func (s *secretSet) len() int { return len(s.values) }

// find returns what out reveals of the secrets, one finding per secret:
// the whole value raw, in upper or lower case hexadecimal, or as Go prints
// a byte slice in decimal; or else the first run of secretWindow bytes of
// it, raw or inside a run of hexadecimal digits of either case at either
// nibble alignment.
func (s *secretSet) find(out []byte) []string {
	var found []string
	seen := map[string]bool{}
	for k, name := range s.values {
		v, _ := hex.DecodeString(k)
		dec := strings.Trim(fmt.Sprint(v), "[]")
		for _, form := range []struct {
			what string
			b    []byte
		}{{"raw", v}, {"in upper case hex", []byte(strings.ToUpper(k))}, {"in lower case hex", []byte(k)}, {"in decimal", []byte(dec)}} {
			if i := bytes.Index(out, form.b); i >= 0 && !seen[name] {
				seen[name] = true
				found = append(found, fmt.Sprintf("%s %s at offset %d", name, form.what, i))
			}
		}
	}
	scan := func(b []byte, what string, at func(i int) int) {
		for i := 0; i+secretWindow <= len(b); i++ {
			if w, ok := s.windows[[secretWindow]byte(b[i:i+secretWindow])]; ok && !seen[w.name] {
				seen[w.name] = true
				found = append(found, fmt.Sprintf("%s (bytes %d to %d) %s at offset %d", w.name, w.at, w.at+secretWindow-1, what, at(i)))
			}
		}
	}
	scan(out, "raw", func(i int) int { return i })
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && isHexDigit(out[j]) {
			j++
		}
		if j-i >= 2*secretWindow {
			for align := 0; align < 2; align++ {
				run := out[i+align : j]
				run = run[:len(run)&^1]
				b, err := hex.DecodeString(string(run))
				if err != nil {
					panic(err) // only hexadecimal digits were taken
				}
				start := i + align
				scan(b, "in hex", func(k int) int { return start + 2*k })
			}
		}
		i = j + 1
	}
	return found
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// addKeyFile adds every key of a key file: symmetric keys, KEKs and the
// private parts of RSA keys (the public modulus and exponent are not
// secret).
func (s *secretSet) addKeyFile(t testing.TB, kf soft.KeyFile) {
	t.Helper()
	for _, k := range kf.Keys {
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			t.Fatal(err)
		}
		s.add(fmt.Sprintf("key %s/v%d", k.Label, k.Version), v)
	}
	for _, k := range kf.KEKs {
		v, err := hex.DecodeString(k.Value)
		if err != nil {
			t.Fatal(err)
		}
		s.add(fmt.Sprintf("KEK %s/v%d", k.Issuer, k.Version), v)
	}
	for _, k := range kf.RSA {
		der, err := base64.StdEncoding.DecodeString(k.PKCS8)
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		s.addRSA(fmt.Sprintf("RSA key %s/v%d", k.Label, k.Version), key.(*rsa.PrivateKey))
	}
}

func (s *secretSet) addRSA(name string, k *rsa.PrivateKey) {
	k.Precompute()
	for _, c := range []struct {
		what string
		v    *big.Int
	}{
		{"d", k.D}, {"p", k.Primes[0]}, {"q", k.Primes[1]},
		{"dP", k.Precomputed.Dp}, {"dQ", k.Precomputed.Dq}, {"qInv", k.Precomputed.Qinv},
	} {
		s.add(name+" "+c.what, c.v.Bytes())
	}
}

// addBatch opens every secret of a batch file with the module that holds
// its KEK: each application's MAC key, each secret DGI's clear value and,
// for sealed keys, each key.
func (s *secretSet) addBatch(t testing.TB, m *soft.Module, file []byte) {
	t.Helper()
	ctx := context.Background()
	for i, rec := range batchRecords(t, file) {
		cd, err := rec.Chip()
		if err != nil || cd == nil {
			t.Fatalf("record %d: chip data %v, %v", i, cd, err)
		}
		for _, a := range cd.Apps {
			where := fmt.Sprintf("record %d application %X", i, a.AID)
			mk, err := m.OpenKey(ctx, a.MACKey)
			if err != nil {
				t.Fatal(err)
			}
			s.add(where+" MAC key", mk)
			for _, d := range a.DGIs {
				if !a.IsSecret(d.Tag) {
					continue
				}
				v, err := m.Open(ctx, a.KEK, perso.Sealed(d.Value))
				if err != nil {
					t.Fatalf("%s DGI %04X: %v", where, d.Tag, err)
				}
				s.add(fmt.Sprintf("%s DGI %04X", where, d.Tag), v)
				parts, err := perso.Sealed(d.Value).Parse()
				if err != nil {
					t.Fatal(err)
				}
				for j, k := range parts.Keys {
					k.KEK = a.KEK
					v, err := m.OpenKey(ctx, k)
					if err != nil {
						t.Fatal(err)
					}
					s.add(fmt.Sprintf("%s DGI %04X key %d", where, d.Tag, j), v)
				}
			}
		}
	}
}

// batchRecords reads every record of a valid batch file.
func batchRecords(t testing.TB, file []byte) []*perso.Record {
	t.Helper()
	r, err := perso.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*perso.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
}

// addCardKeys adds a virtual card's static keys, diversified from the KMC
// with its KDD, and the EMV card keys of a PAN derived from the issuer
// master keys by both EMV methods, independently of the security module.
func (s *secretSet) addCardKeys(t testing.TB, kmc []byte, kf soft.KeyFile, kdds [][]byte, pans []string) {
	t.Helper()
	for _, kdd := range kdds {
		for _, key := range []int{kdf.ENC, kdf.MAC, kdf.DEK} {
			for _, div := range []func([]byte, []byte, int) ([]byte, error){kdf.DiversifyCPS, kdf.DiversifySCP03} {
				v, err := div(kmc, kdd, key)
				if err != nil {
					t.Fatal(err)
				}
				s.add(fmt.Sprintf("card %X static key %d", kdd, key), v)
			}
		}
	}
	for _, k := range kf.Keys {
		if !strings.HasPrefix(k.Label, "IMK-") {
			continue
		}
		imk, _ := hex.DecodeString(k.Value)
		for _, pan := range pans {
			for _, derive := range []func([]byte, string, uint8) ([]byte, error){kdf.OptionA, kdf.OptionB} {
				v, err := derive(imk, pan, 1)
				if err != nil {
					t.Fatal(err)
				}
				s.add(fmt.Sprintf("card %s key from %s", perso.MaskPAN(pan), k.Label), v)
			}
		}
	}
}

// outputs are named outputs of a run.
type outputs struct {
	names []string
	data  [][]byte
}

func (o *outputs) add(name string, b []byte) {
	o.names = append(o.names, name)
	o.data = append(o.data, slices.Clone(b))
}

func (o *outputs) addErr(name string, err error) {
	if err == nil {
		return
	}
	o.add(name, []byte(err.Error()))
	o.add(name+" %+v", fmt.Appendf(nil, "%+v", err))
}

// check fails the test for every secret an output reveals.
func (o *outputs) check(t *testing.T, s *secretSet) {
	t.Helper()
	total := 0
	for i, b := range o.data {
		total += len(b)
		for _, f := range s.find(b) {
			t.Errorf("%s reveals %s", o.names[i], f)
		}
	}
	t.Logf("%d secrets searched for in %d outputs, %d bytes", s.len(), len(o.data), total)
}

// probe prints v with every fmt verb and through slog's handlers: a value
// that holds keys must print none of them.
func (o *outputs) probe(name string, v any) {
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		o.add(name+" "+verb, fmt.Appendf(nil, verb, v))
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("probe", "value", v)
	slog.New(slog.NewTextHandler(&b, nil)).Info("probe", "value", v)
	o.add(name+" slog", b.Bytes())
}

// recordingTranslator is the bureau's security module with a record of
// the session keys it hands out and the cards' KDDs.
type recordingTranslator struct {
	*soft.Module
	mu   sync.Mutex
	keys []*perso.SessionKeys // copies
	kdds [][]byte
}

func (r *recordingTranslator) SessionKeys(ctx context.Context, req perso.SessionKeyRequest) (*perso.SessionKeys, error) {
	sk, err := r.Module.SessionKeys(ctx, req)
	if err != nil {
		return nil, err
	}
	c := &perso.SessionKeys{SCP: sk.SCP, ENC: slices.Clone(sk.ENC), MAC: slices.Clone(sk.MAC), RMAC: slices.Clone(sk.RMAC), DEK: slices.Clone(sk.DEK)}
	r.mu.Lock()
	r.keys = append(r.keys, c)
	r.kdds = append(r.kdds, slices.Clone(req.KDD))
	r.mu.Unlock()
	return sk, nil
}

// newBureau returns a Personalizer over the security module tr whose
// chip module opens SCP02 or SCP03 channels at the given level, and its
// audit log.
func newBureau(t testing.TB, tr perso.Translator, scp perso.SCP, level perso.SecurityLevel) (*perso.Personalizer, *bytes.Buffer) {
	t.Helper()
	kmc, div := demo.KMC, perso.MethodCPS
	if scp.Version == 3 {
		kmc, div = demo.KMCAES, perso.MethodSCP03KDF
	}
	chip, err := perso.NewChipModule(perso.ChipConfig{Translator: tr, KMC: kmc, Diversification: div, SCP: scp, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	var reg perso.Registry
	reg.Register(perso.MICChip, chip)
	reg.Register(perso.MICEmboss, &perso.RecordingModule{})
	reg.Register(perso.MICMagStripe, &perso.RecordingModule{})
	audit := &bytes.Buffer{}
	return &perso.Personalizer{Translator: tr, Modules: &reg, Audit: audit}, audit
}

// secretsCSV is a card export of good rows and rows that data preparation
// rejects (a PAN failing its check digit, a bad expiry, a PAN twice).
func secretsCSV(good int) ([]byte, []string) {
	var b bytes.Buffer
	b.WriteString("pan,psn,expiry,name,service_code,emboss1\n")
	var pans []string
	for i := range good {
		p := pan(100 + i)
		pans = append(pans, p)
		fmt.Fprintf(&b, "%s,01,3012,CARD/TEST %d,201,TEST CARD %d\n", p, i, i)
	}
	luhnBad := []byte(pans[0])
	luhnBad[len(luhnBad)-1] = '0' + (luhnBad[len(luhnBad)-1]-'0'+1)%10
	fmt.Fprintf(&b, "%s,01,3012,CARD/BAD,201,BAD\n", luhnBad)
	fmt.Fprintf(&b, "%s,01,3013,CARD/BAD,201,BAD\n", pan(200))
	fmt.Fprintf(&b, "%s,01,3012,CARD/AGAIN,201,AGAIN\n", pans[1])
	return b.Bytes(), pans
}

// otherKMC is the card manager key of cards that the bureau's KMC does not
// open.
var otherKMC = must(hex.DecodeString("5AC35AC35AC35AC35AC35AC35AC35AC3"))

// TestSecretsNeverInOutputs prepares a card export and personalizes it,
// with good records, a forged record, cards that fail and cards with
// other keys, and searches every output for every key.
func TestSecretsNeverInOutputs(t *testing.T) {
	s := demoSetup(t)
	ctx := context.Background()
	out := &outputs{}

	// Whatever the library logs, through slog or log, is an output.
	var logs bytes.Buffer
	prev := slog.Default()
	prevFlags, prevOut := log.Flags(), log.Writer()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetFlags(prevFlags)
		log.SetOutput(prevOut)
	})

	// Data preparation from a card export, with rejects.
	e, err := s.EMV(emv.ODADDA)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.Purse()
	if err != nil {
		t.Fatal(err)
	}
	input, pans := secretsCSV(4)
	var batchBuf, rejects bytes.Buffer
	w, err := perso.NewWriter(&batchBuf, s.Header(e.Name(), pv.Name()))
	if err != nil {
		t.Fatal(err)
	}
	job := &perso.Job{Apps: []perso.Application{e, pv}, KEK: demo.KEK, Rejects: perso.NewRejectLog(&rejects)}
	psum, err := s.Preparer().Run(ctx, job, perso.NewCSVReader(bytes.NewReader(input)), w)
	if err != nil || psum.Written != len(pans) || psum.Rejected != 3 {
		t.Fatalf("prepare: %+v, %v; want %d written and 3 rejected", psum, err, len(pans))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	batch := batchBuf.Bytes()
	out.add("batch file", batch)
	out.add("reject log", rejects.Bytes())
	out.probe("preparation summary", psum)

	// A job whose KEK the module lacks stops at its first record.
	other := *job
	other.KEK.Version = 9
	other.Rejects = nil
	discard, err := perso.NewWriter(io.Discard, s.Header(e.Name(), pv.Name()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Preparer().Run(ctx, &other, perso.NewCSVReader(bytes.NewReader(input)), discard)
	if !errors.Is(err, perso.ErrNoSuchKey) {
		t.Errorf("prepare under a KEK the module lacks: %v", err)
	}
	out.addErr("error of preparing under a missing KEK", err)

	// Personalization: good cards over SCP02 and SCP03, cards that fail at
	// a STORE DATA of secrets, cards with another KMC, a forged record.
	rec := &recordingTranslator{Module: s.Module}
	scp02, scp03 := perso.SCP{Version: 2, Param: 0x55}, perso.SCP{Version: 3, Param: 0x70}
	for _, tc := range []struct {
		name  string
		scp   perso.SCP
		level perso.SecurityLevel
		file  []byte
		cfg   func(n int) (vcard.Config, error)
	}{
		{"SCP02", scp02, perso.LevelCMACCDEC, batch, cardConfig(scp02, vcard.Fault{})},
		{"SCP03", scp03, perso.LevelAll, batch, cardConfig(scp03, vcard.Fault{})},
		{"card failing", scp02, perso.LevelCMACCDEC, batch, cardConfig(scp02, vcard.Fault{At: 6, Kind: vcard.FaultSW, SW: 0x6A80})},
		{"card pulled", scp03, perso.LevelAll, batch, cardConfig(scp03, vcard.Fault{At: 8, Kind: vcard.FaultTear})},
		{"other KMC", scp02, perso.LevelCMAC, batch, func(n int) (vcard.Config, error) {
			c, err := cardConfig(scp02, vcard.Fault{})(n)
			c.Keys.KMC = otherKMC
			return c, err
		}},
		{"forged record", scp02, perso.LevelCMAC, forgeRecord(t, batch, 2), cardConfig(scp02, vcard.Fault{})},
	} {
		p, audit := newBureau(t, rec, tc.scp, tc.level)
		st := vcard.NewStation("S", true, tc.cfg)
		sum, err := p.Run(ctx, bytes.NewReader(tc.file), st)
		if err != nil || sum.Records != len(pans) {
			t.Fatalf("%s: Run = %+v, %v", tc.name, sum, err)
		}
		out.add(tc.name+" audit log", audit.Bytes())
		out.probe(tc.name+" summary", sum)
		out.probe(tc.name+" personalizer", p)
		out.probe(tc.name+" station", st)
		out.probe(tc.name+" card config", must(tc.cfg(0)))
	}

	// The whole batch refused: a security module with another KEK.
	bad, err := soft.New(soft.NotForProduction(), soft.WithSeed([]byte("other")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GenerateKEK(demo.KEK); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.ImportKey(demo.KMC, perso.KeyDES2, demo.KMCValue); err != nil {
		t.Fatal(err)
	}
	p, _ := newBureau(t, bad, scp02, perso.LevelCMAC)
	_, err = p.Run(ctx, bytes.NewReader(batch), vcard.NewStation("S", false, cardConfig(scp02, vcard.Fault{})))
	var be *perso.BatchError
	if !errors.As(err, &be) {
		t.Errorf("Run with another KEK: %v", err)
	}
	out.addErr("error of another KEK", err)

	// Errors of the security module: a wrong MAC, a damaged MAC key, a
	// damaged sealed value, a key file with bad values.
	cd, err := batchRecords(t, batch)[0].Chip()
	if err != nil {
		t.Fatal(err)
	}
	app := cd.Apps[0]
	in, err := app.MACInput()
	if err != nil {
		t.Fatal(err)
	}
	out.addErr("error of a wrong MAC", s.Module.VerifyMAC(ctx, app.MACKey, in, make([]byte, perso.MACLen)))
	damaged := app.MACKey
	damaged.Wrapped = slices.Clone(damaged.Wrapped)
	damaged.Wrapped[3] ^= 0x40
	_, err = s.Module.OpenKey(ctx, damaged)
	out.addErr("error of a damaged MAC key", err)
	damaged.KCV[0] ^= 1
	out.addErr("error of a MAC key with another KCV", s.Module.VerifyMAC(ctx, damaged, in, app.MAC))
	for _, tag := range app.Secret {
		d, _ := app.DGI(tag)
		v := slices.Clone(d.Value)
		v[len(v)-1] ^= 0x01
		_, err := s.Module.Translate(ctx, app.KEK, perso.Sealed(v), rec.keys[0])
		out.addErr(fmt.Sprintf("error of translating a damaged DGI %04X", tag), err)
	}
	short := []byte("0123456789ABCDEFFEDCBA98765432")
	badKeys := fmt.Sprintf(`{"keys": [{"label": "X", "version": 1, "type": "DES2", "value": %q}]}`, hex.EncodeToString(short))
	out.addErr("error of a short key in a key file", s.Module.ReadKeyFile(strings.NewReader(badKeys)))
	badKEK := fmt.Sprintf(`{"keks": [{"issuer": "476173FF", "version": 7, "scheme": "AES-KW", "value": "%X"}]}`, short)
	out.addErr("error of a short KEK in a key file", s.Module.ReadKeyFile(strings.NewReader(badKEK)))

	// The values that hold keys, printed.
	out.probe("security module", s.Module)
	out.probe("demonstration issuer", s)
	for i, k := range rec.keys {
		out.probe(fmt.Sprintf("session keys %d", i), k)
	}
	out.probe("card keys", vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS})
	out.add("logs", logs.Bytes())

	// Every key of the run.
	sec := newSecretSet()
	kf := demoKeyFile(t, s)
	sec.addKeyFile(t, kf)
	sec.add("card manager key", demo.KMCValue)
	sec.add("short key of a key file", short)
	sec.addBatch(t, s.Module, batch)
	for i, k := range rec.keys {
		for _, v := range []struct {
			what string
			b    []byte
		}{{"ENC", k.ENC}, {"MAC", k.MAC}, {"RMAC", k.RMAC}, {"DEK", k.DEK}} {
			sec.add(fmt.Sprintf("session %d %s key", i, v.what), v.b)
		}
	}
	sec.addCardKeys(t, demo.KMCValue, kf, rec.kdds, pans)
	sec.add("other card manager key", otherKMC)
	sec.addCardKeys(t, otherKMC, soft.KeyFile{}, rec.kdds, nil)
	if len(rec.keys) < 10 || sec.len() < 100 {
		t.Fatalf("only %d sessions and %d secrets: the run did not get far", len(rec.keys), sec.len())
	}
	out.check(t, sec)
}

// TestSecretsVirtualCardPrints prints personalized virtual cards, which
// hold their card keys and the secrets stored in them, with every fmt verb
// and through slog: none of the secrets may show.
func TestSecretsVirtualCardPrints(t *testing.T) {
	s := demoSetup(t)
	e, err := s.EMV(emv.ODADDA)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := os.ReadFile(prepareBatch(t, s, 1, e))
	if err != nil {
		t.Fatal(err)
	}
	scp := perso.SCP{Version: 2, Param: 0x55}
	p, _ := newBureau(t, s.Module, scp, perso.LevelCMACCDEC)
	st := vcard.NewStation("S", true, cardConfig(scp, vcard.Fault{}))
	if sum, err := p.Run(context.Background(), bytes.NewReader(batch), st); err != nil || sum.Personalized != 1 {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	sec := newSecretSet()
	sec.addBatch(t, s.Module, batch)
	cfg := must(cardConfig(scp, vcard.Fault{})(0))
	sec.addCardKeys(t, cfg.Keys.KMC, soft.KeyFile{}, [][]byte{cfg.KDD}, nil)
	out := &outputs{}
	out.probe("virtual card", st.Cards()[0])
	out.check(t, sec)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSecretsExampleCommands runs the example commands: prepare and
// personalize with the shipped key file, job and card export, and with a
// forged batch; and the quickstart. What they write (standard output and
// error, batch files, reject and audit logs; not the quickstart's key file,
// which is meant to hold its keys) must hold no key of the key file, no
// card key the batch carries and no static key of the virtual cards.
func TestSecretsExampleCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example commands")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goCmd, "build", "-o", dir+string(filepath.Separator), "./examples/prepare", "./examples/personalize", "./examples/quickstart")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example commands: %v\n%s", err, b)
	}
	out := &outputs{}
	command := func(name string, args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		c := exec.CommandContext(ctx, filepath.Join(dir, name), args...)
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		out.add(name+" "+strings.Join(args, " ")+" stdout", stdout.Bytes())
		out.add(name+" stderr", stderr.Bytes())
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
		}
	}
	file := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out.add(path, b)
		return b
	}

	td := filepath.Join("examples", "testdata")
	keys := filepath.Join(td, "keys.json")
	setup := filepath.Join(td, "personalize.json")
	batch := filepath.Join(dir, "batch.prso")
	command("prepare", "-job", filepath.Join(td, "job.json"), "-keys", keys, "-in", filepath.Join(td, "cards.csv"), "-out", batch)
	file(batch + ".rejects.jsonl")
	good := file(batch)
	command("personalize", "-batch", batch, "-keys", keys, "-setup", setup)
	audit := file(batch + ".audit.jsonl")
	forged := filepath.Join(dir, "forged.prso")
	if err := os.WriteFile(forged, forgeRecord(t, good, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	command("personalize", "-batch", forged, "-keys", keys, "-setup", setup)
	audit = append(audit, file(forged+".audit.jsonl")...)
	sec := newSecretSet()
	sec.addRun(t, keys, good, audit)

	qs := filepath.Join(dir, "quickstart-files")
	command("quickstart", "-cards", "6", "-stations", "2", "-dir", qs)
	for _, f := range []string{"job.json", "personalize.json", "cards.csv", "rejects.jsonl"} {
		file(filepath.Join(qs, f))
	}
	sec.addRun(t, filepath.Join(qs, "keys.json"), file(filepath.Join(qs, "batch.prso")), file(filepath.Join(qs, "audit.jsonl")))
	out.check(t, sec)
}

// addRun adds the secrets of a run of the example commands: every key of
// its key file, every card key its batch carries, the static keys of the
// virtual cards its audit log names (by KDD) and the EMV card keys of its
// cards.
func (s *secretSet) addRun(t testing.TB, keys string, batch, audit []byte) {
	t.Helper()
	m, err := soft.New(soft.NotForProduction())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadKeyFile(keys); err != nil {
		t.Fatal(err)
	}
	var kf soft.KeyFile
	if err := json.Unmarshal(must(os.ReadFile(keys)), &kf); err != nil {
		t.Fatal(err)
	}
	s.addKeyFile(t, kf)
	s.add("card manager key", demo.KMCValue)
	s.addBatch(t, m, batch)
	var kdds [][]byte
	for _, line := range bytes.Split(bytes.TrimSpace(audit), []byte("\n")) {
		var e perso.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if kdd, ok := strings.CutPrefix(e.Card, "KDD "); ok {
			kdds = append(kdds, must(hex.DecodeString(kdd)))
		}
	}
	var pans []string
	for _, rec := range batchRecords(t, batch) {
		c, err := perso.CardDataOf(rec)
		if err != nil {
			t.Fatal(err)
		}
		pans = append(pans, c.PAN)
	}
	if len(kdds) < 2 || len(pans) < 2 {
		t.Fatalf("%d cards personalized, %d records: the commands did not get far", len(kdds), len(pans))
	}
	s.addCardKeys(t, demo.KMCValue, kf, kdds, pans)
}

// TestSecretSetFinds checks the search itself: each form of a leak is
// found, and bytes that only resemble a secret are not.
func TestSecretSetFinds(t *testing.T) {
	key := must(hex.DecodeString("0123456789ABCDEFFEDCBA98765432100F1E2D3C4B5A6978"))
	pin := must(hex.DecodeString("241234FFFFFFFFFF"))
	sec := newSecretSet()
	sec.add("key", key)
	sec.add("PIN block", pin)
	for _, tc := range []struct {
		name string
		out  string
		want []string
	}{
		{"raw", "x" + string(key) + "y", []string{"key raw at offset 1"}},
		{"upper hex", "key=0123456789ABCDEFFEDCBA98765432100F1E2D3C4B5A6978.", []string{"key in upper case hex at offset 4"}},
		{"lower hex", "0123456789abcdeffedcba98765432100f1e2d3c4b5a6978", []string{"key in lower case hex at offset 0"}},
		{"decimal", fmt.Sprint(key), []string{"key in decimal at offset 1"}},
		{"whole PIN block", "PIN 241234ffffffffff", []string{"PIN block in lower case hex at offset 4"}},
		{"8 bytes raw", "ab" + string(key[5:13]) + "cd", []string{"key (bytes 5 to 12) raw at offset 2"}},
		{"8 bytes in hex, odd alignment", "trailer says 56789ABCDEFFEDCBA987", []string{"key (bytes 3 to 10) in hex at offset 14"}},
		{"8 bytes in mixed case hex", "456789abcdefFEDCBA", []string{"key (bytes 2 to 9) in hex at offset 0"}},
		{"7 bytes", "6789ABCDEFFEDC 0123456789ABCD", nil},
		{"padding of the PIN block", "FFFFFFFFFFFFFFFFFFFF", nil},
		{"other bytes", "00112233445566778899AABBCCDDEEFF", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sec.find([]byte(tc.out))
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("find(%q) = %q, want %q", tc.out, got, tc.want)
			}
		})
	}
}
