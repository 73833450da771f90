package vsvc

import (
	"encoding/binary"
	"fmt"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/internal/bcd"
)

// Card is a stored-value purse on a card seen from a terminal: SELECT,
// READ RECORD and INTERNAL AUTHENTICATE as EMV has them (emv.Card), and the
// purse commands of the package documentation. Each method returns an
// error wrapping a *perso.SWError when the card refuses the command. A Card
// is not safe for concurrent use.
type Card struct {
	*emv.Card
}

// NewCard returns a Card over t.
func NewCard(t perso.Transport) *Card { return &Card{emv.NewCard(t)} }

// MACLen is the length of every purse MAC (S1, S2, S3 and the UPDATE MAC).
const MACLen = 8

// GetBalance sends GET BALANCE (80 5C 00 02, Le 04) and returns the
// balance in minor units.
func (c *Card) GetBalance() (uint32, error) {
	b, err := c.Conn().Do(perso.Command{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x02, Le: 4})
	if err != nil {
		return 0, fmt.Errorf("vsvc: GET BALANCE: %w", err)
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("vsvc: GET BALANCE returned %d bytes, want 4", len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// LoadInit is the purse's answer to INITIALIZE FOR LOAD.
type LoadInit struct {
	Balance    uint32
	NT         uint16 // the purse's transaction number
	CardRandom []byte // 8 bytes
	S1         []byte // MAC(KDL, IEP id || NT || amount || terminal random || card random)
}

// InitializeForLoad sends INITIALIZE FOR LOAD (80 50 02 00) with the
// amount and the terminal's 8-byte random number.
func (c *Card) InitializeForLoad(amount uint32, terminalRandom []byte) (*LoadInit, error) {
	if len(terminalRandom) != 8 {
		return nil, fmt.Errorf("vsvc: terminal random of %d bytes, want 8", len(terminalRandom))
	}
	data := append(binary.BigEndian.AppendUint32(nil, amount), terminalRandom...)
	b, err := c.Conn().Do(perso.Command{CLA: 0x80, INS: 0x50, P1: 0x02, P2: 0x00, Data: data, Le: perso.MaxShortLe})
	if err != nil {
		return nil, fmt.Errorf("vsvc: INITIALIZE FOR LOAD: %w", err)
	}
	if len(b) != 4+2+8+MACLen {
		return nil, fmt.Errorf("vsvc: INITIALIZE FOR LOAD returned %d bytes, want %d", len(b), 4+2+8+MACLen)
	}
	return &LoadInit{Balance: binary.BigEndian.Uint32(b), NT: binary.BigEndian.Uint16(b[4:]), CardRandom: b[6:14], S1: b[14:]}, nil
}

// CreditForLoad sends CREDIT FOR LOAD (80 52 00 00) with S2 and returns the
// new balance and S3.
func (c *Card) CreditForLoad(s2 []byte) (balance uint32, s3 []byte, err error) {
	b, err := c.Conn().Do(perso.Command{CLA: 0x80, INS: 0x52, Data: s2, Le: perso.MaxShortLe})
	if err != nil {
		return 0, nil, fmt.Errorf("vsvc: CREDIT FOR LOAD: %w", err)
	}
	if len(b) != 4+MACLen {
		return 0, nil, fmt.Errorf("vsvc: CREDIT FOR LOAD returned %d bytes, want %d", len(b), 4+MACLen)
	}
	return binary.BigEndian.Uint32(b), b[4:], nil
}

// Update sends UPDATE (80 54 00 00): a parameter's 2-byte tag, its new
// value and the MAC under KDU.
func (c *Card) Update(tag uint16, value, mac []byte) error {
	data := append(binary.BigEndian.AppendUint16(nil, tag), value...)
	if _, err := c.Conn().Do(perso.Command{CLA: 0x80, INS: 0x54, Data: append(data, mac...), Le: perso.LeNone}); err != nil {
		return fmt.Errorf("vsvc: UPDATE %04X: %w", tag, err)
	}
	return nil
}

// Params are the purse parameters of record SFI 1 record 1 (DGI 0101).
type Params struct {
	IEPID            []byte // DF01, 10 bytes: the PAN in format cn
	AuthMode         byte   // DF02
	AppProfile       []byte // DF03
	Currency         string // DF04, ISO 4217 numeric
	CurrencyExponent byte   // DF05
	MaxBalance       uint32 // DF06
	Activation       string // DF07, YYMMDD
	Deactivation     string // DF08
	Expiration       string // DF09
	CardSupplier     []byte // DF0A
	EFType           byte   // DF0B
	IEPVersion       byte   // DF0C
	KeyVersion       byte   // DF0D
	CAIndex          byte   // 8F
	// Static is the value of the record template: the static data the
	// card's certificate covers.
	Static []byte
}

// PAN returns the IEP identifier's digits.
func (p *Params) PAN() (string, error) { return bcd.Digits(p.IEPID) }

// ParseParams decodes the purse parameters record (a 70 template) and
// checks the fields' lengths and formats.
func ParseParams(rec []byte) (*Params, error) {
	t, err := perso.ParseTLV(rec, perso.Strict)
	if err != nil || t.Tag != 0x70 {
		return nil, fmt.Errorf("vsvc: purse parameters record is not a 70 template")
	}
	kids, err := t.Children()
	if err != nil {
		return nil, fmt.Errorf("vsvc: purse parameters record: %w", err)
	}
	p := &Params{Static: t.Value}
	dates := map[perso.Tag]*string{0xDF07: &p.Activation, 0xDF08: &p.Deactivation, 0xDF09: &p.Expiration}
	octets := map[perso.Tag]*byte{0xDF02: &p.AuthMode, 0xDF05: &p.CurrencyExponent, 0xDF0B: &p.EFType, 0xDF0C: &p.IEPVersion, 0xDF0D: &p.KeyVersion, 0x8F: &p.CAIndex}
	seen := map[perso.Tag]bool{}
	for _, k := range kids {
		if seen[k.Tag] {
			return nil, fmt.Errorf("vsvc: purse parameter %v twice", k.Tag)
		}
		seen[k.Tag] = true
		v := k.Value
		var bad bool
		switch k.Tag {
		case 0xDF01:
			p.IEPID, bad = v, len(v) != 10
		case 0xDF03:
			p.AppProfile, bad = v, len(v) != 2
		case 0xDF04:
			p.Currency, err = bcd.Digits(v)
			bad = err != nil || len(v) != 2
		case 0xDF06:
			if bad = len(v) != 4; !bad {
				p.MaxBalance = binary.BigEndian.Uint32(v)
			}
		case 0xDF07, 0xDF08, 0xDF09:
			*dates[k.Tag], err = bcd.Digits(v)
			bad = err != nil || len(v) != 3
		case 0xDF0A:
			p.CardSupplier = v
		case 0xDF02, 0xDF05, 0xDF0B, 0xDF0C, 0xDF0D, 0x8F:
			if bad = len(v) != 1; !bad {
				*octets[k.Tag] = v[0]
			}
		}
		if bad {
			return nil, fmt.Errorf("vsvc: purse parameter %v of %d bytes is malformed", k.Tag, len(v))
		}
	}
	for _, tag := range []perso.Tag{0xDF01, 0xDF04, 0xDF06, 0x8F} {
		if !seen[tag] {
			return nil, fmt.Errorf("vsvc: purse parameter %v missing", tag)
		}
	}
	return p, nil
}
