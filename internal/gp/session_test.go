package gp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

var (
	kmcDES    = crypttest.MustHex("404142434445464748494A4B4C4D4E4F")
	kmcAES256 = crypttest.MustHex("404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F")
	testKDD   = crypttest.MustHex("00010203040506070809")
	testAID   = crypttest.MustHex("A000000151000000")
)

// fixture is a card with keys diversified from a KMC, and the KMC the
// host's security module holds.
type fixture struct {
	p    Protocol
	kmc  []byte
	card *Card
}

func newFixture(t testing.TB, p Protocol, kmc []byte, seq uint32) *fixture {
	t.Helper()
	c, err := NewCard(CardConfig{
		Protocol: p, KeyVersion: 0x20, Keys: diversify(t, p, kmc, testKDD),
		KDD: testKDD, AID: testAID, Sequence: seq,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{p: p, kmc: kmc, card: c}
}

// open runs INITIALIZE UPDATE and EXTERNAL AUTHENTICATE between a new host
// session and the card, with the host's keys derived from hostKMC.
func (f *fixture) open(t testing.TB, level Level, cfg HostConfig) (*HostSession, *CardSession) {
	t.Helper()
	h, s, err := f.tryOpen(t, level, cfg, f.kmc)
	if err != nil {
		t.Fatal(err)
	}
	return h, s
}

func (f *fixture) tryOpen(t testing.TB, level Level, cfg HostConfig, hostKMC []byte) (*HostSession, *CardSession, error) {
	t.Helper()
	if cfg.Protocol.Version == 0 {
		cfg.Protocol = f.p // SCP02 responses do not announce "i"
	}
	h, err := NewHostSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	iu, err := h.InitializeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	s, data, err := f.card.InitializeUpdate(iu)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.ReadInitializeUpdate(data)
	if err != nil {
		t.Fatal(err)
	}
	keys := hsmSessionKeys(t, h.Protocol(), hostKMC, r, h.Context())
	defer keys.Zero()
	ea, err := h.ExternalAuthenticate(keys, level)
	if err != nil {
		return h, s, err
	}
	return h, s, s.ExternalAuthenticate(ea)
}

// exchange sends c through the channel and answers it with resp: the card
// must see c as the host built it, and the host the response as the card
// built it.
func exchange(t testing.TB, h *HostSession, s *CardSession, c Command, resp Response) {
	t.Helper()
	w, err := h.Wrap(c)
	if err != nil {
		t.Fatalf("Wrap(%v): %v", c, err)
	}
	got, err := s.UnwrapCommand(w)
	if err != nil {
		t.Fatalf("UnwrapCommand(%v): %v", w, err)
	}
	if !sameCommand(got, c) {
		t.Fatalf("card got %X, host sent %X", encode(got), encode(c))
	}
	wr, err := s.WrapResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	back, err := h.Unwrap(wr)
	if err != nil {
		t.Fatalf("Unwrap(%d bytes SW %04X): %v", len(wr.Data), wr.SW, err)
	}
	if !bytes.Equal(back.Data, resp.Data) || back.SW != resp.SW {
		t.Fatalf("host got %X %04X, card sent %X %04X", back.Data, back.SW, resp.Data, resp.SW)
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

type variant struct {
	name string
	p    Protocol
	kmc  []byte
}

func variants() []variant {
	return []variant{
		{"SCP02 i=15", SCP02_15, kmcDES},
		{"SCP02 i=55", SCP02_55, kmcDES},
		{"SCP02 i=05", Protocol{2, 0x05}, kmcDES}, // no ICV encryption
		{"SCP02 i=17", Protocol{2, 0x17}, kmcDES}, // C-MAC on the unmodified APDU
		{"SCP03 i=00 AES-128", SCP03_00, kmcDES},
		{"SCP03 i=10 AES-128", SCP03_10, kmcDES},
		{"SCP03 i=30 AES-192", SCP03_30, kmcAES256[:24]},
		{"SCP03 i=70 AES-256", SCP03_70, kmcAES256},
		{"SCP03 i=71 S16 AES-128", Protocol{3, 0x71}, kmcDES},
	}
}

func allowedLevels(p Protocol) []Level {
	var out []Level
	for l := range 256 {
		if Level(l).check(p) == nil {
			out = append(out, Level(l))
		}
	}
	return out
}

// TestHostCard opens sessions between the host and card sides with each
// protocol variant and each level it allows, and exchanges commands of
// every case and of boundary lengths both ways.
func TestHostCard(t *testing.T) {
	for _, v := range variants() {
		levels := allowedLevels(v.p)
		wantLevels := 3
		if v.p.Version == 3 && v.p.I&scp03RMAC != 0 {
			wantLevels = 5
			if v.p.I&scp03RENC != 0 {
				wantLevels = 6
			}
		}
		if len(levels) != wantLevels {
			t.Fatalf("%v allows levels %v", v.p, levels)
		}
		for _, level := range levels {
			t.Run(fmt.Sprintf("%s/%v", v.name, level), func(t *testing.T) {
				f := newFixture(t, v.p, v.kmc, 7)
				h, s := f.open(t, level, HostConfig{KeyVersion: 0x20})
				if !s.Open() || s.Level() != level || h.Level() != level {
					t.Fatalf("card open %v at %v, host at %v", s.Open(), s.Level(), h.Level())
				}
				max := 247
				if level.has(LevelCDEC) {
					max = 239
				}
				if v.p.s16() {
					max = 239
					if level.has(LevelCDEC) {
						max = 223
					}
				}
				if level == LevelNone {
					max = 255
				}
				for _, n := range []int{0, 1, 7, 8, 15, 16, 17, max} {
					for _, le := range []int{leNone, 256} {
						c := Command{CLA: 0x80, INS: 0xE2, P1: byte(n), P2: 0x01, Data: seq(n), Le: le}
						exchange(t, h, s, c, Response{SW: 0x9000})
						exchange(t, h, s, c, Response{Data: seq(n % 200), SW: 0x9000})
					}
				}
				exchange(t, h, s, Command{CLA: 0x80, INS: 0xCA, P2: 0x66, Le: 256}, Response{Data: seq(33), SW: 0x6310})
				exchange(t, h, s, Command{CLA: 0x00, INS: 0xB0, Le: 256}, Response{SW: 0x6A82})
				if level != LevelNone {
					_, err := h.Wrap(Command{CLA: 0x80, INS: 0xE2, Data: seq(max + 1), Le: leNone})
					if !errors.Is(err, ErrLength) {
						t.Errorf("Wrap of %d bytes: %v, want ErrLength", max+1, err)
					}
				}
				// A refused Wrap changes nothing: the session goes on.
				exchange(t, h, s, Command{CLA: 0x80, INS: 0xE2, P1: 0x80, Data: seq(20), Le: leNone}, Response{SW: 0x9000})
				secret := seq(24)
				enc, err := h.EncryptSensitive(secret)
				if err != nil {
					t.Fatal(err)
				}
				dec, err := s.DecryptSensitive(enc)
				if err != nil || !bytes.HasPrefix(dec, secret) || len(dec)%8 != 0 {
					t.Errorf("sensitive data %X came back as %X, %v", secret, dec, err)
				}
			})
		}
	}
}

func TestLogicalChannel(t *testing.T) {
	for _, v := range []variant{{"SCP02", SCP02_15, kmcDES}, {"SCP03", SCP03_70, kmcDES}} {
		t.Run(v.name, func(t *testing.T) {
			f := newFixture(t, v.p, v.kmc, 0)
			h, err := NewHostSession(HostConfig{Channel: 2})
			if err != nil {
				t.Fatal(err)
			}
			iu, _ := h.InitializeUpdate()
			if iu.CLA != 0x82 {
				t.Fatalf("INITIALIZE UPDATE CLA %02X", iu.CLA)
			}
			s, data, err := f.card.InitializeUpdate(iu)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := h.ReadInitializeUpdate(data)
			ea, err := h.ExternalAuthenticate(hsmSessionKeys(t, h.Protocol(), f.kmc, r, h.Context()), LevelCMAC|LevelCDEC)
			if err != nil || ea.CLA != 0x86 {
				t.Fatalf("EXTERNAL AUTHENTICATE CLA %02X, %v", ea.CLA, err)
			}
			if err := s.ExternalAuthenticate(ea); err != nil {
				t.Fatal(err)
			}
			c := Command{CLA: 0x82, INS: 0xE2, Data: seq(30), Le: leNone}
			w, _ := h.Wrap(c)
			if w.CLA != 0x86 {
				t.Errorf("wrapped CLA %02X, want 86", w.CLA)
			}
			if got, err := s.UnwrapCommand(w); err != nil || !sameCommand(got, c) {
				t.Errorf("UnwrapCommand = %v, %v", got, err)
			}
			// A command for another channel is not the session's: refused,
			// and the session stays open.
			if _, err := s.UnwrapCommand(Command{CLA: 0x80, INS: 0xCA, Le: 256}); !errors.Is(err, ErrSequence) || !s.Open() {
				t.Errorf("command on channel 0: %v, open %v", err, s.Open())
			}
		})
	}
}

// protectedPair opens a session at the strongest level each protocol
// allows, for the failure tests.
func protectedPairs(t *testing.T) map[string]func() (*fixture, *HostSession, *CardSession) {
	mk := func(p Protocol, level Level) func() (*fixture, *HostSession, *CardSession) {
		return func() (*fixture, *HostSession, *CardSession) {
			f := newFixture(t, p, kmcDES, 3)
			h, s := f.open(t, level, HostConfig{})
			return f, h, s
		}
	}
	return map[string]func() (*fixture, *HostSession, *CardSession){
		"SCP02 i=15 C-MAC+C-DEC": mk(SCP02_15, LevelCMAC|LevelCDEC),
		"SCP02 i=55 C-MAC":       mk(SCP02_55, LevelCMAC),
		"SCP03 i=70 level 33":    mk(SCP03_70, LevelCMAC|LevelCDEC|LevelRMAC|LevelRENC),
		"SCP03 i=00 C-MAC":       mk(SCP03_00, LevelCMAC),
	}
}

// expectClosed checks that err is a secure messaging failure with status
// 6982 and that the card session is closed for good.
func expectClosed(t *testing.T, h *HostSession, s *CardSession, err error) {
	t.Helper()
	if !errors.Is(err, ErrSecureMessaging) || StatusWord(err) != 0x6982 {
		t.Fatalf("err = %v (SW %04X), want ErrSecureMessaging (6982)", err, StatusWord(err))
	}
	if s.Open() {
		t.Fatal("card session still open after a failed check")
	}
	w, err := h.Wrap(Command{CLA: 0x80, INS: 0xE2, Data: seq(4), Le: leNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnwrapCommand(w); !errors.Is(err, ErrClosed) || StatusWord(err) != 0x6982 {
		t.Fatalf("command after the failure: %v, want ErrClosed", err)
	}
}

func TestTamperedCommand(t *testing.T) {
	store := Command{CLA: 0x80, INS: 0xE2, P1: 0x00, P2: 0x01, Data: seq(40), Le: leNone}
	tampers := map[string]func(Command) Command{
		"C-MAC":     func(c Command) Command { c.Data[len(c.Data)-1] ^= 0x01; return c },
		"data":      func(c Command) Command { c.Data[0] ^= 0x80; return c },
		"P1":        func(c Command) Command { c.P1 ^= 0x80; return c },
		"INS":       func(c Command) Command { c.INS = 0xE8; return c },
		"CLA":       func(c Command) Command { c.CLA ^= 0x10; return c },
		"truncated": func(c Command) Command { c.Data = c.Data[:len(c.Data)-1]; return c },
		"no MAC":    func(c Command) Command { c.Data = c.Data[:3]; return c },
		"no SM":     func(c Command) Command { c.CLA &^= claSM; return c },
		"extended":  func(c Command) Command { c.Data = append(c.Data, 0); return c },
		"too long":  func(c Command) Command { c.Data = append(make([]byte, 256), c.Data...); return c },
	}
	for name, open := range protectedPairs(t) {
		for tname, tamper := range tampers {
			t.Run(name+"/"+tname, func(t *testing.T) {
				_, h, s := open()
				exchange(t, h, s, store, Response{SW: 0x9000})
				w, err := h.Wrap(store)
				if err != nil {
					t.Fatal(err)
				}
				w.Data = bytes.Clone(w.Data)
				_, err = s.UnwrapCommand(tamper(w))
				expectClosed(t, h, s, err)
			})
		}
	}
}

func TestReplayedCommand(t *testing.T) {
	for name, open := range protectedPairs(t) {
		t.Run(name, func(t *testing.T) {
			_, h, s := open()
			c := Command{CLA: 0x80, INS: 0xE2, P1: 0x00, Data: seq(16), Le: leNone}
			w, _ := h.Wrap(c)
			if _, err := s.UnwrapCommand(w); err != nil {
				t.Fatal(err)
			}
			_, err := s.UnwrapCommand(w)
			expectClosed(t, h, s, err)
		})
	}
}

func TestReorderedCommands(t *testing.T) {
	for name, open := range protectedPairs(t) {
		t.Run(name, func(t *testing.T) {
			_, h, s := open()
			w1, _ := h.Wrap(Command{CLA: 0x80, INS: 0xE2, P1: 0x00, Data: seq(16), Le: leNone})
			w2, _ := h.Wrap(Command{CLA: 0x80, INS: 0xE2, P1: 0x80, Data: seq(16), Le: leNone})
			_, err := s.UnwrapCommand(w2)
			if !errors.Is(err, ErrSecureMessaging) || s.Open() {
				t.Fatalf("second command first: %v", err)
			}
			if _, err := s.UnwrapCommand(w1); !errors.Is(err, ErrClosed) {
				t.Fatalf("first command after the failure: %v", err)
			}
		})
	}
}

func TestTamperedResponse(t *testing.T) {
	f := newFixture(t, SCP03_70, kmcDES, 0)
	for _, level := range []Level{LevelCMAC | LevelRMAC, LevelCMAC | LevelCDEC | LevelRMAC | LevelRENC} {
		for name, tamper := range map[string]func(Response) Response{
			"R-MAC":     func(r Response) Response { r.Data[len(r.Data)-1] ^= 1; return r },
			"data":      func(r Response) Response { r.Data[0] ^= 1; return r },
			"SW":        func(r Response) Response { r.SW = 0x6310; return r },
			"truncated": func(r Response) Response { r.Data = r.Data[:5]; return r },
			"stripped":  func(r Response) Response { r.Data = nil; return r },
		} {
			t.Run(fmt.Sprintf("%v/%s", level, name), func(t *testing.T) {
				h, s := f.open(t, level, HostConfig{})
				w, _ := h.Wrap(Command{CLA: 0x80, INS: 0xCA, P2: 0x66, Le: 256})
				if _, err := s.UnwrapCommand(w); err != nil {
					t.Fatal(err)
				}
				r, _ := s.WrapResponse(Response{Data: seq(20), SW: 0x9000})
				r.Data = bytes.Clone(r.Data)
				_, err := h.Unwrap(tamper(r))
				if !errors.Is(err, ErrSecureMessaging) {
					t.Fatalf("Unwrap = %v, want ErrSecureMessaging", err)
				}
				if _, err := h.Wrap(Command{CLA: 0x80, INS: 0xCA, Le: 256}); !errors.Is(err, ErrClosed) {
					t.Fatalf("Wrap after a bad response: %v, want ErrClosed", err)
				}
			})
		}
	}
}

// TestWrongStaticKey opens sessions where host and card disagree on the
// keys: the host stops at the card cryptogram, and a card given a host
// cryptogram from other keys refuses it.
func TestWrongStaticKey(t *testing.T) {
	otherDES := crypttest.MustHex("505152535455565758595A5B5C5D5E5F")
	for _, v := range []variant{{"SCP02", SCP02_15, kmcDES}, {"SCP03", SCP03_00, kmcDES}} {
		t.Run(v.name+"/host", func(t *testing.T) {
			f := newFixture(t, v.p, v.kmc, 5)
			h, s, err := f.tryOpen(t, LevelCMAC, HostConfig{}, otherDES)
			if !errors.Is(err, ErrCardCryptogram) {
				t.Fatalf("err = %v, want ErrCardCryptogram", err)
			}
			if _, err := h.Wrap(Command{CLA: 0x80, INS: 0xE2, Le: leNone}); !errors.Is(err, ErrClosed) {
				t.Errorf("Wrap after a bad card cryptogram: %v, want ErrClosed", err)
			}
			if _, err := h.ExternalAuthenticate(SessionKeys{}, LevelCMAC); !errors.Is(err, ErrClosed) {
				t.Errorf("retry: %v, want ErrClosed", err)
			}
			if s.Open() {
				t.Error("card session open without EXTERNAL AUTHENTICATE")
			}
			if f.card.Sequence() != 5 && v.p.Version == 2 {
				t.Errorf("SCP02 counter moved to %X without a session", f.card.Sequence())
			}
		})
		t.Run(v.name+"/card", func(t *testing.T) {
			// Two cards with the same challenges but other keys: the host
			// authenticates against the impostor, then presents its
			// EXTERNAL AUTHENTICATE to the genuine card.
			challenge := seq(16)
			mkCard := func(kmc []byte) *Card {
				c, err := NewCard(CardConfig{Protocol: v.p, KeyVersion: 1, Keys: diversify(t, v.p, kmc, testKDD),
					KDD: testKDD, AID: testAID, Rand: bytes.NewReader(challenge)})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			genuine, impostor := mkCard(v.kmc), mkCard(otherDES)
			h, _ := NewHostSession(HostConfig{})
			iu, _ := h.InitializeUpdate()
			s, _, err := genuine.InitializeUpdate(iu)
			if err != nil {
				t.Fatal(err)
			}
			_, data, _ := impostor.InitializeUpdate(iu)
			r, _ := h.ReadInitializeUpdate(data)
			ea, err := h.ExternalAuthenticate(hsmSessionKeys(t, h.Protocol(), otherDES, r, h.Context()), LevelCMAC)
			if err != nil {
				t.Fatal(err)
			}
			err = s.ExternalAuthenticate(ea)
			if !errors.Is(err, ErrHostCryptogram) || StatusWord(err) != 0x6300 || s.Open() {
				t.Fatalf("err = %v (SW %04X), open %v; want ErrHostCryptogram (6300), closed", err, StatusWord(err), s.Open())
			}
			if err := s.ExternalAuthenticate(ea); !errors.Is(err, ErrClosed) {
				t.Errorf("second try: %v, want ErrClosed", err)
			}
			if genuine.Sequence() != 0 {
				t.Errorf("counter moved to %X after a failed authentication", genuine.Sequence())
			}
		})
	}
}

func TestExternalAuthenticateChecks(t *testing.T) {
	f := newFixture(t, SCP03_70, kmcDES, 0)
	tests := []struct {
		name   string
		change func(Command) Command
		err    error
		sw     uint16
	}{
		{"C-MAC", func(c Command) Command { c.Data[len(c.Data)-1] ^= 1; return c }, ErrSecureMessaging, 0x6982},
		{"host cryptogram", func(c Command) Command { c.Data[0] ^= 1; return c }, ErrHostCryptogram, 0x6300},
		{"level", func(c Command) Command { c.P1 = 0x13; return c }, ErrSecureMessaging, 0x6982}, // MACed header
		{"bad level", func(c Command) Command { c.P1 = 0x07; return c }, ErrLevel, 0x6A86},
		{"length", func(c Command) Command { c.Data = c.Data[:15]; return c }, ErrLength, 0x6700},
		{"CLA", func(c Command) Command { c.CLA = 0x80; return c }, ErrUnsupported, 0x6E00},
		{"P2", func(c Command) Command { c.P2 = 1; return c }, ErrUnsupported, 0x6A86},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := NewHostSession(HostConfig{})
			iu, _ := h.InitializeUpdate()
			s, data, _ := f.card.InitializeUpdate(iu)
			r, _ := h.ReadInitializeUpdate(data)
			ea, err := h.ExternalAuthenticate(hsmSessionKeys(t, h.Protocol(), f.kmc, r, h.Context()), LevelCMAC|LevelRMAC)
			if err != nil {
				t.Fatal(err)
			}
			ea.Data = bytes.Clone(ea.Data)
			err = s.ExternalAuthenticate(tt.change(ea))
			if !errors.Is(err, tt.err) || StatusWord(err) != tt.sw || s.Open() {
				t.Fatalf("err = %v (SW %04X), open %v; want %v (%04X)", err, StatusWord(err), s.Open(), tt.err, tt.sw)
			}
		})
	}
}

func TestSequenceErrors(t *testing.T) {
	f := newFixture(t, SCP02_15, kmcDES, 0)
	h, _ := NewHostSession(HostConfig{})
	if _, err := h.ReadInitializeUpdate(make([]byte, 28)); !errors.Is(err, ErrSequence) {
		t.Errorf("response before INITIALIZE UPDATE: %v", err)
	}
	if _, err := h.Wrap(Command{CLA: 0x80, Le: leNone}); !errors.Is(err, ErrSequence) {
		t.Errorf("Wrap before authentication: %v", err)
	}
	if _, err := h.ExternalAuthenticate(SessionKeys{}, LevelCMAC); !errors.Is(err, ErrSequence) {
		t.Errorf("EXTERNAL AUTHENTICATE first: %v", err)
	}
	iu, _ := h.InitializeUpdate()
	if _, err := h.InitializeUpdate(); !errors.Is(err, ErrSequence) {
		t.Errorf("second INITIALIZE UPDATE: %v", err)
	}
	s, data, _ := f.card.InitializeUpdate(iu)
	if _, err := s.UnwrapCommand(Command{CLA: 0x84, Data: seq(8), Le: leNone}); !errors.Is(err, ErrSequence) || StatusWord(err) != 0x6985 {
		t.Errorf("command before EXTERNAL AUTHENTICATE: %v", err)
	}
	if _, err := s.DecryptSensitive(seq(16)); !errors.Is(err, ErrSequence) {
		t.Errorf("DecryptSensitive before EXTERNAL AUTHENTICATE: %v", err)
	}
	r, _ := h.ReadInitializeUpdate(data)
	keys := hsmSessionKeys(t, h.Protocol(), f.kmc, r, nil)
	if _, err := h.ExternalAuthenticate(keys, LevelCMAC|LevelRMAC); !errors.Is(err, ErrLevel) {
		t.Errorf("R-MAC under SCP02: %v", err)
	}
	if _, err := h.ExternalAuthenticate(SessionKeys{ENC: keys.ENC, MAC: keys.MAC[:8]}, LevelCMAC); !errors.Is(err, ErrKeyLength) {
		t.Errorf("short C-MAC key: %v", err)
	}
	ea, err := h.ExternalAuthenticate(keys, LevelCMAC) // the refusals above left the session usable
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ExternalAuthenticate(ea); err != nil {
		t.Fatal(err)
	}
	if err := s.ExternalAuthenticate(ea); !errors.Is(err, ErrSequence) {
		t.Errorf("second EXTERNAL AUTHENTICATE: %v", err)
	}
	h.Close()
	if _, err := h.Wrap(Command{CLA: 0x80, Le: leNone}); !errors.Is(err, ErrClosed) {
		t.Errorf("Wrap after Close: %v", err)
	}
	s.Close()
	if _, err := s.UnwrapCommand(Command{CLA: 0x84, Le: leNone}); !errors.Is(err, ErrClosed) {
		t.Errorf("UnwrapCommand after Close: %v", err)
	}
}

func TestLevelNone(t *testing.T) {
	f := newFixture(t, SCP03_10, kmcDES, 0)
	h, s := f.open(t, LevelNone, HostConfig{})
	c := Command{CLA: 0x80, INS: 0xE2, Data: seq(10), Le: leNone}
	w, err := h.Wrap(c)
	if err != nil || !sameCommand(w, c) {
		t.Fatalf("Wrap at level none = %v, %v", w, err)
	}
	if got, err := s.UnwrapCommand(w); err != nil || !sameCommand(got, c) {
		t.Fatalf("UnwrapCommand at level none = %v, %v", got, err)
	}
	_, err = s.UnwrapCommand(Command{CLA: 0x84, INS: 0xE2, Data: seq(10), Le: leNone})
	if !errors.Is(err, ErrSecureMessaging) || s.Open() {
		t.Fatalf("secure messaging at level none: %v", err)
	}
}

func TestCardInitializeUpdateErrors(t *testing.T) {
	f := newFixture(t, SCP02_15, kmcDES, 0)
	hc := seq(8)
	tests := []struct {
		name string
		cmd  Command
		err  error
		sw   uint16
	}{
		{"key version", Command{CLA: 0x80, INS: 0x50, P1: 0x21, Data: hc, Le: 256}, ErrKeyVersion, 0x6A88},
		{"key identifier", Command{CLA: 0x80, INS: 0x50, P2: 0x01, Data: hc, Le: 256}, ErrKeyVersion, 0x6A88},
		{"challenge length", Command{CLA: 0x80, INS: 0x50, Data: seq(7), Le: 256}, ErrLength, 0x6700},
		{"CLA", Command{CLA: 0x00, INS: 0x50, Data: hc, Le: 256}, ErrUnsupported, 0x6E00},
		{"secure messaging CLA", Command{CLA: 0x84, INS: 0x50, Data: hc, Le: 256}, ErrUnsupported, 0x6E00},
		{"INS", Command{CLA: 0x80, INS: 0x82, Data: hc, Le: 256}, ErrUnsupported, 0x6A86},
	}
	for _, tt := range tests {
		_, _, err := f.card.InitializeUpdate(tt.cmd)
		if !errors.Is(err, tt.err) || StatusWord(err) != tt.sw {
			t.Errorf("%s: err = %v (SW %04X), want %v (%04X)", tt.name, err, StatusWord(err), tt.err, tt.sw)
		}
	}
	if _, _, err := f.card.InitializeUpdate(Command{CLA: 0x80, INS: 0x50, P1: 0x20, Data: hc, Le: 256}); err != nil {
		t.Errorf("key version 20: %v", err)
	}
}

func TestSequenceCounter(t *testing.T) {
	t.Run("SCP02 counts opened sessions", func(t *testing.T) {
		f := newFixture(t, SCP02_55, kmcDES, 0x0010)
		h, _ := NewHostSession(HostConfig{})
		iu, _ := h.InitializeUpdate()
		_, first, _ := f.card.InitializeUpdate(iu)
		_, again, _ := f.card.InitializeUpdate(iu)
		if f.card.Sequence() != 0x10 || !bytes.Equal(first, again) {
			t.Fatalf("counter %X after two INITIALIZE UPDATEs; responses %X / %X", f.card.Sequence(), first, again)
		}
		f.open(t, LevelCMAC, HostConfig{})
		if f.card.Sequence() != 0x11 {
			t.Fatalf("counter %X after a session, want 11", f.card.Sequence())
		}
	})
	t.Run("SCP03 counts challenges", func(t *testing.T) {
		f := newFixture(t, SCP03_70, kmcDES, 0x0010)
		h, _ := NewHostSession(HostConfig{})
		iu, _ := h.InitializeUpdate()
		_, first, _ := f.card.InitializeUpdate(iu)
		_, second, _ := f.card.InitializeUpdate(iu)
		r1, _ := ParseInitUpdateResponse(first)
		r2, _ := ParseInitUpdateResponse(second)
		if f.card.Sequence() != 0x12 || !bytes.Equal(r1.Sequence, []byte{0, 0, 0x11}) || bytes.Equal(r1.CardChallenge, r2.CardChallenge) {
			t.Fatalf("counter %X, response counters %X %X, challenges %X %X", f.card.Sequence(), r1.Sequence, r2.Sequence, r1.CardChallenge, r2.CardChallenge)
		}
	})
	for _, tt := range []struct {
		p   Protocol
		max uint32
	}{{SCP02_15, 0xFFFF}, {SCP03_10, 0xFFFFFF}} {
		t.Run(fmt.Sprintf("%v exhausted", tt.p), func(t *testing.T) {
			f := newFixture(t, tt.p, kmcDES, tt.max)
			_, _, err := f.card.InitializeUpdate(Command{CLA: 0x80, INS: 0x50, Data: seq(8), Le: 256})
			if !errors.Is(err, ErrCounter) || StatusWord(err) != 0x6985 {
				t.Fatalf("err = %v", err)
			}
			if _, err := NewCard(CardConfig{Protocol: tt.p, Keys: diversify(t, tt.p, kmcDES, testKDD), KDD: testKDD, AID: testAID, Sequence: tt.max + 1}); !errors.Is(err, ErrCounter) {
				t.Fatalf("NewCard with counter %X: %v", tt.max+1, err)
			}
		})
	}
}

func TestHostReadInitializeUpdate(t *testing.T) {
	scp03 := "00010203040506070809 30 03 70 3EB51047495B249F 66C484C1D2EF1948 000002"
	tests := []struct {
		name string
		cfg  HostConfig
		resp string
		want Protocol
		err  error
	}{
		{"SCP02 default i", HostConfig{}, "00000000000000000000 70 02 0001 6B4524ABEE7C F32EA3838BC148F3", SCP02_15, nil},
		{"SCP02 i=55", HostConfig{Protocol: SCP02_55}, "00000000000000000000 70 02 0001 6B4524ABEE7C F32EA3838BC148F3", SCP02_55, nil},
		{"SCP03 announced", HostConfig{}, scp03, SCP03_70, nil},
		{"SCP03 expected", HostConfig{Protocol: SCP03_70}, scp03, SCP03_70, nil},
		{"SCP03 other i", HostConfig{Protocol: SCP03_10}, scp03, Protocol{}, ErrUnsupported},
		{"SCP02 expected", HostConfig{Protocol: SCP02_15}, scp03, Protocol{}, ErrUnsupported},
		{"S16 response to S8 challenge", HostConfig{}, "00010203040506070809 30 03 01" + strings.Repeat("AB", 32), Protocol{}, ErrLength},
		{"garbage", HostConfig{}, "0001", Protocol{}, ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHostSession(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			h.InitializeUpdate()
			_, err = h.ReadInitializeUpdate(crypttest.MustHex(tt.resp))
			if !errors.Is(err, tt.err) || (tt.err == nil && h.Protocol() != tt.want) {
				t.Fatalf("err = %v, protocol %v; want %v, %v", err, h.Protocol(), tt.err, tt.want)
			}
		})
	}
}

func TestNewHostSessionErrors(t *testing.T) {
	for _, cfg := range []HostConfig{
		{Channel: 4},
		{Protocol: Protocol{2, 0x14}},
		{Protocol: Protocol{1, 0x05}},
		{HostChallenge: seq(7)},
		{Protocol: Protocol{3, 0x71}, HostChallenge: seq(8)},
		{Rand: bytes.NewReader(seq(3))},
	} {
		if _, err := NewHostSession(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestNewCardErrors(t *testing.T) {
	good := CardConfig{Protocol: SCP02_15, Keys: diversify(t, SCP02_15, kmcDES, testKDD), KDD: testKDD, AID: testAID}
	for name, change := range map[string]func(*CardConfig){
		"protocol": func(c *CardConfig) { c.Protocol = Protocol{2, 0x0D} },
		"key":      func(c *CardConfig) { c.Keys.MAC = c.Keys.MAC[:8] },
		"no DEK":   func(c *CardConfig) { c.Keys.DEK = nil },
		"AES keys": func(c *CardConfig) { c.Protocol = SCP03_00; c.Keys.ENC = kmcAES256[:24] },
		"KDD":      func(c *CardConfig) { c.KDD = testKDD[:9] },
		"AID":      func(c *CardConfig) { c.AID = testAID[:4] },
	} {
		cfg := good
		cfg.Keys = Keys{ENC: good.Keys.ENC, MAC: good.Keys.MAC, DEK: good.Keys.DEK}
		change(&cfg)
		if _, err := NewCard(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewCard(good); err != nil {
		t.Error(err)
	}
}

func TestProtocolCheck(t *testing.T) {
	tests := []struct {
		p  Protocol
		ok bool
	}{
		{SCP02_15, true}, {SCP02_55, true}, {Protocol{2, 0x05}, true}, {Protocol{2, 0x17}, true}, {Protocol{2, 0x35}, true},
		{Protocol{2, 0x14}, false}, {Protocol{2, 0x11}, false}, {Protocol{2, 0x1D}, false}, {Protocol{2, 0x95}, false},
		{SCP03_00, true}, {SCP03_10, true}, {SCP03_30, true}, {SCP03_70, true}, {Protocol{3, 0x71}, true}, {Protocol{3, 0x20}, true},
		{Protocol{3, 0x40}, false}, {Protocol{3, 0x02}, false}, {Protocol{3, 0x80}, false}, {Protocol{1, 0x05}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Check(); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrUnsupported)) {
			t.Errorf("%v: Check = %v, want ok %v", tt.p, err, tt.ok)
		}
	}
}

func TestLevelString(t *testing.T) {
	got := []string{LevelNone.String(), LevelCMAC.String(), (LevelCMAC | LevelCDEC).String(),
		(LevelCMAC | LevelRMAC).String(), (LevelCMAC | LevelCDEC | LevelRMAC | LevelRENC).String(), Level(0x81).String()}
	want := []string{"none", "C-MAC", "C-MAC+C-DEC", "C-MAC+R-MAC", "C-MAC+C-DEC+R-MAC+R-ENC", "C-MAC+0x80"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStatusWord(t *testing.T) {
	tests := []struct {
		err error
		sw  uint16
	}{
		{nil, 0x9000},
		{ErrHostCryptogram, 0x6300},
		{fmt.Errorf("x: %w", ErrSecureMessaging), 0x6982},
		{ErrClosed, 0x6982},
		{ErrSequence, 0x6985},
		{ErrCounter, 0x6985},
		{ErrKeyVersion, 0x6A88},
		{ErrLevel, 0x6A86},
		{ErrUnsupported, 0x6A86},
		{checkCLA(0x84), 0x6E00},
		{ErrLength, 0x6700},
		{ErrCardCryptogram, 0x6F00},
		{errors.New("other"), 0x6F00},
	}
	for _, tt := range tests {
		if got := StatusWord(tt.err); got != tt.sw {
			t.Errorf("StatusWord(%v) = %04X, want %04X", tt.err, got, tt.sw)
		}
	}
}

// TestRedaction checks that no type holding keys prints them, under any
// verb or through slog.
func TestRedaction(t *testing.T) {
	f := newFixture(t, SCP03_70, kmcDES, 0)
	h, s := f.open(t, LevelCMAC|LevelCDEC, HostConfig{})
	a5 := func() []byte { return bytes.Repeat([]byte{0xA5}, 16) }
	sk := SessionKeys{ENC: a5(), MAC: a5(), RMAC: a5(), DEK: a5()}
	k := Keys{ENC: a5(), MAC: a5(), DEK: a5()}
	static := diversify(t, SCP03_70, kmcDES, testKDD)
	secrets := []string{"A5A5", "a5a5", "165 165"}
	for _, key := range [][]byte{static.ENC, static.MAC, static.DEK, h.dek} {
		secrets = append(secrets, fmt.Sprintf("%X", key[:4]), fmt.Sprintf("%x", key[:4]), fmt.Sprint(key[:2])[1:7])
	}
	for _, v := range []fmt.Stringer{sk, &sk, k, &k, h, s, f.card} {
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			got := fmt.Sprintf(verb, v)
			out = append(out, got)
			if verb != "%q" && verb != "%x" && verb != "%X" && got != v.String() {
				t.Errorf("%T: %s gives %q, not String %q", v, verb, got, v.String())
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "v", v)
		out = append(out, buf.String())
		for _, o := range out {
			for _, secret := range secrets {
				if strings.Contains(o, secret) {
					t.Errorf("%T prints key bytes (%s): %s", v, secret, o)
				}
			}
		}
	}
}

func TestSensitiveData(t *testing.T) {
	des, aes := kmcDES, kmcAES256
	tests := []struct {
		v      byte
		dek    []byte
		in     []byte
		outLen int
	}{
		{2, des, seq(16), 16}, {2, des, seq(5), 8}, {2, des, seq(8), 8}, {2, des, seq(9), 16},
		{3, aes[:16], seq(16), 16}, {3, aes, seq(31), 32}, {3, aes[:24], seq(1), 16},
	}
	for _, tt := range tests {
		enc, err := EncryptSensitive(tt.v, tt.dek, tt.in)
		if err != nil || len(enc) != tt.outLen {
			t.Errorf("SCP%02X %d bytes: %d bytes, %v", tt.v, len(tt.in), len(enc), err)
			continue
		}
		dec, err := DecryptSensitive(tt.v, tt.dek, enc)
		if err != nil || !bytes.HasPrefix(dec, tt.in) {
			t.Errorf("SCP%02X %d bytes: decrypted %X, %v", tt.v, len(tt.in), dec, err)
		}
		if len(tt.in)%len(enc) != 0 && dec[len(tt.in)] != 0x80 {
			t.Errorf("SCP%02X %d bytes: padding %X", tt.v, len(tt.in), dec[len(tt.in):])
		}
	}
	for _, bad := range []struct {
		v       byte
		dek, in []byte
		decrypt bool
	}{
		{2, nil, seq(8), false}, {2, des[:8], seq(8), false}, {3, des[:15], seq(16), false}, {2, des, nil, false},
		{2, des, seq(9), true}, {3, aes, seq(8), true},
	} {
		var err error
		if bad.decrypt {
			_, err = DecryptSensitive(bad.v, bad.dek, bad.in)
		} else {
			_, err = EncryptSensitive(bad.v, bad.dek, bad.in)
		}
		if err == nil {
			t.Errorf("SCP%02X DEK %d bytes, data %d bytes: no error", bad.v, len(bad.dek), len(bad.in))
		}
	}
}
