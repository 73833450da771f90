package perso

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Station is one chip personalization station of a machine: a reader that
// a card feeder fills, or a maker of virtual cards.
//
// Insert blocks until the next blank card is in the station and returns a
// transport to it, or an error if the station cannot give one (the
// station then takes no further record). Eject ends the card's session and
// sends the card on: ok is false for a card that failed, which a machine
// diverts to its reject hopper. A Station is used by one goroutine.
type Station interface {
	Name() string
	Insert(ctx context.Context) (Transport, error)
	Eject(t Transport, ok bool) error
}

// Outcomes of a record in the audit log.
const (
	OutcomePersonalized = "personalized"
	OutcomeRejected     = "rejected" // refused before any card was touched
	OutcomeFailed       = "failed"   // a card was touched and did not complete
)

// AuditEntry is one record's line in the audit log (JSON): its outcome and
// what a bureau's audit trail needs, with the PAN masked and no secret.
type AuditEntry struct {
	Index    int      `json:"index"`
	PAN      string   `json:"pan,omitempty"`
	Card     string   `json:"card,omitempty"`
	Station  string   `json:"station,omitempty"`
	Apps     []string `json:"apps,omitempty"`
	Outcome  string   `json:"outcome"`
	Reason   string   `json:"reason,omitempty"`
	SW       string   `json:"sw,omitempty"`
	APDU     int      `json:"apdu,omitempty"` // the failing APDU's number in the card session
	APDUs    int      `json:"apdus"`
	Duration float64  `json:"duration_ms"`
}

// PersoSummary accounts for every record of a batch:
// Records == Personalized + Rejected + Failed.
type PersoSummary struct {
	Records      int
	Personalized int
	Rejected     int
	Failed       int
	APDUs        int
	Elapsed      time.Duration
}

// Personalizer is the bureau side of personalization (DESIGN section 3): it
// checks a whole batch file, structure, trailer and every application's
// MAC, before it touches a card; then it hands each record to a station,
// dispatches each MIC group to the Module registered for its MIC (the
// [ChipModule] for the chip), optionally verifies the card, and writes one
// audit line per record in record order.
type Personalizer struct {
	// Translator checks application MACs; the chip module uses its own.
	Translator Translator
	// Modules processes the MIC groups. A record with a group whose MIC
	// has no module is rejected; the cardholder data group ([MICCardData])
	// needs none.
	Modules *Registry
	// Audit receives the audit log; nil writes none.
	Audit io.Writer
	// Verify, when set, checks each personalized card over t as a terminal
	// would (emv.VerifyCard, vsvc.VerifyPurse); an error fails the record.
	Verify func(ctx context.Context, card *Card, t Transport) error
	// Progress, when set, is called after each record, from one goroutine.
	Progress func(PersoSummary)
	// Journal, when set, receives a JSON line when a station takes a
	// record, before the card is touched, and one with the record's audit
	// entry when it is done, in the order they happen; a journal that can
	// Sync (an *os.File) is synced after each line. With the audit log it
	// is what a restarted run resumes from ([ReadResumeState]).
	Journal io.Writer
	// Resume, when set, is what an interrupted run of the same batch left:
	// records it logged are skipped, records it finished but had not yet
	// logged are logged from the journal, and a record it had started but
	// not finished is logged as failed without touching a card. No record
	// is ever personalized twice.
	Resume *ResumeState

	journalMu sync.Mutex
}

// ResumeState is what an interrupted personalization run left behind.
type ResumeState struct {
	Logged   map[int]bool       // records in the audit log
	Finished map[int]AuditEntry // records the journal says are done
	Started  map[int]bool       // records the journal says a station took
}

// journalLine is one line of the journal.
type journalLine struct {
	Event string      `json:"event"` // "start" or "end"
	Index int         `json:"index"`
	Entry *AuditEntry `json:"entry,omitempty"`
}

// ReadResumeState reads the audit log and the journal of an interrupted
// run. A last line cut short by the interruption is ignored.
func ReadResumeState(audit, journal io.Reader) (*ResumeState, error) {
	st := &ResumeState{Logged: map[int]bool{}, Finished: map[int]AuditEntry{}, Started: map[int]bool{}}
	if audit != nil {
		if err := readLines(audit, func(b []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(b, &e); err != nil {
				return err
			}
			st.Logged[e.Index] = true
			return nil
		}); err != nil {
			return nil, fmt.Errorf("perso: audit log: %w", err)
		}
	}
	if journal != nil {
		if err := readLines(journal, func(b []byte) error {
			var l journalLine
			if err := json.Unmarshal(b, &l); err != nil {
				return err
			}
			switch {
			case l.Event == "start":
				st.Started[l.Index] = true
			case l.Event == "end" && l.Entry != nil:
				st.Finished[l.Index] = *l.Entry
			default:
				return fmt.Errorf("line for record %d: unknown event %q", l.Index, l.Event)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("perso: journal: %w", err)
		}
	}
	return st, nil
}

// readLines calls f for each complete line; a final line without its
// newline (cut by a crash) is dropped.
func readLines(r io.Reader, f func([]byte) error) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		if err := f(b[:i]); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		b = b[i+1:]
	}
	return nil
}

// journal writes one journal line and syncs it.
func (p *Personalizer) journal(l journalLine) error {
	if p.Journal == nil {
		return nil
	}
	b, err := json.Marshal(&l)
	if err != nil {
		return err
	}
	p.journalMu.Lock()
	defer p.journalMu.Unlock()
	if _, err := p.Journal.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("perso: journal: %w", err)
	}
	if s, ok := p.Journal.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("perso: journal: %w", err)
		}
	}
	return nil
}

// BatchError is a batch file that the Personalizer refuses whole, before
// any card: a framing, trailer or header fault, or a KEK the security
// module does not hold.
type BatchError struct {
	Err error
}

func (e *BatchError) Error() string { return "perso: batch refused: " + e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// CheckResult is what Check learned of a batch: its header and trailer,
// and the records refused, by index.
type CheckResult struct {
	Header   *Header
	Trailer  *Trailer
	Records  int
	Rejected map[int]error
}

// KEKChecker is implemented by security modules that report a KEK's check
// value (both backends of this module do), which lets the Personalizer
// refuse a batch before its first record when the module's KEK differs
// from the batch's. KEKCheckValue returns an error wrapping ErrNoSuchKey
// for a KEK the module does not hold.
type KEKChecker interface {
	KEKCheckValue(ctx context.Context, id KEKID) ([3]byte, error)
}

// Check reads a whole batch file and checks it as the Personalizer does
// before touching a card: header, framing, trailer digest and count, the
// KEKs against the security module, each record's groups against the
// modules, and each application's MAC. Faults of the file as a whole
// return a *BatchError; bad records are listed in the result.
func (p *Personalizer) Check(ctx context.Context, r io.Reader) (*CheckResult, error) {
	br, err := NewReader(r)
	if err != nil {
		return nil, &BatchError{err}
	}
	res := &CheckResult{Header: br.Header(), Rejected: map[int]error{}}
	if kc, ok := p.Translator.(KEKChecker); ok {
		for _, k := range res.Header.KEKs {
			kcv, err := kc.KEKCheckValue(ctx, k.KEK)
			if err != nil {
				return nil, &BatchError{fmt.Errorf("KEK %s: %w", k.KEK, err)}
			}
			if kcv != k.KCV {
				return nil, &BatchError{fmt.Errorf("KEK %s: the security module's KEK has KCV %X, the batch's %X", k.KEK, kcv[:], k.KCV[:])}
			}
		}
	}
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &BatchError{err}
		}
		res.Records++
		if err := p.checkRecord(ctx, rec); err != nil {
			if !recordFault(err) {
				// A missing key or a failing security module: every record
				// would fail the same way.
				return nil, &BatchError{fmt.Errorf("record %d: %w", i, err)}
			}
			res.Rejected[i] = err
		}
	}
	res.Trailer = br.Trailer()
	return res, nil
}

// recordFault reports whether err is the record's own fault (malformed
// data, a MAC that does not verify) rather than the security module's or
// the configuration's.
func recordFault(err error) bool {
	var fe *FormatError
	return errors.Is(err, ErrBadMAC) || errors.Is(err, ErrBadInput) || errors.As(err, &fe)
}

// checkRecord checks one record's groups and MACs.
func (p *Personalizer) checkRecord(ctx context.Context, rec *Record) error {
	for _, g := range rec.Groups {
		if g.MIC == MICCardData {
			continue
		}
		if _, ok := p.Modules.Lookup(g.MIC); !ok {
			return fmt.Errorf("%w: no module for MIC %02X (%s)", ErrBadInput, uint8(g.MIC), g.MIC)
		}
	}
	cd, err := rec.Chip()
	if err != nil || cd == nil {
		return err
	}
	return checkApps(ctx, p.Translator, cd)
}

// persoJob is one record on its way to a station.
type persoJob struct {
	index int
	rec   *Record
	entry AuditEntry
}

// Run personalizes a batch: it checks the whole file first (Check), then
// reads it again and personalizes each good record on the stations, one
// goroutine per station, records handed out in order from one queue. Every
// record ends in the audit log as personalized, rejected or failed, in
// record order. Run returns when every record is accounted for, or with a
// *BatchError before any card is touched. It stops early, with the
// records not yet handed out left for a later run (see Journal and
// Resume), on ctx's cancellation, once the cards in the stations are done,
// and on a security module failure (a *ModuleError, or one during Check),
// which fails the card it met and is returned.
func (p *Personalizer) Run(ctx context.Context, batch io.ReadSeeker, stations ...Station) (*PersoSummary, error) {
	start := time.Now()
	if len(stations) == 0 {
		return nil, errors.New("perso: no stations")
	}
	if p.Modules == nil {
		return nil, errors.New("perso: no modules")
	}
	chk, err := p.Check(ctx, batch)
	if err != nil {
		return nil, err
	}
	if _, err := batch.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("perso: rewinding the batch: %w", err)
	}
	br, err := NewReader(batch)
	if err != nil {
		return nil, &BatchError{err}
	}
	hdr := br.Header()

	todo := make(chan *persoJob)
	done := make(chan *persoJob, len(stations))
	// A security module failure stops the run: every following card would
	// fail the same way. Records not yet handed out are left for a later
	// run; the card that met the failure is logged as failed.
	stopped := make(chan struct{})
	var (
		stopOnce sync.Once
		fatalErr error
	)
	stop := func(err error) {
		stopOnce.Do(func() { fatalErr = err; close(stopped) })
	}
	isStopped := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for _, st := range stations {
		wg.Add(1)
		go func(st Station) {
			defer wg.Done()
			broken := false
			for j := range todo {
				if isStopped() {
					continue // not touched: a later run takes it
				}
				if broken {
					j.entry.Outcome, j.entry.Reason = OutcomeRejected, fmt.Sprintf("station %s is out of service", st.Name())
					done <- j
					continue
				}
				if err := p.journal(journalLine{Event: "start", Index: j.index}); err != nil {
					j.entry.Outcome, j.entry.Reason = OutcomeRejected, err.Error()
					done <- j
					continue
				}
				var fatal error
				broken, fatal = p.personalize(ctx, st, hdr, j)
				if fatal != nil {
					stop(fatal)
				}
				if err := p.journal(journalLine{Event: "end", Index: j.index, Entry: &j.entry}); err != nil && j.entry.Reason == "" {
					j.entry.Reason = err.Error()
				}
				done <- j
			}
		}(st)
	}
	var feedErr error
	go func() {
		defer close(todo)
		for i := 0; ; i++ {
			rec, err := br.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				feedErr = &BatchError{err} // the file changed between the passes
				return
			}
			j := &persoJob{index: i, rec: rec, entry: AuditEntry{Index: i}}
			if c, err := CardDataOf(rec); err == nil {
				j.entry.PAN = MaskPAN(c.PAN)
			}
			if cd, err := rec.Chip(); err == nil && cd != nil {
				for _, a := range cd.Apps {
					j.entry.Apps = append(j.entry.Apps, strings.ToUpper(hex.EncodeToString(a.AID)))
				}
			}
			if rs := p.Resume; rs != nil {
				if rs.Logged[i] {
					continue
				}
				if e, ok := rs.Finished[i]; ok {
					j.entry = e
					done <- j
					continue
				}
				if rs.Started[i] {
					j.entry.Outcome, j.entry.Reason = OutcomeFailed, "interrupted: the card was in a station when the run stopped; it is not personalized again"
					done <- j
					continue
				}
			}
			if err := chk.Rejected[i]; err != nil {
				j.entry.Outcome, j.entry.Reason = OutcomeRejected, err.Error()
				done <- j
				continue
			}
			if ctx.Err() != nil || isStopped() {
				return
			}
			select {
			case todo <- j:
			case <-stopped:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()

	sum := &PersoSummary{}
	var enc *json.Encoder
	if p.Audit != nil {
		enc = json.NewEncoder(p.Audit)
	}
	pending := map[int]*persoJob{}
	next := 0
	var auditErr error
	skipLogged := func() {
		for p.Resume != nil && p.Resume.Logged[next] {
			next++
		}
	}
	skipLogged()
	for j := range done {
		pending[j.index] = j
		for {
			j, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			skipLogged()
			sum.Records++
			sum.APDUs += j.entry.APDUs
			switch j.entry.Outcome {
			case OutcomePersonalized:
				sum.Personalized++
			case OutcomeFailed:
				sum.Failed++
			default:
				sum.Rejected++
			}
			if enc != nil && auditErr == nil {
				if auditErr = enc.Encode(&j.entry); auditErr == nil {
					if s, ok := p.Audit.(interface{ Sync() error }); ok {
						auditErr = s.Sync()
					}
				}
			}
			if p.Progress != nil {
				s := *sum
				s.Elapsed = time.Since(start)
				p.Progress(s)
			}
		}
	}
	sum.Elapsed = time.Since(start)
	switch {
	case fatalErr != nil:
		return sum, fatalErr
	case feedErr != nil:
		return sum, feedErr
	case auditErr != nil:
		return sum, fmt.Errorf("perso: writing the audit log: %w", auditErr)
	case ctx.Err() != nil:
		return sum, ctx.Err()
	}
	return sum, nil
}

// personalize runs one record on a station and fills its audit entry. It
// reports whether the station is out of service, and a security module
// failure that must stop the run. Once a card is in the station its
// session runs to its end even if ctx is cancelled: a card is never left
// half done on purpose.
func (p *Personalizer) personalize(ctx context.Context, st Station, hdr *Header, j *persoJob) (broken bool, fatal error) {
	t0 := time.Now()
	e := &j.entry
	e.Station = st.Name()
	defer func() { e.Duration = float64(time.Since(t0).Microseconds()) / 1000 }()
	t, err := st.Insert(ctx)
	if err != nil {
		e.Outcome, e.Reason = OutcomeRejected, fmt.Sprintf("station %s: %v", st.Name(), err)
		return true, nil
	}
	ctx = context.WithoutCancel(ctx)
	card := &Card{Index: j.index, Record: j.rec, Batch: hdr, Conn: NewConn(t)}
	err = p.runModules(ctx, card)
	extra := 0
	if err == nil && p.Verify != nil {
		ct := &countingTransport{t: t}
		err = p.Verify(ctx, card, ct)
		extra = ct.n
		if err != nil {
			err = fmt.Errorf("verification: %w", err)
		}
	}
	e.Card = card.Identity
	e.APDUs = card.Conn.Count() + extra
	if err != nil {
		e.Outcome, e.Reason = OutcomeFailed, err.Error()
		var ae *APDUError
		if errors.As(err, &ae) {
			e.APDU = ae.Index
		}
		var sw *SWError
		if errors.As(err, &sw) {
			e.SW = fmt.Sprintf("%04X", sw.SW)
		}
		var me *ModuleError
		if errors.As(err, &me) {
			fatal = fmt.Errorf("perso: record %d: %w", j.index, err)
		}
	} else {
		e.Outcome = OutcomePersonalized
	}
	if ejErr := st.Eject(t, err == nil); ejErr != nil && err == nil {
		e.Outcome, e.Reason = OutcomeFailed, fmt.Sprintf("eject: %v", ejErr)
	}
	return false, fatal
}

// runModules hands each group of the record to its module, in record order.
func (p *Personalizer) runModules(ctx context.Context, card *Card) error {
	for _, g := range card.Record.Groups {
		if g.MIC == MICCardData {
			continue
		}
		m, ok := p.Modules.Lookup(g.MIC)
		if !ok {
			return fmt.Errorf("no module for MIC %02X", uint8(g.MIC))
		}
		if err := m.Personalize(ctx, card, g); err != nil {
			return fmt.Errorf("%s: %w", g.MIC, err)
		}
	}
	return nil
}

// countingTransport counts the APDUs a verification sends.
type countingTransport struct {
	t Transport
	n int
}

func (c *countingTransport) Transmit(cmd []byte) ([]byte, error) {
	c.n++
	return c.t.Transmit(cmd)
}
