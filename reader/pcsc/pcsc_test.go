package pcsc

import (
	"errors"
	"strings"
	"testing"

	"github.com/ebfe/scard"
	"github.com/google/go-cmp/cmp"
)

func TestSelectReaders(t *testing.T) {
	readers := []string{"Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR39U ICC Reader 01 00"}
	for _, tc := range []struct {
		spec    string
		want    []string
		wantErr error  // nil: no error class to check
		errText string // a part of the error's text; empty for success
	}{
		{spec: "", want: readers},
		{spec: "all", want: readers},
		{spec: " ALL ", want: readers},
		{spec: "1", want: readers[1:2]},
		{spec: "1,0", want: []string{readers[1], readers[0]}},
		{spec: "0, 0", want: readers[:1]},
		{spec: "Virtual PCD 00 01", want: readers[1:2]},
		{spec: "acr39", want: readers[2:]},
		{spec: "00 01,acs", want: []string{readers[1], readers[2]}},
		{spec: "3", wantErr: ErrReaderUnavailable, errText: "index 3"},
		{spec: "-1", wantErr: ErrReaderUnavailable, errText: "index -1"},
		{spec: "omnikey", wantErr: ErrReaderUnavailable, errText: `"omnikey"`},
		{spec: "virtual", errText: "names 2 readers"},
		{spec: "0,", errText: "empty reader"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := SelectReaders(readers, tc.spec)
			if tc.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("error %v, want one saying %q", err, tc.errText)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not match %v", err, tc.wantErr)
			}
		})
	}
	if _, err := SelectReaders(nil, "all"); !errors.Is(err, ErrNoReaders) {
		t.Errorf("all of no readers: %v, want ErrNoReaders", err)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		code  scard.Error
		class error // nil: no class
		name  string
	}{
		{scard.ErrNoService, ErrNoService, "SCARD_E_NO_SERVICE"},
		{scard.ErrServiceStopped, ErrNoService, "SCARD_E_SERVICE_STOPPED"},
		{scard.ErrNoReadersAvailable, ErrNoReaders, "SCARD_E_NO_READERS_AVAILABLE"},
		{scard.ErrReaderUnavailable, ErrReaderUnavailable, "SCARD_E_READER_UNAVAILABLE"},
		{scard.ErrUnknownReader, ErrReaderUnavailable, "SCARD_E_UNKNOWN_READER"},
		{scard.ErrNoSmartcard, ErrNoCard, "SCARD_E_NO_SMARTCARD"},
		{scard.ErrRemovedCard, ErrCardRemoved, "SCARD_W_REMOVED_CARD"},
		{scard.ErrResetCard, ErrCardReset, "SCARD_W_RESET_CARD"},
		{scard.ErrUnresponsiveCard, ErrUnresponsiveCard, "SCARD_W_UNRESPONSIVE_CARD"},
		{scard.ErrUnpoweredCard, ErrUnresponsiveCard, "SCARD_W_UNPOWERED_CARD"},
		{scard.ErrSharingViolation, ErrSharingViolation, "SCARD_E_SHARING_VIOLATION"},
		{scard.ErrTimeout, ErrTimeout, "SCARD_E_TIMEOUT"},
		{scard.ErrNotTransacted, nil, "SCARD_E_NOT_TRANSACTED"},
		{scard.ErrCancelled, nil, "SCARD_E_CANCELLED"},
		{scard.Error(0x80100099), nil, "0x80100099"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := newError("connect", "Reader A", tc.code)
			const want = `pcsc: reader "Reader A": connect: `
			if s := err.Error(); !strings.HasPrefix(s, want) || !strings.HasSuffix(s, "("+tc.name+")") {
				t.Errorf("Error() = %q, want %q... (%s)", s, want, tc.name)
			}
			var code scard.Error
			if !errors.As(err, &code) || code != tc.code {
				t.Errorf("unwraps to %v, want %v", code, tc.code)
			}
			for _, class := range []error{ErrNoService, ErrNoReaders, ErrReaderUnavailable, ErrNoCard,
				ErrCardRemoved, ErrCardReset, ErrUnresponsiveCard, ErrSharingViolation, ErrTimeout} {
				if got := errors.Is(err, class); got != (class == tc.class) {
					t.Errorf("errors.Is(err, %v) = %v", class, got)
				}
			}
		})
	}
	// A class found out after the call says so and keeps the code.
	e := &Error{Op: "transmit", Reader: "R", Code: uint32(scard.ErrNotTransacted), class: ErrCardRemoved}
	if want := `pcsc: reader "R": transmit: card removed (the call returned SCARD_E_NOT_TRANSACTED)`; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if !errors.Is(e, ErrCardRemoved) || !errors.Is(e, scard.ErrNotTransacted) {
		t.Error("a removal found after a failed transmission does not match both its class and its code")
	}
	// Not a PC/SC code: wrapped as it is.
	plain := errors.New("other")
	if err := newError("list readers", "", plain); !errors.Is(err, plain) || err.Error() != "pcsc: list readers: other" {
		t.Errorf("newError of a plain error: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{StateFlags(0).String(), "none"},
		{(StatePresent | StateExclusive | StateInUse).String(), "present, exclusive, in use"},
		{(StatePresent | StateMute).String(), "present, mute"},
		{StateEmpty.String(), "empty"},
		{T0.String(), "T=0"},
		{T1.String(), "T=1"},
		{AnyProtocol.String(), "T=0 or T=1"},
		{Protocol(4).String(), "Protocol(0x4)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestReaderState(t *testing.T) {
	for _, tc := range []struct {
		event   scard.StateFlag
		want    ReaderState
		present bool
		gone    bool
	}{
		{0x00010022, ReaderState{Reader: "R", Flags: StatePresent, Events: 1}, true, false},
		{0x000201A2, ReaderState{Reader: "R", Flags: StatePresent | StateExclusive | StateInUse, Events: 2}, true, false},
		{0x00030012, ReaderState{Reader: "R", Flags: StateEmpty, Events: 3}, false, false},
		{0x00000222, ReaderState{Reader: "R", Flags: StatePresent | StateMute}, false, false},
		{0x0000000E, ReaderState{Reader: "R", Flags: StateUnknown | StateUnavailable}, false, true},
	} {
		got := readerState(scard.ReaderState{Reader: "R", EventState: tc.event})
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(ReaderState{}), cmp.FilterPath(func(p cmp.Path) bool {
			return p.Last().String() == ".raw"
		}, cmp.Ignore())); diff != "" {
			t.Errorf("%08X (-want +got):\n%s", uint32(tc.event), diff)
		}
		if got.raw&scard.StateChanged != 0 || got.raw>>16 != tc.event>>16 {
			t.Errorf("%08X: kept %08X for the next wait", uint32(tc.event), uint32(got.raw))
		}
		if got.Present() != tc.present || got.Gone() != tc.gone {
			t.Errorf("%08X: Present %v Gone %v", uint32(tc.event), got.Present(), got.Gone())
		}
	}
}
