// Package perso prepares and personalizes smart cards: EMV credit/debit and
// stored-value applications, from an issuer's card records to cards loaded
// through a GlobalPlatform secure channel.
//
// # The model
//
// Personalization is split in two steps, as WO 99/19846 describes and EMV
// CPS v1.1 with GlobalPlatform secure channels practises.
//
// Data preparation runs at the issuer. For each card record, the issuer's
// security module derives the card keys from the issuer's master keys
// ([KeyDeriver]), generates the card's RSA key pair and certifies it
// ([Certifier]), and protects every secret under a transport
// key-encryption key, the KEK ([ProtectedKey], [Sealed]). Each chip
// application gets a MAC key of its own, itself protected under the KEK, and
// a MAC over its data ([Protector]). The result, with the cardholder data
// that is not secret, is one record of a batch file ([Writer]). Master keys
// never leave the security module.
//
// Personalization runs at the bureau. Each record of the file ([Reader]) is
// checked, and each of its MIC groups goes to the [Module] registered for
// its module identifier code ([MIC], [Registry]): embosser, magnetic
// stripe encoder, printer, chip. For the chip, per application, the bureau's
// security module verifies the MAC ([Translator]), a GlobalPlatform secure
// channel is opened with card keys the module diversifies from the KMC, each
// secret is translated inside the module from the KEK to the channel's
// session key, and the DGIs are loaded with STORE DATA (GlobalPlatform Card
// Specification v2.3 section 11.11). The bureau never derives a card key and
// never sees a master key.
//
// # Security model
//
//   - Master keys (issuer master keys, KMC, KEK, the issuer's private key)
//     live in security modules and are never exported.
//   - A card key exists outside a security module only as a [ProtectedKey],
//     a secret value only as a [Sealed] value: encrypted under the KEK,
//     with AES key wrap (RFC 3394, RFC 5649) or 3DES-ECB (EMV CPS).
//   - Every chip application carries a MAC, under its own protected MAC
//     key, over everything from its AID through that key; the bureau checks
//     it over the bytes as received, never over a re-encoding
//     ([App.MACInput]), before the card is touched.
//   - The file's trailer counts the records and carries a SHA-256 digest of
//     the file, so a truncated, spliced or damaged file is refused. The
//     digest is not a MAC: integrity against an adversary comes from the
//     per-application MACs.
//   - A bad record is refused with its index, offset and reason, and the
//     batch goes on ([ErrBadRecord]); nothing is dropped silently.
//   - Types that hold key material print no key bytes (String, GoString,
//     Format, LogValue); errors never carry key bytes; tools mask PANs.
//
// # Batch file format
//
// A batch file is a header, records, and a trailer. All integers are
// unsigned and big-endian unless said otherwise. Every length is bounded
// and is checked against what is left before it is trusted; the encoding is
// minimal and canonical, so that encoding a parsed file gives the same bytes.
//
//	file    := header || record* || trailer
//	header  := "PRSO" || version(1)=01 || headerLen(4, at most MaxHeaderLen)
//	           || batchID(16) || created(8, signed seconds since 1970 UTC)
//	           || issuer(4) || nProfiles(1) || nProfiles * (len(1, 1..64) || name)
//	           || nKEKs(1) || nKEKs * (issuer(4) || version(1) || scheme(1) || KCV(3))
//	           || extra (bytes a later revision of version 1 appends; kept)
//	record  := recordLen(4, 1..MaxRecordLen) || group+
//	group   := MIC(1, not 00 or FF) || length(4, at most MaxGroupLen) || data
//	trailer := FFFFFFFF || count(8) || nCounters(1)
//	           || nCounters * (len(1, 1..64) || name || value(8)) || SHA-256(32)
//
// The header names the batch, its issuer, the application profiles it uses
// and every KEK its chip applications are protected under, with the KEK's
// check value so the bureau can check before it starts that its security
// module holds that KEK ([Header]). A reader refuses a version other than
// [FormatVersion]. The creation time is required (0001-01-01, Go's zero
// time, is refused). Names (profiles and counters) are printable ASCII
// without spaces; no profile, KEK or counter appears twice, and counters are
// in ascending order of name.
//
// A record is one card: its MIC groups, each MIC at most once, in the order
// the issuer wrote them ([Record]). MICs 01 chip, 02 magnetic stripe, 03
// emboss and 04 graphics are assigned; C0..FE are a bureau's own; groups with
// MICs this package does not know are carried through unchanged.
//
// The chip group holds the card's applications ([ChipData], [App]):
//
//	chip := version(1)=01 || napps(1, 1..255) || napps * app
//	app  := aidLen(1, 5..16) || AID || bodyLen(4) || body
//	body := KEK issuer(4) || KEK version(1) || KEK scheme(1)
//	        || dgisLen(4) || DGI sequence (EMV CPS v1.1 section 4.2)
//	        || nSecret(1) || nSecret * DGI identifier(2), ascending
//	        || MAC key type(1) || KCV(3) || len(1) || wrapped MAC key
//	        || macLen(1)=08 || MAC(8)
//
// The DGIs are stored on the card in the order given. Those listed as secret
// each occur once in the sequence and hold a [Sealed] value whose wrapped
// lengths are ones the KEK's scheme produces; the others are in clear. AIDs
// are unique within a card. The application's KEK must be one the header
// lists, and the MAC key's type must suit the scheme's MAC (AES for
// [SchemeAESKW], DES2 for [SchemeDES3ECB]); [App] lists every rule. The MAC
// covers the bytes from aidLen through the wrapped MAC key, under the MAC
// key: AES-CMAC (NIST SP 800-38B) truncated to 8 bytes with [SchemeAESKW],
// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 with
// [SchemeDES3ECB].
//
// The trailer starts with FFFFFFFF where a record length would stand, which
// no record length can be. It carries the number of records, named counters
// that the issuer persists with the output (such as "pan-counter", the next
// value of a card number counter), and the SHA-256 digest of every byte of
// the file before the digest. Nothing may follow it. A [Reader] returns
// io.EOF only once the count and the digest have been checked.
//
// Errors are *[FormatError] values that name the record, the byte offset and the
// field, and wrap one of [ErrTruncated], [ErrTooLong], [ErrMagic],
// [ErrVersion], [ErrMalformed], [ErrTrailer], [ErrCount] and [ErrDigest].
// A record whose frame is intact but whose content is bad is reported with
// [ErrBadRecord] as well, and reading goes on with the next record.
//
// # Worked example
//
// A complete file of 275 bytes with one record: an emboss group, a chip
// group with one application (a record DGI and a sealed PIN block), and a
// group for a bureau's own module. Offsets are hexadecimal. So that every
// value can be checked, the example's KEK is the test KEK of RFC 3394
// section 4.1 (000102030405060708090A0B0C0D0E0F) and its MAC key that
// section's key data (00112233445566778899AABBCCDDEEFF); real keys never
// appear outside a security module. The file is examples/testdata/worked-example.prso,
// and a test decodes this listing, re-encodes it, and checks the MAC.
//
//	The header:
//	0000  50 52 53 4F                          magic "PRSO"
//	0004  01                                   format version 1
//	0005  00 00 00 2B                          header length: 43 bytes of header fields follow
//	0009  6F 1C 5B 2E 9A 4D 4E 8B 8F 3A 1D 27  batch id
//	0015  C0 E5 4B 61
//	0019  00 00 00 00 67 87 80 18              created: 1736933400 s = 2025-01-15 09:30:00 UTC
//	0021  45 12 3F FF                          issuer 45123FFF
//	0025  01                                   1 profile
//	0026  03 65 6D 76                          name length 3, "emv"
//	002A  01                                   1 KEK
//	002B  45 12 3F FF 01 01                    KEK 45123FFF, version 01, scheme 01 (AES key wrap)
//	0031  C3 52 80                             its check value
//	Record 0:
//	0034  00 00 00 9A                          record length: 154 bytes
//	0038  03 00 00 00 18                       MIC 03 (emboss), 24 bytes
//	003D  34 37 36 31 37 33 39 30 30 31 30 31  "4761739001010010 J SMITH"
//	0049  30 30 31 30 20 4A 20 53 4D 49 54 48
//	0055  01 00 00 00 6A                       MIC 01 (chip), 106 bytes
//	005A  01                                   chip data version 1
//	005B  01                                   1 application
//	005C  07                                   AID length 7 (the MAC input starts here)
//	005D  A0 00 00 00 03 10 10                 AID A0000000031010
//	0064  00 00 00 5C                          application body: 92 bytes
//	0068  45 12 3F FF 01 01                    KEK 45123FFF, version 01, scheme 01
//	006E  00 00 00 29                          DGI sequence: 41 bytes
//	0072  01 01 12                             DGI 0101, 18 bytes:
//	0075  70 10                                  template 70, 16 bytes
//	0077  5A 08 47 61 73 90 01 01 00 10          5A (PAN) 4761739001010010
//	0081  5F 24 03 27 12 31                      5F24 (expiry date) 271231
//	0087  80 10 11                             DGI 8010, 17 bytes:
//	008A  01                                     sealed value (form 01)
//	008B  82 B7 41 E7 2B AC C1 F1 40 3D A5 7A    PIN block 241234FFFFFFFFFF wrapped (RFC 5649)
//	0097  A2 70 B4 24
//	009B  01                                   1 secret DGI
//	009C  80 10                                DGI 8010
//	009E  11                                   MAC key type 11 (AES-128)
//	009F  35 44 E0                             MAC key check value
//	00A2  18                                   wrapped MAC key: 24 bytes
//	00A3  1F A6 8B 0A 81 12 B4 47 AE F3 4B D8  the MAC key wrapped (RFC 3394); the MAC input ends here
//	00AF  FB 5A 7B 82 9D 3E 86 23 71 D2 CF E5
//	00BB  08                                   MAC length 8
//	00BC  68 87 FE FA 7E 76 DD F6              MAC: AES-CMAC of bytes 005C..00BA, first 8 bytes
//	00C4  C0 00 00 00 09                       MIC C0 (a bureau module), 9 bytes
//	00C9  43 41 52 52 49 45 52 2D 31           "CARRIER-1"
//	The trailer:
//	00D2  FF FF FF FF                          trailer marker
//	00D6  00 00 00 00 00 00 00 01              record count 1
//	00DE  01                                   1 counter
//	00DF  0B 70 61 6E 2D 63 6F 75 6E 74 65 72  name length 11, "pan-counter"
//	00EB  00 00 00 00 00 00 00 0B              value 11
//	00F3  87 49 42 D0 1A AD 0E FF F4 04 5B 6F  SHA-256 of bytes 0000..00F2
//	00FF  C1 6C 22 5F 13 7D 9A 64 C4 45 45 6E
//	010B  29 03 65 89 6D 67 28 8C
package perso
