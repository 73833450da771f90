package vcard

import (
	"bytes"
	"encoding/binary"

	"github.com/cardperso/perso"
)

// Status words the card answers (ISO/IEC 7816-4:2013 section 5.1.3,
// GlobalPlatform Card Specification 2.2 chapter 11, EMV Book 3 6.3.5).
const (
	swOK                 uint16 = 0x9000
	swAuthFailed         uint16 = 0x6300
	swWrongLength        uint16 = 0x6700
	swChannelUnsupported uint16 = 0x6881
	swSMUnsupported      uint16 = 0x6882
	swChainUnsupported   uint16 = 0x6884
	swSecurity           uint16 = 0x6982
	swBlocked            uint16 = 0x6983
	swConditions         uint16 = 0x6985
	swWrongData          uint16 = 0x6A80
	swFuncUnsupported    uint16 = 0x6A81
	swNotFound           uint16 = 0x6A82
	swRecordNotFound     uint16 = 0x6A83
	swNoMemory           uint16 = 0x6A84
	swWrongP1P2          uint16 = 0x6A86
	swRefNotFound        uint16 = 0x6A88
	swINSUnsupported     uint16 = 0x6D00
	swCLAUnsupported     uint16 = 0x6E00
	swNoDiagnosis        uint16 = 0x6F00
)

// Instruction bytes.
const (
	insSelect        = 0xA4
	insGetResponse   = 0xC0
	insInitUpdate    = 0x50
	insExtAuth       = 0x82
	insGetData       = 0xCA
	insStoreData     = 0xE2
	insInstall       = 0xE6
	insReadRecord    = 0xB2
	insGPO           = 0xA8
	insGenerateAC    = 0xAE
	insInternalAuth  = 0x88
	insVerify        = 0x20
	insGetBalance    = 0x5C
	insInitForLoad   = 0x50
	insCreditForLoad = 0x52
	insUpdate        = 0x54
)

// Class byte bits (ISO/IEC 7816-4 5.4.1, first interindustry coding; GP
// Card Specification 2.2 11.1.4).
const (
	claProprietary = 0x80
	claChain       = 0x10
	claSMMask      = 0x0C
	claGPSM        = 0x04
	claChannel     = 0x03
	claFurther     = 0x40
)

// cmd is a command as the applets see it: the parsed APDU with secure
// messaging removed, and whether it arrived under secure messaging
// (C-MAC verified).
type cmd struct {
	perso.Command
	secured bool
}

// proprietary reports a GlobalPlatform/EMV proprietary class byte.
func (c cmd) proprietary() bool { return c.CLA&claProprietary != 0 }

// resp builds a response APDU.
func resp(data []byte, sw uint16) []byte {
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return binary.BigEndian.AppendUint16(out, sw)
}

// swBytes is a response with no data.
func swBytes(sw uint16) []byte { return binary.BigEndian.AppendUint16(nil, sw) }

// process executes one APDU: the class byte checks, GET RESPONSE,
// SELECT, the secure channel commands, then the selected application.
func (c *Card) process(raw []byte) []byte {
	held := c.getResp
	c.getResp = nil
	pc, err := perso.ParseCommand(raw)
	if err != nil {
		return swBytes(swWrongLength)
	}
	switch {
	case pc.CLA == 0xFF:
		return swBytes(swCLAUnsupported)
	case pc.CLA&claFurther != 0:
		// Further interindustry class bytes address logical channels 4
		// to 19, which this card does not open.
		return swBytes(swChannelUnsupported)
	case pc.CLA&claChannel != 0:
		return swBytes(swChannelUnsupported)
	case pc.CLA&claChain != 0:
		return swBytes(swChainUnsupported)
	case pc.CLA&claSMMask != 0 && pc.CLA&claSMMask != claGPSM:
		return swBytes(swSMUnsupported)
	}
	if pc.INS == insGetResponse && !(cmd{Command: pc}).proprietary() {
		return c.getResponse(pc, held)
	}
	data, sw := c.execute(pc)
	return c.respond(pc, data, sw)
}

// respond turns a handler's result into the response APDU the card sends:
// data with 9000 for a case 2 or 4 command, or, as a T=0 card must, 61xx
// with the data held for GET RESPONSE when the command carried no Le (ISO/
// IEC 7816-3 12.2.4 and 7816-4 7.6.1). A case 2 command whose Le is shorter
// than the data gets 6Cxx (exact length) and is not answered; the commands
// this card answers with 6Cxx have no side effects. Responses are wrapped
// by the secure channel where its level asks for it.
func (c *Card) respond(pc perso.Command, data []byte, sw uint16) []byte {
	// The response to EXTERNAL AUTHENTICATE itself carries no R-MAC (GP
	// Amendment D 7.1.2): protection starts with the next command.
	extAuth := pc.INS == insExtAuth && pc.CLA&claProprietary != 0
	if c.session != nil && c.session.wrapsResponses() && pc.CLA&claSMMask == claGPSM && !extAuth {
		data, sw = c.session.wrapResponse(data, sw)
	}
	if len(data) == 0 || sw != swOK {
		return resp(data, sw)
	}
	switch {
	case pc.Le == perso.LeNone:
		c.getResp = data
		return swBytes(moreData(len(data)))
	case len(pc.Data) == 0 && pc.Le < len(data) && len(data) <= perso.MaxShortLe:
		return swBytes(0x6C00 | uint16(byte(len(data))))
	case pc.Le < len(data):
		c.getResp = data[pc.Le:]
		return resp(data[:pc.Le], moreData(len(data)-pc.Le))
	}
	return resp(data, sw)
}

// getResponse answers GET RESPONSE (ISO/IEC 7816-4 7.6.1) from the data
// the previous command left.
func (c *Card) getResponse(pc perso.Command, held []byte) []byte {
	switch {
	case held == nil:
		return swBytes(swConditions)
	case pc.P1 != 0 || pc.P2 != 0:
		return swBytes(swWrongP1P2)
	case len(pc.Data) != 0:
		return swBytes(swWrongLength)
	case pc.Le == perso.LeNone:
		return swBytes(swWrongLength)
	}
	if n := pc.Le; n < len(held) {
		// Keep the rest for the next GET RESPONSE.
		c.getResp = held[n:]
		return resp(held[:n], moreData(len(held)-n))
	}
	return resp(held, swOK)
}

// moreData is the status word 61xx for n bytes still available; xx is 00
// for 256 or more.
func moreData(n int) uint16 { return 0x6100 | uint16(byte(min(n, 256))) }

// execute runs a parsed command: SELECT by the card, the secure channel
// commands by the session of the selected application's security domain,
// everything else by the selected application after secure messaging is
// removed.
func (c *Card) execute(pc perso.Command) ([]byte, uint16) {
	if pc.INS == insSelect && pc.CLA&claProprietary == 0 {
		if pc.CLA&claSMMask != 0 {
			return nil, swSMUnsupported
		}
		return c.selectApp(pc)
	}
	target := c.selected
	secureChannel := target == nil || target.forwardsSecureChannel()
	if secureChannel && pc.CLA&claProprietary != 0 {
		switch pc.INS {
		case insInitUpdate:
			return c.initializeUpdate(pc)
		case insExtAuth:
			return c.externalAuthenticate(pc)
		}
	}
	cm := cmd{Command: pc}
	if pc.CLA&claSMMask == claGPSM {
		if c.session == nil || !c.session.authenticated() {
			return nil, swSecurity
		}
		plain, sw := c.session.unwrap(pc)
		if sw != swOK {
			c.endSession()
			return nil, sw
		}
		cm = cmd{Command: plain, secured: true}
	} else if c.session != nil && c.session.requiresCMAC() && pc.CLA&claProprietary != 0 && (pc.INS == insStoreData || pc.INS == insInstall) {
		// A personalization command without its C-MAC in a session
		// that requires one breaks the session (GP 2.2 10.2.3).
		c.endSession()
		return nil, swSecurity
	}
	if target == nil {
		return c.sdCommand(cm)
	}
	if cm.proprietary() && cm.INS == insStoreData {
		return c.storeData(target, cm)
	}
	return target.process(c, cm)
}

// selectApp handles SELECT by DF name (ISO/IEC 7816-4 7.1.1; GP Card
// Specification 2.2 11.9): an exact or right-truncated AID, first (P2 00)
// or next (P2 02) occurrence, with or without FCI (P2 0C). Selection ends
// the secure channel session (GP 2.2 10.2.3). An empty AID selects the
// ISD.
func (c *Card) selectApp(pc perso.Command) ([]byte, uint16) {
	if pc.P1 != 0x04 {
		return nil, swWrongP1P2
	}
	occurrence, noFCI := pc.P2&0x03, pc.P2&0x0C == 0x0C
	switch {
	case pc.P2&^0x0F != 0, occurrence == 0x01, occurrence == 0x03, pc.P2&0x0C != 0 && !noFCI:
		return nil, swWrongP1P2
	case len(pc.Data) > 16:
		return nil, swWrongLength
	}
	var found applet
	isd := len(pc.Data) == 0 || bytes.HasPrefix(c.sd.aid, pc.Data) && occurrence == 0x00
	if !isd {
		start := 0
		if occurrence == 0x02 && c.selected != nil && bytes.HasPrefix(c.selected.AID(), pc.Data) {
			// Next occurrence: after the applet now selected.
			for i, a := range c.applets {
				if a == c.selected {
					start = i + 1
				}
			}
		}
		for _, a := range c.applets[start:] {
			if bytes.HasPrefix(a.AID(), pc.Data) {
				found = a
				break
			}
		}
		if found == nil {
			return nil, swNotFound
		}
	}
	c.endSession()
	if c.selected != nil {
		c.selected.deselect()
	}
	c.selected = found
	var fci []byte
	if found == nil {
		fci = c.sd.fci()
	} else {
		fci = found.fci()
	}
	if noFCI {
		return nil, swOK
	}
	return fci, swOK
}
