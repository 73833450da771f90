package jobfile

import (
	"bytes"
	"os"
	"testing"
)

// FuzzDecode: a job file never makes the decoder or the job builder panic.
func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/job.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"kek":{"issuer":"476173FF","version":1,"scheme":"AES-KW"},"apps":[{"profile":"emv"}]}`))
	f.Add([]byte(`{"apps":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		j.Build()
	})
}

func TestShippedJob(t *testing.T) {
	j, err := Read("../../testdata/job.json")
	if err != nil {
		t.Fatal(err)
	}
	job, names, err := j.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Apps) != 2 || names[0] != "emv" || names[1] != "vsvc" {
		t.Errorf("shipped job: %d apps %v", len(job.Apps), names)
	}
	if _, err := Decode(bytes.NewReader([]byte(`{"unknown":1}`))); err == nil {
		t.Error("an unknown field was accepted")
	}
}
