package perso

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// HexBytes is a byte string that JSON and text encodings carry as hex, as
// job and profile configurations write AIDs, tags and certificates. It is
// for public values only.
type HexBytes []byte

// MarshalText returns upper-case hex.
func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(h))), nil
}

// UnmarshalText accepts hex in either case, with spaces allowed between bytes.
func (h *HexBytes) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), " ", "")
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("perso: %q is not hex", s)
	}
	*h = v
	return nil
}

// String returns upper-case hex.
func (h HexBytes) String() string { return strings.ToUpper(hex.EncodeToString(h)) }
