package perso

import (
	"encoding/binary"
	"fmt"
)

// DGI is one Data Grouping Identifier entry of EMV CPS v1.1 section 4.2:
// a 2-byte identifier, a length of 1 byte (0..254) or FF followed by 2 bytes
// (255..65535), and the data. Raw keeps the entry's bytes as they were
// parsed (nil for a DGI built in code).
type DGI struct {
	Tag   uint16
	Value []byte
	Raw   []byte
}

// DGIError reports a malformed DGI sequence: the offset of the entry that
// failed and why.
type DGIError struct {
	Offset int
	Tag    uint16 // 0 when the identifier itself could not be read
	Reason string
}

func (e *DGIError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("perso: DGI %04X at offset %d: %s", e.Tag, e.Offset, e.Reason)
	}
	return fmt.Sprintf("perso: DGI at offset %d: %s", e.Offset, e.Reason)
}

// ParseDGIs splits b into DGI entries. It rejects a truncated entry, a
// length that overruns b, and a non-minimal length (FF 00 xx for xx < FF).
// Value and Raw alias b.
func ParseDGIs(b []byte) ([]DGI, error) {
	var out []DGI
	for off := 0; off < len(b); {
		d, n, err := parseDGI(b[off:])
		if err != nil {
			err.Offset += off
			return out, err
		}
		out = append(out, d)
		off += n
	}
	return out, nil
}

func parseDGI(b []byte) (DGI, int, *DGIError) {
	if len(b) < 3 {
		return DGI{}, 0, &DGIError{Reason: "truncated header"}
	}
	tag := binary.BigEndian.Uint16(b)
	n, hl := int(b[2]), 3
	if b[2] == 0xFF {
		if len(b) < 5 {
			return DGI{}, 0, &DGIError{Tag: tag, Reason: "truncated 3-byte length"}
		}
		n, hl = int(binary.BigEndian.Uint16(b[3:])), 5
		if n < 0xFF {
			return DGI{}, 0, &DGIError{Tag: tag, Reason: fmt.Sprintf("non-minimal length FF%04X", n)}
		}
	}
	if n > len(b)-hl {
		return DGI{}, 0, &DGIError{Tag: tag, Reason: fmt.Sprintf("length %d exceeds the %d bytes left", n, len(b)-hl)}
	}
	return DGI{Tag: tag, Value: b[hl : hl+n : hl+n], Raw: b[: hl+n : hl+n]}, hl + n, nil
}

// AppendDGI appends the minimal encoding of one DGI to dst. It panics if
// value is longer than 65535 bytes, which no DGI may be.
func AppendDGI(dst []byte, tag uint16, value []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, tag)
	switch n := len(value); {
	case n < 0xFF:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0xFF, byte(n>>8), byte(n))
	default:
		panic("perso: DGI value longer than 65535 bytes")
	}
	return append(dst, value...)
}
