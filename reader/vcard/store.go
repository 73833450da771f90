package vcard

import (
	"encoding/binary"
	"slices"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/crypt"
)

// STORE DATA P1 coding (GP Card Specification 2.2 section 11.11.2.1, table
// 11-74; EMV CPS v1.1 section 5.4.2): b8 marks the last block; b7-b6 the
// encryption of the data (00 none or no information, 01 application
// dependent, 10 RFU, 11 encrypted with the DEK); b5-b4 the structure of the
// data (00 no information, 01 DGI format, 10 BER-TLV, 11 RFU); b3-b1 RFU.
const (
	p1Last        = 0x80
	p1EncMask     = 0x60
	p1EncNone     = 0x00
	p1EncApp      = 0x20
	p1EncRFU      = 0x40
	p1EncAll      = 0x60
	p1FormatMask  = 0x18
	p1FormatDGI   = 0x08
	p1FormatTLV   = 0x10
	p1FormatRFU   = 0x18
	p1ReservedRFU = 0x07
)

// maxStaged bounds what one personalization may store in an applet, as a
// card's memory would: 64 KiB of DGI values.
const maxStaged = 64 << 10

// storeState is the progress of one personalization: the STORE DATA
// commands received in the current secure channel session for one
// application. It lives as long as the session: an application whose
// session ends before the last block stays unpersonalized, and the next
// session starts over from block 0.
type storeState struct {
	target applet
	next   int    // the block number P2 the next STORE DATA must carry
	buf    []byte // the start of a DGI that continues in the next command
	bufEnc byte   // the encryption bits of the command that began buf
	staged []stagedDGI
	size   int
}

// stagedDGI is a DGI received and not yet taken in by the application:
// decrypted, but still padded if it was encrypted (ISO/IEC 9797-1 padding
// method 2 to the cipher's block size, where the clear value was not a
// multiple of it). The application knows each DGI's clear length and
// removes the padding when it takes the DGIs in.
type stagedDGI struct {
	perso.DGI
	encrypted bool
	blockSize int
}

// storeData handles STORE DATA (80 E2) for the application target, which
// is the application selected (CPS: SELECT, INITIALIZE UPDATE, EXTERNAL
// AUTHENTICATE, STORE DATA...) or the one named by INSTALL [for
// personalization] through the ISD (GP Card Specification 2.2 section
// 11.5.2.3).
//
// The command must arrive under the secure channel opened after the
// application was selected, with its C-MAC verified. Block numbers (P2)
// run from 00 in each session, one by one; a DGI may continue across
// commands and one command may carry several DGIs. Encrypted DGIs (P1
// b7-b6 = 11, or 01 for the secret DGIs 8000-8FFF, CPS section 5.5) are
// decrypted with the session's DEK: SCP02 3DES-ECB under the session DEK,
// SCP03 AES-CBC with a zero IV under the static DEK. A secret DGI in clear
// is refused. After the last block (P1 b8) the application checks what it
// received and becomes PERSONALIZED, or answers 6A80 and stays as it was.
func (c *Card) storeData(target applet, cm cmd) ([]byte, uint16) {
	switch {
	case target.lifeCycle() == Personalized:
		return nil, swConditions
	case c.session == nil || !c.session.authenticated() || !cm.secured:
		return nil, swSecurity
	case cm.P1&p1EncMask == p1EncRFU, cm.P1&p1FormatMask == p1FormatTLV, cm.P1&p1FormatMask == p1FormatRFU:
		return nil, swWrongP1P2
	case cm.Le != perso.LeNone && cm.Le != perso.MaxShortLe:
		return nil, swWrongLength
	}
	st := c.store
	if st == nil || st.target != target {
		st = &storeState{target: target}
		c.store = st
	}
	if int(cm.P2) != st.next {
		return nil, swWrongP1P2
	}
	enc := cm.P1 & p1EncMask
	if len(st.buf) > 0 && enc != st.bufEnc {
		c.abandonStore()
		return nil, swWrongData
	}
	if len(st.buf)+len(cm.Data) > maxStaged+8 {
		c.abandonStore()
		return nil, swNoMemory
	}
	in := append(st.buf, cm.Data...)
	st.buf = nil
	for len(in) > 0 {
		tag, value, n, complete := splitDGI(in)
		if !complete {
			if len(in) >= 5 && in[2] == 0xFF && binary.BigEndian.Uint16(in[3:]) < 0xFF {
				c.abandonStore() // non-minimal length
				return nil, swWrongData
			}
			st.buf, st.bufEnc = slices.Clone(in), enc
			break
		}
		if sw := c.stageDGI(st, tag, value, enc); sw != swOK {
			c.abandonStore()
			return nil, sw
		}
		in = in[n:]
	}
	st.next = (st.next + 1) & 0xFF
	if cm.P1&p1Last == 0 {
		return nil, swOK
	}
	if len(st.buf) > 0 {
		c.abandonStore()
		return nil, swWrongData
	}
	staged := st.staged
	st.staged = nil
	c.store = nil
	if err := target.personalize(staged); err != nil {
		zeroStaged(staged)
		return nil, swWrongData
	}
	return nil, swOK
}

// splitDGI reads one DGI from the front of b: its tag, value and encoded
// length, or complete = false if b holds only the start of it.
func splitDGI(b []byte) (tag uint16, value []byte, n int, complete bool) {
	if len(b) < 3 {
		return 0, nil, 0, false
	}
	tag = binary.BigEndian.Uint16(b)
	l, hl := int(b[2]), 3
	if b[2] == 0xFF {
		if len(b) < 5 {
			return 0, nil, 0, false
		}
		l, hl = int(binary.BigEndian.Uint16(b[3:])), 5
		if l < 0xFF {
			return 0, nil, 0, false
		}
	}
	if len(b)-hl < l {
		return 0, nil, 0, false
	}
	return tag, b[hl : hl+l], hl + l, true
}

// stageDGI checks one complete DGI, decrypts it if it arrived encrypted,
// and keeps it until the last block.
func (c *Card) stageDGI(st *storeState, tag uint16, value []byte, enc byte) uint16 {
	if !st.target.accepts(tag) {
		return swRefNotFound
	}
	for _, d := range st.staged {
		if d.Tag == tag {
			return swWrongData
		}
	}
	encrypted := enc == p1EncAll || enc == p1EncApp && perso.SecretDGI(tag)
	if perso.SecretDGI(tag) && !encrypted {
		return swWrongData
	}
	if st.size += len(value); st.size > maxStaged {
		return swNoMemory
	}
	v := slices.Clone(value)
	bs := 0
	if encrypted {
		var ok bool
		if v, ok = c.session.decrypt(v); !ok {
			return swWrongData
		}
		bs = c.session.blockSize()
	}
	st.staged = append(st.staged, stagedDGI{DGI: perso.DGI{Tag: tag, Value: v}, encrypted: encrypted, blockSize: bs})
	return swOK
}

// abandonStore drops an unfinished personalization after a refused STORE
// DATA: the host must start over in a new session.
func (c *Card) abandonStore() {
	if c.store != nil {
		zeroStaged(c.store.staged)
		c.store = nil
	}
}

// zeroStaged clears the values of the secret DGIs in ds.
func zeroStaged(ds []stagedDGI) {
	for _, d := range ds {
		if perso.SecretDGI(d.Tag) {
			crypt.Zero(d.Value)
		}
	}
}
