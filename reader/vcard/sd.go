package vcard

import (
	"bytes"
	"fmt"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/gp"
)

// securityDomain is the issuer security domain: its AID, card data and the
// card side of its secure channel (internal/gp), which holds the static
// keys and the sequence counter.
type securityDomain struct {
	aid  []byte
	cplc []byte
	kdd  []byte
	kvn  uint8
	scp  perso.SCP
	seq  uint32
	// enc, mac and dek are the static keys, until newGP hands them to the
	// secure channel and zeroes them.
	enc, mac, dek []byte
	keyLen        int
	gp            *gp.Card
}

// String describes the security domain without its keys.
func (sd *securityDomain) String() string {
	return fmt.Sprintf("security domain %X (%s, key version %02X)", sd.aid, sd.scp, sd.kvn)
}

// Format prints String for every verb, so that no key shows even in
// debugging output.
func (sd *securityDomain) Format(f fmt.State, _ rune) { fmt.Fprint(f, sd.String()) }

// newGP makes the card side of the secure channel from the static keys.
func (sd *securityDomain) newGP(c *Card) error {
	keys := gp.Keys{ENC: sd.enc, MAC: sd.mac, DEK: sd.dek}
	defer keys.Zero()
	sd.keyLen = len(sd.enc)
	g, err := gp.NewCard(gp.CardConfig{
		Protocol:   gp.Protocol{Version: sd.scp.Version, I: sd.scp.Param},
		KeyVersion: sd.kvn,
		Keys:       keys,
		KDD:        sd.kdd,
		AID:        sd.aid,
		Sequence:   sd.seq,
		Rand:       c.rand,
	})
	sd.enc, sd.mac, sd.dek = nil, nil, nil
	if err != nil {
		return err
	}
	sd.gp = g
	return nil
}

// GlobalPlatform object identifiers (GP Card Specification 2.2 Appendix H.2):
// {iso(1) member-body(2) us(840) globalPlatform(114283)} and its arcs.
var (
	oidCardRecognition = []byte{0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01}
	oidGPVersion       = []byte{0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x02, 0x02, 0x02, 0x01} // GP 2.2.1
	oidCardID          = []byte{0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x03}
	oidSCP             = []byte{0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04}
)

// recognition writes the card recognition data (GP 2.2 H.2): the
// template 73 with the GP version, the card identification scheme and the
// secure channel protocol and its i parameter.
func (sd *securityDomain) recognition(b *perso.Builder) {
	b.AddTLV(0x73, func(b *perso.Builder) {
		b.AddPrimitive(0x06, oidCardRecognition)
		b.AddTLV(0x60, func(b *perso.Builder) { b.AddPrimitive(0x06, oidGPVersion) })
		b.AddTLV(0x63, func(b *perso.Builder) { b.AddPrimitive(0x06, oidCardID) })
		b.AddTLV(0x64, func(b *perso.Builder) {
			b.AddPrimitive(0x06, append(append([]byte(nil), oidSCP...), sd.scp.Version, sd.scp.Param))
		})
	})
}

// fci is the ISD's SELECT response (GP 2.2 11.9.3.1): 6F { 84 AID, A5 {
// 73 security domain management data, 9F65 maximum command data length } }.
func (sd *securityDomain) fci() []byte {
	var b perso.Builder
	b.AddTLV(0x6F, func(b *perso.Builder) {
		b.AddPrimitive(0x84, sd.aid)
		b.AddTLV(0xA5, func(b *perso.Builder) {
			sd.recognition(b)
			b.AddPrimitive(0x9F65, []byte{0xFF})
		})
	})
	out, _ := b.Bytes()
	return out
}

// getData answers GET DATA (GP 2.2 11.3) at the ISD: the CPLC (9F7F), the
// key information template (00E0), the card recognition data (0066) and
// the key diversification data (00CF).
func (sd *securityDomain) getData(cm cmd) ([]byte, uint16) {
	if len(cm.Data) != 0 {
		return nil, swWrongLength
	}
	var b perso.Builder
	switch uint16(cm.P1)<<8 | uint16(cm.P2) {
	case 0x9F7F:
		b.AddPrimitive(0x9F7F, sd.cplc)
	case 0x00CF:
		b.AddPrimitive(0xCF, sd.kdd)
	case 0x0066:
		b.AddTLV(0x66, sd.recognition)
	case 0x00E0:
		// Key information template (GP 2.2 11.3.3.1): per key, C0 { key
		// identifier, key version, key type (80 DES, 88 AES), length }.
		typ := byte(0x80)
		if sd.scp.Version == 0x03 {
			typ = 0x88
		}
		b.AddTLV(0xE0, func(b *perso.Builder) {
			for id := byte(1); id <= 3; id++ {
				b.AddPrimitive(0xC0, []byte{id, sd.kvn, typ, byte(sd.keyLen)})
			}
		})
	default:
		return nil, swRefNotFound
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, swNoDiagnosis
	}
	return out, swOK
}

// session is the secure channel session between INITIALIZE UPDATE and its
// end (a new INITIALIZE UPDATE, a SELECT, a failed check, a reset). It
// belongs to the security domain of the application selected when it
// began.
type session struct {
	cs      *gp.CardSession
	version byte
	// target is the application STORE DATA goes to: the one selected when
	// the session began, or the one INSTALL [for personalization] named.
	target applet
}

func (s *session) authenticated() bool { return s.cs.Open() }

func (s *session) requiresCMAC() bool {
	return s.cs.Open() && s.cs.Level()&gp.LevelCMAC != 0
}

func (s *session) wrapsResponses() bool {
	return s.cs.Open() && s.cs.Level()&gp.LevelRMAC != 0
}

// unwrap verifies and removes secure messaging; a failure closes the
// session.
func (s *session) unwrap(pc perso.Command) (perso.Command, uint16) {
	out, err := s.cs.UnwrapCommand(gp.Command(pc))
	if err != nil {
		return perso.Command{}, gp.StatusWord(err)
	}
	return perso.Command(out), swOK
}

// wrapResponse adds the R-MAC (and R-ENC) the level asks for.
func (s *session) wrapResponse(data []byte, sw uint16) ([]byte, uint16) {
	r, err := s.cs.WrapResponse(gp.Response{Data: data, SW: sw})
	if err != nil {
		return nil, gp.StatusWord(err)
	}
	return r.Data, r.SW
}

// decrypt decrypts a secret DGI value with the session's DEK, leaving any
// padding in place.
func (s *session) decrypt(v []byte) ([]byte, bool) {
	out, err := s.cs.DecryptSensitive(v)
	crypt.Zero(v)
	return out, err == nil
}

// blockSize is the DEK cipher's block size.
func (s *session) blockSize() int {
	if s.version == 0x03 {
		return 16
	}
	return 8
}

func (s *session) close() { s.cs.Close() }

// initializeUpdate opens a secure channel session (GP 2.2 E.5.1,
// Amendment D 7.1.1) for the application selected, abandoning any earlier
// one.
func (c *Card) initializeUpdate(pc perso.Command) ([]byte, uint16) {
	c.endSession()
	cs, data, err := c.sd.gp.InitializeUpdate(gp.Command(pc))
	if err != nil {
		return nil, gp.StatusWord(err)
	}
	c.session = &session{cs: cs, version: c.sd.scp.Version, target: c.selected}
	return data, swOK
}

// externalAuthenticate completes the session's mutual authentication (GP
// 2.2 E.5.2, Amendment D 7.1.2). Personalization starts over in each new
// session.
func (c *Card) externalAuthenticate(pc perso.Command) ([]byte, uint16) {
	if c.session == nil {
		return nil, swConditions
	}
	if err := c.session.cs.ExternalAuthenticate(gp.Command(pc)); err != nil {
		c.endSession()
		return nil, gp.StatusWord(err)
	}
	c.abandonStore()
	return nil, swOK
}

// sdCommand executes a command addressed to the ISD.
func (c *Card) sdCommand(cm cmd) ([]byte, uint16) {
	switch cm.INS {
	case insGetData:
		return c.sd.getData(cm)
	case insInstall:
		if !cm.proprietary() {
			return nil, swCLAUnsupported
		}
		return c.installForPerso(cm)
	case insStoreData:
		if !cm.proprietary() {
			return nil, swCLAUnsupported
		}
		if c.session == nil || !c.session.authenticated() || !cm.secured {
			return nil, swSecurity
		}
		if c.session.target == nil {
			// STORE DATA for the ISD's own data is not supported.
			return nil, swConditions
		}
		return c.storeData(c.session.target, cm)
	}
	return nil, swINSUnsupported
}

// installForPerso handles INSTALL [for personalization] (GP 2.2 11.5.2.3):
// data 00 00 || length || AID || 00 00 00. It makes the named application
// the target of the STORE DATA commands that follow in this session.
func (c *Card) installForPerso(cm cmd) ([]byte, uint16) {
	switch {
	case c.session == nil || !c.session.authenticated() || !cm.secured:
		return nil, swSecurity
	case cm.P1 != 0x20:
		// Only INSTALL [for personalization]: this card loads nothing.
		return nil, swWrongP1P2
	case cm.P2 != 0x00:
		return nil, swWrongP1P2
	}
	d := cm.Data
	if len(d) < 6 || d[0] != 0 || d[1] != 0 || int(d[2]) != len(d)-6 || !bytes.Equal(d[len(d)-3:], []byte{0, 0, 0}) {
		return nil, swWrongData
	}
	aid := d[3 : 3+int(d[2])]
	for _, a := range c.applets {
		if bytes.Equal(a.AID(), aid) {
			c.abandonStore()
			c.session.target = a
			return []byte{0x00}, swOK
		}
	}
	return nil, swRefNotFound
}
