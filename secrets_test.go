package perso_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cardperso/perso/hsm/soft"
	"github.com/cardperso/perso/internal/demo"
)

// demoKeyFile returns every key of the demonstration module, in clear.
func demoKeyFile(t testing.TB, s *demo.Setup) soft.KeyFile {
	t.Helper()
	var b bytes.Buffer
	if err := s.Module.WriteKeyFile(&b); err != nil {
		t.Fatal(err)
	}
	var kf soft.KeyFile
	if err := json.Unmarshal(b.Bytes(), &kf); err != nil {
		t.Fatal(err)
	}
	return kf
}
