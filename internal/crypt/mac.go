package crypt

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// cbcMAC runs the CBC-MAC chain of b over data padded with p, starting
// from and leaving the result in state (one block). It pads on the fly,
// so it never copies data. It fails only for PadNone with data that is
// empty or not whole blocks, and for an unknown p.
func cbcMAC(b cipher.Block, state, data []byte, p Padding) error {
	bs := len(state)
	full := len(data) / bs * bs
	rest := data[full:]
	switch p {
	case PadNone:
		if len(data) == 0 || len(rest) != 0 {
			return fmt.Errorf("crypt: MAC input is %d bytes, not a non-zero multiple of the %d-byte block and no padding", len(data), bs)
		}
	case Pad1, Pad2:
	default:
		return fmt.Errorf("crypt: unknown padding method %d", int(p))
	}
	for i := 0; i < full; i += bs {
		subtle.XORBytes(state, state, data[i:i+bs])
		b.Encrypt(state, state)
	}
	// The last, padded block: with method 1 only if there are bytes left
	// (or no data at all); with method 2 always.
	if p == Pad2 || len(rest) != 0 || (p == Pad1 && len(data) == 0) {
		subtle.XORBytes(state, state, rest)
		if p == Pad2 {
			state[len(rest)] ^= 0x80
		}
		b.Encrypt(state, state)
	}
	return nil
}

// MACAlg1 returns ISO/IEC 9797-1:2011 MAC algorithm 1 (section 7.2): the
// CBC-MAC of data padded with p under b, the last block in full, with
// initial value iv (nil for zeros; otherwise one block). With 3DES and
// Pad2 it is the GlobalPlatform SCP02 card and host cryptogram (GP Card
// Specification 2.2 E.4.2).
//
// MACAlg1 panics, as crypto/cipher's modes do, if iv is neither nil nor
// one block, or if p is PadNone and data is empty or not whole blocks:
// those are errors in the calling code, never in the data.
func MACAlg1(b cipher.Block, iv, data []byte, p Padding) []byte {
	bs := b.BlockSize()
	if err := checkIV("MAC algorithm 1", bs, iv); err != nil {
		panic(err.Error())
	}
	mac := make([]byte, bs)
	copy(mac, iv)
	if err := cbcMAC(b, mac, data, p); err != nil {
		panic(err.Error())
	}
	return mac
}

// MACAlg3 returns ISO/IEC 9797-1:2011 MAC algorithm 3 (section 7.4, the
// ANSI X9.19 "retail MAC"): single-DES CBC-MAC with K1 (the first 8 bytes
// of the 16-byte key) over data padded with p, then output transformation
// 3 on the last block: decrypt with K2, encrypt with K1. The initial value
// iv is nil for zeros or 8 bytes (the SCP02 ICV). The result is 8 bytes.
// EMV application cryptograms (Book 2 8.1.2) use it with Pad2. It makes
// the key schedules of K1 and K2 on every call; [DES2.MACAlg3] makes them
// once for a key that MACs many times.
func MACAlg3(key, iv, data []byte, p Padding) ([]byte, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("crypt: MAC algorithm 3 key is %d bytes, want 16", len(key))
	}
	k, err := NewDES2(key)
	if err != nil {
		return nil, err
	}
	return k.MACAlg3(iv, data, p)
}
