package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardperso/perso"
)

func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-cards", "12", "-dir", dir, "-stations", "2"}, &stdout, &stderr); code != 0 {
		t.Fatalf("quickstart exited %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "12 records: 12 personalized") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	f, err := os.Open(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var e perso.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Index != n || e.Outcome != perso.OutcomePersonalized {
			t.Errorf("audit line %d: %+v", n, e)
		}
		n++
	}
	if n != 12 {
		t.Errorf("%d audit lines, want 12", n)
	}
}
