package gp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/crypt/crypttest"
	"github.com/google/go-cmp/cmp"
)

type gpproKeys struct {
	Source string
	SCP02  struct {
		Static       crypttest.Hex
		Sequence     crypttest.Hex
		SENC         crypttest.Hex `json:"s_enc"`
		SENCKcv      crypttest.Hex `json:"s_enc_kcv"`
		CMAC         crypttest.Hex `json:"c_mac"`
		CMACKcv      crypttest.Hex `json:"c_mac_kcv"`
		SDEK         crypttest.Hex `json:"s_dek"`
		SDEKKcv      crypttest.Hex `json:"s_dek_kcv"`
		RMACKcv      crypttest.Hex `json:"r_mac_kcv"`
		DEKPlain     crypttest.Hex `json:"dek_plain"`
		DEKEncrypted crypttest.Hex `json:"dek_encrypted"`
	}
	SCP03 struct {
		Static    crypttest.Hex
		StaticKcv crypttest.Hex `json:"static_kcv"`
		Context   crypttest.Hex
		SENCKcv   crypttest.Hex `json:"s_enc_kcv"`
		SMACKcv   crypttest.Hex `json:"s_mac_kcv"`
		SRMACKcv  crypttest.Hex `json:"s_rmac_kcv"`
	}
}

func kcvs(t *testing.T, f func([]byte) ([3]byte, error), keys ...[]byte) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		v, err := f(k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%X", v[:]))
	}
	return out
}

func hexes(bs ...[]byte) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%X", b))
	}
	return out
}

// TestSCP02SessionKeyVectors derives the card side's SCP02 session keys and
// encrypts a key under the session DEK (testdata/gppro_keys.json).
func TestSCP02SessionKeyVectors(t *testing.T) {
	var v gpproKeys
	crypttest.LoadJSON(t, "testdata/gppro_keys.json", &v)
	s := v.SCP02
	k, err := scp02SessionKeys(Keys{ENC: s.Static, MAC: s.Static, DEK: s.Static}, s.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hexes(s.SENC, s.CMAC, s.SDEK), hexes(k.ENC, k.MAC, k.DEK)); diff != "" {
		t.Errorf("session keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(hexes(s.SENCKcv, s.CMACKcv, s.SDEKKcv, s.RMACKcv), kcvs(t, crypt.KCV, k.ENC, k.MAC, k.DEK, k.RMAC)); diff != "" {
		t.Errorf("KCVs (-want +got):\n%s", diff)
	}
	enc, err := EncryptSensitive(2, k.DEK, s.DEKPlain)
	if err != nil || !bytes.Equal(enc, s.DEKEncrypted) {
		t.Errorf("EncryptSensitive = %X, %v; want %X", enc, err, s.DEKEncrypted)
	}
	dec, err := DecryptSensitive(2, k.DEK, enc)
	if err != nil || !bytes.Equal(dec, s.DEKPlain) {
		t.Errorf("DecryptSensitive = %X, %v", dec, err)
	}
}

// TestSCP03SessionKeyVectors derives the card side's SCP03 session keys
// with the test's context (testdata/gppro_keys.json).
func TestSCP03SessionKeyVectors(t *testing.T) {
	var v gpproKeys
	crypttest.LoadJSON(t, "testdata/gppro_keys.json", &v)
	s := v.SCP03
	k, err := scp03SessionKeys(Keys{ENC: s.Static, MAC: s.Static, DEK: s.Static}, s.Context)
	if err != nil {
		t.Fatal(err)
	}
	want := hexes(s.SENCKcv, s.SMACKcv, s.SRMACKcv, s.StaticKcv)
	if diff := cmp.Diff(want, kcvs(t, crypt.KCVAES, k.ENC, k.MAC, k.RMAC, k.DEK)); diff != "" {
		t.Errorf("KCVs (-want +got):\n%s", diff)
	}
}

type recordedSession struct {
	Name                 string
	Protocol             crypttest.Hex
	Keys                 struct{ ENC, MAC, DEK crypttest.Hex }
	AID                  crypttest.Hex
	InitUpdate           crypttest.Hex `json:"init_update"`
	InitUpdateResponse   crypttest.Hex `json:"init_update_response"`
	ExternalAuthenticate crypttest.Hex `json:"external_authenticate"`
	Exchanges            []struct {
		Command, Wrapped crypttest.Hex
		Response         crypttest.Hex
		WrappedResponse  crypttest.Hex `json:"wrapped_response"`
	}
}

func loadRecorded(t *testing.T) []recordedSession {
	var v struct {
		Source   string
		Sessions []recordedSession
	}
	crypttest.LoadJSON(t, "testdata/pysim_sessions.json", &v)
	if len(v.Sessions) == 0 {
		t.Fatal("no sessions in testdata/pysim_sessions.json")
	}
	return v.Sessions
}

// TestRecordedSessionsHost replays the host side of sessions recorded with
// real cards (testdata/pysim_sessions.json): every command it builds must be
// the recorded one, byte for byte, and recorded protected responses must
// unwrap to the recorded plaintext.
func TestRecordedSessionsHost(t *testing.T) {
	for _, rs := range loadRecorded(t) {
		t.Run(rs.Name, func(t *testing.T) {
			p := Protocol{Version: rs.Protocol[0], I: rs.Protocol[1]}
			iuCmd := decode(t, rs.InitUpdate)
			cfg := HostConfig{KeyVersion: iuCmd.P1, HostChallenge: iuCmd.Data}
			if p.Version == 2 {
				cfg.Protocol = p // SCP02 does not announce "i"
			}
			h, err := NewHostSession(cfg)
			if err != nil {
				t.Fatal(err)
			}
			iu, err := h.InitializeUpdate()
			if err != nil {
				t.Fatal(err)
			}
			if got := encode(iu); !bytes.Equal(got, rs.InitUpdate) {
				t.Fatalf("INITIALIZE UPDATE = %X, want %X", got, rs.InitUpdate)
			}
			r, err := h.ReadInitializeUpdate(rs.InitUpdateResponse)
			if err != nil {
				t.Fatal(err)
			}
			if h.Protocol() != p {
				t.Errorf("protocol %v, want %v", h.Protocol(), p)
			}
			static := Keys{ENC: rs.Keys.ENC, MAC: rs.Keys.MAC, DEK: rs.Keys.DEK}
			var keys SessionKeys
			if p.Version == 2 {
				keys, err = scp02SessionKeys(static, r.Sequence)
			} else {
				keys, err = scp03SessionKeys(static, h.Context())
			}
			if err != nil {
				t.Fatal(err)
			}
			ea, err := h.ExternalAuthenticate(keys, Level(rs.ExternalAuthenticate[2]))
			if err != nil {
				t.Fatal(err)
			}
			if got := encode(ea); !bytes.Equal(got, rs.ExternalAuthenticate) {
				t.Fatalf("EXTERNAL AUTHENTICATE = %X, want %X", got, rs.ExternalAuthenticate)
			}
			for i, ex := range rs.Exchanges {
				w, err := h.Wrap(decode(t, ex.Command))
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				if got := encode(w); !bytes.Equal(got, ex.Wrapped) {
					t.Fatalf("exchange %d: wrapped %X, want %X", i, got, ex.Wrapped)
				}
				if ex.WrappedResponse == nil {
					continue
				}
				resp, err := h.Unwrap(Response{Data: ex.WrappedResponse, SW: 0x9000})
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				if !bytes.Equal(resp.Data, ex.Response) {
					t.Fatalf("exchange %d: unwrapped response %X, want %X", i, resp.Data, ex.Response)
				}
			}
		})
	}
}

// TestRecordedSessionsCard replays the card side of the same sessions: the
// card, given the recorded card's keys, counter and (for SCP02) challenge,
// must answer INITIALIZE UPDATE as the real card did (for SCP03 computing
// the pseudo-random challenge itself), accept the recorded EXTERNAL
// AUTHENTICATE and commands, and protect the recorded response as the real
// card did.
func TestRecordedSessionsCard(t *testing.T) {
	for _, rs := range loadRecorded(t) {
		t.Run(rs.Name, func(t *testing.T) {
			p := Protocol{Version: rs.Protocol[0], I: rs.Protocol[1]}
			want, err := ParseInitUpdateResponse(rs.InitUpdateResponse)
			if err != nil {
				t.Fatal(err)
			}
			cfg := CardConfig{
				Protocol: p, KeyVersion: want.KeyVersion, KDD: want.KDD, AID: rs.AID,
				Keys: Keys{ENC: rs.Keys.ENC, MAC: rs.Keys.MAC, DEK: rs.Keys.DEK},
			}
			seq := uint32(0)
			for _, b := range want.Sequence {
				seq = seq<<8 | uint32(b)
			}
			if p.Version == 2 {
				cfg.Sequence = seq
				cfg.Rand = bytes.NewReader(want.CardChallenge) // the card's random challenge
				cfg.AID = crypttest.MustHex("A000000151000000")
			} else {
				cfg.Sequence = seq - 1 // the card counts up before it computes the challenge
			}
			card, err := NewCard(cfg)
			if err != nil {
				t.Fatal(err)
			}
			iu := decode(t, rs.InitUpdate)
			iu.P1 = 0 // the recorded SCP02 card answers key version 70 to 20
			s, data, err := card.InitializeUpdate(iu)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, rs.InitUpdateResponse) {
				t.Fatalf("INITIALIZE UPDATE response = %X, want %X", data, rs.InitUpdateResponse)
			}
			if err := s.ExternalAuthenticate(decode(t, rs.ExternalAuthenticate)); err != nil {
				t.Fatal(err)
			}
			for i, ex := range rs.Exchanges {
				got, err := s.UnwrapCommand(decode(t, ex.Wrapped))
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				if plain := decode(t, ex.Command); !sameCommand(got, plain) {
					t.Fatalf("exchange %d: unwrapped %X, want %X", i, encode(got), ex.Command)
				}
				if ex.WrappedResponse == nil {
					continue
				}
				resp, err := s.WrapResponse(Response{Data: ex.Response, SW: 0x9000})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(resp.Data, ex.WrappedResponse) {
					t.Fatalf("exchange %d: wrapped response %X, want %X", i, resp.Data, ex.WrappedResponse)
				}
			}
			if p.Version == 2 && card.Sequence() != seq+1 {
				t.Errorf("SCP02 sequence counter %X after the session, want %X", card.Sequence(), seq+1)
			}
		})
	}
}

func TestParseInitUpdateResponse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *InitUpdateResponse
		err  error
	}{
		{"SCP02", "00000000000000000000 70 02 0001 6B4524ABEE7C F32EA3838BC148F3", &InitUpdateResponse{
			KDD: make([]byte, 10), KeyVersion: 0x70, Protocol: Protocol{Version: 2}, Sequence: []byte{0, 1},
			CardChallenge: crypttest.MustHex("6B4524ABEE7C"), CardCryptogram: crypttest.MustHex("F32EA3838BC148F3"),
		}, nil},
		{"SCP03 pseudo-random", "00010203040506070809 30 03 70 3EB51047495B249F 66C484C1D2EF1948 000002", &InitUpdateResponse{
			KDD: crypttest.MustHex("00010203040506070809"), KeyVersion: 0x30, Protocol: SCP03_70, Sequence: []byte{0, 0, 2},
			CardChallenge: crypttest.MustHex("3EB51047495B249F"), CardCryptogram: crypttest.MustHex("66C484C1D2EF1948"),
		}, nil},
		{"SCP03 random", "00010203040506070809 30 03 00 3EB51047495B249F 66C484C1D2EF1948", &InitUpdateResponse{
			KDD: crypttest.MustHex("00010203040506070809"), KeyVersion: 0x30, Protocol: SCP03_00,
			CardChallenge: crypttest.MustHex("3EB51047495B249F"), CardCryptogram: crypttest.MustHex("66C484C1D2EF1948"),
		}, nil},
		{"SCP03 S16", "00010203040506070809 30 03 71" + "000102030405060708090A0B0C0D0E0F" + "101112131415161718191A1B1C1D1E1F" + "0000FF", &InitUpdateResponse{
			KDD: crypttest.MustHex("00010203040506070809"), KeyVersion: 0x30, Protocol: Protocol{3, 0x71}, Sequence: []byte{0, 0, 0xFF},
			CardChallenge: crypttest.MustHex("000102030405060708090A0B0C0D0E0F"), CardCryptogram: crypttest.MustHex("101112131415161718191A1B1C1D1E1F"),
		}, nil},
		{"SCP02 short", "00000000000000000000 70 02 0001 6B4524ABEE7C F32EA3838BC148", nil, ErrLength},
		{"SCP03 without counter", "00010203040506070809 30 03 70 3EB51047495B249F 66C484C1D2EF1948", nil, ErrLength},
		{"SCP03 extra counter", "00010203040506070809 30 03 00 3EB51047495B249F 66C484C1D2EF1948 000002", nil, ErrLength},
		{"SCP03 no i", "00010203040506070809 30 03", nil, ErrLength},
		{"SCP03 reserved i", "00010203040506070809 30 03 80 3EB51047495B249F 66C484C1D2EF1948", nil, ErrUnsupported},
		{"SCP01", "00010203040506070809 01 01 0000 000000000000 0000000000000000", nil, ErrUnsupported},
		{"empty", "", nil, ErrLength},
		{"KDD only", "00010203040506070809", nil, ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := crypttest.MustHex(tt.in)
			got, err := ParseInitUpdateResponse(in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if !bytes.Equal(got.Bytes(), in) {
				t.Errorf("Bytes = %X, want %X", got.Bytes(), in)
			}
		})
	}
}

func ExampleParseInitUpdateResponse() {
	b, _ := hex.DecodeString("000000000000000000003003703EB51047495B249F66C484C1D2EF1948000002")
	r, err := ParseInitUpdateResponse(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v, key version %02X, KDD %X\n", r.Protocol, r.KeyVersion, r.KDD)
	fmt.Printf("card challenge %X, cryptogram %X, counter %X\n", r.CardChallenge, r.CardCryptogram, r.Sequence)
	// Output:
	// SCP03 i=70, key version 30, KDD 00000000000000000000
	// card challenge 3EB51047495B249F, cryptogram 66C484C1D2EF1948, counter 000002
}
