package vcard_test

import (
	"encoding/hex"
	"fmt"

	"github.com/cardperso/perso"
	"github.com/cardperso/perso/reader/vcard"
)

// A card set up with a KMC and CPS diversification, as an issuer's key
// ceremony leaves it, answering a host through perso.Conn.
func ExampleNew() {
	kmc, _ := hex.DecodeString("404142434445464748494A4B4C4D4E4F")
	card, err := vcard.New(vcard.Config{
		Keys: vcard.Keys{KMC: kmc, Method: perso.MethodCPS},
		KDD:  []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		EMV:  [][]byte{vcard.AIDVisaCredit},
	})
	if err != nil {
		panic(err)
	}
	conn := perso.NewConn(card)
	if _, err := conn.Do(perso.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Data: vcard.AIDISD, Le: 256}); err != nil {
		panic(err)
	}
	keys, err := conn.Do(perso.Command{CLA: 0x80, INS: 0xCA, P1: 0x00, P2: 0xE0, Le: 256})
	if err != nil {
		panic(err)
	}
	fmt.Printf("key information: %X\n", keys)
	for _, a := range card.Applets() {
		fmt.Printf("%s applet %v: %v\n", a.Kind, a.AID, a.State)
	}
	// Output:
	// key information: E012C00401018010C00402018010C00403018010
	// EMV applet A0000000031010: SELECTABLE
}
