// Command personalize personalizes a batch file: it checks the whole file,
// then loads every good record onto a card, and writes the audit log.
//
//	go run ./examples/personalize -batch /tmp/batch.prso -keys examples/testdata/keys.json \
//	    -setup examples/testdata/personalize.json [-stations 2 | -reader all] [-audit audit.jsonl]
//
// The cards are in-process virtual cards (reader/vcard) with the
// demonstration card keys. With -reader the cards are in PC/SC readers,
// one station per reader working in parallel, fed by hand: -reader takes
// a reader's name or index, a comma-separated list of them, or all
// (examples/vcards puts virtual cards in pcscd's vpcd readers). With
// -pkcs11 the security module is the PKCS#11 token the environment names.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/examples/internal/cli"
	"github.com/cardperso/perso/examples/internal/jobfile"
	_ "github.com/cardperso/perso/examples/internal/p11"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("personalize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf cli.ModuleFlags
	mf.Register(fs)
	batchPath := fs.String("batch", "", "batch file")
	setupPath := fs.String("setup", "", "personalization setup (JSON)")
	auditPath := fs.String("audit", "", "audit log (JSON lines); default BATCH.audit.jsonl")
	stations := fs.Int("stations", 2, "virtual chip stations working in parallel")
	readers := fs.String("reader", "", "personalize through PC/SC: a reader's name or index, a comma-separated list, or all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *batchPath == "" || *setupPath == "" {
		fmt.Fprintln(stderr, "usage: personalize -batch BATCH (-keys KEYS.json | -pkcs11) -setup SETUP.json [-stations N | -reader READERS] [-audit FILE]")
		return 2
	}
	if *auditPath == "" {
		*auditPath = *batchPath + ".audit.jsonl"
	}
	if err := personalize(*batchPath, *setupPath, *auditPath, *stations, *readers, &mf, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "personalize: %v\n", err)
		return 1
	}
	return 0
}

func personalize(batchPath, setupPath, auditPath string, nStations int, readers string, mf *cli.ModuleFlags, stdout, stderr io.Writer) error {
	setup, err := jobfile.ReadPerso(setupPath)
	if err != nil {
		return err
	}
	cc, err := setup.ChipConfig()
	if err != nil {
		return err
	}
	mod, closeMod, err := mf.Open(stderr)
	if err != nil {
		return err
	}
	defer closeMod()
	cc.Translator = mod
	chip, err := perso.NewChipModule(cc)
	if err != nil {
		return err
	}
	machine := &perso.RecordingModule{}
	var reg perso.Registry
	reg.Register(perso.MICChip, chip)
	reg.Register(perso.MICEmboss, machine)
	reg.Register(perso.MICMagStripe, machine)
	reg.Register(perso.MICGraphics, machine)

	batch, err := os.Open(batchPath)
	if err != nil {
		return err
	}
	defer batch.Close()
	af, err := os.Create(auditPath)
	if err != nil {
		return err
	}
	defer af.Close()
	pz := &perso.Personalizer{Translator: mod, Modules: &reg, Audit: af}
	var bar *cli.Bar
	if f, ok := stderr.(*os.File); ok && cli.IsTerminal(f) {
		bar = &cli.Bar{W: stderr}
		pz.Progress = func(p perso.PersoSummary) { bar.Draw(p.Records, p.Rejected+p.Failed) }
	}
	var sts []perso.Station
	if readers != "" {
		rs, closeAll, err := readerStations(readers)
		if err != nil {
			return err
		}
		defer closeAll()
		sts = rs
	}
	for i := 0; readers == "" && i < max(nStations, 1); i++ {
		sts = append(sts, vcard.NewStation(fmt.Sprintf("vcard-%d", i+1), false, virtualCards(i, cc.SCP)))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := pz.Run(ctx, batch, sts...)
	if bar != nil {
		bar.End()
	}
	if sum != nil {
		fmt.Fprintf(stdout, "%d records: %d personalized, %d rejected, %d failed in %v (%.0f cards/s, %.1f APDUs/card)\naudit log: %s\n",
			sum.Records, sum.Personalized, sum.Rejected, sum.Failed, sum.Elapsed.Round(time.Millisecond),
			float64(sum.Records)/max(sum.Elapsed.Seconds(), 1e-9), float64(sum.APDUs)/float64(max(sum.Records, 1)), auditPath)
	}
	return err
}

// virtualCards makes blank virtual cards with the demonstration card keys
// (KMC 404142..4F, diversified as the setup says) and both applets.
func virtualCards(station int, scp perso.SCP) func(n int) (vcard.Config, error) {
	return func(n int) (vcard.Config, error) {
		keys := vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS}
		if scp.Version == 3 {
			keys.Method = perso.MethodSCP03KDF
		}
		return vcard.Config{
			Keys:  keys,
			KDD:   []byte{0x47, 0x61, byte(station), 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 1, 2},
			SCP:   scp,
			EMV:   [][]byte{{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}},
			Purse: vsvc.DefaultAID,
		}, nil
	}
}
