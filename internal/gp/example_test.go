package gp_test

import (
	"bytes"
	"fmt"

	"github.com/cardperso/perso/internal/gp"
	"github.com/cardperso/perso/internal/kdf"
)

// A host opens an SCP02 secure channel to an in-process card whose keys
// were diversified from a KMC (EMV CPS), and protects a STORE DATA. The
// host's session keys come from the side that holds the KMC: here kdf
// stands in for the security module.
func ExampleHostSession() {
	kmc := bytes.Repeat([]byte{0x40}, 16)
	kdd := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	var static gp.Keys
	static.ENC, _ = kdf.DiversifyCPS(kmc, kdd, kdf.ENC)
	static.MAC, _ = kdf.DiversifyCPS(kmc, kdd, kdf.MAC)
	static.DEK, _ = kdf.DiversifyCPS(kmc, kdd, kdf.DEK)
	card, err := gp.NewCard(gp.CardConfig{
		Protocol: gp.SCP02_15, KeyVersion: 0x20, Keys: static, KDD: kdd,
		AID: []byte{0xA0, 0, 0, 1, 0x51, 0, 0, 0}, Sequence: 0x2A,
		Rand: bytes.NewReader([]byte{1, 2, 3, 4, 5, 6}), // the card's "random" challenge
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	host, _ := gp.NewHostSession(gp.HostConfig{KeyVersion: 0x20, HostChallenge: []byte{8, 7, 6, 5, 4, 3, 2, 1}})
	iu, _ := host.InitializeUpdate()
	session, resp, _ := card.InitializeUpdate(iu)
	r, _ := host.ReadInitializeUpdate(resp)
	fmt.Printf("%v, key version %02X, sequence counter %X\n", host.Protocol(), r.KeyVersion, r.Sequence)

	// The security module derives the session keys (GP 2.2 E.4.1).
	var keys gp.SessionKeys
	keys.ENC, _ = kdf.SCP02SessionKey(static.ENC, kdf.SCP02ConstENC, r.Sequence)
	keys.MAC, _ = kdf.SCP02SessionKey(static.MAC, kdf.SCP02ConstCMAC, r.Sequence)
	keys.DEK, _ = kdf.SCP02SessionKey(static.DEK, kdf.SCP02ConstDEK, r.Sequence)
	ea, err := host.ExternalAuthenticate(keys, gp.LevelCMAC|gp.LevelCDEC)
	keys.Zero()
	if err != nil {
		fmt.Println(err) // the card cryptogram did not verify: stop here
		return
	}
	fmt.Println("card authenticated:", session.ExternalAuthenticate(ea) == nil)

	store := gp.Command{CLA: 0x80, INS: 0xE2, P1: 0x80, Data: []byte{0x01, 0x01, 0x03, 0xAA, 0xBB, 0xCC}, Le: -1}
	w, _ := host.Wrap(store)
	fmt.Printf("STORE DATA sent as %v\n", w)
	got, err := session.UnwrapCommand(w)
	fmt.Printf("card reads %X, %v\n", got.Data, err)
	// Output:
	// SCP02 i=15, key version 20, sequence counter 002A
	// card authenticated: true
	// STORE DATA sent as 84E28000 Lc=16
	// card reads 010103AABBCC, <nil>
}
