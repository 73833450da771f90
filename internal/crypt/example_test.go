package crypt_test

import (
	"crypto/aes"
	"encoding/hex"
	"fmt"

	"github.com/cardperso/perso/internal/crypt"
)

func ExamplePad() {
	fmt.Printf("%X\n", crypt.Pad([]byte{0x01, 0x02, 0x03}, 8, crypt.Pad2))
	fmt.Printf("%X\n", crypt.Pad(nil, 8, crypt.Pad1))
	// Output:
	// 0102038000000000
	// 0000000000000000
}

func ExampleUnpad2() {
	data, err := crypt.Unpad2([]byte{0x01, 0x02, 0x03, 0x80, 0, 0, 0, 0}, 8)
	fmt.Printf("%X %v\n", data, err)
	_, err = crypt.Unpad2([]byte{0x01, 0x02, 0x03, 0x00, 0, 0, 0, 0}, 8)
	fmt.Println(err)
	// Output:
	// 010203 <nil>
	// crypt: ISO 9797-1 padding method 2 not found in the last block
}

func ExampleKCV() {
	key, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	kcv, _ := crypt.KCV(key)
	fmt.Printf("%X\n", kcv)
	// Output: 08D7B4
}

func ExampleMACAlg3() {
	key, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	mac, _ := crypt.MACAlg3(key, nil, []byte("Now is the time for all "), crypt.Pad2)
	fmt.Printf("%X\n", mac)
	// Output: E9086230CA3BE796
}

// The first example of RFC 3394 section 4.
func ExampleWrap() {
	kekBytes, _ := hex.DecodeString("000102030405060708090A0B0C0D0E0F")
	key, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF")
	kek, _ := aes.NewCipher(kekBytes)
	wrapped, _ := crypt.Wrap(kek, key)
	fmt.Printf("%X\n", wrapped)
	back, _ := crypt.Unwrap(kek, wrapped)
	fmt.Printf("%X\n", back)
	// Output:
	// 1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5
	// 00112233445566778899AABBCCDDEEFF
}

// A session prepares its MAC key once and MACs each command with it. The
// messages and MACs are those of ISO/IEC 9797-1:2011 B.4 (MAC algorithm
// 3, padding method 1).
func ExampleDES2_MACAlg3() {
	key, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	k, err := crypt.NewDES2(key)
	if err != nil {
		panic(err)
	}
	for _, msg := range []string{"Now is the time for all ", "Now is the time for it"} {
		mac, _ := k.MACAlg3(nil, []byte(msg), crypt.Pad1)
		fmt.Printf("%X\n", mac)
	}
	// Output:
	// A1C72E74EA3FA9B6
	// 2E2B1428CC78254F
}
