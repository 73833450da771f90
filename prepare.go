package perso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Application is an application profile: what a Job loads onto each card
// for one application (package emv for credit/debit, package vsvc for the
// stored-value purse).
//
// Build returns the application's data for one card: its AID and its DGIs
// in the order they are to be stored, secret ones sealed under env.KEK
// (App.AddDGI, App.AddSecret). It leaves the KEK, MAC key and MAC to the
// Preparer. An error that is a *FieldError or wraps ErrBadInput rejects
// the card's record and the batch goes on; any other error (ErrNoSuchKey,
// ErrUnsupported, a failing security module) stops the batch, because
// every following record would fail the same way.
type Application interface {
	// Name identifies the profile in batch headers, in CardData.Apps and in
	// errors, such as "emv" or "vsvc".
	Name() string
	Build(ctx context.Context, env *Env, card *CardData) (*App, error)
}

// Env is what an Application builds with: the security module's
// interfaces and the KEK that protects the application's secrets.
type Env struct {
	KEK       KEKID
	Deriver   KeyDeriver
	Certifier Certifier
	Protector Protector
	// Index is the record's position in the batch, for errors.
	Index int
}

// Counter is a job's card number counter: where a record has no PAN, the
// Preparer makes one from Prefix, the counter's next value and a Luhn check
// digit. Values are taken in input order, each exactly once, rejected
// records included, so no number is ever issued twice; the next value is
// returned in the Summary and stored in the output's trailer.
type Counter struct {
	// Name is the trailer counter's name; default "pan-counter".
	Name string `json:"name,omitempty"`
	// Prefix is the PAN's leading digits (the BIN and any fixed digits).
	Prefix string `json:"prefix"`
	// Length is the PAN's length, check digit included (12 to 19).
	Length int `json:"length"`
	// Next is the next value to use.
	Next uint64 `json:"next"`
}

// name returns the counter's trailer name.
func (c *Counter) name() string {
	if c.Name == "" {
		return "pan-counter"
	}
	return c.Name
}

// take returns the next PAN and advances the counter.
func (c *Counter) take() (string, error) {
	digits := c.Length - 1 - len(c.Prefix)
	if c.Length < 12 || c.Length > 19 || digits < 1 || !allDigits(c.Prefix) {
		return "", fmt.Errorf("perso: counter: prefix %q and length %d make no PAN", c.Prefix, c.Length)
	}
	v := strconv.FormatUint(c.Next, 10)
	if len(v) > digits {
		return "", fmt.Errorf("perso: counter %s exhausted: %d needs more than %d digits", c.name(), c.Next, digits)
	}
	body := c.Prefix + fmt.Sprintf("%0*s", digits, v)
	c.Next++
	return body + string(LuhnDigit(body)), nil
}

// Job is one data preparation run: the applications to add to each card,
// the KEK that protects their secrets, and how to run.
type Job struct {
	Apps []Application
	KEK  KEKID
	// OtherApps names applications that other jobs over the same batch add;
	// a card that asks for one of them is not rejected by this job. A card
	// that asks for an application in neither list is rejected.
	OtherApps []string
	// Counter, when set, supplies PANs for records that have none.
	Counter *Counter
	// StopOnError makes the first rejected record end the run.
	StopOnError bool
	// Workers is the number of records prepared at once; default
	// runtime.NumCPU().
	Workers int
	// InFlight bounds the records read but not yet written, and so the
	// memory a run uses; default 4 * Workers.
	InFlight int
	// Rejects receives every rejected record; nil drops them (the Summary
	// still counts them).
	Rejects RejectSink
	// Progress, when set, is called from one goroutine at most every
	// ProgressEvery (default 200 ms) and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Checkpoint, when set, is called from the writing goroutine after
	// every CheckpointEvery records (default 1000) are accounted for, with
	// the point to restart from; a [ResumableWriter]'s Checkpoint makes
	// the output durable up to it. An error stops the run.
	Checkpoint      func(Checkpoint) error
	CheckpointEvery int
	// Resume continues an interrupted run from its checkpoint: the
	// Preparer reads the first Resume.Input records of the source again
	// without preparing them (to replay the card number counter from the
	// job's Counter.Next and the duplicate check), checks that the counter
	// arrives where the checkpoint says, and goes on from there. The
	// Summary counts the whole run, the checkpoint's records included.
	Resume *Checkpoint
}

// RecordSource is where a run reads records from: a batch [Reader], or an
// adapter over the issuer's export such as [CSVReader].
//
// Next returns the next record, or io.EOF after the last one. An error that
// is an *InputError rejects that input (a bad CSV row) and reading goes on;
// any other error ends the run.
type RecordSource interface {
	Next() (*Record, error)
}

// RecordSink is where a run writes records, in input order: a batch [Writer].
// A sink that also has SetCounter(name string, v uint64) is given the
// job's card number counter before the run returns.
type RecordSink interface {
	Write(*Record) error
}

// InputError reports input that could not be turned into a record: it names
// the input's position (the record index, and for text inputs the line and
// column) and the reason.
type InputError struct {
	Index  int    // zero-based position among the inputs
	Line   int    // 1-based line, 0 when the input has none
	Column string // column or field name, when known
	Err    error
}

func (e *InputError) Error() string {
	var where string
	switch {
	case e.Line > 0 && e.Column != "":
		where = fmt.Sprintf("line %d column %s", e.Line, e.Column)
	case e.Line > 0:
		where = fmt.Sprintf("line %d", e.Line)
	default:
		where = fmt.Sprintf("record %d", e.Index)
	}
	return fmt.Sprintf("perso: input %s: %v", where, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// RecordError is why a record was rejected or a run stopped at it.
type RecordError struct {
	Index int    // the record's zero-based position in the input
	App   string // the application profile, when one failed
	Err   error
}

func (e *RecordError) Error() string {
	if e.App != "" {
		return fmt.Sprintf("perso: record %d: application %s: %v", e.Index, e.App, e.Err)
	}
	return fmt.Sprintf("perso: record %d: %v", e.Index, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Reject is a rejected record as a RejectSink receives it.
type Reject struct {
	Index  int    // zero-based position in the input
	Line   int    // input line, when the input has lines
	PAN    string // masked PAN, when known
	Reason string
	Err    error
}

// RejectSink receives rejected records. A run calls it from one goroutine.
type RejectSink interface {
	Reject(Reject) error
}

// RejectLog writes rejects as JSON lines: {"index":..,"line":..,"pan":..,"reason":..}.
// PANs are masked.
type RejectLog struct {
	enc *json.Encoder
}

// NewRejectLog returns a RejectSink that writes JSON lines to w.
func NewRejectLog(w io.Writer) *RejectLog { return &RejectLog{enc: json.NewEncoder(w)} }

// Reject implements RejectSink.
func (l *RejectLog) Reject(r Reject) error {
	return l.enc.Encode(struct {
		Index  int    `json:"index"`
		Line   int    `json:"line,omitempty"`
		PAN    string `json:"pan,omitempty"`
		Reason string `json:"reason"`
	}{r.Index, r.Line, r.PAN, r.Reason})
}

// Progress is a run's progress.
type Progress struct {
	Done     int // records written or rejected
	Written  int
	Rejected int
	Elapsed  time.Duration
	Rate     float64 // records per second so far
}

// Summary accounts for every record of a run: Read == Written + Rejected.
type Summary struct {
	Read     int
	Written  int
	Rejected int
	// Counter is the card number counter's next value, when the job has one.
	Counter uint64
	Elapsed time.Duration
}

// Preparer is the issuer side of personalization (WO 99/19846; DESIGN
// section 3): for each record of a source, per application of a Job, it
// derives the card keys, generates the card key pair and certificates the
// profile needs, seals every secret under the KEK, MACs each application,
// and merges the result into the record, leaving every other MIC group and
// application byte for byte as it came.
//
// A Preparer is safe for concurrent use; each Run is independent.
type Preparer struct {
	Deriver   KeyDeriver
	Certifier Certifier
	Protector Protector
}

// item is one record on its way through a run.
type item struct {
	index int
	line  int
	rec   *Record
	card  *CardData
	apps  []Application
	err   error // set when the record is rejected before preparation
	fatal error // set when preparation failed in a way that stops the run
	// counter is the card number counter's next value after this record.
	counter uint64
}

// Run prepares every record of src and writes the results to dst in input
// order. It returns the summary and, when the run stopped early, why: an
// error of src or dst, a security module failure (a *RecordError), the
// first rejection with StopOnError, or ctx's error. After cancellation the
// records already read are finished and written, so dst holds a valid
// prefix of the output and the summary and counter describe exactly it.
func (p *Preparer) Run(ctx context.Context, job *Job, src RecordSource, dst RecordSink) (*Summary, error) {
	if len(job.Apps) == 0 {
		return nil, errors.New("perso: job has no applications")
	}
	if !job.KEK.Scheme.Valid() {
		return nil, fmt.Errorf("perso: job KEK %s: unknown scheme", job.KEK)
	}
	workers := job.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	inFlight := job.InFlight
	if inFlight < workers {
		inFlight = 4 * workers
	}
	start := time.Now()
	sum := &Summary{}
	if job.Counter != nil {
		sum.Counter = job.Counter.Next
	}

	// Work goes on with a context that outlives a cancellation, so that
	// records already read are finished; stop ends the reading early.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }

	slots := make(chan struct{}, inFlight)
	todo := make(chan *item, workers)
	done := make(chan *item, inFlight)
	var readErr error

	first := 0
	if job.Resume != nil {
		first = job.Resume.Input
		sum.Written, sum.Rejected = job.Resume.Written, job.Resume.Rejected
	}
	go func() { // reader
		defer close(todo)
		r := newIntake(job)
		for index := 0; index < first; index++ {
			if _, err := r.next(src, index); err != nil {
				if err == io.EOF {
					err = fmt.Errorf("perso: resuming: the input has %d records, the checkpoint %d", index, first)
				}
				readErr = err
				return
			}
		}
		if first > 0 && job.Counter != nil && job.Counter.Next != job.Resume.Counter {
			readErr = fmt.Errorf("perso: resuming: the card number counter replays to %d, the checkpoint says %d: not the same job and input", job.Counter.Next, job.Resume.Counter)
			return
		}
		for index := first; ; index++ {
			select {
			case slots <- struct{}{}:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			it, err := r.next(src, index)
			if err != nil {
				<-slots
				if err != io.EOF {
					readErr = err
				}
				if job.Counter != nil {
					sum.Counter = job.Counter.Next
				}
				return
			}
			if job.Counter != nil {
				sum.Counter = job.Counter.Next
				it.counter = job.Counter.Next
			}
			todo <- it
		}
	}()

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range todo {
				if it.err == nil {
					p.prepare(work, job, it)
				}
				done <- it
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// The collector writes in input order.
	var (
		pending  = map[int]*item{}
		next     = first
		runErr   error
		lastTick time.Time
		sinceCP  int
	)
	cpEvery := job.CheckpointEvery
	if cpEvery <= 0 {
		cpEvery = 1000
	}
	every := job.ProgressEvery
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	report := func(force bool) {
		if job.Progress == nil {
			return
		}
		now := time.Now()
		if !force && now.Sub(lastTick) < every {
			return
		}
		lastTick = now
		el := now.Sub(start)
		pr := Progress{Done: sum.Written + sum.Rejected, Written: sum.Written, Rejected: sum.Rejected, Elapsed: el}
		if el > 0 {
			pr.Rate = float64(pr.Done) / el.Seconds()
		}
		job.Progress(pr)
	}
	for it := range done {
		pending[it.index] = it
		for {
			it, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if runErr != nil {
				continue // drain what is in flight; nothing more is written
			}
			if err := p.finish(job, it, dst, sum); err != nil {
				runErr = err
				halt()
				continue
			}
			if sinceCP++; job.Checkpoint != nil && sinceCP >= cpEvery {
				sinceCP = 0
				cp := Checkpoint{Input: it.index + 1, Written: sum.Written, Rejected: sum.Rejected, Counter: it.counter}
				if err := job.Checkpoint(cp); err != nil {
					runErr = fmt.Errorf("perso: checkpoint after record %d: %w", it.index, err)
					halt()
				}
			}
			report(false)
		}
	}
	if runErr == nil {
		runErr = readErr
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	if job.Counter != nil {
		if cs, ok := dst.(interface{ SetCounter(string, uint64) }); ok {
			cs.SetCounter(job.Counter.name(), sum.Counter)
		}
	}
	sum.Read = sum.Written + sum.Rejected
	sum.Elapsed = time.Since(start)
	report(true)
	return sum, runErr
}

// finish writes or rejects one prepared record and counts it.
func (p *Preparer) finish(job *Job, it *item, dst RecordSink, sum *Summary) error {
	if it.fatal != nil {
		return it.fatal
	}
	if it.err != nil {
		sum.Rejected++
		rej := Reject{Index: it.index, Line: it.line, Reason: it.err.Error(), Err: it.err}
		if it.card != nil {
			rej.PAN = MaskPAN(it.card.PAN)
		}
		if job.Rejects != nil {
			if err := job.Rejects.Reject(rej); err != nil {
				return fmt.Errorf("perso: writing reject of record %d: %w", it.index, err)
			}
		}
		if job.StopOnError {
			return it.err
		}
		return nil
	}
	if err := dst.Write(it.rec); err != nil {
		return fmt.Errorf("perso: writing record %d: %w", it.index, err)
	}
	sum.Written++
	return nil
}

// prepare builds and adds each application of the job to the record.
func (p *Preparer) prepare(ctx context.Context, job *Job, it *item) {
	env := &Env{KEK: job.KEK, Deriver: p.Deriver, Certifier: p.Certifier, Protector: p.Protector, Index: it.index}
	for _, a := range it.apps {
		app, err := a.Build(ctx, env, it.card)
		if err == nil {
			err = p.seal(ctx, job, it.rec, app)
		}
		if err != nil {
			rerr := &RecordError{Index: it.index, App: a.Name(), Err: err}
			var fe *FieldError
			if errors.As(err, &fe) || errors.Is(err, ErrBadInput) {
				it.err = rerr
			} else {
				it.fatal = rerr
			}
			return
		}
	}
}

// seal sets the application's KEK, MAC key and MAC and puts it into the
// record.
func (p *Preparer) seal(ctx context.Context, job *Job, rec *Record, app *App) error {
	if cd, err := rec.Chip(); err != nil {
		return fmt.Errorf("%w: chip data: %v", ErrBadInput, err)
	} else if cd != nil {
		if _, ok := cd.App(app.AID); ok {
			return fmt.Errorf("%w: application %X is already in the record", ErrBadInput, app.AID)
		}
	}
	app.KEK = job.KEK
	mk, err := p.Protector.NewMACKey(ctx, job.KEK)
	if err != nil {
		return fmt.Errorf("MAC key: %w", err)
	}
	app.MACKey = mk
	app.MAC = make([]byte, MACLen) // placeholder so that the encoding has its final shape
	in, err := app.MACInput()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	mac, err := p.Protector.MAC(ctx, mk, in)
	if err != nil {
		return fmt.Errorf("MAC: %w", err)
	}
	if len(mac) != MACLen {
		return fmt.Errorf("MAC of %d bytes from the security module", len(mac))
	}
	app.MAC = mac
	if err := rec.PutApp(app); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return nil
}

// intake reads records and decides, in input order, what is wrong with
// them before any work is spent: card data, counter, duplicates,
// applications.
type intake struct {
	job *Job
	// seen holds every PAN and PSN of the batch so far: PANs of up to 16
	// digits packed in one uint64 (the common case, 8 bytes an entry),
	// longer ones in long.
	seen map[uint64]struct{}
	long map[panKey]struct{}
}

// panKey is a PAN (up to 19 digits fits a uint64) with its length and PSN.
type panKey struct {
	pan uint64
	n   uint8
	psn uint8
}

func newIntake(job *Job) *intake {
	return &intake{job: job, seen: map[uint64]struct{}{}, long: map[panKey]struct{}{}}
}

// seenBefore records a PAN and PSN and reports whether the batch had them.
// pan is 12 to 19 digits and psn at most 99 (Validate checked).
func (in *intake) seenBefore(pan string, psn uint8) bool {
	v, _ := strconv.ParseUint(pan, 10, 64)
	if len(pan) <= 16 {
		// (PAN * 100 + PSN) * 5 + (length - 12) is unique and below 5e18.
		k := (v*100+uint64(psn))*5 + uint64(len(pan)-12)
		_, dup := in.seen[k]
		in.seen[k] = struct{}{}
		return dup
	}
	k := panKey{pan: v, n: uint8(len(pan)), psn: psn}
	_, dup := in.long[k]
	in.long[k] = struct{}{}
	return dup
}

func (in *intake) next(src RecordSource, index int) (*item, error) {
	rec, err := src.Next()
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			ie.Index = index
			return &item{index: index, line: ie.Line, err: &RecordError{Index: index, Err: ie}}, nil
		}
		return nil, err
	}
	it := &item{index: index, rec: rec}
	if l, ok := src.(interface{ Line() int }); ok {
		it.line = l.Line()
	}
	reject := func(err error) (*item, error) {
		it.err = &RecordError{Index: index, Err: err}
		return it, nil
	}
	card, err := CardDataOf(rec)
	if err != nil {
		return reject(err)
	}
	it.card = card
	if card.PAN == "" && in.job.Counter != nil {
		pan, err := in.job.Counter.take()
		if err != nil {
			return nil, err
		}
		card.PAN = pan
		g, err := card.Group()
		if err != nil {
			return reject(err)
		}
		if err := rec.SetGroup(MICCardData, g); err != nil {
			return reject(err)
		}
	}
	if err := card.Validate(); err != nil {
		return reject(err)
	}
	if in.seenBefore(card.PAN, card.PSN) {
		return reject(fmt.Errorf("%w: PAN %s PSN %02d seen before in this batch", ErrBadInput, MaskPAN(card.PAN), card.PSN))
	}
	if it.apps, err = in.selectApps(card); err != nil {
		return reject(err)
	}
	return it, nil
}

// selectApps returns the job's applications the card asks for.
func (in *intake) selectApps(card *CardData) ([]Application, error) {
	if len(card.Apps) == 0 {
		return in.job.Apps, nil
	}
	var out []Application
	for _, name := range card.Apps {
		i := slices.IndexFunc(in.job.Apps, func(a Application) bool { return a.Name() == name })
		switch {
		case i >= 0:
			out = append(out, in.job.Apps[i])
		case slices.Contains(in.job.OtherApps, name):
		default:
			return nil, fmt.Errorf("%w: unknown application %q", ErrBadInput, name)
		}
	}
	return out, nil
}
