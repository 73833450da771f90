package perso_test

import (
	"encoding/hex"
	"fmt"
	"log"

	"github.com/cardperso/perso"
)

// Build a record DGI of EMV CPS: DGI 0101 (SFI 1, record 1) holding the
// record's 70 template. The Builder fills in each length once the contents
// are written.
func ExampleBuilder() {
	var b perso.Builder
	b.AddDGI(0x0101, func(b *perso.Builder) {
		b.AddTLV(0x70, func(b *perso.Builder) {
			b.AddPrimitive(0x5F24, []byte{0x30, 0x12, 0x31}) // expiry 2030-12-31
			b.AddPrimitive(0x9F07, []byte{0xFF, 0x00})       // usage control
		})
	})
	b.AddDGIValue(0x9010, []byte{0x03, 0x03}) // PIN try counter and limit
	out, err := b.Bytes()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%X\n", out)
	// Output:
	//01010D700B5F24033012319F0702FF009010020303
}

// Parse a SELECT response (the FCI of a Mastercard application, from the
// moov-io/bertlv README) and print its tree with the dictionary's names.
func ExampleParseTLVs() {
	fci, _ := hex.DecodeString("6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000041010500A4D617374657263617264870101")
	ts, err := perso.ParseTLVs(fci, perso.Strict)
	if err != nil {
		log.Fatal(err)
	}
	var show func(ts []perso.TLV, indent string)
	show = func(ts []perso.TLV, indent string) {
		for _, t := range ts {
			fmt.Printf("%s%v %s\n", indent, t.Tag, t.Tag.Name())
			if kids, err := t.Children(); err == nil {
				show(kids, indent+"  ")
			}
		}
	}
	show(ts, "")
	// Output:
	// 6F File Control Information (FCI) Template
	//   84 Dedicated File (DF) Name
	//   A5 File Control Information (FCI) Proprietary Template
	//     BF0C File Control Information (FCI) Issuer Discretionary Data
	//       61 Application Template
	//         4F Application Dedicated File (ADF) Name
	//         50 Application Label
	//         87 Application Priority Indicator
}

// Look up data objects in nested templates, by tag or by path.
func ExampleFindTLVPath() {
	fci, _ := hex.DecodeString("6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000041010500A4D617374657263617264870101")
	label, _ := perso.FindTLVPath(fci, 0x6F, 0xA5, 0xBF0C, 0x61, 0x50)
	aid, _ := perso.FindTLV(fci, 0x4F)
	fmt.Printf("%s %X\n", label.Value, aid.Value)
	// Output: Mastercard A0000000041010
}

// Read a card's response with the cursor, in lenient mode: the card pads
// with 00 and codes a length on two bytes where one would do.
func ExampleTLVReader() {
	resp, _ := hex.DecodeString("77159F2701809F360200019F268108112233445566778800" + "00")
	r := perso.NewTLVReader(resp, perso.Lenient)
	var t perso.TLV
	for r.ReadTLV(&t) {
		kids, _ := t.Children()
		for _, k := range kids {
			fmt.Printf("%v %X (raw %X)\n", k.Tag, k.Value, k.Raw)
		}
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	_, err := perso.ParseTLVs(resp, perso.Strict)
	fmt.Println(err)
	// Output:
	// 9F27 80 (raw 9F270180)
	// 9F36 0001 (raw 9F36020001)
	// 9F26 1122334455667788 (raw 9F2681081122334455667788)
	// perso: TLV 9F26 at offset 13: non-minimal length 8108 for 8
}

// Parse DGIs. Printing a DGI or a TLV never shows a secret DGI's value, the
// PAN, or other sensitive data objects.
func ExampleParseDGIs() {
	file, _ := hex.DecodeString("0101127010" + "5A085413330089600119" + "5F2403301231" +
		"80001000112233445566778899AABBCCDDEEFF" +
		"90000308D7B4")
	ds, err := perso.ParseDGIs(file)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range ds {
		fmt.Printf("%v: %s\n", d, perso.DGIName(d.Tag))
	}
	// Output:
	// 0101{70{5A=<PAN data, 8 bytes> 5F24=301231}}: SFI 1 record 1
	// 8000=<secret, 16 bytes>: Application DES keys (AC, SMI, SMC)
	// 9000=<3 bytes>: Key check values of DGI 8000
}
