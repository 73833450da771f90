package perso

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandEncoding(t *testing.T) {
	d255 := bytes.Repeat([]byte{0xAB}, 255)
	d256 := bytes.Repeat([]byte{0xCD}, 256)
	tests := []struct {
		name  string
		cmd   Command
		enc   string
		case_ int
	}{
		{"case 1", Command{CLA: 0x80, INS: 0xF2, P1: 0x20, P2: 0x02, Le: LeNone}, "80F22002", 1},
		{"case 2S", Command{CLA: 0x80, INS: 0xCA, P1: 0x00, P2: 0x66, Le: 1}, "80CA006601", 2},
		{"case 2S Le 256", Command{CLA: 0x80, INS: 0xCA, P1: 0x00, P2: 0x66, Le: 256}, "80CA006600", 2},
		{"case 2E", Command{CLA: 0x00, INS: 0xB0, Le: 257}, "00B00000000101", 2},
		{"case 2E Le 65536", Command{CLA: 0x00, INS: 0xB0, Le: 65536}, "00B00000000000", 2},
		{"case 3S", Command{CLA: 0x80, INS: 0xE2, P1: 0x80, P2: 0x01, Data: []byte{1, 2, 3}, Le: LeNone}, "80E2800103010203", 3},
		{"case 3S 255", Command{CLA: 0x80, INS: 0xE2, Data: d255, Le: LeNone}, "80E20000FF" + strings.Repeat("AB", 255), 3},
		{"case 3E", Command{CLA: 0x80, INS: 0xE2, Data: d256, Le: LeNone}, "80E2000000 0100" + strings.Repeat("CD", 256), 3},
		{"case 4S", Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Data: []byte{0xA0, 0, 0, 0, 3}, Le: 256}, "00A4040005A00000000300", 4},
		{"case 4E by data", Command{CLA: 0x80, INS: 0xE2, Data: d256, Le: 256}, "80E2000000 0100" + strings.Repeat("CD", 256) + "0100", 4},
		{"case 4E by Le", Command{CLA: 0x80, INS: 0xE2, Data: []byte{9}, Le: 1000}, "80E2000000 0001 09 03E8", 4},
		{"case 4E Le 65536", Command{CLA: 0x80, INS: 0xE2, Data: []byte{9}, Le: 65536}, "80E2000000 0001 09 0000", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.enc)
			got, err := tt.cmd.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Bytes = %X, want %X", got, want)
			}
			if c := tt.cmd.Case(); c != tt.case_ {
				t.Errorf("Case = %d, want %d", c, tt.case_)
			}
			back, err := ParseCommand(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.cmd, back, cmpCommand); diff != "" {
				t.Errorf("ParseCommand mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpCommand compares commands treating nil and empty data alike.
var cmpCommand = cmp.Comparer(func(a, b Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 &&
		bytes.Equal(a.Data, b.Data) && a.Le == b.Le
})

func TestCommandLeZero(t *testing.T) {
	// Le 0 asks for everything: 00 short, 0000 extended.
	short, err := Command{INS: 0xB0, Le: 0}.Bytes()
	if err != nil || !bytes.Equal(short, unhex(t, "00B0000000")) {
		t.Errorf("short Le 0 = %X, %v", short, err)
	}
	ext, err := Command{INS: 0xD6, Data: make([]byte, 300), Le: 0}.Bytes()
	if err != nil || !bytes.Equal(ext[len(ext)-2:], []byte{0, 0}) || len(ext) != 4+3+300+2 {
		t.Errorf("extended Le 0 = %d bytes ending %X, %v", len(ext), ext[len(ext)-2:], err)
	}
}

func TestCommandEncodingErrors(t *testing.T) {
	for _, c := range []Command{
		{Le: -2},
		{Le: MaxLe + 1},
		{Data: make([]byte, MaxData+1), Le: LeNone},
	} {
		if b, err := c.Bytes(); err == nil {
			t.Errorf("%v: encoded %d bytes, want error", c, len(b))
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"80",
		"80E200",
		"80E2000002AA",             // short Lc 2, one byte
		"80E2000002AABBCCDD",       // short Lc 2, four bytes
		"80E2000000AA",             // 00 then one byte: neither 2S nor extended
		"80E20000000000AA",         // extended Lc 0000
		"80E2000000000201",         // extended Lc 2, one byte
		"80E200000000020102030405", // extended Lc 2, one byte too many for 4E
	} {
		if c, err := ParseCommand(unhex(t, s)); err == nil {
			t.Errorf("ParseCommand(%s) = %v, want error", s, c)
		}
	}
}

func TestParseCommandNonMinimal(t *testing.T) {
	// An extended encoding of small lengths is valid (ISO/IEC 7816-3
	// 12.1.3); re-encoding it gives the short form.
	c, err := ParseCommand(unhex(t, "80E2000000 0002 AABB 0010"))
	if err != nil {
		t.Fatal(err)
	}
	want := Command{CLA: 0x80, INS: 0xE2, Data: []byte{0xAA, 0xBB}, Le: 16}
	if diff := cmp.Diff(want, c, cmpCommand); diff != "" {
		t.Fatalf("mismatch (-want +got):\n%s", diff)
	}
	if b, _ := c.Bytes(); !bytes.Equal(b, unhex(t, "80E2000002AABB10")) {
		t.Errorf("re-encoded %X", b)
	}
}

func TestCommandStringHidesData(t *testing.T) {
	c := Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80, Data: []byte{0x24, 0x12, 0x34, 0xFF}, Le: LeNone}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", c)} {
		if strings.Contains(strings.ToUpper(s), "1234") {
			t.Errorf("%q shows the data", s)
		}
	}
	if got, want := c.String(), "00200080 Lc=4 Le=none"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in   string
		want Response
		err  bool
	}{
		{"9000", Response{SW: 0x9000}, false},
		{"01026A82", Response{Data: []byte{1, 2}, SW: 0x6A82}, false},
		{"90", Response{}, true},
		{"", Response{}, true},
	}
	for _, tt := range tests {
		got, err := ParseResponse(unhex(t, tt.in))
		if (err != nil) != tt.err {
			t.Errorf("ParseResponse(%s) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if tt.err {
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
			t.Errorf("ParseResponse(%s) mismatch (-want +got):\n%s", tt.in, diff)
		}
		if !bytes.Equal(got.Bytes(), unhex(t, tt.in)) {
			t.Errorf("Bytes = %X, want %s", got.Bytes(), tt.in)
		}
	}
}

// script is a Transport that checks each command against the expected one
// and answers from a list.
type script struct {
	t     *testing.T
	steps []step
	i     int
}

type step struct {
	cmd  string // expected command, hex
	resp string // response, hex; "" with err set for a transport failure
	err  error
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected command %X after the script ended", cmd)
	}
	st := s.steps[s.i]
	s.i++
	if want := unhex(s.t, st.cmd); !bytes.Equal(cmd, want) {
		s.t.Fatalf("command %d = %X, want %X", s.i, cmd, want)
	}
	if st.err != nil {
		return nil, st.err
	}
	return unhex(s.t, st.resp), nil
}

func TestConnGetResponse(t *testing.T) {
	tr := &script{t: t, steps: []step{
		{"00A4040005A000000003 00", "6110", nil},
		{"00C0000010", "0102030405060708090A0B0C0D0E0F10 6103", nil},
		{"00C0000003", "111213 9000", nil},
	}}
	c := NewConn(tr)
	data, err := c.Do(Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Data: unhex(t, "A000000003"), Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "0102030405060708090A0B0C0D0E0F10111213"); !bytes.Equal(data, want) {
		t.Errorf("data = %X, want %X", data, want)
	}
	if c.Count() != 3 {
		t.Errorf("Count = %d, want 3", c.Count())
	}
}

func TestConnGetResponseChannel(t *testing.T) {
	// GET RESPONSE keeps the logical channel of the command (ISO/IEC
	// 7816-4 5.4.1): 81 -> 01, 85 (SM on channel 1) -> 01, 4A -> 4A.
	for _, tt := range []struct{ cla, gr byte }{{0x81, 0x01}, {0x85, 0x01}, {0x84, 0x00}, {0x4A, 0x4A}, {0x6A, 0x4A}} {
		tr := &script{t: t, steps: []step{
			{fmt.Sprintf("%02XCA006600", tt.cla), "6102", nil},
			{fmt.Sprintf("%02XC0000002", tt.gr), "AABB9000", nil},
		}}
		if _, err := NewConn(tr).Do(Command{CLA: tt.cla, INS: 0xCA, P2: 0x66, Le: 256}); err != nil {
			t.Errorf("CLA %02X: %v", tt.cla, err)
		}
	}
}

func TestConnWrongLe(t *testing.T) {
	tr := &script{t: t, steps: []step{
		{"80CA9F7F00", "6C2D", nil},
		{"80CA9F7F2D", strings.Repeat("EE", 0x2D) + "9000", nil},
	}}
	c := NewConn(tr)
	data, err := c.Do(Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x7F, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 0x2D || c.Count() != 2 {
		t.Errorf("got %d bytes after %d APDUs, want 45 after 2", len(data), c.Count())
	}
}

func TestConnWrongLeOnce(t *testing.T) {
	// A second 6Cxx for the same command is the final answer.
	tr := &script{t: t, steps: []step{
		{"80CA9F7F00", "6C2D", nil},
		{"80CA9F7F2D", "6C2E", nil},
	}}
	_, err := NewConn(tr).Do(Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x7F, Le: 256})
	if !errors.Is(err, ErrWrongLe) {
		t.Fatalf("err = %v, want ErrWrongLe", err)
	}
}

// endless answers 61FF to every command.
type endless struct{ n int }

func (e *endless) Transmit([]byte) ([]byte, error) {
	e.n++
	return append(make([]byte, 255), 0x61, 0xFF), nil
}

func TestConnBounds(t *testing.T) {
	tr := &endless{}
	c := NewConn(tr)
	_, err := c.Transmit(Command{CLA: 0x80, INS: 0xCA, Le: 256})
	if err == nil {
		t.Fatal("no error from a card that never stops answering 61FF")
	}
	if tr.n > maxGetResponse+2 {
		t.Errorf("sent %d APDUs, more than the bound %d", tr.n, maxGetResponse+2)
	}
	var ae *APDUError
	if !errors.As(err, &ae) || ae.Index != c.Count() {
		t.Errorf("err = %v, want an APDUError with index %d", err, c.Count())
	}
}

func TestConnErrors(t *testing.T) {
	gone := errors.New("reader: card removed")
	tr := &script{t: t, steps: []step{
		{"00A4040000", "9000", nil},
		{"80E2800003010203", "6A80", nil},
		{"80E2800003010203", "", gone},
		{"80CA006600", "90", nil},
	}}
	c := NewConn(tr)
	if _, err := c.Do(Command{INS: 0xA4, P1: 0x04, Le: 256}); err != nil {
		t.Fatal(err)
	}
	store := Command{CLA: 0x80, INS: 0xE2, P1: 0x80, Data: []byte{1, 2, 3}, Le: LeNone}
	_, err := c.Do(store)
	var ae *APDUError
	if !errors.As(err, &ae) || ae.Index != 2 || ae.INS != 0xE2 || !errors.Is(err, ErrWrongData) {
		t.Errorf("err = %v, want APDU 2 (INS E2) wrapping 6A80", err)
	}
	if got, want := err.Error(), "perso: APDU 2 (80E28000): perso: SW 6A80: incorrect parameters in the command data field"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = c.Transmit(store)
	if !errors.Is(err, gone) || !errors.As(err, &ae) || ae.Index != 3 {
		t.Errorf("err = %v, want APDU 3 wrapping the transport error", err)
	}
	_, err = c.Transmit(Command{CLA: 0x80, INS: 0xCA, P2: 0x66, Le: 256})
	if err == nil || !errors.As(err, &ae) || ae.Index != 4 {
		t.Errorf("err = %v, want APDU 4 failing on a one-byte response", err)
	}
	_, err = c.Transmit(Command{Le: -5})
	if err == nil || c.Count() != 4 {
		t.Errorf("err = %v, Count = %d: an unencodable command must fail before it is sent", err, c.Count())
	}
}

// tagChannel is a SecureChannel that appends a tag to the data and checks
// that responses end in it.
type tagChannel struct{ fail bool }

func (tagChannel) Wrap(c Command) (Command, error) {
	c.CLA |= 0x04
	c.Data = append(append([]byte(nil), c.Data...), 0x5A)
	return c, nil
}

func (s tagChannel) Unwrap(r Response) (Response, error) {
	if s.fail || len(r.Data) == 0 || r.Data[len(r.Data)-1] != 0x5A {
		return Response{}, errors.New("test: bad response tag")
	}
	r.Data = r.Data[:len(r.Data)-1]
	return r, nil
}

func TestConnSecureChannel(t *testing.T) {
	tr := &script{t: t, steps: []step{
		{"84CA0066015A00", "6103", nil},
		{"00C0000003", "01025A9000", nil},
		{"84CA0066015A00", "01029000", nil},
		{"80CA006600", "01029000", nil},
	}}
	c := NewConn(tr)
	c.SetSecureChannel(tagChannel{})
	cmd := Command{CLA: 0x80, INS: 0xCA, P2: 0x66, Le: 256}
	data, err := c.Do(cmd)
	if err != nil || !bytes.Equal(data, []byte{1, 2}) {
		t.Fatalf("Do = %X, %v", data, err)
	}
	c.SetSecureChannel(tagChannel{fail: true})
	if _, err := c.Do(cmd); err == nil {
		t.Fatal("a response that fails the channel's check was accepted")
	}
	c.SetSecureChannel(nil)
	if _, err := c.Do(cmd); err != nil {
		t.Fatal(err)
	}
}

func TestSWErrors(t *testing.T) {
	sentinels := []error{
		ErrAuthFailed, ErrMemoryFailure, ErrWrongLength, ErrSMNotSupported, ErrSecurityStatus,
		ErrAuthBlocked, ErrConditions, ErrSMDataObjects, ErrWrongData, ErrFuncNotSupported,
		ErrFileNotFound, ErrRecordNotFound, ErrNotEnoughMemory, ErrWrongP1P2, ErrRefDataNotFound,
		ErrWrongLe, ErrINSNotSupported, ErrCLANotSupported, ErrNoDiagnosis,
	}
	tests := []struct {
		sw      uint16
		matches []error
		text    string
	}{
		{0x6300, []error{ErrAuthFailed}, "authentication failed"},
		{0x63C2, []error{ErrAuthFailed}, "verification failed, 2 tries left"},
		{0x6310, nil, "warning, state of non-volatile memory changed"},
		{0x6581, []error{ErrMemoryFailure}, "memory failure"},
		{0x6700, []error{ErrWrongLength}, "wrong length"},
		{0x6882, []error{ErrSMNotSupported}, "secure messaging not supported"},
		{0x6982, []error{ErrSecurityStatus}, "security status not satisfied"},
		{0x6983, []error{ErrAuthBlocked}, "authentication method blocked"},
		{0x6985, []error{ErrConditions}, "conditions of use not satisfied"},
		{0x6987, []error{ErrSMDataObjects}, "expected secure messaging data objects missing"},
		{0x6988, []error{ErrSMDataObjects}, "incorrect secure messaging data objects"},
		{0x6A80, []error{ErrWrongData}, "incorrect parameters in the command data field"},
		{0x6A81, []error{ErrFuncNotSupported}, "function not supported"},
		{0x6A82, []error{ErrFileNotFound}, "file or application not found"},
		{0x6A83, []error{ErrRecordNotFound}, "record not found"},
		{0x6A84, []error{ErrNotEnoughMemory}, "not enough memory space"},
		{0x6A86, []error{ErrWrongP1P2}, "incorrect parameters P1-P2"},
		{0x6B00, []error{ErrWrongP1P2}, "wrong parameters P1-P2"},
		{0x6A88, []error{ErrRefDataNotFound}, "referenced data or reference data not found"},
		{0x6C10, []error{ErrWrongLe}, "wrong Le field, exact length 16"},
		{0x6D00, []error{ErrINSNotSupported}, "instruction code not supported or invalid"},
		{0x6E00, []error{ErrCLANotSupported}, "class not supported"},
		{0x6F00, []error{ErrNoDiagnosis}, "no precise diagnosis"},
		{0x6F12, []error{ErrNoDiagnosis}, "no precise diagnosis"},
		{0x6283, nil, "selected file deactivated"},
		{0x6A8A, nil, "DF name already exists"},
		{0x6611, nil, "security-related issue"},
		{0x9484, nil, "algorithm not supported"},
		{0x1234, nil, "unknown status"},
	}
	for _, tt := range tests {
		var err error = &APDUError{Index: 1, Err: Response{SW: tt.sw}.Err()}
		var got []error
		for _, s := range sentinels {
			if errors.Is(err, s) {
				got = append(got, s)
			}
		}
		if diff := cmp.Diff(tt.matches, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("%04X matches (-want +got):\n%s", tt.sw, diff)
		}
		if got := StatusText(tt.sw); got != tt.text {
			t.Errorf("StatusText(%04X) = %q, want %q", tt.sw, got, tt.text)
		}
		var swe *SWError
		if !errors.As(err, &swe) || swe.SW != tt.sw {
			t.Errorf("%04X: errors.As gives %v", tt.sw, swe)
		}
		if want := fmt.Sprintf("perso: SW %04X: %s", tt.sw, tt.text); swe.Error() != want {
			t.Errorf("Error() = %q, want %q", swe.Error(), want)
		}
	}
	if err := (Response{SW: 0x9000}).Err(); err != nil {
		t.Errorf("9000: %v", err)
	}
}

func TestSWErrorDetails(t *testing.T) {
	tests := []struct {
		sw      uint16
		retries int
		ok      bool
		warning bool
	}{
		{0x63C3, 3, true, true},
		{0x63C0, 0, true, true},
		{0x6300, 0, false, true},
		{0x6283, 0, false, true},
		{0x6982, 0, false, false},
	}
	for _, tt := range tests {
		e := &SWError{SW: tt.sw}
		n, ok := e.Retries()
		if n != tt.retries || ok != tt.ok || e.Warning() != tt.warning {
			t.Errorf("%04X: Retries = %d, %v; Warning = %v; want %d, %v; %v", tt.sw, n, ok, e.Warning(), tt.retries, tt.ok, tt.warning)
		}
	}
}

func ExampleCommand_Bytes() {
	// STORE DATA, last block, DGI 0101 of three bytes, no Le.
	c := Command{CLA: 0x80, INS: 0xE2, P1: 0x80, P2: 0x00, Data: []byte{0x01, 0x01, 0x03, 0xAA, 0xBB, 0xCC}, Le: LeNone}
	b, _ := c.Bytes()
	fmt.Printf("%X\n", b)
	fmt.Println(c)
	// Output:
	// 80E2800006010103AABBCC
	// 80E28000 Lc=6 Le=none
}

func ExampleParseCommand() {
	c, _ := ParseCommand([]byte{0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00})
	fmt.Printf("case %d, AID %X, Le %d\n", c.Case(), c.Data, c.Le)
	// Output:
	// case 4, AID A0000000031010, Le 256
}

func ExampleSWError() {
	resp, _ := ParseResponse([]byte{0x69, 0x82})
	err := resp.Err()
	fmt.Println(err)
	fmt.Println(errors.Is(err, ErrSecurityStatus))
	// Output:
	// perso: SW 6982: security status not satisfied
	// true
}

// The seed corpora are in testdata/fuzz.

func FuzzParseCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		if len(c.Data) > len(b) {
			t.Fatalf("%d bytes of data from %d bytes of input", len(c.Data), len(b))
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("re-encoding %X: %v", b, err)
		}
		// encode(decode(x)) == x whenever x used the short form where it
		// could, and decode(encode(decode(x))) == decode(x) always.
		if short := len(b) <= 5 || b[4] != 0; short && !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded %X as %X", b, enc)
		}
		again, err := ParseCommand(enc)
		if err != nil {
			t.Fatalf("parsing the re-encoding %X of %X: %v", enc, b, err)
		}
		if diff := cmp.Diff(c, again, cmpCommand); diff != "" {
			t.Fatalf("round trip of %X (-first +second):\n%s", b, diff)
		}
	})
}

func FuzzCommandRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, cla, ins, p1, p2 byte, data []byte, le int) {
		c := Command{CLA: cla, INS: ins, P1: p1, P2: p2, Data: data, Le: le}
		enc, err := c.Bytes()
		if err != nil {
			if len(data) <= MaxData && le >= LeNone && le <= MaxLe {
				t.Fatalf("%v: %v", c, err)
			}
			return
		}
		back, err := ParseCommand(enc)
		if err != nil {
			t.Fatalf("%v encoded as %X does not parse: %v", c, enc, err)
		}
		want := c
		if want.Le == 0 { // "everything" reads back as the maximum of the form used
			want.Le = MaxShortLe
			if c.Extended() {
				want.Le = MaxLe
			}
		}
		if diff := cmp.Diff(want, back, cmpCommand); diff != "" {
			t.Fatalf("round trip of %X (-want +got):\n%s", enc, diff)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			if len(b) >= 2 {
				t.Fatalf("%X: %v", b, err)
			}
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("round trip of %X gave %X", b, r.Bytes())
		}
		if (r.Err() == nil) != (r.SW == SWSuccess) {
			t.Fatalf("%04X: Err = %v", r.SW, r.Err())
		}
	})
}
