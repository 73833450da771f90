package gp

import (
	"bytes"
	"testing"

	"github.com/cardperso/perso/internal/kdf"
)

// encode and decode are the short-APDU codec of ISO/IEC 7816-3 12.1.3 that
// the recorded sessions are spelled in; the module's APDU layer has the
// full one.
func encode(c Command) []byte {
	b := []byte{c.CLA, c.INS, c.P1, c.P2}
	if len(c.Data) > 0 {
		b = append(append(b, byte(len(c.Data))), c.Data...)
	}
	if c.Le >= 0 {
		b = append(b, byte(c.Le))
	}
	return b
}

func decode(t testing.TB, b []byte) Command {
	t.Helper()
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Le: leNone}
	le := func(x byte) int {
		if x == 0 {
			return 256
		}
		return int(x)
	}
	switch n := len(b) - 4; {
	case n == 0:
	case n == 1:
		c.Le = le(b[4])
	case n == 1+int(b[4]):
		c.Data = b[5:]
	case n == 2+int(b[4]):
		c.Data, c.Le = b[5:len(b)-1], le(b[len(b)-1])
	default:
		t.Fatalf("cannot decode %X", b)
	}
	return c
}

func sameCommand(a, b Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 && bytes.Equal(a.Data, b.Data) && a.Le == b.Le
}

// hsmSessionKeys derives a session's keys the way the bureau's security
// module does, from the KMC: the card's static keys diversified with the KDD
// (EMV CPS for 3DES, the SCP03 KDF for AES), then the session keys (SCP02
// E.4.1 with the sequence counter, SCP03 6.2.1 with the context).
func hsmSessionKeys(t testing.TB, p Protocol, kmc []byte, r *InitUpdateResponse, context []byte) SessionKeys {
	t.Helper()
	static := diversify(t, p, kmc, r.KDD)
	defer static.Zero()
	var k SessionKeys
	var err error
	must := func(b []byte, e error) []byte {
		if e != nil {
			err = e
		}
		return b
	}
	if p.Version == 2 {
		k.ENC = must(kdf.SCP02SessionKey(static.ENC, kdf.SCP02ConstENC, r.Sequence))
		k.MAC = must(kdf.SCP02SessionKey(static.MAC, kdf.SCP02ConstCMAC, r.Sequence))
		k.RMAC = must(kdf.SCP02SessionKey(static.MAC, kdf.SCP02ConstRMAC, r.Sequence))
		k.DEK = must(kdf.SCP02SessionKey(static.DEK, kdf.SCP02ConstDEK, r.Sequence))
	} else {
		bits := 8 * len(static.ENC)
		k.ENC = must(kdf.SCP03KDF(static.ENC, kdf.SCP03SENC, context, bits))
		k.MAC = must(kdf.SCP03KDF(static.MAC, kdf.SCP03SMAC, context, bits))
		k.RMAC = must(kdf.SCP03KDF(static.MAC, kdf.SCP03SRMAC, context, bits))
		k.DEK = clone(static.DEK)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// diversify returns a card's static keys from the KMC and KDD: EMV CPS
// v1.1 5.3.1 for SCP02, the SCP03 KDF diversification for SCP03.
func diversify(t testing.TB, p Protocol, kmc, kdd []byte) Keys {
	t.Helper()
	f := kdf.DiversifyCPS
	if p.Version == 3 {
		f = kdf.DiversifySCP03
	}
	var k Keys
	var err error
	for _, d := range []struct {
		out *[]byte
		sel int
	}{{&k.ENC, kdf.ENC}, {&k.MAC, kdf.MAC}, {&k.DEK, kdf.DEK}} {
		if *d.out, err = f(kmc, kdd, d.sel); err != nil {
			t.Fatal(err)
		}
	}
	return k
}
