package gp

import (
	"bytes"
	"errors"
	"testing"
)

// The seed corpora are in testdata/fuzz.

func FuzzParseInitUpdateResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseInitUpdateResponse(b)
		if err != nil {
			return
		}
		if len(r.KDD) != kddLen || len(r.CardCryptogram) != r.Protocol.macLen() {
			t.Fatalf("%X: KDD %d bytes, cryptogram %d bytes", b, len(r.KDD), len(r.CardCryptogram))
		}
		if enc := r.Bytes(); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded %X as %X", b, enc)
		}
	})
}

// openForFuzz returns an open session pair: SCP03 i=70 at level 33 for an
// even selector, SCP02 i=15 at C-MAC+C-DEC for an odd one.
func openForFuzz(t testing.TB, sel byte) (*HostSession, *CardSession) {
	p, level := SCP03_70, LevelCMAC|LevelCDEC|LevelRMAC|LevelRENC
	if sel&1 == 1 {
		p, level = SCP02_15, LevelCMAC|LevelCDEC
	}
	f := newFixture(t, p, kmcDES, 1)
	return f.open(t, level, HostConfig{HostChallenge: make([]byte, 8)})
}

// FuzzCardUnwrap feeds arbitrary commands to an open card session: the
// card must not panic, must refuse anything the host did not build, and
// must be closed after a secure messaging failure.
func FuzzCardUnwrap(f *testing.F) {
	f.Fuzz(func(t *testing.T, sel, cla, ins, p1, p2 byte, data []byte) {
		_, s := openForFuzz(t, sel)
		_, err := s.UnwrapCommand(Command{CLA: cla, INS: ins, P1: p1, P2: p2, Data: data, Le: leNone})
		switch {
		case err == nil && cla&claSM != 0:
			t.Fatalf("forged command %02X%02X%02X%02X %X accepted", cla, ins, p1, p2, data)
		case err == nil:
			t.Fatalf("unprotected command %02X accepted at a C-MAC level", cla)
		case errors.Is(err, ErrSequence):
			if !s.Open() {
				t.Fatal("a command for another channel closed the session")
			}
		case s.Open():
			t.Fatalf("session open after %v", err)
		}
	})
}

// FuzzCardUnwrapTampered changes a genuine protected command: the card
// must accept it only unchanged.
func FuzzCardUnwrapTampered(f *testing.F) {
	f.Fuzz(func(t *testing.T, sel byte, hdr uint32, mask []byte, cut uint8) {
		h, s := openForFuzz(t, sel)
		c := Command{CLA: 0x80, INS: 0xE2, P1: 0x60, P2: 0x02, Data: seq(37), Le: leNone}
		w, err := h.Wrap(c)
		if err != nil {
			t.Fatal(err)
		}
		changed := hdr != 0 || int(cut) != 0 && int(cut) <= len(w.Data)
		w.CLA ^= byte(hdr >> 24)
		w.INS ^= byte(hdr >> 16)
		w.P1 ^= byte(hdr >> 8)
		w.P2 ^= byte(hdr)
		for i := 0; i < len(mask) && i < len(w.Data); i++ {
			w.Data[i] ^= mask[i]
			changed = changed || mask[i] != 0
		}
		if int(cut) <= len(w.Data) {
			w.Data = w.Data[:len(w.Data)-int(cut)]
		}
		got, err := s.UnwrapCommand(w)
		if changed && err == nil {
			t.Fatalf("changed command accepted as %X", encode(got))
		}
		if !changed && (err != nil || !sameCommand(got, c)) {
			t.Fatalf("genuine command refused: %v", err)
		}
	})
}

// FuzzHostUnwrap feeds arbitrary responses to an open host session at level
// 33: no panic, and anything but the card's own response is refused unless
// its status word is an error one, which carries no protection.
func FuzzHostUnwrap(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, sw uint16) {
		h, s := openForFuzz(t, 0)
		w, _ := h.Wrap(Command{CLA: 0x80, INS: 0xCA, P2: 0x66, Le: 256})
		if _, err := s.UnwrapCommand(w); err != nil {
			t.Fatal(err)
		}
		r, err := h.Unwrap(Response{Data: data, SW: sw})
		if err == nil && protectedSW(sw) {
			t.Fatalf("forged response %X %04X accepted as %X", data, sw, r.Data)
		}
	})
}
