package crypt

import "testing"

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
