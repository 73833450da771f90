package perso

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// certSeeds returns the recovered blocks of testdata/emv_certs.json with
// the data that goes with them.
func certSeeds(f *testing.F) *emvCertVectors {
	raw, err := os.ReadFile("testdata/emv_certs.json")
	if err != nil {
		f.Fatal(err)
	}
	var vs emvCertVectors
	if err := json.Unmarshal(raw, &vs); err != nil {
		f.Fatal(err)
	}
	return &vs
}

// FuzzParseIssuerCert checks that ParseIssuerCert never panics and that
// whatever it accepts, Block encodes back to the same bytes.
func FuzzParseIssuerCert(f *testing.F) {
	for _, v := range certSeeds(f).Vectors {
		f.Add(certHex(f, v.Issuer.Recovered), certHex(f, v.Issuer.Remainder), certHex(f, v.Issuer.Exponent))
	}
	f.Add([]byte{0x6A, 0x02, 0xBC}, []byte{}, []byte{3})
	f.Fuzz(func(t *testing.T, block, rem, exp []byte) {
		for _, block := range [][]byte{block, rehashed(block, rem, exp)} {
			c, err := ParseIssuerCert(block, rem, exp)
			if err != nil {
				continue
			}
			b, r, e, err := c.Block(len(block))
			if err != nil {
				t.Fatalf("Block of a parsed certificate: %v", err)
			}
			if !bytes.Equal(b, block) || !bytes.Equal(r, rem) || !bytes.Equal(e, exp) {
				t.Fatalf("encode(decode(x)) != x:\n%X %X %X\n%X %X %X", block, rem, exp, b, r, e)
			}
		}
	})
}

// FuzzParseICCCert is FuzzParseIssuerCert for ICC certificates.
func FuzzParseICCCert(f *testing.F) {
	for _, v := range certSeeds(f).Vectors {
		if c := v.ICC; c != nil {
			f.Add(certHex(f, c.Recovered), certHex(f, c.Remainder), certHex(f, c.Exponent), certHex(f, c.StaticData))
		}
	}
	f.Add([]byte{0x6A, 0x04, 0xBC}, []byte{}, []byte{1, 0, 1}, []byte{})
	f.Fuzz(func(t *testing.T, block, rem, exp, static []byte) {
		for _, block := range [][]byte{block, rehashed(block, rem, exp, static)} {
			c, err := ParseICCCert(block, rem, exp, static)
			if err != nil {
				continue
			}
			b, r, e, err := c.Block(len(block), static)
			if err != nil {
				t.Fatalf("Block of a parsed certificate: %v", err)
			}
			if !bytes.Equal(b, block) || !bytes.Equal(r, rem) || !bytes.Equal(e, exp) {
				t.Fatalf("encode(decode(x)) != x:\n%X %X %X\n%X %X %X", block, rem, exp, b, r, e)
			}
		}
	})
}

// FuzzParseSignedStaticData checks ParseSignedStaticData the same way.
func FuzzParseSignedStaticData(f *testing.F) {
	for _, v := range certSeeds(f).Vectors {
		if s := v.SSAD; s != nil {
			f.Add(certHex(f, s.Recovered), certHex(f, s.StaticData))
		}
	}
	f.Add([]byte{0x6A, 0x03, 0x01, 0xBC}, []byte{})
	f.Fuzz(func(t *testing.T, block, static []byte) {
		for _, block := range [][]byte{block, rehashed(block, static)} {
			s, err := ParseSignedStaticData(block, static)
			if err != nil {
				continue
			}
			b, err := s.Block(len(block), static)
			if err != nil || !bytes.Equal(b, block) {
				t.Fatalf("encode(decode(x)) != x: %X, %v; want %X", b, err, block)
			}
		}
	})
}

// FuzzParseSignedDynamicData checks ParseSignedDynamicData the same way,
// and DynamicNumber on what it accepts.
func FuzzParseSignedDynamicData(f *testing.F) {
	for _, v := range certSeeds(f).Vectors {
		if d := v.SDAD; d != nil {
			f.Add(certHex(f, d.Recovered), certHex(f, d.TerminalData))
		}
	}
	f.Add([]byte{0x6A, 0x05, 0x01, 0x00, 0xBC}, []byte{})
	f.Fuzz(func(t *testing.T, block, term []byte) {
		for _, block := range [][]byte{block, rehashed(block, term)} {
			s, err := ParseSignedDynamicData(block, term)
			if err != nil {
				continue
			}
			if n, err := s.DynamicNumber(); err == nil && (len(n) < 2 || len(n) > 8) {
				t.Fatalf("dynamic number of %d bytes", len(n))
			}
			b, err := s.Block(len(block), term)
			if err != nil || !bytes.Equal(b, block) {
				t.Fatalf("encode(decode(x)) != x: %X, %v; want %X", b, err, block)
			}
		}
	})
}

// rehashed returns a copy of block with a correct hash result, so that
// the fuzzer also reaches the checks that follow the hash.
func rehashed(block []byte, extra ...[]byte) []byte {
	if len(block) < 2+hashLen {
		return block
	}
	b := bytes.Clone(block)
	h := certHash(b[1:len(b)-1-hashLen], extra...)
	copy(b[len(b)-1-hashLen:], h[:])
	return b
}
