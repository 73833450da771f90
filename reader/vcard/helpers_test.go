package vcard

import (
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/gp"
	"github.com/cardperso/perso/internal/kdf"
	"github.com/cardperso/perso/internal/rsax"
)

// detRand is a deterministic random stream for reproducible cards and
// hosts.
func detRand(seed uint64) io.Reader {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Test keys. The IMK is the public test key of vectors.md (pyemv).
var (
	testIMK = unhex("0123456789ABCDEFFEDCBA9876543210")
	testKML = unhex("404142434445464748494A4B4C4D4E4F")
	testKMU = unhex("4F4E4D4C4B4A49484746454443424140")

	scp02Keys = Keys{
		ENC: unhex("404142434445464748494A4B4C4D4E4F"),
		MAC: unhex("404142434445464748494A4B4C4D4E4F"),
		DEK: unhex("404142434445464748494A4B4C4D4E4F"),
	}
	scp03Keys = Keys{
		ENC: unhex("404142434445464748494A4B4C4D4E4F"),
		MAC: unhex("505152535455565758595A5B5C5D5E5F"),
		DEK: unhex("606162636465666768696A6B6C6D6E6F"),
	}
)

const (
	testPAN = "4761739001010010"
	testPSN = 1
)

var (
	emvAID   = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}
	purseAID = []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x60, 0x10}
)

var iccKeys sync.Map // bits -> *rsa.PrivateKey

// iccKey returns a deterministic ICC key of the given size, generated once.
func iccKey(t testing.TB, bits int) *rsa.PrivateKey {
	if k, ok := iccKeys.Load(bits); ok {
		return k.(*rsa.PrivateKey)
	}
	k, err := rsax.GenerateKey(detRand(uint64(bits)), bits, 3)
	if err != nil {
		t.Fatalf("rsax.GenerateKey(%d): %v", bits, err)
	}
	iccKeys.Store(bits, k)
	return k
}

// tlv builds BER-TLV in tests.
func tlv(t testing.TB, f func(b *perso.Builder)) []byte {
	var b perso.Builder
	f(&b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatalf("building TLV: %v", err)
	}
	return out
}

// Default data object lists, as the emv profile's defaults.
var (
	testCDOL1 = unhex("9F02069F03069F1A0295055F2A029A039C019F3704") // 29 bytes of data
	testCDOL2 = unhex("8A029F02069F03069F1A0295055F2A029A039C019F3704")
)

// emvData is an EMV application's DGIs for tests, with the keys behind
// them.
type emvData struct {
	dgis  []perso.DGI
	acKey []byte // the ICC master key for AC
	icc   *rsa.PrivateKey
	aip   []byte
	pin   []byte
}

// emvOptions vary the EMV test data.
type emvOptions struct {
	bits int  // ICC key size; 0 for no ICC key (SDA)
	pdol bool // a PDOL of 9F1A02 in the FCI
}

func makeEMV(t testing.TB, o emvOptions) *emvData {
	d := &emvData{aip: []byte{0x38, 0x00}, pin: unhex("241234FFFFFFFFFF")}
	var keys, kcvs []byte
	for i := 0; i < 3; i++ {
		imk := append([]byte(nil), testIMK...)
		imk[0] ^= byte(i) // AC, SMI and SMC masters differ
		k, err := kdf.OptionA(imk, testPAN, testPSN)
		if err != nil {
			t.Fatal(err)
		}
		kcv, _ := crypt.KCV(k)
		keys, kcvs = append(keys, k...), append(kcvs, kcv[:]...)
	}
	d.acKey = keys[:16]
	add := func(tag uint16, v []byte) { d.dgis = append(d.dgis, perso.DGI{Tag: tag, Value: v}) }
	add(0x0101, tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0x57, unhex("4761739001010010D30122011234567890"))
			b.AddPrimitive(0x5F20, []byte("TEST/CARD"))
		})
	}))
	add(0x0102, tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0x5A, unhex("4761739001010010"))
			b.AddPrimitive(0x5F24, unhex("301231"))
			b.AddPrimitive(0x5F34, []byte{testPSN})
			b.AddPrimitive(0x8C, testCDOL1)
			b.AddPrimitive(0x8D, testCDOL2)
			b.AddPrimitive(0x9F4A, []byte{0x82})
		})
	}))
	add(0x0201, tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0x8F, []byte{0x01})
			b.AddPrimitive(0x9F32, []byte{0x03})
		})
	}))
	if o.bits > 0 {
		d.icc = iccKey(t, o.bits)
		add(0x0202, tlv(t, func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) {
				b.AddPrimitive(0x9F47, []byte{0x03})
				b.AddPrimitive(0x9F49, unhex("9F3704"))
			})
		}))
	}
	add(0x9102, tlv(t, func(b *perso.Builder) {
		b.AddPrimitive(0x50, []byte("VISA CREDIT"))
		b.AddPrimitive(0x87, []byte{0x01})
		if o.pdol {
			b.AddPrimitive(0x9F38, unhex("9F1A02"))
		}
		b.AddPrimitive(0x5F2D, []byte("en"))
	}))
	add(0x9104, tlv(t, func(b *perso.Builder) {
		b.AddPrimitive(0x82, d.aip)
		b.AddPrimitive(0x94, unhex("0801020210010200"))
	}))
	add(0x0D01, tlv(t, func(b *perso.Builder) {
		b.AddPrimitive(0x9F14, []byte{0x03})
		b.AddPrimitive(0x9F23, []byte{0x05})
	}))
	add(0x9010, []byte{0x03, 0x03})
	add(0x8000, keys)
	add(0x9000, kcvs)
	add(0x8010, d.pin)
	if d.icc != nil {
		d.dgis = append(d.dgis, crtDGIs(t, d.icc)...)
	}
	return d
}

// crtDGIs returns DGIs 8201..8205 of an ICC key.
func crtDGIs(t testing.TB, k *rsa.PrivateKey) []perso.DGI {
	crt, err := rsax.ExportCRT(k)
	if err != nil {
		t.Fatal(err)
	}
	var out []perso.DGI
	for i, c := range crt.CPS() {
		out = append(out, perso.DGI{Tag: 0x8201 + uint16(i), Value: append([]byte(nil), c...)})
	}
	return out
}

// purseData is a purse's DGIs for tests, with its keys.
type purseData struct {
	dgis     []perso.DGI
	iep      []byte
	kdl, kdu []byte
	icc      *rsa.PrivateKey
}

func makePurse(t testing.TB, balance, maxBalance uint32, bits int) *purseData {
	d := &purseData{iep: unhex("4761739001010010FFFF")}
	var err error
	if d.kdl, err = kdf.EncryptData(testKML, d.iep[2:]); err != nil {
		t.Fatal(err)
	}
	if d.kdu, err = kdf.EncryptData(testKMU, d.iep[2:]); err != nil {
		t.Fatal(err)
	}
	add := func(tag uint16, v []byte) { d.dgis = append(d.dgis, perso.DGI{Tag: tag, Value: v}) }
	add(0x9102, tlv(t, func(b *perso.Builder) {
		b.AddPrimitive(0x50, []byte("VISA CASH"))
		b.AddPrimitive(0x87, []byte{0x01})
	}))
	add(0x0101, tlv(t, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0xDF01, d.iep)
			b.AddPrimitive(0xDF02, []byte{0x01})
			b.AddPrimitive(0xDF03, []byte{0x00, 0x00})
			b.AddPrimitive(0xDF04, []byte{0x09, 0x78})
			b.AddPrimitive(0xDF05, []byte{0x02})
			b.AddPrimitive(0xDF06, binary.BigEndian.AppendUint32(nil, maxBalance))
			b.AddPrimitive(0xDF07, unhex("250101"))
			b.AddPrimitive(0xDF08, unhex("301231"))
			b.AddPrimitive(0xDF09, unhex("301231"))
			b.AddPrimitive(0x8F, []byte{0x01})
		})
	}))
	var rec2 []byte
	if bits > 0 {
		d.icc = iccKey(t, bits)
		rec2 = tlv(t, func(b *perso.Builder) {
			b.AddTLV(0x70, func(b *perso.Builder) { b.AddPrimitive(0x9F47, []byte{0x03}) })
		})
		add(0x0102, rec2)
	}
	add(0x9103, binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(nil, balance), 0))
	kl, _ := crypt.KCV(d.kdl)
	ku, _ := crypt.KCV(d.kdu)
	add(0x8020, append(append([]byte(nil), d.kdl...), d.kdu...))
	add(0x9020, append(kl[:], ku[:]...))
	if d.icc != nil {
		d.dgis = append(d.dgis, crtDGIs(t, d.icc)...)
	}
	return d
}

// newTestCard makes a card with an EMV applet and a purse.
func newTestCard(t testing.TB, cfg Config) *Card {
	if cfg.Keys.ENC == nil && cfg.Keys.KMC == nil {
		cfg.Keys = scp02Keys
		if cfg.SCP.Version == 3 {
			cfg.Keys = scp03Keys
		}
	}
	if cfg.EMV == nil {
		cfg.EMV = [][]byte{emvAID}
	}
	if cfg.Purse == nil {
		cfg.Purse = purseAID
	}
	if cfg.Rand == nil {
		cfg.Rand = detRand(1)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// host is a personalization host for tests: the secure channel's host
// side (internal/gp) over a perso.Conn, with the card's static keys.
type host struct {
	t     testing.TB
	conn  *perso.Conn
	keys  Keys // static ENC, MAC, DEK
	scp   perso.SCP
	hs    *gp.HostSession
	seed  uint64
	block int // the next STORE DATA block number
}

func newHost(t testing.TB, tr perso.Transport, keys Keys, scp perso.SCP) *host {
	if scp == (perso.SCP{}) {
		scp = perso.SCP{Version: 2, Param: 0x55}
	}
	return &host{t: t, conn: perso.NewConn(tr), keys: keys, scp: scp, seed: 100}
}

// adapter makes a gp.HostSession a perso.SecureChannel.
type adapter struct{ hs *gp.HostSession }

func (a adapter) Wrap(c perso.Command) (perso.Command, error) {
	w, err := a.hs.Wrap(gp.Command(c))
	return perso.Command(w), err
}

func (a adapter) Unwrap(r perso.Response) (perso.Response, error) {
	u, err := a.hs.Unwrap(gp.Response(r))
	return perso.Response(u), err
}

// do sends a command and returns the response, failing the test on a
// transport or secure channel error.
func (h *host) do(c perso.Command) perso.Response {
	h.t.Helper()
	r, err := h.conn.Transmit(c)
	if err != nil {
		h.t.Fatalf("%v: %v", c, err)
	}
	return r
}

// expect sends a command and checks its status word.
func (h *host) expect(c perso.Command, sw uint16) []byte {
	h.t.Helper()
	r := h.do(c)
	if r.SW != sw {
		h.t.Fatalf("%v: SW %04X, want %04X", c, r.SW, sw)
	}
	return r.Data
}

func selectCmd(aid []byte) perso.Command {
	return perso.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: aid, Le: 256}
}

// sessionKeys derives the session keys as a security module holding the
// card's static keys would (GP 2.2 E.4.1; Amendment D 6.2.1).
func sessionKeys(t testing.TB, static Keys, hs *gp.HostSession, ir *gp.InitUpdateResponse) gp.SessionKeys {
	t.Helper()
	var k gp.SessionKeys
	var err error
	must := func(b []byte, e error) []byte {
		if e != nil && err == nil {
			err = e
		}
		return b
	}
	if hs.Protocol().Version == 2 {
		k.ENC = must(kdf.SCP02SessionKey(static.ENC, kdf.SCP02ConstENC, ir.Sequence))
		k.MAC = must(kdf.SCP02SessionKey(static.MAC, kdf.SCP02ConstCMAC, ir.Sequence))
		k.RMAC = must(kdf.SCP02SessionKey(static.MAC, kdf.SCP02ConstRMAC, ir.Sequence))
		k.DEK = must(kdf.SCP02SessionKey(static.DEK, kdf.SCP02ConstDEK, ir.Sequence))
	} else {
		ctx, bits := hs.Context(), 8*len(static.ENC)
		k.ENC = must(kdf.SCP03KDF(static.ENC, kdf.SCP03SENC, ctx, bits))
		k.MAC = must(kdf.SCP03KDF(static.MAC, kdf.SCP03SMAC, ctx, bits))
		k.RMAC = must(kdf.SCP03KDF(static.MAC, kdf.SCP03SRMAC, ctx, bits))
		k.DEK = append([]byte(nil), static.DEK...)
	}
	if err != nil {
		t.Fatalf("session keys: %v", err)
	}
	return k
}

// open runs INITIALIZE UPDATE and EXTERNAL AUTHENTICATE at level and
// protects every later command of the Conn.
func (h *host) open(level gp.Level) {
	h.t.Helper()
	h.conn.SetSecureChannel(nil)
	h.seed++
	hs, err := gp.NewHostSession(gp.HostConfig{Protocol: gp.Protocol{Version: h.scp.Version, I: h.scp.Param}, Rand: detRand(h.seed)})
	if err != nil {
		h.t.Fatal(err)
	}
	iu, err := hs.InitializeUpdate()
	if err != nil {
		h.t.Fatal(err)
	}
	data := h.expect(perso.Command(iu), 0x9000)
	ir, err := hs.ReadInitializeUpdate(data)
	if err != nil {
		h.t.Fatalf("INITIALIZE UPDATE response: %v", err)
	}
	keys := sessionKeys(h.t, h.keys, hs, ir)
	defer keys.Zero()
	ea, err := hs.ExternalAuthenticate(keys, level)
	if err != nil {
		h.t.Fatalf("EXTERNAL AUTHENTICATE: %v", err)
	}
	if d := h.expect(perso.Command(ea), 0x9000); len(d) != 0 {
		h.t.Fatalf("EXTERNAL AUTHENTICATE answered %d bytes of data", len(d))
	}
	h.hs = hs
	h.block = 0
	h.conn.SetSecureChannel(adapter{hs})
}

// storeMode says how the host sends secret DGIs.
type storeMode int

const (
	// storeSplit: clear DGIs in commands with P1 b7-b6 = 00, each secret
	// DGI in its own commands with 11 (encrypted).
	storeSplit storeMode = iota
	// storeAppDependent: every command with 01; secret DGIs encrypted.
	storeAppDependent
	// storeAllEncrypted: every DGI encrypted, every command with 11.
	storeAllEncrypted
)

// storeCommands returns the STORE DATA commands for dgis: the DGIs'
// encoding cut into pieces of at most chunk bytes (DGIs continue across
// commands), block numbers from h.block, the last one marked.
func (h *host) storeCommands(dgis []perso.DGI, mode storeMode, chunk int) []perso.Command {
	h.t.Helper()
	type group struct {
		p1   byte
		data []byte
	}
	var groups []group
	for _, d := range dgis {
		secret := perso.SecretDGI(d.Tag)
		v := d.Value
		if secret || mode == storeAllEncrypted {
			var err error
			if v, err = h.hs.EncryptSensitive(d.Value); err != nil {
				h.t.Fatal(err)
			}
		}
		p1 := byte(0x00)
		switch {
		case mode == storeAppDependent:
			p1 = 0x20
		case mode == storeAllEncrypted, secret:
			p1 = 0x60
		}
		enc := perso.AppendDGI(nil, d.Tag, v)
		if n := len(groups); n > 0 && groups[n-1].p1 == p1 && !(mode == storeSplit && secret) {
			groups[n-1].data = append(groups[n-1].data, enc...)
		} else {
			groups = append(groups, group{p1: p1, data: enc})
		}
	}
	var out []perso.Command
	for _, g := range groups {
		for off := 0; off < len(g.data); off += chunk {
			end := min(off+chunk, len(g.data))
			out = append(out, perso.Command{CLA: 0x80, INS: 0xE2, P1: g.p1, P2: byte(h.block), Data: g.data[off:end], Le: perso.LeNone})
			h.block++
		}
	}
	out[len(out)-1].P1 |= 0x80
	return out
}

// personalize selects the application, opens a session at level and
// stores the DGIs, checking every status word.
func (h *host) personalize(aid []byte, dgis []perso.DGI, level gp.Level, mode storeMode, chunk int) {
	h.t.Helper()
	h.conn.SetSecureChannel(nil)
	h.expect(selectCmd(aid), 0x9000)
	h.open(level)
	for _, c := range h.storeCommands(dgis, mode, chunk) {
		h.expect(c, 0x9000)
	}
	h.conn.SetSecureChannel(nil)
}

func (d emvData) String() string { return fmt.Sprintf("EMV data (%d DGIs)", len(d.dgis)) }
