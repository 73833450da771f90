package perso_test

import (
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/cardperso/perso"
)

// The Visa test certification authority key A000000003/01 and an issuer
// certificate signed with it, from lumag/emv-tools test/sda-test.c (see
// testdata/emv_certs.json).
var (
	visaTestCA = &rsa.PublicKey{N: new(big.Int).SetBytes(exampleHex(
		"C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F" +
			"1228DA5C7470C055387100CB935A712C4E2864DF5D64BA93FE7E63E71F25B1E5" +
			"F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939" +
			"BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75")), E: 3}
	visaIssuer = perso.CertifiedKey{
		Cert: exampleHex(
			"3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2" +
				"C2F412281A0822DF14649230989FB1494070DAF8C9534A7881960148616ACE58" +
				"1788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2" +
				"9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F"),
		Remainder: exampleHex(
			"1EBCA30F00CE5962A8C6E130544B82891B236C65DE29317F364735DEE63F6598" +
				"975835D5"),
		Exponent: []byte{0x03},
	}
)

func exampleHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// VerifyIssuerCert recovers an issuer public key certificate with the
// certification authority's key and checks it against the card's PAN and
// the date.
func ExampleVerifyIssuerCert() {
	pan := "4276550013234599"
	c, err := perso.VerifyIssuerCert(visaTestCA, visaIssuer, pan, time.Date(2009, time.June, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("issuer %s, valid through %s, serial %X\n", c.IssuerID, c.Expiry, c.Serial)
	fmt.Printf("issuer key: %d bits, e=%d\n", c.Key.N.BitLen(), c.Key.E)

	_, err = perso.VerifyIssuerCert(visaTestCA, visaIssuer, pan, time.Date(2010, time.January, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(err)
	_, err = perso.VerifyIssuerCert(visaTestCA, visaIssuer, "5413330089020011", time.Date(2009, time.June, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(err)
	// Output:
	// issuer 427655FF, valid through 12/09, serial 0042B3
	// issuer key: 1024 bits, e=3
	// perso: issuer public key certificate (format 02): expiration date: certificate expired (valid through 12/09, now 2010-01-01)
	// perso: issuer public key certificate (format 02): issuer identifier: certificate does not match the PAN (427655FF is not a prefix of the PAN 541333******0011)
}

// A block signed for a certificate or signature has a fixed layout: here
// the signed dynamic application data of EMV Book 2 Table 17 for a
// 512-bit card key, before the card's private key operation.
func ExampleSignedDynamicData_Block() {
	s := perso.SignedDynamicData{DynamicData: []byte{0x02, 0x12, 0x34}} // ICC dynamic number 1234
	block, err := s.Block(64, []byte{0xDE, 0xAD, 0xBE, 0xEF})           // unpredictable number
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%X\n%X\n%X\n", block[:7], block[7:43], block[43:]) // fields, pad, hash and trailer
	got, err := perso.ParseSignedDynamicData(block, []byte{0xDE, 0xAD, 0xBE, 0xEF})
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := got.DynamicNumber()
	fmt.Printf("ICC dynamic number %X\n", n)
	// Output:
	// 6A050103021234
	// BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB
	// 36A984A440520A26A0AF677F17E00439DF733C19BC
	// ICC dynamic number 1234
}

func ExampleCertDate() {
	d, _ := perso.CertDateOf("291231") // the card's expiry date, 5F24
	fmt.Println(d, d.Year(), d.Month())
	fmt.Println(d.ExpiredAt(time.Date(2029, time.December, 31, 0, 0, 0, 0, time.UTC)))
	fmt.Println(d.ExpiredAt(time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)))
	// Output:
	// 12/29 2029 December
	// false
	// true
}
