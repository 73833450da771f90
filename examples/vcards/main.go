// Command vcards puts virtual cards in the readers of pcscd's vpcd driver
// (vsmartcard), so that PC/SC applications see cards in "Virtual PCD 00
// 00", "Virtual PCD 00 01", ... and personalize or read them as real
// ones:
//
//	go run ./examples/vcards [-n 2] [-host 127.0.0.1] [-port 35963] [-scp 02|03] [-fresh]
//
// Card i goes in reader i (the vpcd socket at port+i). The cards are blank
// GlobalPlatform cards with an EMV and a stored-value applet, and the
// demonstration card keys: the KMC 404142..4F, diversified per card as EMV
// CPS does (SCP02), or with the SCP03 KDF (-scp 03), from each card's own
// KDD. What is stored on them stays in memory while the command runs.
//
// Without -fresh each reader holds one card for the life of the command.
// With -fresh, a card that has been used and is powered off (the
// application ended its connection unpowering it, as a personalization
// station does) is taken out, and a blank one goes in once pcscd has seen
// the reader empty: a hand-fed reader, whose operator is quick.
//
// On interrupt the command takes the cards out and lists them with their
// applets' states.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/internal/demo"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/cardperso/perso/vsvc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	n     int
	host  string
	port  int
	scp   perso.SCP
	fresh bool
	// settle is how long a reader stays empty between two cards with
	// -fresh: more than two of pcscd's 400 ms polls, so that it sees the
	// removal.
	settle time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vcards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{settle: time.Second}
	fs.IntVar(&o.n, "n", 2, "number of readers, one card each")
	fs.StringVar(&o.host, "host", "127.0.0.1", "host of pcscd's vpcd sockets")
	fs.IntVar(&o.port, "port", vcard.VPCDPort, "vpcd socket of the first reader; reader i is at port+i")
	scp := fs.String("scp", "02", "secure channel protocol: 02 (i=55) or 03 (i=70)")
	fs.BoolVar(&o.fresh, "fresh", false, "replace each card used and powered off with a blank one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch *scp {
	case "02":
		o.scp = perso.SCP{Version: 2, Param: 0x55}
	case "03":
		o.scp = perso.SCP{Version: 3, Param: 0x70}
	default:
		fmt.Fprintf(stderr, "vcards: -scp %s: want 02 or 03\n", *scp)
		return 2
	}
	if o.n < 1 || o.port < 1 || o.port+o.n > 65536 {
		fmt.Fprintln(stderr, "vcards: -n must be at least 1, and the ports must fit")
		return 2
	}
	if err := serve(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "vcards: %v\n", err)
		return 1
	}
	return 0
}

// reader is one vpcd reader and the cards it has held.
type reader struct {
	i     int
	v     *vcard.VPCD
	o     options
	log   *logger
	used  chan struct{} // a used card was powered off (with -fresh)
	cards []*vcard.Card // every card it has held, the one in it last
}

// logger serializes the command's lines.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// insertWait bounds how long a card waits for pcscd to take it: pcscd
// polls an empty reader every 400 ms, and leaves a card waiting as long as
// another one is in the reader.
const insertWait = 5 * time.Second

// serve puts a card in each reader and keeps them there until ctx is
// done.
func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	log := &logger{w: stderr}
	readers := make([]*reader, o.n)
	for i := range readers {
		r := &reader{i: i, o: o, log: log, used: make(chan struct{}, 1)}
		r.v = vcard.NewVPCD(fmt.Sprintf("%s:%d", o.host, o.port+i))
		if o.fresh {
			r.v.PowerOff = func(c *vcard.Card) {
				if c.Count() > 0 {
					select {
					case r.used <- struct{}{}:
					default:
					}
				}
			}
		}
		readers[i] = r
	}
	var wg sync.WaitGroup
	errs := make([]error, o.n)
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.hold(ctx)
		}()
	}
	wg.Wait()
	for _, r := range readers {
		r.list(stdout)
	}
	return errors.Join(errs...)
}

// newCard makes the reader's next blank card: the demonstration keys, and
// a KDD of its own (reader and card number).
func (r *reader) newCard() (*vcard.Card, error) {
	n := len(r.cards)
	keys := vcard.Keys{KMC: demo.KMCValue, Method: perso.MethodCPS}
	if r.o.scp.Version == 3 {
		keys.Method = perso.MethodSCP03KDF
	}
	c, err := vcard.New(vcard.Config{
		Keys:  keys,
		KDD:   []byte{0x56, 0x43, byte(r.i >> 8), byte(r.i), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 1},
		SCP:   r.o.scp,
		EMV:   [][]byte{{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}},
		Purse: vsvc.DefaultAID,
	})
	if err != nil {
		return nil, err
	}
	r.cards = append(r.cards, c)
	return c, nil
}

// hold keeps a card in the reader until ctx is done: it inserts the card,
// puts it back when pcscd drops it (pcscd restarted), and with -fresh
// replaces a used card.
func (r *reader) hold(ctx context.Context) error {
	card, err := r.newCard()
	if err != nil {
		return err
	}
	defer r.v.Remove()
	for {
		select { // a signal about the card before
		case <-r.used:
		default:
		}
		ictx, cancel := context.WithTimeout(ctx, insertWait)
		err := r.v.Insert(ictx, card)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.printf("reader %d: %v; trying again", r.i, err)
			if !sleep(ctx, r.o.settle) {
				return nil
			}
			continue
		}
		r.log.printf("reader %d: card %d in (%s)", r.i, len(r.cards)-1, r.v.Addr())
		select {
		case <-ctx.Done():
			return nil
		case <-r.v.Done():
			r.log.printf("reader %d: card %d dropped: %v", r.i, len(r.cards)-1, r.v.Err())
		case <-r.used:
			r.v.Remove()
			r.log.printf("reader %d: card %d out", r.i, len(r.cards)-1)
			if card, err = r.newCard(); err != nil {
				return err
			}
		}
		if !sleep(ctx, r.o.settle) {
			return nil
		}
	}
}

// sleep waits for d, or until ctx is done; it reports whether it slept.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// list prints the reader's cards and their applets.
func (r *reader) list(w io.Writer) {
	for n, c := range r.cards {
		var apps []string
		for _, a := range c.Applets() {
			apps = append(apps, fmt.Sprintf("%s %X %s", a.Kind, []byte(a.AID), a.State))
		}
		fmt.Fprintf(w, "reader %d card %d: %d APDUs; %s\n", r.i, n, c.Count(), strings.Join(apps, "; "))
	}
}
