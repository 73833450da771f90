package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/examples/internal/jobfile"
	"github.com/cardperso/perso/hsm/soft"
)

// prepareShipped prepares the shipped card export with the shipped job, as
// examples/prepare does.
func prepareShipped(t *testing.T, out string) {
	t.Helper()
	prepareCSV(t, "../testdata/cards.csv", out)
}

// prepareCSV prepares the cards of a card export with the shipped job.
func prepareCSV(t *testing.T, csvPath, out string) {
	t.Helper()
	jf, err := jobfile.Read("../testdata/job.json")
	if err != nil {
		t.Fatal(err)
	}
	job, names, err := jf.Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := soft.New(soft.NotForProduction())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadKeyFile("../testdata/keys.json"); err != nil {
		t.Fatal(err)
	}
	kcv, err := m.KEKCheckValue(context.Background(), job.KEK)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := perso.CreateFile(out, &perso.Header{Created: time.Now(), Issuer: job.KEK.Issuer, Profiles: names, KEKs: []perso.KEKCheck{{KEK: job.KEK, KCV: kcv}}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := (&perso.Preparer{Deriver: m, Certifier: m, Protector: m}).Run(context.Background(), job, perso.NewCSVReader(in), fw); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPersonalizeBatch(t *testing.T) {
	batch := filepath.Join(t.TempDir(), "batch.prso")
	prepareShipped(t, batch)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-batch", batch, "-keys", "../testdata/keys.json", "-setup", "../testdata/personalize.json", "-stations", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("personalize exited %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "20 records: 20 personalized") {
		t.Errorf("summary: %s", stdout.String())
	}
	audit, err := os.ReadFile(batch + ".audit.jsonl")
	if err != nil || bytes.Count(audit, []byte("\n")) != 20 {
		t.Errorf("audit log: %v, %d lines", err, bytes.Count(audit, []byte("\n")))
	}
}
