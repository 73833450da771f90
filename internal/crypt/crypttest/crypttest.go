// Package crypttest holds what the tests of the cryptographic packages
// share: hex-encoded values in JSON vector files and loading those files.
package crypttest

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// Hex is a byte string written in a vector file as a hex string; spaces
// in it are for reading and are ignored.
type Hex []byte

// UnmarshalJSON decodes a JSON string of hex digits.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	*h = v
	return err
}

// MustHex decodes s, hex digits with optional spaces, and panics on
// anything else: it is for constants in tests.
func MustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// LoadJSON reads the JSON file at path into v, failing t on any error.
func LoadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
