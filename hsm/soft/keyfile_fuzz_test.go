package soft_test

import (
	"bytes"
	"testing"

	"github.com/cardperso/perso/hsm/soft"
)

// FuzzReadKeyFile: a key file never makes the module panic, and a file it
// accepts is written back to one that loads the same keys.
func FuzzReadKeyFile(f *testing.F) {
	f.Add([]byte(`{"keys":[{"label":"IMK-AC","version":1,"type":"DES2","value":"0123456789ABCDEFFEDCBA9876543210"}]}`))
	f.Add([]byte(`{"keks":[{"issuer":"45123FFF","version":1,"scheme":"AES-KW","value":"000102030405060708090A0B0C0D0E0F"}]}`))
	f.Add([]byte(`{"rsa":[{"label":"ISS","version":1,"pkcs8":"AA=="}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := soft.New(soft.NotForProduction())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ReadKeyFile(bytes.NewReader(b)); err != nil {
			return
		}
		var out bytes.Buffer
		if err := m.WriteKeyFile(&out); err != nil {
			t.Fatalf("writing back an accepted key file: %v", err)
		}
		first := bytes.Clone(out.Bytes())
		m2, _ := soft.New(soft.NotForProduction())
		if err := m2.ReadKeyFile(&out); err != nil {
			t.Fatalf("the written key file does not load: %v", err)
		}
		var again bytes.Buffer
		if err := m2.WriteKeyFile(&again); err != nil || !bytes.Equal(again.Bytes(), first) {
			t.Fatalf("key file round trip differs")
		}
	})
}
