// Command prepare runs a data preparation job: it reads card records from a
// CSV export or a batch file, prepares every application of the job with a
// security module, and writes a batch file for the bureau.
//
//	go run ./examples/prepare -job examples/testdata/job.json -keys examples/testdata/keys.json \
//	    -in examples/testdata/cards.csv -out /tmp/batch.prso
//
// With -pkcs11 the security module is the PKCS#11 token the environment
// names (PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN, PERSO_PKCS11_PIN).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/examples/internal/cli"
	"github.com/cardperso/perso/examples/internal/jobfile"
	_ "github.com/cardperso/perso/examples/internal/p11"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf cli.ModuleFlags
	mf.Register(fs)
	jobPath := fs.String("job", "", "job file (JSON)")
	in := fs.String("in", "", "input: a CSV export (header row) or a batch file")
	out := fs.String("out", "", "output batch file")
	rejects := fs.String("rejects", "", "reject file (JSON lines); default OUT.rejects.jsonl")
	workers := fs.Int("workers", 0, "records prepared at once; default the job's, or the CPU count")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *jobPath == "" || *in == "" || *out == "" {
		fmt.Fprintln(stderr, "usage: prepare -job JOB.json (-keys KEYS.json | -pkcs11) -in INPUT -out OUTPUT")
		return 2
	}
	if err := prepare(*jobPath, *in, *out, *rejects, *workers, &mf, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "prepare: %v\n", err)
		return 1
	}
	return 0
}

func prepare(jobPath, in, out, rejectPath string, workers int, mf *cli.ModuleFlags, stdout, stderr io.Writer) error {
	jf, err := jobfile.Read(jobPath)
	if err != nil {
		return err
	}
	job, names, err := jf.Build()
	if err != nil {
		return err
	}
	if workers > 0 {
		job.Workers = workers
	}
	mod, closeMod, err := mf.Open(stderr)
	if err != nil {
		return err
	}
	defer closeMod()
	kcv, err := kekCheckValue(mod, job.KEK)
	if err != nil {
		return err
	}

	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	counted := &countingReader{r: f}
	br := bufio.NewReader(counted)
	magic, _ := br.Peek(len(perso.Magic))
	hdr := &perso.Header{Created: time.Now(), Issuer: job.KEK.Issuer, Profiles: names, KEKs: []perso.KEKCheck{{KEK: job.KEK, KCV: kcv}}}
	if _, err := rand.Read(hdr.BatchID[:]); err != nil {
		return err
	}
	var src perso.RecordSource
	if string(magic) == perso.Magic {
		r, err := perso.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		ih := r.Header()
		hdr.BatchID, hdr.Issuer = ih.BatchID, ih.Issuer
		for _, p := range ih.Profiles {
			if !slices.Contains(hdr.Profiles, p) {
				hdr.Profiles = append(hdr.Profiles, p)
			}
		}
		for _, k := range ih.KEKs {
			if _, ok := hdr.LookupKEK(k.KEK); !ok {
				hdr.KEKs = append(hdr.KEKs, k)
			}
		}
		src = r
	} else {
		src = perso.NewCSVReader(br)
	}

	fw, err := perso.CreateFile(out, hdr)
	if err != nil {
		return err
	}
	if rejectPath == "" {
		rejectPath = out + ".rejects.jsonl"
	}
	rf, err := os.Create(rejectPath)
	if err != nil {
		fw.Abort()
		return err
	}
	defer rf.Close()
	job.Rejects = perso.NewRejectLog(rf)

	var bar *cli.Bar
	if tf, ok := stderr.(*os.File); ok && cli.IsTerminal(tf) {
		bar = &cli.Bar{W: stderr}
		size := st.Size()
		job.Progress = func(p perso.Progress) {
			if size > 0 {
				bar.Total = int(float64(p.Done) * float64(size) / float64(max(counted.n, 1)))
			}
			bar.Draw(p.Done, p.Rejected)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	prep := &perso.Preparer{Deriver: mod, Certifier: mod, Protector: mod}
	sum, runErr := prep.Run(ctx, job, src, fw)
	if bar != nil {
		bar.End()
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		fw.Abort()
		return fmt.Errorf("%w (nothing written to %s)", runErr, out)
	}
	// A cancelled run still closes a valid file holding what was done.
	if err := fw.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "read %d, written %d, rejected %d in %v (%.0f records/s)\n",
		sum.Read, sum.Written, sum.Rejected, sum.Elapsed.Round(time.Millisecond), float64(sum.Read)/max(sum.Elapsed.Seconds(), 1e-9))
	if job.Counter != nil {
		fmt.Fprintf(stdout, "card number counter: next %d (in the trailer)\n", sum.Counter)
	}
	fmt.Fprintf(stdout, "output: %s\nrejects: %s\n", out, rejectPath)
	return runErr
}

// kekCheckValue asks the module for the KEK's check value.
func kekCheckValue(m cli.Module, id perso.KEKID) ([3]byte, error) {
	kc, ok := m.(perso.KEKChecker)
	if !ok {
		return [3]byte{}, errors.New("the security module does not report KEK check values")
	}
	return kc.KEKCheckValue(context.Background(), id)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
