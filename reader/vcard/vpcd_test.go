package vcard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVPCDAddr(t *testing.T) {
	for _, tc := range []struct {
		reader int
		want   string
	}{
		{0, "127.0.0.1:35963"},
		{1, "127.0.0.1:35964"},
	} {
		if got := VPCDAddr(tc.reader); got != tc.want {
			t.Errorf("VPCDAddr(%d) = %s, want %s", tc.reader, got, tc.want)
		}
	}
}

func TestVPCDMsgCodec(t *testing.T) {
	buf := make([]byte, vpcdMaxMsg)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr error // after the messages
	}{
		{"control codes", []byte{0, 1, 0, 0, 1, 1, 0, 1, 2, 0, 1, 4}, [][]byte{{0}, {1}, {2}, {4}}, io.EOF},
		{"APDU", []byte{0, 5, 0x00, 0xA4, 0x04, 0x00, 0x00}, [][]byte{{0x00, 0xA4, 0x04, 0x00, 0x00}}, io.EOF},
		{"nothing", nil, nil, io.EOF},
		{"one length byte", []byte{0}, nil, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 3, 1, 2}, nil, io.ErrUnexpectedEOF},
		{"length only", []byte{0, 1}, nil, io.ErrUnexpectedEOF},
		{"empty message", []byte{0, 1, 4, 0, 0}, [][]byte{{4}}, errVPCDEmpty},
		{"longest", append([]byte{0xFF, 0xFF}, bytes.Repeat([]byte{0x5A}, vpcdMaxMsg)...), [][]byte{bytes.Repeat([]byte{0x5A}, vpcdMaxMsg)}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.in)
			var got [][]byte
			var err error
			for {
				var m []byte
				if m, err = readVPCDMsg(r, buf); err != nil {
					break
				}
				got = append(got, bytes.Clone(m))
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			// Framing the messages again gives the input back, up to the fault.
			var enc []byte
			for _, m := range got {
				if enc, err = appendVPCDMsg(enc, m); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.HasPrefix(tc.in, enc) {
				t.Errorf("re-encoded %X is not a prefix of the input", enc)
			}
		})
	}
	if _, err := appendVPCDMsg(nil, make([]byte, vpcdMaxMsg+1)); err == nil {
		t.Error("framing 65536 bytes: no error")
	}
}

// vpcdDriver is the reader driver's end of a vpcd connection, for tests
// without pcscd: it listens where a VPCD connects and frames messages.
type vpcdDriver struct {
	t    *testing.T
	ln   net.Listener
	conn net.Conn
	buf  []byte
}

func newVPCDDriver(t *testing.T) *vpcdDriver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &vpcdDriver{t: t, ln: ln, buf: make([]byte, vpcdMaxMsg)}
}

func (d *vpcdDriver) addr() string { return d.ln.Addr().String() }

// accept takes the connection of the card the test inserted.
func (d *vpcdDriver) accept() {
	d.t.Helper()
	c, err := d.ln.Accept()
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	d.conn = c
}

func (d *vpcdDriver) send(msg []byte) {
	d.t.Helper()
	b, err := appendVPCDMsg(nil, msg)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.conn.Write(b); err != nil {
		d.t.Fatal(err)
	}
}

// exchange sends msg and returns the card's answer, or the read error.
func (d *vpcdDriver) exchange(msg []byte) ([]byte, error) {
	d.t.Helper()
	d.send(msg)
	m, err := readVPCDMsg(d.conn, d.buf)
	return bytes.Clone(m), err
}

// insert inserts card through v, and takes it as pcscd does: it accepts
// the connection and asks for the ATR.
func (d *vpcdDriver) insert(v *VPCD, card *Card) {
	d.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- v.Insert(context.Background(), card) }()
	d.accept()
	atr, err := d.exchange([]byte{vpcdATR})
	if err != nil {
		d.t.Fatal(err)
	}
	if err := <-errc; err != nil {
		d.t.Fatal(err)
	}
	if !bytes.Equal(atr, card.ATR()) {
		d.t.Errorf("ATR %X, want %X", atr, card.ATR())
	}
}

func vpcdTestCard(t *testing.T, cfg Config) *Card {
	t.Helper()
	if cfg.Keys.KMC == nil && cfg.Keys.ENC == nil {
		cfg.Keys = scp02Keys
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var vpcdSelectISD = []byte{0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00}

func TestVPCDExchange(t *testing.T) {
	d := newVPCDDriver(t)
	v := NewVPCD(d.addr())
	powerOffs := make(chan *Card, 2)
	v.PowerOff = func(c *Card) { powerOffs <- c }
	card := vpcdTestCard(t, Config{})
	d.insert(v, card)
	defer v.Remove()
	if v.Card() != card {
		t.Fatal("Card() is not the inserted card")
	}
	select {
	case <-v.Done():
		t.Fatal("Done closed while the card is in")
	default:
	}

	d.send([]byte{vpcdPowerOn})
	atr, err := d.exchange([]byte{vpcdATR})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(atr, DefaultATR) {
		t.Errorf("ATR %X, want %X", atr, DefaultATR)
	}
	want, err := vpcdTestCard(t, Config{}).Transmit(vpcdSelectISD)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.exchange(vpcdSelectISD)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SELECT through vpcd: %X, want %X as in-process", got, want)
	}
	// Power off, reset: no answer, the connection goes on.
	d.send([]byte{vpcdPowerOff})
	d.send([]byte{vpcdReset})
	if atr, err = d.exchange([]byte{vpcdATR}); err != nil || !bytes.Equal(atr, DefaultATR) {
		t.Errorf("ATR after power off and reset: %X, %v", atr, err)
	}
	if n := card.Count(); n != 1 {
		t.Errorf("card counted %d APDUs, want 1", n)
	}
	if len(powerOffs) != 1 || <-powerOffs != card {
		t.Error("PowerOff was not called once with the card")
	}
}

func TestVPCDSwap(t *testing.T) {
	d := newVPCDDriver(t)
	v := NewVPCD(d.addr())
	first := vpcdTestCard(t, Config{})
	if _, err := v.Swap(first); err == nil {
		t.Error("Swap into an empty reader: no error")
	}
	d.insert(v, first)
	defer v.Remove()
	if err := v.Insert(context.Background(), vpcdTestCard(t, Config{})); err == nil {
		t.Error("Insert into a full reader: no error")
	}
	atr2 := withTCK([]byte{0x3B, 0x82, 0x80, 0x01, 0x02, 0x03})
	second := vpcdTestCard(t, Config{ATR: atr2})
	old, err := v.Swap(second)
	if err != nil || old != first {
		t.Fatalf("Swap = %p, %v; want the first card", old, err)
	}
	if atr, err := d.exchange([]byte{vpcdATR}); err != nil || !bytes.Equal(atr, atr2) {
		t.Errorf("ATR after the swap: %X, %v; want %X", atr, err, atr2)
	}
	if _, err := d.exchange(vpcdSelectISD); err != nil {
		t.Fatal(err)
	}
	if first.Count() != 0 || second.Count() != 1 {
		t.Errorf("APDU counts: first %d, second %d; want 0 and 1", first.Count(), second.Count())
	}
}

func TestVPCDCardLeaves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   Fault
		leave   func(*vpcdDriver, *VPCD)
		wantErr error // nil: Err() must be nil
		errText string
	}{
		{
			name:  "pulled by its fault",
			fault: Fault{At: 2, Kind: FaultRemove},
			leave: func(d *vpcdDriver, _ *VPCD) {
				if _, err := d.exchange(vpcdSelectISD); err != nil {
					d.t.Fatal(err)
				}
				if r, err := d.exchange(vpcdSelectISD); err == nil {
					d.t.Errorf("the pulled card answered %X", r)
				}
			},
			wantErr: ErrRemoved,
		},
		{
			name:  "torn",
			fault: Fault{At: 1, Kind: FaultTear},
			leave: func(d *vpcdDriver, _ *VPCD) {
				if r, err := d.exchange(vpcdSelectISD); err == nil {
					d.t.Errorf("the torn card answered %X", r)
				}
			},
			wantErr: ErrRemoved,
		},
		{
			name:    "driver closes",
			leave:   func(d *vpcdDriver, _ *VPCD) { d.conn.Close() },
			wantErr: io.EOF,
		},
		{
			name: "unknown control code",
			leave: func(d *vpcdDriver, _ *VPCD) {
				if r, err := d.exchange([]byte{0x07}); err == nil {
					d.t.Errorf("the card answered control code 07 with %X", r)
				}
			},
			errText: "unknown control code 07",
		},
		{
			name:  "removed",
			leave: func(_ *vpcdDriver, v *VPCD) { v.Remove() },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newVPCDDriver(t)
			v := NewVPCD(d.addr())
			d.insert(v, vpcdTestCard(t, Config{Fault: tc.fault}))
			done := v.Done()
			tc.leave(d, v)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed")
			}
			if v.Card() != nil {
				t.Error("Card() is not nil after the card left")
			}
			err := v.Err()
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("Err() = %v, want %v", err, tc.wantErr)
			case tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Errorf("Err() = %v, want %q", err, tc.errText)
			case tc.wantErr == nil && tc.errText == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			}
			if c := v.Remove(); c != nil {
				t.Error("Remove from an empty reader returned a card")
			}
		})
	}
}

func TestVPCDFeeder(t *testing.T) {
	d := newVPCDDriver(t)
	v := NewVPCD(d.addr())
	defer v.Remove()
	var made []*Card
	f := &VPCDFeeder{Reader: v, Next: func() (*Card, error) {
		c, err := New(Config{Keys: scp02Keys})
		made = append(made, c)
		return c, err
	}}
	ctx := context.Background()
	fed := make(chan error, 1)
	go func() { fed <- f.Feed(ctx) }() // an empty reader: inserted
	d.accept()
	if _, err := d.exchange([]byte{vpcdATR}); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if _, err := d.exchange(vpcdSelectISD); err != nil {
		t.Fatal(err)
	}
	if err := f.Out(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Feed(ctx); err != nil { // swapped
		t.Fatal(err)
	}
	if _, err := d.exchange(vpcdSelectISD); err != nil {
		t.Fatal(err)
	}
	if err := f.Out(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := []FedCard{{made[0], true}, {made[1], false}}
	if diff := cmp.Diff(want, f.Cards(), cmp.Comparer(func(a, b *Card) bool { return a == b })); diff != "" {
		t.Errorf("cards out (-want +got):\n%s", diff)
	}
	for i, c := range made {
		if c.Count() != 1 {
			t.Errorf("card %d got %d APDUs, want 1", i, c.Count())
		}
	}
	if err := (&VPCDFeeder{}).Feed(ctx); err == nil {
		t.Error("a feeder without a reader fed a card")
	}
}

func TestVPCDInsertNotTaken(t *testing.T) {
	// A driver that never takes the card: the connection waits in the
	// listen queue, as behind another card in pcscd's reader.
	d := newVPCDDriver(t)
	v := NewVPCD(d.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := v.Insert(ctx, vpcdTestCard(t, Config{}))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not take the card") {
		t.Fatalf("Insert not taken: %v", err)
	}
	if v.Card() != nil || v.Err() != nil {
		t.Errorf("after a card not taken: card %v, err %v", v.Card(), v.Err())
	}
	// A driver that drops the card at once.
	d2 := newVPCDDriver(t)
	v2 := NewVPCD(d2.addr())
	go func() {
		if c, err := d2.ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := v2.Insert(context.Background(), vpcdTestCard(t, Config{})); err == nil || !strings.Contains(err.Error(), "dropped the card") {
		t.Fatalf("Insert dropped: %v", err)
	}
	if v2.Card() != nil {
		t.Error("a dropped card is still in the reader")
	}
}

func TestVPCDInsertNoDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := NewVPCD(addr)
	if err := v.Insert(context.Background(), vpcdTestCard(t, Config{})); err == nil {
		t.Fatal("Insert with nothing listening: no error")
	}
	if v.Card() != nil {
		t.Error("a card is in the reader after a failed Insert")
	}
}
