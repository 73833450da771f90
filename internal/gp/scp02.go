package gp

import (
	"crypto/cipher"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// scp02CardChallengeLen is the length of the SCP02 card challenge; with the
// 2-byte sequence counter it fills the 8 bytes the host challenge matches
// (GP Card Specification 2.2 E.5.1).
const scp02CardChallengeLen = 6

// scp02 is the secure messaging state of one SCP02 session (GP Card
// Specification 2.2 Appendix E), the same on both sides: the session keys,
// the ICV (the last C-MAC, encrypted when "i" says so) and the level.
type scp02 struct {
	p     Protocol
	keys  SessionKeys
	enc   cipher.Block // 3DES under S-ENC: cryptograms and C-DEC
	cmac  *crypt.DES2  // C-MAC, its key schedules made once per session
	icvK  cipher.Block // single DES under the first half of C-MAC: ICV encryption
	icv   [8]byte
	level Level
}

func newSCP02(p Protocol, keys SessionKeys) (*scp02, error) {
	if keys.ENC == nil || keys.MAC == nil {
		return nil, fmt.Errorf("%w: SCP02 needs S-ENC and C-MAC", ErrKeyLength)
	}
	if err := checkKeyLens(2, []string{"S-ENC", "C-MAC", "R-MAC", "DEK"}, keys.ENC, keys.MAC, keys.RMAC, keys.DEK); err != nil {
		return nil, err
	}
	s := &scp02{p: p, keys: keys.clone(), level: LevelCMAC}
	var err error
	if s.enc, err = crypt.NewDES3(s.keys.ENC); err != nil {
		return nil, err
	}
	if s.cmac, err = crypt.NewDES2(s.keys.MAC); err != nil {
		return nil, err
	}
	if s.icvK, err = crypt.NewDES(s.keys.MAC[:8]); err != nil {
		return nil, err
	}
	return s, nil
}

// scp02SessionKeys derives the session keys from the card's static keys and
// the sequence counter (GP Card Specification 2.2 E.4.1): S-ENC from ENC,
// C-MAC and R-MAC from MAC, and the session DEK from DEK.
func scp02SessionKeys(static Keys, seq []byte) (SessionKeys, error) {
	var k SessionKeys
	var err error
	for _, d := range []struct {
		out      *[]byte
		key      []byte
		constant uint16
	}{
		{&k.ENC, static.ENC, kdf.SCP02ConstENC},
		{&k.MAC, static.MAC, kdf.SCP02ConstCMAC},
		{&k.RMAC, static.MAC, kdf.SCP02ConstRMAC},
		{&k.DEK, static.DEK, kdf.SCP02ConstDEK},
	} {
		if *d.out, err = kdf.SCP02SessionKey(d.key, d.constant, seq); err != nil {
			k.Zero()
			return SessionKeys{}, fmt.Errorf("gp: SCP02 session keys: %w", err)
		}
	}
	return k, nil
}

// cryptogram is the full triple-DES MAC (ISO/IEC 9797-1 MAC algorithm 1,
// padding method 2, zero ICV) under S-ENC of a || b || c: the card
// cryptogram over host challenge || sequence counter || card challenge and
// the host cryptogram over sequence counter || card challenge || host
// challenge (GP Card Specification 2.2 E.4.2.1 and E.4.2.2).
func (s *scp02) cryptogram(a, b, c []byte) []byte {
	data := make([]byte, 0, len(a)+len(b)+len(c))
	data = append(append(append(data, a...), b...), c...)
	return crypt.MACAlg1(s.enc, nil, data, crypt.Pad2)
}

// pseudoRandomChallenge is the well-known pseudo-random card challenge of
// "i" b7 (GP Card Specification 2.2 E.4.2.1): the first six bytes of the
// C-MAC algorithm (single DES plus final triple DES, zero ICV) over the AID
// of the security domain, under the C-MAC session key.
func scp02PseudoRandomChallenge(cmac, aid []byte) ([]byte, error) {
	m, err := crypt.MACAlg3(cmac, nil, aid, crypt.Pad2)
	if err != nil {
		return nil, err
	}
	return m[:scp02CardChallengeLen], nil
}

// mac computes the C-MAC of a command with data field data (GP Card
// Specification 2.2 E.4.4): ISO/IEC 9797-1 MAC algorithm 3 with padding
// method 2 under the C-MAC key, over the modified header (secure messaging
// class byte, Lc counting the MAC) and the plaintext data, or, with "i" b2,
// over the unmodified command. The ICV is the previous C-MAC, encrypted
// with single DES under the first half of the C-MAC key when "i" b5 asks
// for it; zero for EXTERNAL AUTHENTICATE. mac advances the ICV.
func (s *scp02) mac(c Command, data []byte) ([]byte, error) {
	cla, lc := macCLA(c.CLA), len(data)+8
	if s.p.I&scp02Unmodified != 0 {
		cla, lc = c.CLA&^(claSM|claISOSM|claChannel), len(data)
	}
	in := make([]byte, 0, 5+len(data))
	in = append(in, cla, c.INS, c.P1, c.P2, byte(lc))
	in = append(in, data...)
	m, err := s.cmac.MACAlg3(s.icv[:], in, crypt.Pad2)
	if err != nil {
		return nil, err
	}
	copy(s.icv[:], m)
	if s.p.I&scp02ICVEncrypt != 0 {
		s.icvK.Encrypt(s.icv[:], s.icv[:])
	}
	return m, nil
}

// maxData is the most plaintext a protected command can carry: 239 bytes
// with C-DEC, 247 without.
func (s *scp02) maxData() int { return maxPlain(s.level, 8, 8) }

// wrap protects a command: C-MAC over the plaintext, then C-DEC of the data
// (3DES-CBC under S-ENC, zero ICV, padding method 2 always added) when the
// level asks for it (GP Card Specification 2.2 E.4.4 and E.4.6).
func (s *scp02) wrap(c Command) (Command, error) {
	if len(c.Data) > s.maxData() {
		return Command{}, fmt.Errorf("%w: %d bytes of data, at most %d under %v at level %v", ErrLength, len(c.Data), s.maxData(), s.p, s.level)
	}
	m, err := s.mac(c, c.Data)
	if err != nil {
		return Command{}, err
	}
	data := c.Data
	if s.level.has(LevelCDEC) && len(data) > 0 {
		data = crypt.Pad(data, 8, crypt.Pad2)
		if err := crypt.EncryptCBC(s.enc, nil, data, data); err != nil {
			return Command{}, err
		}
	}
	out := c
	out.CLA |= claSM
	out.Data = append(append(make([]byte, 0, len(data)+8), data...), m...)
	return out, nil
}

// unwrap checks a protected command and returns it as the host built it:
// data decrypted when the level has C-DEC, then the C-MAC verified over the
// plaintext. Any failure is an ErrSecureMessaging.
func (s *scp02) unwrap(c Command) (Command, error) {
	if len(c.Data) < 8 {
		return Command{}, fmt.Errorf("%w: %v: %d bytes of data leave no room for the C-MAC", ErrSecureMessaging, c, len(c.Data))
	}
	body, got := c.Data[:len(c.Data)-8], c.Data[len(c.Data)-8:]
	plain := body
	if s.level.has(LevelCDEC) && len(body) > 0 {
		if len(body)%8 != 0 {
			return Command{}, fmt.Errorf("%w: %v: encrypted data of %d bytes are not whole blocks", ErrSecureMessaging, c, len(body))
		}
		dec := make([]byte, len(body))
		if err := crypt.DecryptCBC(s.enc, nil, dec, body); err != nil {
			return Command{}, err
		}
		var err error
		if plain, err = crypt.Unpad2(dec, 8); err != nil {
			return Command{}, fmt.Errorf("%w: %v: decrypted data badly padded", ErrSecureMessaging, c)
		}
	}
	orig := c
	orig.CLA &^= claSM
	want, err := s.mac(orig, plain)
	if err != nil {
		return Command{}, err
	}
	if !crypt.Equal(want, got) {
		return Command{}, fmt.Errorf("%w: %v: C-MAC does not verify", ErrSecureMessaging, c)
	}
	orig.Data = plain
	return orig, nil
}

// SCP02 responses carry no protection here: R-MAC is not
// implemented, and Level.check refuses the levels that ask for it.
func (s *scp02) wrapResponse(r Response) (Response, error)   { return r, nil }
func (s *scp02) unwrapResponse(r Response) (Response, error) { return r, nil }

func (s *scp02) setLevel(l Level) { s.level = l }

func (s *scp02) zero() {
	s.keys.Zero()
	crypt.Zero(s.icv[:])
}
