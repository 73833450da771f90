package perso

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Tags of the magnetic stripe group that CSVReader writes: each track as
// ASCII, start and end sentinels and LRC left to the encoder.
const (
	TagTrack1 Tag = 0xDF8111
	TagTrack2 Tag = 0xDF8112
)

// CSVReader is a RecordSource over a card management system's CSV export:
// a header row naming the columns, then one row a card. Columns are found
// by name, in any order, case and surrounding spaces ignored:
//
//	pan            12 to 19 digits (may be absent when the job has a Counter)
//	psn            00..99, default 00
//	expiry         YYMM or YYMMDD
//	effective      YYMM or YYMMDD, optional
//	name           cardholder name, optional
//	service_code   3 digits, optional
//	discretionary  track 2 discretionary data, digits, optional
//	emboss1..8     emboss lines, optional
//	apps           application profile names separated by ';', optional
//
// Every other column is a per-application field (CardData.Fields) under its
// header name; empty cells are left out. Each row becomes a record with a
// cardholder data group ([MICCardData]), an emboss group ([MICEmboss]) when
// the row has emboss lines, and a magnetic stripe group ([MICMagStripe],
// tracks 1 and 2 of ISO/IEC 7813) when it has a PAN and a service code.
//
// A bad row is reported as an *InputError naming its line and column, and
// reading goes on with the next row.
type CSVReader struct {
	r      *csv.Reader
	cols   []string
	index  int
	line   int
	header bool
}

// NewCSVReader returns a CSVReader over r. It reads the header row at the
// first Next.
func NewCSVReader(r io.Reader) *CSVReader {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = 0
	return &CSVReader{r: cr}
}

// Line returns the line of the row that Next returned last.
func (c *CSVReader) Line() int { return c.line }

func (c *CSVReader) readHeader() error {
	row, err := c.r.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("perso: CSV header: %w", err)
	}
	seen := map[string]bool{}
	for i, h := range row {
		h = strings.ToLower(strings.TrimSpace(h))
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" {
			return fmt.Errorf("perso: CSV header: column %d has no name", i+1)
		}
		if seen[h] {
			return fmt.Errorf("perso: CSV header: column %q appears twice", h)
		}
		seen[h] = true
		c.cols = append(c.cols, h)
	}
	if !seen["expiry"] {
		return errors.New("perso: CSV header: no expiry column")
	}
	c.header = true
	return nil
}

// Next implements RecordSource.
func (c *CSVReader) Next() (*Record, error) {
	if !c.header {
		if err := c.readHeader(); err != nil {
			return nil, err
		}
	}
	row, err := c.r.Read()
	index := c.index
	c.index++
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			c.line = pe.Line
			if pe.Err == csv.ErrFieldCount {
				return nil, &InputError{Index: index, Line: pe.Line, Err: errors.New("wrong number of columns")}
			}
			return nil, &InputError{Index: index, Line: pe.Line, Err: pe.Err}
		}
		return nil, fmt.Errorf("perso: CSV: %w", err)
	}
	line, _ := c.r.FieldPos(0) // only a row read whole has field positions
	c.line = line
	card, col, err := c.card(row)
	if err != nil {
		return nil, &InputError{Index: index, Line: line, Column: col, Err: err}
	}
	rec, err := RecordForCard(card)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, &InputError{Index: index, Line: line, Column: fe.Field, Err: errors.New(fe.Reason)}
		}
		return nil, &InputError{Index: index, Line: line, Err: err}
	}
	return rec, nil
}

// card maps a row to CardData; on error it names the column.
func (c *CSVReader) card(row []string) (*CardData, string, error) {
	card := &CardData{}
	for i, col := range c.cols {
		v := strings.TrimSpace(row[i])
		if v == "" {
			continue
		}
		switch {
		case col == "pan":
			card.PAN = strings.ReplaceAll(v, " ", "")
		case col == "psn":
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil || n > 99 {
				return nil, col, fmt.Errorf("%q is not 00..99", v)
			}
			card.PSN = uint8(n)
		case col == "expiry" || col == "effective":
			d, err := NormalizeDate(v)
			if err != nil {
				return nil, col, err
			}
			if col == "expiry" {
				card.Expiry = d
			} else {
				card.Effective = d
			}
		case col == "name":
			card.Name = v
		case col == "service_code":
			card.ServiceCode = v
		case col == "discretionary":
			card.Discretionary = v
		case strings.HasPrefix(col, "emboss"):
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(col, "emboss"), "_"))
			if err != nil || n < 1 || n > 8 {
				card.setField(col, v)
				continue
			}
			for len(card.Emboss) < n {
				card.Emboss = append(card.Emboss, "")
			}
			card.Emboss[n-1] = v
		case col == "apps":
			for _, a := range strings.Split(v, ";") {
				if a = strings.TrimSpace(a); a != "" {
					card.Apps = append(card.Apps, a)
				}
			}
		default:
			card.setField(col, v)
		}
	}
	if card.Expiry == "" {
		return nil, "expiry", errors.New("missing")
	}
	if err := card.validateSome(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, fe.Field, errors.New(fe.Reason)
		}
		return nil, "", err
	}
	return card, "", nil
}

func (c *CardData) setField(k, v string) {
	if c.Fields == nil {
		c.Fields = map[string]string{}
	}
	c.Fields[k] = v
}

// validateSome checks the card as Validate does, but accepts a missing PAN,
// which a job's counter may supply.
func (c *CardData) validateSome() error {
	if c.PAN != "" {
		return c.Validate()
	}
	tmp := *c
	tmp.PAN = "4000000000000002"
	return tmp.Validate()
}

// RecordForCard returns a new record for card: its cardholder data group,
// an emboss group when it has emboss lines (the lines joined by LF), and a
// magnetic stripe group when it has a PAN and a service code.
func RecordForCard(card *CardData) (*Record, error) {
	data, err := card.Group()
	if err != nil {
		return nil, err
	}
	r := &Record{Groups: []Group{{MIC: MICCardData, Data: data}}}
	if len(card.Emboss) > 0 {
		r.Groups = append(r.Groups, Group{MIC: MICEmboss, Data: []byte(strings.Join(card.Emboss, "\n"))})
	}
	if card.PAN != "" && card.ServiceCode != "" {
		t, err := card.tracks()
		if err != nil {
			return nil, err
		}
		r.Groups = append(r.Groups, Group{MIC: MICMagStripe, Data: t})
	}
	return r, nil
}

// tracks builds tracks 1 and 2 (ISO/IEC 7813): format code B, PAN, name,
// expiry YYMM, service code, discretionary data; without sentinels and LRC.
func (c *CardData) tracks() ([]byte, error) {
	name := c.Name
	if name == "" {
		name = " /"
	}
	exp := c.Expiry[:4]
	t1 := "B" + c.PAN + "^" + strings.ToUpper(name) + "^" + exp + c.ServiceCode + c.Discretionary
	t2 := c.PAN + "=" + exp + c.ServiceCode + c.Discretionary
	if len(t1) > 79 || len(t2) > 40 {
		return nil, &FieldError{"discretionary", "makes a track longer than ISO/IEC 7813 allows"}
	}
	var b Builder
	b.AddPrimitive(TagTrack1, []byte(t1))
	b.AddPrimitive(TagTrack2, []byte(t2))
	return b.Bytes()
}
