package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardperso/perso"
)

// TestShippedFiles runs the example job over the shipped card export.
func TestShippedFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "batch.prso")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-job", "../testdata/job.json", "-keys", "../testdata/keys.json", "-in", "../testdata/cards.csv", "-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("prepare exited %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "written 20, rejected 0") {
		t.Errorf("summary: %s", stdout.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := perso.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		cd, err := rec.Chip()
		if err != nil || cd == nil || len(cd.Apps) != 2 {
			t.Fatalf("record %d: chip data %v", n, err)
		}
		n++
	}
	if n != 20 || r.Trailer() == nil {
		t.Errorf("%d records, trailer %v", n, r.Trailer())
	}
}

func TestBadArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-job", "x.json"}, &stdout, &stderr); code != 2 {
		t.Errorf("missing flags: exit %d", code)
	}
	if code := run([]string{"-job", "../testdata/job.json", "-in", "../testdata/cards.csv", "-out", filepath.Join(t.TempDir(), "o")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "security module") {
		t.Errorf("no module: exit %d, %s", code, stderr.String())
	}
}
