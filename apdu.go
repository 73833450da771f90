package perso

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transport carries APDUs between the host and one card: an in-process
// virtual card, or a reader through PC/SC.
//
// Transmit sends one command APDU (an ISO/IEC 7816-4 encoding, as
// [Command.Bytes] produces) and returns the card's full response APDU: the
// response data followed by SW1 SW2, so never fewer than two bytes. It must
// return an error, never a short or empty response, when the card is gone,
// the reader is unplugged or the exchange failed for any other reason. It
// passes status words through untouched, 61xx and 6Cxx included: [Conn]
// issues GET RESPONSE and re-sends with the corrected Le itself.
//
// Implementations need not be safe for concurrent use: a card talks to one
// host at a time, and [Conn] serializes its exchanges.
type Transport interface {
	Transmit(cmd []byte) ([]byte, error)
}

// LeNone is the [Command.Le] of a command that expects no response data: the
// command carries no Le field (ISO/IEC 7816-3 12.1.3 cases 1 and 3).
const LeNone = -1

// Length limits of ISO/IEC 7816-3 12.1.3. A short Lc field codes 1 to 255
// bytes of data, a short Le field 1 to 256 (the byte 00 means 256); extended
// fields code up to 65535 bytes of data and an Le of up to 65536 (0000).
const (
	MaxShortData = 255
	MaxShortLe   = 256
	MaxData      = 65535
	MaxLe        = 65536
)

// Command is a command APDU (ISO/IEC 7816-4 section 5.1): the four header
// bytes, the command data (Nc = len(Data)) and Le, the maximum number of
// response data bytes expected (Ne).
//
// Le is [LeNone] for no Le field, or 1 to [MaxLe]. Le 0 is taken as "as many
// as the card has": it is encoded as the Le byte 00 (256) in the short form
// and as 0000 (65536) in the extended form, and [ParseCommand] reads those
// back as 256 and 65536.
//
// A Command prints its header and lengths only, never its data, which can
// carry PIN blocks and keys.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Le               int
}

// Case returns the command's ISO/IEC 7816-3 case: 1 (no data, no Le), 2 (Le
// only), 3 (data only) or 4 (data and Le).
func (c Command) Case() int {
	switch {
	case len(c.Data) == 0 && c.Le < 0:
		return 1
	case len(c.Data) == 0:
		return 2
	case c.Le < 0:
		return 3
	}
	return 4
}

// Extended reports whether the command needs the extended length form:
// more than 255 bytes of data or an Le above 256.
func (c Command) Extended() bool { return len(c.Data) > MaxShortData || c.Le > MaxShortLe }

// Bytes returns the command's encoding; see [Command.Append].
func (c Command) Bytes() ([]byte, error) {
	n := 4 + len(c.Data) + 6
	return c.Append(make([]byte, 0, n))
}

// Append appends the command's encoding (ISO/IEC 7816-3 12.1.3) to dst: the
// header, then Lc and the data if there are data, then Le unless it is
// [LeNone]. It uses the short form where both lengths fit and the extended
// form otherwise, for both fields, as the standard requires. It returns an
// error for more than [MaxData] bytes of data or an Le outside LeNone..MaxLe.
func (c Command) Append(dst []byte) ([]byte, error) {
	nc := len(c.Data)
	if nc > MaxData {
		return dst, fmt.Errorf("perso: command %s: %d bytes of data, more than the %d an APDU can carry", c.header(), nc, MaxData)
	}
	if c.Le < LeNone || c.Le > MaxLe {
		return dst, fmt.Errorf("perso: command %s: Le %d out of range", c.header(), c.Le)
	}
	dst = append(dst, c.CLA, c.INS, c.P1, c.P2)
	if !c.Extended() {
		if nc > 0 {
			dst = append(dst, byte(nc))
			dst = append(dst, c.Data...)
		}
		if c.Le >= 0 {
			dst = append(dst, byte(c.Le)) // 256 and 0 both become 00
		}
		return dst, nil
	}
	dst = append(dst, 0)
	if nc > 0 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(nc))
		dst = append(dst, c.Data...)
	}
	if c.Le >= 0 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(c.Le)) // 65536 and 0 both become 0000
	}
	return dst, nil
}

// ParseCommand decodes a command APDU by the rules of ISO/IEC 7816-3
// 12.1.3: after the 4-byte header, nothing (case 1); one byte Le (case 2S);
// 00 and a two-byte Le (case 2E); Lc and data, then optionally Le (cases 3S
// and 4S); or 00, a two-byte Lc other than 0000 and data, then optionally a
// two-byte Le (cases 3E and 4E). An Le of 00 or 0000 is returned as 256 or
// 65536. It rejects input shorter than a header and any body whose length
// matches none of the cases. Data aliases b.
//
// For every command it accepts, re-encoding gives b back unless b used the
// extended form where the short one would have done, which the standard
// allows and [Command.Append] does not produce.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("perso: command APDU of %d bytes is shorter than its header", len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Le: LeNone}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Le = shortLe(body[0])
		return c, nil
	case body[0] != 0: // case 3S or 4S
		nc := int(body[0])
		switch len(body) - 1 - nc {
		case 0:
			c.Data = body[1 : 1+nc : 1+nc]
			return c, nil
		case 1:
			c.Data = body[1 : 1+nc : 1+nc]
			c.Le = shortLe(body[1+nc])
			return c, nil
		}
		return Command{}, fmt.Errorf("perso: command %s: short Lc %d does not match the %d bytes after it", c.header(), nc, len(body)-1)
	case len(body) == 3: // case 2E
		c.Le = extLe(body[1:])
		return c, nil
	case len(body) < 3:
		return Command{}, fmt.Errorf("perso: command %s: truncated extended length at offset 5", c.header())
	}
	nc := int(binary.BigEndian.Uint16(body[1:]))
	if nc == 0 {
		return Command{}, fmt.Errorf("perso: command %s: extended Lc 0000 at offset 5", c.header())
	}
	switch len(body) - 3 - nc {
	case 0: // case 3E
		c.Data = body[3 : 3+nc : 3+nc]
		return c, nil
	case 2: // case 4E
		c.Data = body[3 : 3+nc : 3+nc]
		c.Le = extLe(body[3+nc:])
		return c, nil
	}
	return Command{}, fmt.Errorf("perso: command %s: extended Lc %d does not match the %d bytes after it", c.header(), nc, len(body)-3)
}

func shortLe(b byte) int {
	if b == 0 {
		return MaxShortLe
	}
	return int(b)
}

func extLe(b []byte) int {
	if n := int(binary.BigEndian.Uint16(b)); n != 0 {
		return n
	}
	return MaxLe
}

func (c Command) header() string { return fmt.Sprintf("%02X%02X%02X%02X", c.CLA, c.INS, c.P1, c.P2) }

// String returns the header in hex and the lengths, as in
// "80E20000 Lc=240 Le=none"; it never shows the data.
func (c Command) String() string {
	le := "none"
	if c.Le >= 0 {
		le = fmt.Sprint(c.Le)
	}
	return fmt.Sprintf("%s Lc=%d Le=%s", c.header(), len(c.Data), le)
}

// GoString is String, so %#v shows no data either.
func (c Command) GoString() string { return c.String() }

// Response is a response APDU (ISO/IEC 7816-4 section 5.1): the response
// data and the status word SW1 SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// SWSuccess is the status word of normal processing (ISO/IEC 7816-4 5.1.3).
const SWSuccess uint16 = 0x9000

// ParseResponse splits a response APDU into data and status word. It rejects
// fewer than two bytes. Data aliases b.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("perso: response APDU of %d bytes has no status word", len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: binary.BigEndian.Uint16(b[n:])}, nil
}

// Bytes returns the response's encoding: the data followed by SW1 SW2.
func (r Response) Bytes() []byte {
	out := make([]byte, 0, len(r.Data)+2)
	out = append(out, r.Data...)
	return binary.BigEndian.AppendUint16(out, r.SW)
}

// SW1 returns the first status byte.
func (r Response) SW1() byte { return byte(r.SW >> 8) }

// SW2 returns the second status byte.
func (r Response) SW2() byte { return byte(r.SW) }

// Err returns nil for 9000 and a [*SWError] for any other status word,
// warnings (62xx, 63xx) included.
func (r Response) Err() error {
	if r.SW == SWSuccess {
		return nil
	}
	return &SWError{SW: r.SW}
}

// String returns the data length and the status word, never the data.
func (r Response) String() string { return fmt.Sprintf("%d bytes SW=%04X", len(r.Data), r.SW) }

// GoString is String.
func (r Response) GoString() string { return r.String() }

// SecureChannel protects the commands a [Conn] sends and checks the
// responses, as a GlobalPlatform secure channel session does (GP Card
// Specification 2.2 section 10, Appendix E for SCP02, Amendment D for SCP03).
//
// Wrap returns the command as it goes to the card (C-MAC appended, data
// encrypted, class byte marked for secure messaging). Unwrap receives the
// complete response, after any GET RESPONSE, and returns it with the R-MAC
// checked and removed and the data decrypted; it must return an error when
// the response fails its checks, after which the session is over.
type SecureChannel interface {
	Wrap(Command) (Command, error)
	Unwrap(Response) (Response, error)
}

// Bounds on the exchanges for one command: a card that keeps answering 61xx
// or 6Cxx is broken or hostile, and the host stops rather than loop.
const (
	maxGetResponse = MaxLe / MaxShortLe // 256 GET RESPONSEs of 256 bytes is the most an APDU can return
	maxRespData    = MaxLe
)

// Conn exchanges commands with a card over a [Transport]: it issues GET
// RESPONSE while the card answers 61xx, re-sends once with the exact Le
// when the card answers 6Cxx (the T=0 case handling of ISO/IEC 7816-3
// section 12.2, and the status bytes of ISO/IEC 7816-4 5.1.3), applies a [SecureChannel] if one is set, and counts every
// APDU it sends, so that an audit log can report how many a card took and
// which one failed.
//
// A Conn is not safe for concurrent use.
type Conn struct {
	t    Transport
	sc   SecureChannel
	sent int
}

// NewConn returns a Conn over t.
func NewConn(t Transport) *Conn { return &Conn{t: t} }

// Count returns the number of APDUs sent so far, GET RESPONSE and re-sent
// commands included.
func (c *Conn) Count() int { return c.sent }

// SetSecureChannel makes every later command go through sc: Wrap before it
// is sent and Unwrap of its response. A nil sc ends the protection, as when
// a secure channel session is over.
func (c *Conn) SetSecureChannel(sc SecureChannel) { c.sc = sc }

// APDUError is an error from one command of a [Conn]: the number of the
// APDU that failed (counted from 1 over the life of the Conn, as [Conn.Count]
// counts) and the header of the command the caller gave. It wraps a
// [*SWError] when the card refused the command, or the transport's or
// secure channel's error.
type APDUError struct {
	Index            int
	CLA, INS, P1, P2 byte
	Err              error
}

func (e *APDUError) Error() string {
	return fmt.Sprintf("perso: APDU %d (%02X%02X%02X%02X): %v", e.Index, e.CLA, e.INS, e.P1, e.P2, e.Err)
}

// Unwrap returns the underlying error.
func (e *APDUError) Unwrap() error { return e.Err }

func (c *Conn) fail(cmd Command, err error) error {
	return &APDUError{Index: c.sent, CLA: cmd.CLA, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Err: err}
}

// Transmit sends cmd and returns the card's final response, whatever its
// status word. It returns an [*APDUError] if the command cannot be encoded
// or wrapped, the transport fails, the card returns fewer than two bytes,
// the card keeps answering 61xx or 6Cxx past the bounds, or the secure
// channel rejects the response.
func (c *Conn) Transmit(cmd Command) (Response, error) {
	out := cmd
	if c.sc != nil {
		w, err := c.sc.Wrap(cmd)
		if err != nil {
			return Response{}, c.fail(cmd, err)
		}
		out = w
	}
	resp, err := c.exchange(out)
	if err != nil {
		return Response{}, c.fail(cmd, err)
	}
	if c.sc != nil {
		if resp, err = c.sc.Unwrap(resp); err != nil {
			return Response{}, c.fail(cmd, err)
		}
	}
	return resp, nil
}

// Do sends cmd and returns the response data if the card answered 9000, or
// an [*APDUError] wrapping an [*SWError] otherwise.
func (c *Conn) Do(cmd Command) ([]byte, error) {
	resp, err := c.Transmit(cmd)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(); err != nil {
		return resp.Data, c.fail(cmd, err)
	}
	return resp.Data, nil
}

// errBounds reports a card that does not stop asking for more exchanges.
var errBounds = errors.New("perso: card keeps answering 61xx/6Cxx")

// exchange sends one command, then GET RESPONSE for each 61xx, and re-sends
// a command once with Le = xx for 6Cxx, and returns the accumulated data
// with the last status word.
func (c *Conn) exchange(cmd Command) (Response, error) {
	var data []byte
	next, resent := cmd, false
	for range maxGetResponse + 2 {
		raw, err := c.send(next)
		if err != nil {
			return Response{}, err
		}
		r, err := ParseResponse(raw)
		if err != nil {
			return Response{}, err
		}
		if len(data)+len(r.Data) > maxRespData {
			return Response{}, fmt.Errorf("perso: response longer than %d bytes", maxRespData)
		}
		switch sw1 := r.SW1(); {
		case sw1 == 0x6C && !resent && next.Le != LeNone:
			// Wrong Le: the same command again with Le = the exact length.
			next.Le, resent = shortLe(r.SW2()), true
		case sw1 == 0x61:
			// More data: GET RESPONSE (ISO/IEC 7816-4 7.6.1) on the same
			// logical channel, Le = what the card says it has.
			data = append(data, r.Data...)
			next, resent = Command{CLA: getResponseCLA(cmd.CLA), INS: 0xC0, Le: shortLe(r.SW2())}, false
		default:
			if data == nil {
				return r, nil
			}
			return Response{Data: append(data, r.Data...), SW: r.SW}, nil
		}
	}
	return Response{}, errBounds
}

func (c *Conn) send(cmd Command) ([]byte, error) {
	b, err := cmd.Bytes()
	if err != nil {
		return nil, err
	}
	c.sent++
	return c.t.Transmit(b)
}

// getResponseCLA returns the interindustry class byte for GET RESPONSE on
// the logical channel that cla addresses (ISO/IEC 7816-4 5.4.1): channels
// 0-3 in the first interindustry coding, 4-19 in the further one.
func getResponseCLA(cla byte) byte {
	if cla&0x40 != 0 {
		return 0x40 | cla&0x0F
	}
	return cla & 0x03
}
