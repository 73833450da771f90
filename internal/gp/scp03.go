package gp

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

// scp03SeqLen is the length of the SCP03 sequence counter that the
// INITIALIZE UPDATE response carries with a pseudo-random card challenge
// (GP Amendment D 7.1.1).
const scp03SeqLen = 3

// scp03 is the secure messaging state of one SCP03 session (GP Amendment
// D section 6), the same on both sides: the session keys, the MAC chaining
// value, the encryption counter and the level.
type scp03 struct {
	p        Protocol
	keys     SessionKeys
	enc      cipher.Block // AES under S-ENC
	mac      cipher.Block // AES under S-MAC
	rmac     cipher.Block // AES under S-RMAC, nil without R-MAC
	chaining [16]byte
	counter  uint64
	level    Level
}

func newSCP03(p Protocol, keys SessionKeys) (*scp03, error) {
	if keys.ENC == nil || keys.MAC == nil {
		return nil, fmt.Errorf("%w: SCP03 needs S-ENC and S-MAC", ErrKeyLength)
	}
	if err := checkKeyLens(3, []string{"S-ENC", "S-MAC", "S-RMAC", "DEK"}, keys.ENC, keys.MAC, keys.RMAC, keys.DEK); err != nil {
		return nil, err
	}
	s := &scp03{p: p, keys: keys.clone(), level: LevelCMAC}
	var err error
	if s.enc, err = aes.NewCipher(s.keys.ENC); err != nil {
		return nil, err
	}
	if s.mac, err = aes.NewCipher(s.keys.MAC); err != nil {
		return nil, err
	}
	if s.keys.RMAC != nil {
		if s.rmac, err = aes.NewCipher(s.keys.RMAC); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// scp03SessionKeys derives the session keys from the card's static keys
// (GP Amendment D 6.2.1): S-ENC from ENC, S-MAC and S-RMAC from MAC, each
// as long as its static key, with the context host challenge || card
// challenge. The DEK stays the static one.
func scp03SessionKeys(static Keys, context []byte) (SessionKeys, error) {
	var k SessionKeys
	var err error
	for _, d := range []struct {
		out      *[]byte
		key      []byte
		constant byte
	}{
		{&k.ENC, static.ENC, kdf.SCP03SENC},
		{&k.MAC, static.MAC, kdf.SCP03SMAC},
		{&k.RMAC, static.MAC, kdf.SCP03SRMAC},
	} {
		if *d.out, err = kdf.SCP03KDF(d.key, d.constant, context, 8*len(d.key)); err != nil {
			k.Zero()
			return SessionKeys{}, fmt.Errorf("gp: SCP03 session keys: %w", err)
		}
	}
	k.DEK = clone(static.DEK)
	return k, nil
}

// cryptogram is the card (kdf.SCP03CardCryptogram) or host
// (kdf.SCP03HostCryptogram) cryptogram: the KDF under S-MAC with the
// context host challenge || card challenge, 64 bits in S8 mode and 128 in
// S16 mode (GP Amendment D 6.2.2.2 and 6.2.2.3).
func (s *scp03) cryptogram(constant byte, context []byte) ([]byte, error) {
	return kdf.SCP03KDF(s.keys.MAC, constant, context, 8*s.p.macLen())
}

// scp03PseudoRandomChallenge is the pseudo-random card challenge of "i" b5
// (GP Amendment D 6.2.2.1): the KDF under the static ENC key with the
// context sequence counter || AID of the security domain.
func scp03PseudoRandomChallenge(p Protocol, encKey, seq, aid []byte) ([]byte, error) {
	ctx := append(append(make([]byte, 0, len(seq)+len(aid)), seq...), aid...)
	return kdf.SCP03KDF(encKey, kdf.SCP03CardChallenge, ctx, 8*p.challengeLen())
}

// cmac advances the MAC chaining value over one command and returns the
// C-MAC (GP Amendment D 6.2.4): the AES-CMAC under S-MAC of chaining value
// || class byte for secure messaging || INS P1 P2 || Lc (counting the MAC)
// || data as sent; the full CMAC is the next chaining value and its first
// 8 (S8) or 16 (S16) bytes the C-MAC.
func (s *scp03) cmac(c Command, data []byte) []byte {
	in := make([]byte, 0, 16+5+len(data))
	in = append(in, s.chaining[:]...)
	in = append(in, macCLA(c.CLA), c.INS, c.P1, c.P2, byte(len(data)+s.p.macLen()))
	in = append(in, data...)
	copy(s.chaining[:], crypt.CMAC(s.mac, in))
	return clone(s.chaining[:s.p.macLen()])
}

// icv returns the ICV for command (response false) or response (true)
// encryption (GP Amendment D 6.2.6 and 6.2.7): the encryption counter as a
// 16-byte big-endian block, its first byte set to 80 for responses,
// encrypted with S-ENC.
func (s *scp03) icv(response bool) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], s.counter)
	if response {
		b[0] = 0x80
	}
	s.enc.Encrypt(b[:], b[:])
	return b[:]
}

// maxData is the most plaintext a protected command can carry: in S8 mode
// 239 bytes with C-DEC and 247 without; in S16 mode 223 and 239.
func (s *scp03) maxData() int { return maxPlain(s.level, s.p.macLen(), 16) }

// wrap protects a command (GP Amendment D 6.2.4 and 6.2.6): with C-DEC the
// encryption counter advances for every command and the data, if any, are
// padded (method 2, always) and encrypted with AES-CBC under S-ENC with the
// counter's ICV; then the C-MAC covers the data as sent.
func (s *scp03) wrap(c Command) (Command, error) {
	if len(c.Data) > s.maxData() {
		return Command{}, fmt.Errorf("%w: %d bytes of data, at most %d under %v at level %v", ErrLength, len(c.Data), s.maxData(), s.p, s.level)
	}
	data := c.Data
	if s.level.has(LevelCDEC) {
		s.counter++
		if len(data) > 0 {
			data = crypt.Pad(data, 16, crypt.Pad2)
			if err := crypt.EncryptCBC(s.enc, s.icv(false), data, data); err != nil {
				return Command{}, err
			}
		}
	}
	m := s.cmac(c, data)
	out := c
	out.CLA |= claSM
	out.Data = append(append(make([]byte, 0, len(data)+len(m)), data...), m...)
	if s.level.has(LevelRMAC) && out.Le > 0 && out.Le < 256 {
		// The response grows by the R-MAC and R-ENC padding: ask for all.
		out.Le = 256
	}
	return out, nil
}

// unwrap checks a protected command and returns it as the host built it:
// the C-MAC verified over the data as sent, then the data decrypted when
// the level has C-DEC. Any failure is an ErrSecureMessaging; the chaining
// value and counter have then moved and the session must be closed.
func (s *scp03) unwrap(c Command) (Command, error) {
	n := s.p.macLen()
	if len(c.Data) < n {
		return Command{}, fmt.Errorf("%w: %v: %d bytes of data leave no room for the C-MAC", ErrSecureMessaging, c, len(c.Data))
	}
	body, got := c.Data[:len(c.Data)-n], c.Data[len(c.Data)-n:]
	if !crypt.Equal(s.cmac(c, body), got) {
		return Command{}, fmt.Errorf("%w: %v: C-MAC does not verify", ErrSecureMessaging, c)
	}
	orig := c
	orig.CLA &^= claSM
	orig.Data = body
	if s.level.has(LevelCDEC) {
		s.counter++
		if len(body) > 0 {
			plain, err := s.decrypt(body, false)
			if err != nil {
				return Command{}, fmt.Errorf("%w: %v: %w", ErrSecureMessaging, c, err)
			}
			orig.Data = plain
		}
	}
	return orig, nil
}

// decrypt decrypts command or response data with the counter's ICV and
// removes padding method 2.
func (s *scp03) decrypt(data []byte, response bool) ([]byte, error) {
	if len(data)%16 != 0 {
		return nil, fmt.Errorf("encrypted data of %d bytes are not whole blocks", len(data))
	}
	dec := make([]byte, len(data))
	if err := crypt.DecryptCBC(s.enc, s.icv(response), dec, data); err != nil {
		return nil, err
	}
	plain, err := crypt.Unpad2(dec, 16)
	if err != nil {
		return nil, fmt.Errorf("decrypted data badly padded")
	}
	return plain, nil
}

// protectedSW reports whether a response with status sw is protected: no
// R-MAC and no encryption apply to an error status word, that is any but
// 9000 and the warnings 62xx and 63xx (GP Amendment D 6.2.5).
func protectedSW(sw uint16) bool {
	return sw == 0x9000 || sw>>8 == 0x62 || sw>>8 == 0x63
}

// rmacOf returns the R-MAC (GP Amendment D 6.2.5): the AES-CMAC under
// S-RMAC of the chaining value of the command || response data as sent ||
// SW1 SW2, truncated as the C-MAC is.
func (s *scp03) rmacOf(data []byte, sw uint16) []byte {
	in := make([]byte, 0, 16+len(data)+2)
	in = append(in, s.chaining[:]...)
	in = append(in, data...)
	in = binary.BigEndian.AppendUint16(in, sw)
	return crypt.CMAC(s.rmac, in)[:s.p.macLen()]
}

// wrapResponse protects a response on the card (GP Amendment D 6.2.5 and
// 6.2.7): R-ENC of non-empty data (padding method 2, AES-CBC under S-ENC,
// ICV from the counter with its first byte 80), then the R-MAC appended.
func (s *scp03) wrapResponse(r Response) (Response, error) {
	if !s.level.has(LevelRMAC) || !protectedSW(r.SW) {
		return r, nil
	}
	data := r.Data
	if s.level.has(LevelRENC) && len(data) > 0 {
		data = crypt.Pad(data, 16, crypt.Pad2)
		if err := crypt.EncryptCBC(s.enc, s.icv(true), data, data); err != nil {
			return Response{}, err
		}
	}
	out := append(append(make([]byte, 0, len(data)+s.p.macLen()), data...), s.rmacOf(data, r.SW)...)
	return Response{Data: out, SW: r.SW}, nil
}

// unwrapResponse checks a response on the host: the R-MAC verified, then
// the data decrypted with R-ENC. Any failure is an ErrSecureMessaging.
func (s *scp03) unwrapResponse(r Response) (Response, error) {
	if !s.level.has(LevelRMAC) || !protectedSW(r.SW) {
		return r, nil
	}
	n := s.p.macLen()
	if len(r.Data) < n {
		return Response{}, fmt.Errorf("%w: response of %d bytes (SW %04X) leaves no room for the R-MAC", ErrSecureMessaging, len(r.Data), r.SW)
	}
	body, got := r.Data[:len(r.Data)-n], r.Data[len(r.Data)-n:]
	if !crypt.Equal(s.rmacOf(body, r.SW), got) {
		return Response{}, fmt.Errorf("%w: R-MAC does not verify (SW %04X)", ErrSecureMessaging, r.SW)
	}
	if s.level.has(LevelRENC) && len(body) > 0 {
		plain, err := s.decrypt(body, true)
		if err != nil {
			return Response{}, fmt.Errorf("%w: response (SW %04X): %w", ErrSecureMessaging, r.SW, err)
		}
		body = plain
	}
	return Response{Data: body, SW: r.SW}, nil
}

func (s *scp03) setLevel(l Level) { s.level = l }

func (s *scp03) zero() {
	s.keys.Zero()
	crypt.Zero(s.chaining[:])
}
