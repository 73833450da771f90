package perso

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cardperso/perso/internal/bcd"
)

// MICCardData is the MIC of the cardholder data group: the issuer's
// non-secret data for one card (PAN, PSN, dates, name, service code,
// discretionary data, emboss lines, per-application fields), from which the
// application profiles build their data. It travels with the record so that
// later jobs and the bureau find it.
const MICCardData MIC = 0x05

// CardData is the issuer's data for one card.
type CardData struct {
	PAN           string   // 12 to 19 digits, Luhn-valid
	PSN           uint8    // PAN sequence number, 00..99 (5F34)
	Expiry        string   // YYMMDD (5F24); YYMM in input means the month's last day
	Effective     string   // YYMMDD (5F25), optional
	Name          string   // cardholder name as on track 1 and 5F20: 2 to 26 characters
	ServiceCode   string   // 3 digits (5F30)
	Discretionary string   // track 2 discretionary data, digits, optional
	Emboss        []string // emboss lines, optional
	// Apps names the applications this card gets, by profile name; empty
	// means every application of the job.
	Apps []string
	// Fields holds per-application fields by name, such as "pin_block" or
	// "iep_id"; the profile that uses a field documents it.
	Fields map[string]string
}

// String shows the card with its PAN masked, so that a CardData may be
// logged.
func (c *CardData) String() string {
	if c == nil {
		return "card <nil>"
	}
	return fmt.Sprintf("card %s/%02d", MaskPAN(c.PAN), c.PSN)
}

// MaskPAN keeps the first 6 and last 4 digits of a PAN and masks the rest.
func MaskPAN(pan string) string {
	if len(pan) <= 10 {
		return strings.Repeat("*", len(pan))
	}
	return pan[:6] + strings.Repeat("*", len(pan)-10) + pan[len(pan)-4:]
}

// FieldError reports a card data field that is missing or malformed.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("perso: field %s: %s", e.Field, e.Reason) }

// LuhnValid reports whether digits pass the Luhn check (ISO/IEC 7812-1 Annex B).
func LuhnValid(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// LuhnDigit returns the check digit that makes digits || check Luhn-valid.
func LuhnDigit(digits string) byte {
	for c := byte('0'); c <= '9'; c++ {
		if LuhnValid(digits + string(c)) {
			return c
		}
	}
	return '0'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validDate checks YYMMDD.
func validDate(s string) bool {
	if len(s) != 6 || !allDigits(s) {
		return false
	}
	_, err := time.Parse("060102", s)
	return err == nil
}

// NormalizeDate turns YYMM into the month's last day as YYMMDD and checks
// YYMMDD; it accepts the forms an issuer export uses.
func NormalizeDate(s string) (string, error) {
	switch {
	case len(s) == 4 && allDigits(s):
		t, err := time.Parse("0601", s)
		if err != nil {
			return "", fmt.Errorf("%q is not YYMM", s)
		}
		return t.AddDate(0, 1, -1).Format("060102"), nil
	case validDate(s):
		return s, nil
	}
	return "", fmt.Errorf("%q is not YYMM or YYMMDD", s)
}

// Validate checks every field a profile relies on and returns a
// *FieldError naming the first bad one.
func (c *CardData) Validate() error {
	switch {
	case c.PAN == "":
		return &FieldError{"pan", "missing"}
	case len(c.PAN) < 12 || len(c.PAN) > 19 || !allDigits(c.PAN):
		return &FieldError{"pan", fmt.Sprintf("%d characters, want 12 to 19 digits", len(c.PAN))}
	case !LuhnValid(c.PAN):
		return &FieldError{"pan", "fails the Luhn check"}
	case c.PSN > 99:
		return &FieldError{"psn", "over 99"}
	case c.Expiry == "":
		return &FieldError{"expiry", "missing"}
	case !validDate(c.Expiry):
		return &FieldError{"expiry", "not a YYMMDD date"}
	case c.Effective != "" && !validDate(c.Effective):
		return &FieldError{"effective", "not a YYMMDD date"}
	case c.Effective != "" && c.Effective > c.Expiry:
		return &FieldError{"effective", "after the expiry date"}
	case len(c.Name) > 26:
		return &FieldError{"name", "longer than 26 characters"}
	case c.ServiceCode != "" && (len(c.ServiceCode) != 3 || !allDigits(c.ServiceCode)):
		return &FieldError{"service_code", "not 3 digits"}
	case len(c.Discretionary) > 19 || !allDigits(c.Discretionary):
		return &FieldError{"discretionary", "not up to 19 digits"}
	}
	for _, r := range c.Name {
		if r < 0x20 || r > 0x7E || r == '^' {
			return &FieldError{"name", "holds a character track 1 cannot carry"}
		}
	}
	if len(c.Emboss) > 8 {
		return &FieldError{"emboss", "more than 8 lines"}
	}
	for i, l := range c.Emboss {
		if len(l) > 40 {
			return &FieldError{fmt.Sprintf("emboss%d", i+1), "longer than 40 characters"}
		}
	}
	return nil
}

// fieldNames returns the names of c.Fields in order.
func (c *CardData) fieldNames() []string {
	names := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Tags of the cardholder data group. The EMV tags carry what EMV defines
// (Book 3 Annex A); the private-class tags carry the rest.
const (
	tagPAN           Tag = 0x5A
	tagPSN           Tag = 0x5F34
	tagExpiry        Tag = 0x5F24
	tagEffective     Tag = 0x5F25
	tagName          Tag = 0x5F20
	tagServiceCode   Tag = 0x5F30
	tagDiscretionary Tag = 0x9F20
	tagEmboss        Tag = 0xDF8101 // one emboss line, ASCII; repeated in order
	tagAppName       Tag = 0xDF8102 // one application profile name; repeated
	tagField         Tag = 0xDF8103 // one field, "name=value" in UTF-8; repeated, names ascending
)

// Group encodes the card data as the data of a [MICCardData] group: BER-TLV
// with 5A PAN (cn), 5F34 PSN, 5F24 expiry and 5F25 effective date (n6,
// YYMMDD), 5F20 name, 5F30 service code (n3), 9F20 track 2 discretionary
// data (cn), and the private tags DF8101 (an emboss line), DF8102 (an
// application name) and DF8103 (a field, "name=value"), each repeated as
// needed. Absent optional fields are left out.
func (c *CardData) Group() ([]byte, error) {
	var b Builder
	if c.PAN != "" {
		pan, err := bcd.CN(c.PAN, 0)
		if err != nil {
			return nil, &FieldError{"pan", "not digits"}
		}
		b.AddPrimitive(tagPAN, pan)
	}
	psn, _ := bcd.N(strconv.Itoa(int(c.PSN%100)), 1)
	b.AddPrimitive(tagPSN, psn)
	for _, d := range []struct {
		tag   Tag
		name  string
		value string
	}{{tagExpiry, "expiry", c.Expiry}, {tagEffective, "effective", c.Effective}} {
		if d.value == "" {
			continue
		}
		v, err := bcd.N(d.value, 3)
		if err != nil || len(d.value) != 6 {
			return nil, &FieldError{d.name, "not YYMMDD"}
		}
		b.AddPrimitive(d.tag, v)
	}
	if c.Name != "" {
		b.AddPrimitive(tagName, []byte(c.Name))
	}
	if c.ServiceCode != "" {
		v, err := bcd.N(c.ServiceCode, 2)
		if err != nil || len(c.ServiceCode) != 3 {
			return nil, &FieldError{"service_code", "not 3 digits"}
		}
		b.AddPrimitive(tagServiceCode, v)
	}
	if c.Discretionary != "" {
		v, err := bcd.CN(c.Discretionary, 0)
		if err != nil {
			return nil, &FieldError{"discretionary", "not digits"}
		}
		b.AddPrimitive(tagDiscretionary, v)
	}
	for _, l := range c.Emboss {
		b.AddPrimitive(tagEmboss, []byte(l))
	}
	for _, a := range c.Apps {
		b.AddPrimitive(tagAppName, []byte(a))
	}
	for _, k := range c.fieldNames() {
		if k == "" || strings.ContainsRune(k, '=') {
			return nil, &FieldError{k, "a field name is not empty and holds no '='"}
		}
		b.AddPrimitive(tagField, []byte(k+"="+c.Fields[k]))
	}
	return b.Bytes()
}

// ParseCardData decodes the data of a [MICCardData] group. It checks the
// encoding, not the values: see [CardData.Validate].
func ParseCardData(data []byte) (*CardData, error) {
	tlvs, err := ParseTLVs(data, Strict)
	if err != nil {
		return nil, fmt.Errorf("perso: card data: %w", err)
	}
	c := &CardData{}
	digits := func(t TLV, name string) (string, error) {
		d, err := bcd.Digits(t.Value)
		if err != nil {
			return "", &FieldError{name, "not BCD"}
		}
		return d, nil
	}
	for _, t := range tlvs {
		var err error
		switch t.Tag {
		case tagPAN:
			c.PAN, err = digits(t, "pan")
		case tagPSN:
			var d string
			if d, err = digits(t, "psn"); err == nil {
				if len(d) != 2 {
					return nil, &FieldError{"psn", "not one BCD byte"}
				}
				c.PSN = (d[0]-'0')*10 + d[1] - '0'
			}
		case tagExpiry:
			c.Expiry, err = digits(t, "expiry")
		case tagEffective:
			c.Effective, err = digits(t, "effective")
		case tagName:
			c.Name = string(t.Value)
		case tagServiceCode:
			var d string
			if d, err = digits(t, "service_code"); err == nil {
				if len(d) != 4 || d[0] != '0' {
					return nil, &FieldError{"service_code", "not n3 in two bytes"}
				}
				c.ServiceCode = d[1:]
			}
		case tagDiscretionary:
			c.Discretionary, err = digits(t, "discretionary")
		case tagEmboss:
			c.Emboss = append(c.Emboss, string(t.Value))
		case tagAppName:
			c.Apps = append(c.Apps, string(t.Value))
		case tagField:
			k, v, ok := strings.Cut(string(t.Value), "=")
			if !ok || k == "" {
				return nil, &FieldError{"field", "not name=value"}
			}
			if c.Fields == nil {
				c.Fields = map[string]string{}
			}
			if _, dup := c.Fields[k]; dup {
				return nil, &FieldError{k, "appears twice"}
			}
			c.Fields[k] = v
		default:
			return nil, fmt.Errorf("perso: card data: unknown tag %v: %w", t.Tag, ErrBadInput)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// CardDataOf returns the card data of a record's [MICCardData] group.
func CardDataOf(r *Record) (*CardData, error) {
	g, ok := r.Group(MICCardData)
	if !ok {
		return nil, &FieldError{"card data", "the record has no card data group"}
	}
	return ParseCardData(g.Data)
}

// Field returns a per-application field, and whether it is present.
func (c *CardData) Field(name string) (string, bool) {
	v, ok := c.Fields[name]
	return v, ok
}
