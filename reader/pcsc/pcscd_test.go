package pcsc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardperso/perso/reader/pcsc"
	"github.com/cardperso/perso/reader/pcsc/pcsctest"
	"github.com/cardperso/perso/reader/vcard"
	"github.com/ebfe/scard"
)

// The tests below run against pcscd and vsmartcard's vpcd readers (see
// package pcsctest): each puts virtual cards in the readers and talks to
// them through PC/SC as to any card.

var (
	selectISD = []byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00}
	getCPLC   = []byte{0x80, 0xCA, 0x9F, 0x7F, 0x00}
)

func newCard(t testing.TB, fault vcard.Fault) *vcard.Card {
	t.Helper()
	c, err := vcard.New(vcard.Config{Keys: vcard.Keys{KMC: []byte("0123456789ABCDEF")}, Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func open(t testing.TB) *pcsc.Context {
	t.Helper()
	c, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// insert puts card in the vpcd reader r and waits until pcscd sees it;
// when the test ends it takes the card out and waits until pcscd sees the
// reader empty, so that the next test starts from an empty reader.
func insert(t testing.TB, c *pcsc.Context, r pcsctest.Reader, card *vcard.Card) *vcard.VPCD {
	t.Helper()
	v := vcard.NewVPCD(r.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Insert(ctx, card); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { takeOut(t, c, r, v) })
	if _, err := c.WaitForCard(ctx, r.Name); err != nil {
		t.Fatal(err)
	}
	return v
}

// takeOut removes the card from v, if any, and waits for pcscd to see
// the reader empty.
func takeOut(t testing.TB, _ *pcsc.Context, r pcsctest.Reader, v *vcard.VPCD) {
	t.Helper()
	pcsctest.TakeOut(t, r, v)
}

func connect(t testing.TB, c *pcsc.Context, reader string, opts pcsc.Options) *pcsc.Card {
	t.Helper()
	k, err := c.Connect(reader, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(pcsc.Leave) })
	return k
}

// transmit sends cmd and checks that the card answers 9000.
func transmit(t testing.TB, k *pcsc.Card, cmd []byte) []byte {
	t.Helper()
	r, err := k.Transmit(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
		t.Fatalf("response %X, want 9000", r)
	}
	return r
}

func TestReadersAndStates(t *testing.T) {
	rs := pcsctest.VPCD(t, 2)
	c := open(t)
	all, err := c.Readers()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		sel, err := pcsc.SelectReaders(all, r.Name)
		if err != nil || len(sel) != 1 || sel[0] != r.Name {
			t.Errorf("selecting %q among %q: %q, %v", r.Name, all, sel, err)
		}
		s, err := c.State(r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Flags&pcsc.StateEmpty == 0 || s.Present() || s.Gone() {
			t.Errorf("%s: %s, want empty", r.Name, s.Flags)
		}
	}
	if _, err := c.State("No Such Reader 00 00"); !errors.Is(err, pcsc.ErrReaderUnavailable) {
		t.Errorf("state of an unknown reader: %v, want ErrReaderUnavailable", err)
	}
	if _, err := c.Connect("No Such Reader 00 00", pcsc.Options{}); !errors.Is(err, pcsc.ErrReaderUnavailable) {
		t.Errorf("connecting to an unknown reader: %v, want ErrReaderUnavailable", err)
	}
	if _, err := c.Connect(rs[1].Name, pcsc.Options{}); !errors.Is(err, pcsc.ErrNoCard) {
		t.Errorf("connecting to an empty reader: %v, want ErrNoCard", err)
	}
	if _, err := pcsc.NewStation(pcsc.StationConfig{Reader: "No Such Reader 00 00"}); !errors.Is(err, pcsc.ErrReaderUnavailable) {
		t.Errorf("station on an unknown reader: %v, want ErrReaderUnavailable", err)
	}
}

func TestWaitForCard(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	before, err := c.State(r.Name)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := c.WaitForCard(ctx, r.Name); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait: %v, want context.Canceled", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.WaitForCard(ctx, r.Name); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timed out wait: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("inserted", func(t *testing.T) {
		v := vcard.NewVPCD(r.Addr)
		inserted := make(chan error, 1)
		time.AfterFunc(100*time.Millisecond, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			inserted <- v.Insert(ctx, newCard(t, vcard.Fault{}))
		})
		defer func() {
			if err := <-inserted; err != nil {
				t.Error(err)
			}
			takeOut(t, c, r, v)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := c.WaitForCard(ctx, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Present() || !bytes.Equal(s.ATR, vcard.DefaultATR) {
			t.Errorf("state %s, ATR %X; want a card with ATR %X", s.Flags, s.ATR, vcard.DefaultATR)
		}
		if s.Events == before.Events {
			t.Errorf("event count %d unchanged by the insertion", s.Events)
		}
	})
}

func TestConnectAndTransmit(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	c := open(t)
	card := newCard(t, vcard.Fault{})
	insert(t, c, rs[0], card)
	want, err := newCard(t, vcard.Fault{}).Transmit(getCPLC)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		asked pcsc.Protocol
		want  []pcsc.Protocol
	}{
		{pcsc.T0, []pcsc.Protocol{pcsc.T0}},
		{pcsc.T1, []pcsc.Protocol{pcsc.T1}},
		{0, []pcsc.Protocol{pcsc.T0, pcsc.T1}},
	} {
		t.Run(tc.asked.String(), func(t *testing.T) {
			k, err := c.Connect(rs[0].Name, pcsc.Options{Protocols: tc.asked})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := k.Close(pcsc.Unpower); err != nil {
					t.Error(err)
				}
			}()
			if p := k.Protocol(); p != tc.want[0] && p != tc.want[len(tc.want)-1] {
				t.Errorf("protocol %v, want %v", p, tc.want)
			}
			if !bytes.Equal(k.ATR(), vcard.DefaultATR) || k.Reader() != rs[0].Name {
				t.Errorf("ATR %X of %q, want %X of %q", k.ATR(), k.Reader(), vcard.DefaultATR, rs[0].Name)
			}
			if err := k.Begin(); err != nil {
				t.Fatal(err)
			}
			if got := transmit(t, k, getCPLC); !bytes.Equal(got, want) {
				t.Errorf("GET DATA through PC/SC: %X, want %X as in-process", got, want)
			}
			if err := k.End(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := card.Count(); n != 3 {
		t.Errorf("the card got %d APDUs, want 3", n)
	}
}

func TestExclusiveAndTransactions(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	insert(t, c, r, newCard(t, vcard.Fault{}))

	k := connect(t, c, r.Name, pcsc.Options{})
	other := open(t)
	if _, err := other.Connect(r.Name, pcsc.Options{Share: pcsc.Shared}); !errors.Is(err, pcsc.ErrSharingViolation) {
		t.Fatalf("second connection to an exclusively held card: %v, want ErrSharingViolation", err)
	}
	if err := k.Close(pcsc.Leave); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Transmit(getCPLC); err == nil {
		t.Error("transmit on a closed card: no error")
	}

	// Two shared connections: a transaction keeps the other one's commands
	// waiting until it ends.
	a := connect(t, c, r.Name, pcsc.Options{Share: pcsc.Shared})
	b := connect(t, other, r.Name, pcsc.Options{Share: pcsc.Shared})
	if err := a.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(); err == nil {
		t.Error("a second Begin: no error")
	}
	transmit(t, a, getCPLC)
	done := make(chan error, 1)
	go func() {
		_, err := b.Transmit(getCPLC)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the other connection's command went through during the transaction (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.End(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other connection's command did not go through after the transaction")
	}
}

func TestReset(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	card := newCard(t, vcard.Fault{})
	insert(t, c, r, card)
	other := open(t)
	a := connect(t, c, r.Name, pcsc.Options{Share: pcsc.Shared})
	b := connect(t, other, r.Name, pcsc.Options{Share: pcsc.Shared})

	// Reset before a's first command: a reconnects and goes on.
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	transmit(t, a, selectISD)
	transmit(t, a, getCPLC)

	// Reset after it: the session is gone, and a says so.
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	_, err := a.Transmit(getCPLC)
	if !errors.Is(err, pcsc.ErrCardReset) || !errors.Is(err, scard.ErrResetCard) {
		t.Fatalf("transmit after a reset mid-session: %v, want ErrCardReset", err)
	}
	if a.Removed() {
		t.Error("a reset card reported removed")
	}
	// A reset of its own starts a new session, in the transaction it had.
	if err := a.Begin(); !errors.Is(err, pcsc.ErrCardReset) {
		t.Fatalf("Begin on a connection that has not taken the reset in: %v", err)
	}
	if err := a.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(); err != nil {
		t.Fatal(err)
	}
	transmit(t, a, getCPLC)
	if err := a.End(); err != nil {
		t.Fatalf("the transaction did not outlive the reset: %v", err)
	}
	if err := a.Close(pcsc.Leave); err != nil {
		t.Fatal(err)
	}
	// A reset of a new connection before Begin: Begin reconnects.
	a = connect(t, c, r.Name, pcsc.Options{Share: pcsc.Shared})
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(); err != nil {
		t.Fatalf("Begin after a reset with nothing sent: %v", err)
	}
	transmit(t, a, getCPLC)
	// A reset inside the transaction fails the next command, and Begin
	// cannot hide it.
	if err := a.End(); err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := a.Begin(); !errors.Is(err, pcsc.ErrCardReset) {
		t.Errorf("Begin after a reset mid-session: %v, want ErrCardReset", err)
	}
}

func TestRemovedMidSession(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	v := insert(t, c, r, newCard(t, vcard.Fault{At: 3, Kind: vcard.FaultRemove}))
	k := connect(t, c, r.Name, pcsc.Options{})
	if err := k.Begin(); err != nil {
		t.Fatal(err)
	}
	transmit(t, k, selectISD)
	transmit(t, k, getCPLC)
	_, err := k.Transmit(getCPLC)
	if !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Fatalf("transmit to a pulled card: %v, want ErrCardRemoved", err)
	}
	t.Logf("pulled card: %v", err)
	if !k.Removed() {
		t.Error("Removed() is false")
	}
	if !errors.Is(v.Err(), vcard.ErrRemoved) || v.Card() != nil {
		t.Errorf("vpcd side: card %v, err %v; want it gone with ErrRemoved", v.Card(), v.Err())
	}
	if _, err := k.Transmit(getCPLC); !errors.Is(err, pcsc.ErrCardRemoved) {
		t.Errorf("transmit again: %v, want ErrCardRemoved", err)
	}
	if err := k.Close(pcsc.Unpower); err != nil {
		t.Errorf("closing a removed card: %v", err)
	}
}

func TestStationWithFeeder(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	v := vcard.NewVPCD(r.Addr)
	defer takeOut(t, c, r, v)
	var made []*vcard.Card
	faults := map[int]vcard.Fault{2: {At: 2, Kind: vcard.FaultRemove}}
	f := &vcard.VPCDFeeder{Reader: v, Next: func() (*vcard.Card, error) {
		card := newCard(t, faults[len(made)])
		made = append(made, card)
		return card, nil
	}}
	st, err := pcsc.NewStation(pcsc.StationConfig{Reader: r.Name, Name: "chip 1", Feeder: f, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Name() != "chip 1" || st.Reader() != r.Name {
		t.Errorf("station %q on %q", st.Name(), st.Reader())
	}
	ctx := context.Background()
	for i := range 5 {
		tr, err := st.Insert(ctx)
		if err != nil {
			t.Fatalf("card %d: %v", i, err)
		}
		if _, err := st.Insert(ctx); err == nil {
			t.Fatalf("card %d: a second Insert before Eject: no error", i)
		}
		ok := true
		for range 2 {
			if _, err := tr.Transmit(getCPLC); err != nil {
				if i != 2 || !errors.Is(err, pcsc.ErrCardRemoved) {
					t.Fatalf("card %d: %v", i, err)
				}
				ok = false
				break
			}
		}
		if err := st.Eject(tr, ok); err != nil {
			t.Fatalf("card %d: eject: %v", i, err)
		}
		if err := st.Eject(tr, ok); err == nil {
			t.Fatalf("card %d: ejected twice", i)
		}
	}
	// Each session had a card of its own, and the feeder took each out
	// with its outcome (the pulled card had gone already).
	if len(made) != 5 {
		t.Fatalf("%d cards fed, want 5", len(made))
	}
	for i, card := range made {
		if n := card.Count(); n != 2 {
			t.Errorf("card %d got %d APDUs, want 2", i, n)
		}
	}
	out := f.Cards()
	for i, o := range out {
		wantCard, wantOK := made[i], i != 2
		if i == 2 {
			wantCard = nil
		}
		if o.Card != wantCard || o.OK != wantOK {
			t.Errorf("card out %d: %p ok=%v, want %p ok=%v", i, o.Card, o.OK, wantCard, wantOK)
		}
	}
}

func TestStationFedByHand(t *testing.T) {
	rs := pcsctest.VPCD(t, 1)
	r := rs[0]
	c := open(t)
	v := insert(t, c, r, newCard(t, vcard.Fault{}))
	st, err := pcsc.NewStation(pcsc.StationConfig{Reader: r.Name, Wait: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	tr, err := st.Insert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Transmit(getCPLC); err != nil {
		t.Fatal(err)
	}
	if err := st.Eject(tr, true); err != nil {
		t.Fatal(err)
	}
	// The same card is still in: no new card comes.
	if _, err := st.Insert(ctx); !errors.Is(err, pcsc.ErrTimeout) {
		t.Fatalf("Insert with the last card still in: %v, want ErrTimeout", err)
	}
	// The operator takes it out and puts the next one in.
	takeOut(t, c, r, v)
	next := newCard(t, vcard.Fault{})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := v.Insert(wctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForCard(wctx, r.Name); err != nil {
		t.Fatal(err)
	}
	if tr, err = st.Insert(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Transmit(getCPLC); err != nil {
		t.Fatal(err)
	}
	if err := st.Eject(tr, true); err != nil {
		t.Fatal(err)
	}
	if next.Count() != 1 {
		t.Errorf("the second card got %d APDUs, want 1", next.Count())
	}
	// Cancelled while waiting.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := st.Insert(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Insert: %v, want context.Canceled", err)
	}
}
