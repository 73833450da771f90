package kdf_test

import (
	"encoding/hex"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
	"github.com/cardperso/perso/internal/kdf"
)

func ExamplePANPSNBlock() {
	y, _ := kdf.PANPSNBlock("12345678901234567", 1)
	fmt.Printf("%X\n", y)
	// Output: 4567890123456701
}

func ExampleOptionA() {
	imk, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	mk, _ := kdf.OptionA(imk, "12345678901234567", 1)
	fmt.Printf("%X\n", mk)
	// Output: 73AD54688CEF2934B0979857E3C719F1
}

func ExampleDiversifyCPS() {
	kmc, _ := hex.DecodeString("404142434445464748494A4B4C4D4E4F")
	kdd, _ := hex.DecodeString("00010203040506070809")
	for _, k := range []int{kdf.ENC, kdf.MAC, kdf.DEK} {
		key, _ := kdf.DiversifyCPS(kmc, kdd, k)
		kcv, _ := crypt.KCV(key)
		fmt.Printf("%X\n", kcv)
	}
	// Output:
	// C33013
	// 6F4CA6
	// BB8179
}

func ExampleSCP03KDF() {
	key, _ := hex.DecodeString("404142434445464748494A4B4C4D4E4F")
	context, _ := hex.DecodeString("00010203040506070809")
	senc, _ := kdf.SCP03KDF(key, kdf.SCP03SENC, context, 128)
	kcv, _ := crypt.KCVAES(senc)
	fmt.Printf("%X\n", kcv)
	// Output: C25559
}
