package gp

import "testing"

// BenchmarkStoreData wraps on the host and unwraps on the card the longest
// STORE DATA a protected short APDU carries with C-DEC: 239 bytes of
// plaintext, 240 encrypted, 248 with the C-MAC. At level 33 the card also
// protects a 9000 response and the host checks it.
func BenchmarkStoreData(b *testing.B) {
	for _, bc := range []struct {
		name  string
		p     Protocol
		level Level
	}{
		{"SCP02/C-MAC", SCP02_15, LevelCMAC},
		{"SCP02/C-MAC+C-DEC", SCP02_15, LevelCMAC | LevelCDEC},
		{"SCP03/C-MAC+C-DEC", SCP03_70, LevelCMAC | LevelCDEC},
		{"SCP03/level33", SCP03_70, LevelCMAC | LevelCDEC | LevelRMAC | LevelRENC},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.p, kmcDES, 0)
			h, s := f.open(b, bc.level, HostConfig{})
			c := Command{CLA: 0x80, INS: 0xE2, P1: 0x60, Data: seq(239), Le: leNone}
			ok := Response{SW: 0x9000}
			b.SetBytes(int64(len(c.Data)))
			b.ReportAllocs()
			for b.Loop() {
				w, err := h.Wrap(c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.UnwrapCommand(w); err != nil {
					b.Fatal(err)
				}
				r, err := s.WrapResponse(ok)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := h.Unwrap(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen runs INITIALIZE UPDATE and EXTERNAL AUTHENTICATE on both
// sides, the session keys derived from the static keys on each.
func BenchmarkOpen(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Protocol
	}{{"SCP02", SCP02_15}, {"SCP03", SCP03_70}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.p, kmcDES, 0)
			static := diversify(b, bc.p, kmcDES, testKDD)
			b.ReportAllocs()
			for b.Loop() {
				if bc.p.Version == 2 {
					f.card.cfg.Sequence = 0
				}
				h, _ := NewHostSession(HostConfig{Protocol: bc.p})
				iu, _ := h.InitializeUpdate()
				s, data, err := f.card.InitializeUpdate(iu)
				if err != nil {
					b.Fatal(err)
				}
				r, _ := h.ReadInitializeUpdate(data)
				var keys SessionKeys
				if bc.p.Version == 2 {
					keys, err = scp02SessionKeys(static, r.Sequence)
				} else {
					keys, err = scp03SessionKeys(static, h.Context())
				}
				if err != nil {
					b.Fatal(err)
				}
				ea, err := h.ExternalAuthenticate(keys, LevelCMAC|LevelCDEC)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.ExternalAuthenticate(ea); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
