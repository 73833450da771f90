package pcsc_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/cardperso/perso/reader/pcsc"
	"github.com/cardperso/perso/reader/pcsc/pcsctest"
	"github.com/cardperso/perso/reader/vcard"
)

// BenchmarkRoundTrip measures one APDU's round trip through the PC/SC
// stack: the client library, pcscd, the vpcd driver's socket and the
// virtual card, against the same card called in-process. It reports the
// median and the 99th percentile besides the mean.
//
//	go test -run - -bench RoundTrip ./reader/pcsc/
func BenchmarkRoundTrip(b *testing.B) {
	rs := pcsctest.VPCD(b, 1)
	c := open(b)
	insert(b, c, rs[0], newCard(b, vcard.Fault{}))
	k := connect(b, c, rs[0].Name, pcsc.Options{})
	if err := k.Begin(); err != nil {
		b.Fatal(err)
	}
	// UPDATE BINARY with 255 bytes, which the card refuses (6D00): the
	// longest short command, as a STORE DATA is.
	long := append([]byte{0x00, 0xD6, 0x00, 0x00, 0xFF}, bytes.Repeat([]byte{0x5A}, 255)...)
	local := newCard(b, vcard.Fault{})
	for _, tc := range []struct {
		name string
		cmd  []byte
	}{
		{"GET_DATA", getCPLC},
		{"255_bytes", long},
	} {
		b.Run(tc.name+"/pcscd", func(b *testing.B) { roundTrips(b, k, tc.cmd) })
		b.Run(tc.name+"/in-process", func(b *testing.B) { roundTrips(b, local, tc.cmd) })
	}
}

func roundTrips(b *testing.B, t interface{ Transmit([]byte) ([]byte, error) }, cmd []byte) {
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := t.Transmit(cmd); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "median-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkStationCycle measures what a station adds to each card's
// session: Insert (the feeder swaps a fresh card in; connect, power-up
// and ATR, transaction) and Eject (end of the transaction, unpowered
// disconnection), with one APDU in between.
func BenchmarkStationCycle(b *testing.B) {
	rs := pcsctest.VPCD(b, 1)
	v := vcard.NewVPCD(rs[0].Addr)
	defer pcsctest.TakeOut(b, rs[0], v)
	f := &vcard.VPCDFeeder{Reader: v, Next: func() (*vcard.Card, error) { return newCard(b, vcard.Fault{}), nil }}
	st, err := pcsc.NewStation(pcsc.StationConfig{Reader: rs[0].Name, Feeder: f, Wait: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := b.Context()
	var in, out []time.Duration
	for b.Loop() {
		t0 := time.Now()
		tr, err := st.Insert(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := tr.Transmit(getCPLC); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := st.Eject(tr, true); err != nil {
			b.Fatal(err)
		}
		in, out = append(in, t1.Sub(t0)), append(out, time.Since(t2))
	}
	slices.Sort(in)
	slices.Sort(out)
	b.ReportMetric(float64(in[len(in)/2].Nanoseconds())/1e3, "insert-median-µs")
	b.ReportMetric(float64(out[len(out)/2].Nanoseconds())/1e3, "eject-median-µs")
	b.ReportMetric(float64(in[len(in)*9/10].Nanoseconds())/1e3, "insert-p90-µs")
	b.ReportMetric(float64(out[len(out)*9/10].Nanoseconds())/1e3, "eject-p90-µs")
	b.ReportMetric(float64(in[len(in)*99/100].Nanoseconds())/1e3, "insert-p99-µs")
}
