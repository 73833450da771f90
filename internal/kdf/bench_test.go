package kdf

import "testing"

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
