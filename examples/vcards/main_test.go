package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardperso/perso/reader/pcsc"
	"github.com/cardperso/perso/reader/pcsc/pcsctest"
)

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scp", "01"},
		{"-n", "0"},
		{"-port", "65535", "-n", "2"},
		{"-nosuchflag"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer for two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFreshCardsThroughPCSC runs the command on pcscd's vpcd readers and
// uses its cards as a hand-fed PC/SC station does: each card, once used
// and unpowered, makes way for a blank one.
func TestFreshCardsThroughPCSC(t *testing.T) {
	rs := pcsctest.VPCD(t, 2)
	_, port, err := net.SplitHostPort(rs[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-n", "2", "-port", port, "-fresh"}, &stdout, &stderr) }()

	st, err := pcsc.NewStation(pcsc.StationConfig{Reader: rs[0].Name, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Two cards used, and a third that comes after them, left unused.
	for i := range 3 {
		tr, err := st.Insert(ctx)
		if err != nil {
			t.Fatalf("card %d: %v (log: %s)", i, err, stderr.String())
		}
		if i < 2 {
			r, err := tr.Transmit([]byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00})
			if err != nil || !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
				t.Fatalf("card %d: SELECT: %X, %v", i, r, err)
			}
		}
		if err := st.Eject(tr, true); err != nil {
			t.Fatal(err)
		}
	}
	// The second reader holds its card, untouched.
	c, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, err := c.WaitForCard(wctx, rs[1].Name); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop")
	}
	out := stdout.String()
	for _, want := range []string{
		"reader 0 card 0: 1 APDUs; EMV A0000000031010 SELECTABLE; purse A0000000036010 SELECTABLE",
		"reader 0 card 1: 1 APDUs",
		"reader 0 card 2: 0 APDUs",
		"reader 1 card 0: 0 APDUs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"reader 0 card 3", "reader 1 card 1"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}
	for _, r := range rs {
		st, err := c.State(r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Flags&pcsc.StatePresent != 0 {
			// pcscd sees the removal at its next poll.
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err = c.Wait(wctx, st)
			wcancel()
			if err != nil || st.Present() {
				t.Errorf("%s still has a card after the command stopped: %v", r.Name, err)
			}
		}
	}
}
