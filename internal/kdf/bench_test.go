package kdf

import (
	"testing"

	"github.com/cardperso/perso/internal/crypt"
)

func BenchmarkOptionA(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OptionA(testIMK, "5413330089600010", 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOptionB_17Digits(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OptionB(testIMK, "12345678901234567", 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionKeyAC(b *testing.B) {
	data := make([]byte, 29)
	b.ReportAllocs()
	for b.Loop() {
		sk, err := SessionKey(testIMK, 0x001C)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := AC(sk, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiversifyCPS(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DiversifyCPS(testKMC, testKDD, ENC); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSCP03KDF(b *testing.B) {
	ctx := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SCP03KDF(testKMC, SCP03SENC, ctx, 128); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOptionACipher derives with the master key's cipher made once,
// as a security module that keeps it does; compare BenchmarkOptionA.
func BenchmarkOptionACipher(b *testing.B) {
	imk, err := crypt.NewDES3(testIMK)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OptionACipher(imk, "5413330089600010", 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiversifyCPSCipher diversifies with the KMC's cipher made once;
// compare BenchmarkDiversifyCPS.
func BenchmarkDiversifyCPSCipher(b *testing.B) {
	kmc, err := crypt.NewDES3(testKMC)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DiversifyCPSCipher(kmc, testKDD, ENC); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSCP02SessionKey derives one SCP02 session key from a static key.
func BenchmarkSCP02SessionKey(b *testing.B) {
	seq := []byte{0x00, 0x2A}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SCP02SessionKey(testKMC, SCP02ConstENC, seq); err != nil {
			b.Fatal(err)
		}
	}
}
