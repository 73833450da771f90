package gp

import "fmt"

// INITIALIZE UPDATE and EXTERNAL AUTHENTICATE (GP Card Specification 2.2
// sections 11.8 and 11.11, E.5.1 and E.5.2; Amendment D 7.1.1 and 7.1.2).
const (
	InsInitializeUpdate     = 0x50
	InsExternalAuthenticate = 0x82
)

// kddLen is the length of the key diversification data at the start of
// the INITIALIZE UPDATE response.
const kddLen = 10

// InitUpdateResponse is the response data of INITIALIZE UPDATE:
//
//	SCP02 (GP 2.2 E.5.1):       KDD(10) || key version(1) || 02 ||
//	                            sequence counter(2) || card challenge(6) ||
//	                            card cryptogram(8)
//	SCP03 (Amendment D 7.1.1):  KDD(10) || key version(1) || 03 || i(1) ||
//	                            card challenge(8|16) || card cryptogram(8|16)
//	                            [|| sequence counter(3), with a pseudo-random
//	                            card challenge]
//
// The SCP02 response does not carry "i"; Protocol.I is then 0 and the host
// supplies it. The byte slices alias the parsed input.
type InitUpdateResponse struct {
	KDD            []byte
	KeyVersion     byte
	Protocol       Protocol
	Sequence       []byte
	CardChallenge  []byte
	CardCryptogram []byte
}

// ParseInitUpdateResponse decodes the response data of INITIALIZE UPDATE.
// The SCP identifier at offset 11 selects the layout; for SCP03 the "i" at
// offset 12 gives the S8 or S16 lengths and whether a sequence counter
// follows. It rejects any other length, an unknown SCP identifier and, for
// SCP03, an "i" this package does not implement. It never panics.
func ParseInitUpdateResponse(b []byte) (*InitUpdateResponse, error) {
	if len(b) < kddLen+2 {
		return nil, fmt.Errorf("%w: INITIALIZE UPDATE response of %d bytes, shorter than KDD and key information", ErrLength, len(b))
	}
	r := &InitUpdateResponse{KDD: b[:kddLen:kddLen], KeyVersion: b[kddLen], Protocol: Protocol{Version: b[kddLen+1]}}
	rest := b[kddLen+2:]
	var seqLen, chLen, crLen int
	switch r.Protocol.Version {
	case 2:
		seqLen, chLen, crLen = 2, scp02CardChallengeLen, 8
	case 3:
		if len(rest) < 1 {
			return nil, fmt.Errorf("%w: SCP03 INITIALIZE UPDATE response truncated at offset %d (i)", ErrLength, kddLen+2)
		}
		r.Protocol.I, rest = rest[0], rest[1:]
		if err := r.Protocol.Check(); err != nil {
			return nil, fmt.Errorf("gp: INITIALIZE UPDATE response offset %d: %w", kddLen+2, err)
		}
		chLen, crLen = r.Protocol.challengeLen(), r.Protocol.macLen()
		if r.Protocol.pseudoRandom() {
			seqLen = scp03SeqLen
		}
	default:
		return nil, fmt.Errorf("%w: INITIALIZE UPDATE response offset %d: SCP%02X", ErrUnsupported, kddLen+1, r.Protocol.Version)
	}
	if want := seqLen + chLen + crLen; len(rest) != want {
		return nil, fmt.Errorf("%w: %v INITIALIZE UPDATE response of %d bytes, want %d", ErrLength, r.Protocol, len(b), len(b)-len(rest)+want)
	}
	take := func(n int) []byte {
		v := rest[:n:n]
		rest = rest[n:]
		return v
	}
	if r.Protocol.Version == 2 {
		r.Sequence = take(seqLen)
	}
	r.CardChallenge = take(chLen)
	r.CardCryptogram = take(crLen)
	if r.Protocol.Version == 3 && seqLen > 0 {
		r.Sequence = take(seqLen)
	}
	return r, nil
}

// Bytes encodes the response data in the layout ParseInitUpdateResponse
// reads.
func (r *InitUpdateResponse) Bytes() []byte {
	out := make([]byte, 0, kddLen+3+len(r.Sequence)+len(r.CardChallenge)+len(r.CardCryptogram))
	out = append(out, r.KDD...)
	out = append(out, r.KeyVersion, r.Protocol.Version)
	if r.Protocol.Version == 2 {
		out = append(out, r.Sequence...)
	} else {
		out = append(out, r.Protocol.I)
	}
	out = append(out, r.CardChallenge...)
	out = append(out, r.CardCryptogram...)
	if r.Protocol.Version != 2 {
		out = append(out, r.Sequence...)
	}
	return out
}
