package perso_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/hsm/hsmtest"
	"github.com/cardperso/perso/hsm/soft"
)

var prepBatchRecords = flag.Int("batch-records", 1_000_000, "records per run of BenchmarkPreparerBatch")

// clearApp is the most trivial profile: two clear DGIs from the card data,
// no key. The Preparer still makes the application's MAC key and MAC, and
// the Writer checks and frames the record, so it measures the pipeline.
type clearApp struct{ aid []byte }

func (a *clearApp) Name() string { return "clear" }

func (a *clearApp) Build(ctx context.Context, env *perso.Env, card *perso.CardData) (*perso.App, error) {
	var b perso.Builder
	b.AddTLV(0x70, func(b *perso.Builder) {
		b.AddPrimitive(0x5F20, []byte(card.Name))
		b.AddPrimitive(0x5F24, []byte(card.Expiry))
	})
	rec, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	app := &perso.App{AID: a.aid}
	app.AddDGI(0x0101, rec)
	app.AddDGI(0x9010, []byte{3, 3})
	return app, nil
}

// cardSource hands out n fresh card records with distinct 16-digit PANs,
// made as they are read so that a long run holds no input in memory.
type cardSource struct {
	n, i int
	buf  []byte
}

func (s *cardSource) Next() (*perso.Record, error) {
	if s.i >= s.n {
		return nil, io.EOF
	}
	s.buf = strconv.AppendUint(append(s.buf[:0], "47617"...), uint64(1_000_000_000+s.i), 10) // 16 digits with the check digit
	s.i++
	body := string(s.buf)
	return perso.RecordForCard(&perso.CardData{PAN: body + string(perso.LuhnDigit(body)), PSN: 1, Expiry: "301231", Name: "BENCH/CARD", ServiceCode: "201"})
}

// benchWriter is a batch Writer to io.Discard for a run of the job.
func benchWriter(b *testing.B, m *soft.Module, job *perso.Job) *perso.Writer {
	kcv, err := m.KEKCheckValue(context.Background(), job.KEK)
	if err != nil {
		b.Fatal(err)
	}
	h := &perso.Header{Created: time.Unix(1_700_000_000, 0), Issuer: job.KEK.Issuer,
		Profiles: []string{job.Apps[0].Name()}, KEKs: []perso.KEKCheck{{KEK: job.KEK, KCV: kcv}}}
	w, err := perso.NewWriter(io.Discard, h)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// benchProfiles are the profiles the Preparer benchmarks run: clear, and
// testApp, which derives one key and seals it.
func benchProfiles() []perso.Application {
	aid := []byte{0xA0, 0, 0, 0, 0x99, 1}
	return []perso.Application{&clearApp{aid: aid}, &testApp{name: "derived", aid: aid}}
}

// BenchmarkPreparer runs the Preparer with the software module over fresh
// records into a batch Writer: records per second of wall time, and per
// CPU second (the rate of one busy core, which a loaded machine does not
// distort), on one worker and on every core. An op is one record.
func BenchmarkPreparer(b *testing.B) {
	for _, app := range benchProfiles() {
		for _, workers := range []int{1, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("%s/workers=%d", app.Name(), workers), func(b *testing.B) {
				m := testModule(b)
				job := &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK, Workers: workers}
				w := benchWriter(b, m, job)
				p := &perso.Preparer{Deriver: m, Certifier: m, Protector: m}
				b.ReportAllocs()
				b.ResetTimer()
				cpu0, _ := processCPU()
				sum, err := p.Run(context.Background(), job, &cardSource{n: b.N}, w)
				if err != nil {
					b.Fatal(err)
				}
				cpu, ok := processCPU()
				b.StopTimer()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if sum.Written != b.N {
					b.Fatalf("%d records written of %d", sum.Written, b.N)
				}
				b.ReportMetric(float64(sum.Written)/b.Elapsed().Seconds(), "records/s")
				if ok && cpu > cpu0 {
					b.ReportMetric(float64(sum.Written)/(cpu-cpu0).Seconds(), "records/cpu-s")
				}
			})
		}
	}
}

// peakSampler records the largest heap (live and not yet swept objects)
// and the largest total memory the runtime has mapped, sampled every
// millisecond through runtime/metrics, which does not stop the world.
type peakSampler struct {
	stop     chan struct{}
	done     sync.WaitGroup
	heap, os uint64
}

func startPeakSampler() *peakSampler {
	p := &peakSampler{stop: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	read := func() {
		metrics.Read(samples)
		p.heap = max(p.heap, samples[0].Value.Uint64())
		p.os = max(p.os, samples[1].Value.Uint64())
	}
	read()
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return p
}

func (p *peakSampler) finish() (heap, os uint64) {
	close(p.stop)
	p.done.Wait()
	return p.heap, p.os
}

// BenchmarkPreparerBatch prepares one batch of -batch-records records (one
// million by default) on every core into a batch Writer and reports the
// peak heap and the peak memory the runtime took from the system, in MiB,
// with the CPU time per record. Each op is a whole batch, so run it with
// -benchtime 1x. It is skipped with -short.
func BenchmarkPreparerBatch(b *testing.B) {
	if testing.Short() {
		b.Skip("a batch of a million records")
	}
	for _, app := range benchProfiles() {
		b.Run(fmt.Sprintf("%s/records=%d", app.Name(), *prepBatchRecords), func(b *testing.B) {
			m := testModule(b)
			p := &perso.Preparer{Deriver: m, Certifier: m, Protector: m}
			var heap, sys uint64
			var cpu time.Duration
			for b.Loop() {
				job := &perso.Job{Apps: []perso.Application{app}, KEK: hsmtest.KEK}
				w := benchWriter(b, m, job)
				runtime.GC()
				peak := startPeakSampler()
				cpu0, _ := processCPU()
				sum, err := p.Run(context.Background(), job, &cardSource{n: *prepBatchRecords}, w)
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				cpu1, _ := processCPU()
				h, s := peak.finish()
				heap, sys, cpu = max(heap, h), max(sys, s), cpu+cpu1-cpu0
				if sum.Written != *prepBatchRecords {
					b.Fatalf("%d records written of %d", sum.Written, *prepBatchRecords)
				}
			}
			const mib = 1 << 20
			b.ReportMetric(float64(heap)/mib, "peak-heap-MiB")
			b.ReportMetric(float64(sys)/mib, "peak-sys-MiB")
			b.ReportMetric(float64(b.N)*float64(*prepBatchRecords)/b.Elapsed().Seconds(), "records/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/(float64(b.N)*float64(*prepBatchRecords)), "cpu-ns/record")
			}
		})
	}
}
