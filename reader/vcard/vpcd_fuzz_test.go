package vcard

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzVPCDMsg reads a stream of vpcd messages: reading never panics,
// allocates nothing past the one message buffer, and framing the messages
// read gives back the bytes they came from. The seeds are in
// testdata/fuzz/FuzzVPCDMsg: control codes, APDUs, a cut stream, an
// empty message.
func FuzzVPCDMsg(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 1, 4})
	buf := make([]byte, vpcdMaxMsg)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		enc := make([]byte, 0, len(in))
		var err error
		allocs := testing.AllocsPerRun(1, func() {
			r.Reset(in)
			enc = enc[:0]
			for {
				var m []byte
				if m, err = readVPCDMsg(r, buf); err != nil {
					return
				}
				enc = binaryAppend(enc, m)
			}
		})
		if allocs > 16 { // a constant (a cut stream's error, race instrumentation), nothing per message
			t.Errorf("%v allocations reading %d bytes", allocs, len(in))
		}
		if !bytes.HasPrefix(in, enc) {
			t.Fatalf("re-encoded %X is not a prefix of %X", enc, in)
		}
		if err == io.EOF && len(enc) != len(in) {
			t.Fatalf("clean end after %d of %d bytes", len(enc), len(in))
		}
		if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && err != errVPCDEmpty {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// binaryAppend frames m without allocating when enc has room.
func binaryAppend(enc, m []byte) []byte {
	out, err := appendVPCDMsg(enc, m)
	if err != nil {
		panic(err) // a message read is never longer than the framing allows
	}
	return out
}
