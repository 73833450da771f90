// Command quickstart runs the whole job with embedded defaults and no
// setup: it makes a demonstration issuer in the software security module,
// prepares a batch of cards with an EMV application (DDA) and a
// stored-value purse, personalizes every card onto in-process virtual
// cards, checks each card as a terminal would, and prints a summary and
// where the files are.
//
//	go run ./examples/quickstart [-cards 300] [-dir DIR]
//
// The software security module and its keys are for demonstration only.
package main

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/emv"
	"github.com/cardperso/perso/examples/internal/cli"
	"github.com/cardperso/perso/examples/internal/jobfile"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cards := fs.Int("cards", 300, "number of cards")
	dir := fs.String("dir", "", "directory for the files; default a new temporary directory")
	stations := fs.Int("stations", runtime.NumCPU(), "virtual chip stations working in parallel")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := quickstart(*cards, *dir, *stations, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", err)
		return 1
	}
	return 0
}

func quickstart(n int, dir string, nStations int, stdout, stderr io.Writer) error {
	if n < 1 {
		return fmt.Errorf("-cards %d: want at least 1", n)
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "perso-quickstart-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := context.Background()

	fmt.Fprintln(stdout, "1. Demonstration issuer (software security module, test keys)")
	t0 := time.Now()
	s, err := demo.New(demo.Options{Seed: nil})
	if err != nil {
		return err
	}
	cli.Report(stdout, s.Module.Capabilities())
	fmt.Fprintf(stdout, "   CA %X/%02X, issuer key %d bits, KEK %s (KCV %X), in %v\n",
		demo.CARID[:], demo.CAIndex, s.IssuerPublicKey().N.BitLen(), demo.KEK, s.KEKKCV[:], time.Since(t0).Round(time.Millisecond))

	paths := map[string]string{}
	for _, f := range []string{"keys.json", "job.json", "personalize.json", "cards.csv", "batch.prso", "rejects.jsonl", "audit.jsonl"} {
		paths[f] = filepath.Join(dir, f)
	}
	if err := writeSetup(s, paths, n); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "2. Data preparation: %d cards, EMV (DDA) and stored-value purse\n", n)
	jf, err := jobfile.Read(paths["job.json"])
	if err != nil {
		return err
	}
	job, names, err := jf.Build()
	if err != nil {
		return err
	}
	in, err := os.Open(paths["cards.csv"])
	if err != nil {
		return err
	}
	defer in.Close()
	hdr := s.Header(names...)
	if _, err := rand.Read(hdr.BatchID[:]); err != nil {
		return err
	}
	fw, err := perso.CreateFile(paths["batch.prso"], hdr)
	if err != nil {
		return err
	}
	rf, err := os.Create(paths["rejects.jsonl"])
	if err != nil {
		fw.Abort()
		return err
	}
	defer rf.Close()
	job.Rejects = perso.NewRejectLog(rf)
	bar := progress(stderr, n)
	if bar != nil {
		job.Progress = func(p perso.Progress) { bar.Draw(p.Done, p.Rejected) }
	}
	psum, err := s.Preparer().Run(ctx, job, perso.NewCSVReader(in), fw)
	if bar != nil {
		bar.End()
	}
	if err != nil {
		fw.Abort()
		return err
	}
	if err := fw.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   read %d, written %d, rejected %d in %v (%.0f cards/s)\n",
		psum.Read, psum.Written, psum.Rejected, psum.Elapsed.Round(time.Millisecond), float64(psum.Read)/psum.Elapsed.Seconds())

	fmt.Fprintf(stdout, "3. Personalization onto virtual cards (%d stations), each card checked as a terminal would\n", nStations)
	pf, err := jobfile.ReadPerso(paths["personalize.json"])
	if err != nil {
		return err
	}
	cc, err := pf.ChipConfig()
	if err != nil {
		return err
	}
	cc.Translator = s.Module
	chip, err := perso.NewChipModule(cc)
	if err != nil {
		return err
	}
	machine := &perso.RecordingModule{}
	var reg perso.Registry
	reg.Register(perso.MICChip, chip)
	reg.Register(perso.MICEmboss, machine)
	reg.Register(perso.MICMagStripe, machine)
	af, err := os.Create(paths["audit.jsonl"])
	if err != nil {
		return err
	}
	defer af.Close()
	pz := &perso.Personalizer{Translator: s.Module, Modules: &reg, Audit: af, Verify: s.Verifier()}
	if bar := progress(stderr, psum.Written); bar != nil {
		pz.Progress = func(p perso.PersoSummary) { bar.Draw(p.Records, p.Rejected+p.Failed) }
		defer bar.End()
	}
	var sts []perso.Station
	for i := 0; i < max(nStations, 1); i++ {
		sts = append(sts, vcard.NewStation(fmt.Sprintf("vcard-%d", i+1), false, cardConfig(i)))
	}
	batch, err := os.Open(paths["batch.prso"])
	if err != nil {
		return err
	}
	defer batch.Close()
	sum, err := pz.Run(ctx, batch, sts...)
	if err != nil {
		return err
	}
	verified := ""
	if pz.Verify != nil {
		verified = " and verified"
	}
	fmt.Fprintf(stdout, "   %d records: %d personalized%s, %d rejected, %d failed, in %v (%.0f cards/s, %.1f APDUs/card)\n",
		sum.Records, sum.Personalized, verified, sum.Rejected, sum.Failed, sum.Elapsed.Round(time.Millisecond),
		float64(sum.Records)/sum.Elapsed.Seconds(), float64(sum.APDUs)/float64(max(sum.Records, 1)))

	fmt.Fprintf(stdout, "\nFiles in %s:\n", dir)
	for _, f := range []struct{ name, what string }{
		{"keys.json", "the demonstration keys (software module key file)"},
		{"job.json", "the data preparation job"},
		{"cards.csv", "the issuer's card export"},
		{"batch.prso", "the prepared batch (go run ./examples/inspect " + paths["batch.prso"] + ")"},
		{"rejects.jsonl", "records refused by data preparation"},
		{"personalize.json", "the bureau's personalization setup"},
		{"audit.jsonl", "the personalization audit log, one line per card"},
	} {
		fmt.Fprintf(stdout, "  %-17s %s\n", f.name, f.what)
	}
	if sum.Personalized != psum.Written || psum.Read != n {
		return fmt.Errorf("%d of %d cards personalized", sum.Personalized, n)
	}
	return nil
}

func progress(w io.Writer, total int) *cli.Bar {
	if f, ok := w.(*os.File); ok && cli.IsTerminal(f) {
		return &cli.Bar{W: w, Total: total}
	}
	return nil
}

// cardConfig makes the virtual cards of a station: SCP02 i=55 card keys
// diversified from the demonstration KMC with EMV CPS, a card serial
// number in the KDD, the EMV and purse applets installed.
func cardConfig(station int) func(n int) (vcard.Config, error) {
	return func(n int) (vcard.Config, error) {
		kdd := []byte{0x47, 0x61, byte(station), 0x00, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0x01, 0x02}
		return vcard.Config{
			Keys:  vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS},
			KDD:   kdd,
			SCP:   perso.SCP{Version: 2, Param: 0x55},
			EMV:   [][]byte{{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}},
			Purse: vsvc.DefaultAID,
		}, nil
	}
}

// writeSetup writes the key file, job file, personalization setup and the
// card export.
func writeSetup(s *demo.Setup, paths map[string]string, n int) error {
	kf, err := os.OpenFile(paths["keys.json"], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := s.Module.WriteKeyFile(kf); err != nil {
		kf.Close()
		return err
	}
	if err := kf.Close(); err != nil {
		return err
	}
	ec := s.EMVConfig(emv.ODADDA)
	pc := s.PurseConfig()
	job := &jobfile.Job{KEK: jobfile.KEKOf(demo.KEK), Apps: []jobfile.App{{Profile: "emv", EMV: &ec}, {Profile: "vsvc", VSVC: &pc}}}
	if err := job.Write(paths["job.json"]); err != nil {
		return err
	}
	pz := &jobfile.Perso{KMC: demo.KMC, Diversification: "CPS", SCP: "02/55", Level: "cmac+cdec", Verify: true}
	if err := pz.Write(paths["personalize.json"]); err != nil {
		return err
	}
	return writeCards(paths["cards.csv"], n)
}

var names = []string{"ADA LOVELACE", "ALAN TURING", "GRACE HOPPER", "EDSGER DIJKSTRA", "BARBARA LISKOV", "DONALD KNUTH", "KATHERINE JOHNSON", "CLAUDE SHANNON"}

// writeCards writes n cards as a card management system would export them.
func writeCards(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"pan", "psn", "expiry", "effective", "name", "service_code", "discretionary", "emboss1", "emboss2", "balance"})
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("%s%05d", demo.PANPrefix, i)
		pan := body + string(perso.LuhnDigit(body))
		name := names[i%len(names)]
		w.Write([]string{pan, "01", "3012", "2512", name, "201", "00000", spaced(pan), name, fmt.Sprint(i % 5000)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func spaced(pan string) string {
	var out []byte
	for i := 0; i < len(pan); i++ {
		if i > 0 && i%4 == 0 {
			out = append(out, ' ')
		}
		out = append(out, pan[i])
	}
	return string(out)
}
