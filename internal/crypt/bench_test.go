package crypt

import (
	"crypto/cipher"
	"fmt"
	"testing"
)

func BenchmarkMACAlg3_1KiB(b *testing.B) {
	key := pattern(16, 1)
	data := pattern(1024, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MACAlg3(key, nil, data, Pad2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCMAC_AES_1KiB(b *testing.B) {
	blk := mustAES(b, pattern(16, 1))
	data := pattern(1024, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		CMAC(blk, data)
	}
}

func BenchmarkCMAC_DES3_1KiB(b *testing.B) {
	blk, _ := NewDES3(pattern(16, 1))
	data := pattern(1024, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		CMAC(blk, data)
	}
}

func BenchmarkWrap_16(b *testing.B) {
	kek := mustAES(b, pattern(16, 1))
	key := pattern(16, 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Wrap(kek, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap_16(b *testing.B) {
	kek := mustAES(b, pattern(16, 1))
	w, _ := Wrap(kek, pattern(16, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unwrap(kek, w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapPad_16(b *testing.B) {
	kek := mustAES(b, pattern(16, 1))
	key := pattern(16, 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WrapPad(kek, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptCBC_DES3_1KiB(b *testing.B) {
	blk, _ := NewDES3(pattern(16, 1))
	data := pattern(1024, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := EncryptCBC(blk, nil, data, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKCV is the key check value of a freshly derived key, which a
// security module computes for every key it derives.
func BenchmarkKCV(b *testing.B) {
	for _, n := range []int{8, 16, 24} {
		b.Run(fmt.Sprintf("%d-byte key", n), func(b *testing.B) {
			key := pattern(n, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := KCV(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMACAlg3_Command is a C-MAC over the header and data of the
// longest SCP02 STORE DATA (5 + 239 bytes): with the key schedules made on
// every call, and made once.
func BenchmarkMACAlg3_Command(b *testing.B) {
	key := pattern(16, 1)
	data := pattern(244, 2)
	iv := pattern(8, 3)
	b.Run("key bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := MACAlg3(key, iv, data, Pad2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		k, err := NewDES2(key)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.MACAlg3(iv, data, Pad2); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDES3Key compares the two ways to key triple DES with a
// double-length key: the setup, and one block with a fresh key (a
// derivation or a key check value).
func BenchmarkDES3Key(b *testing.B) {
	key := pattern(16, 1)
	blk := make([]byte, 8)
	for _, c := range []struct {
		name string
		new  func([]byte) (cipher.Block, error)
	}{
		{"NewDES3", NewDES3},
		{"NewDES2", func(k []byte) (cipher.Block, error) { return NewDES2(k) }},
	} {
		b.Run(c.name+"/setup", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.new(key); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/setup+block", func(b *testing.B) {
			for b.Loop() {
				k, _ := c.new(key)
				k.Encrypt(blk, blk)
			}
		})
		b.Run(c.name+"/block", func(b *testing.B) {
			k, _ := c.new(key)
			b.SetBytes(8)
			for b.Loop() {
				k.Encrypt(blk, blk)
			}
		})
	}
}
