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
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/pcsc/pcsctest"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

// TestPersonalizeThroughReaders personalizes two records on two vpcd
// readers through pcscd, one card in each, with -reader all.
func TestPersonalizeThroughReaders(t *testing.T) {
	rs := pcsctest.VPCD(t, 2)
	shipped, err := os.ReadFile("../testdata/cards.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(shipped), "\n")
	dir := t.TempDir()
	csvPath, batch := filepath.Join(dir, "cards.csv"), filepath.Join(dir, "batch.prso")
	if err := os.WriteFile(csvPath, []byte(strings.Join(lines[:3], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	prepareCSV(t, csvPath, batch)

	var cards []*vcard.Card
	for i, r := range rs {
		c, err := vcard.New(vcard.Config{
			Keys:  vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS},
			KDD:   []byte{0x50, 0x43, 0x53, 0x43, 0, 0, 0, byte(i), 0, 0},
			EMV:   [][]byte{{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}},
			Purse: vsvc.DefaultAID,
		})
		if err != nil {
			t.Fatal(err)
		}
		v := vcard.NewVPCD(r.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = v.Insert(ctx, c)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pcsctest.TakeOut(t, r, v) })
		cards = append(cards, c)
	}

	var stdout, stderr bytes.Buffer
	code := run([]string{"-batch", batch, "-keys", "../testdata/keys.json", "-setup", "../testdata/personalize.json", "-reader", "all"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("personalize exited %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "2 records: 2 personalized") {
		t.Errorf("summary: %s", stdout.String())
	}
	audit, err := os.ReadFile(batch + ".audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !bytes.Contains(audit, []byte(`"station":"`+r.Name+`"`)) {
			t.Errorf("no record went through %s:\n%s", r.Name, audit)
		}
	}
	for i, c := range cards {
		for _, a := range c.Applets() {
			if a.State != vcard.Personalized {
				t.Errorf("card %d: applet %X is %v", i, a.AID, a.State)
			}
		}
	}

	// A reader that is not there: the error lists those that are.
	code = run([]string{"-batch", batch, "-keys", "../testdata/keys.json", "-setup", "../testdata/personalize.json", "-reader", "No Such Reader"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `0 "`+rs[0].Name+`"`) {
		t.Errorf("unknown reader: exit %d: %s", code, stderr.String())
	}
}
