// Package emv is the EMV credit/debit application profile: what the data
// preparation loads into an EMV (VSDC-style) application for one card, and
// the terminal-side checks that prove a personalized card works.
//
// # Keys
//
// The ICC master keys for application cryptograms (AC), secure messaging
// integrity (SMI) and confidentiality (SMC) are derived from the issuer's
// master keys inside the security module with EMV option A (EMV Book 2
// A1.4.1), or option B (A1.4.2) for PANs longer than 16 digits, and reach
// the file only sealed under the KEK, with their KCVs in clear.
//
// # Offline data authentication
//
// With SDA the issuer signs the static data (Book 2 section 5, format 03);
// with DDA the security module generates the card's RSA key pair and the
// issuer signs its ICC public key certificate (Book 2 section 6, format
// 04) over the same static data. The static data to be authenticated are
// the records the AFL marks for offline data authentication (SFI 1, records
// 1 and 2, template 70 tag and length excluded) followed by the AIP (the
// SDA tag list 9F4A is 82). Every signature is recovered and checked before
// it goes into a record.
//
// # Offline PIN
//
// A profile with offline PIN takes the PIN block (ISO 9564-1 format 2,
// 8 bytes) already sealed under the job's KEK by the issuer's PIN
// management system, as the card field "pin_block" (hex of the Sealed
// value): the Preparer never sees a clear PIN. For test and demonstration
// batches OfflinePIN "generate" makes a random 4-digit PIN instead, seals
// its PIN block at once and keeps no copy; no PIN mailer can then be
// printed, so it is not for real cards.
//
// # Data grouping (EMV CPS v1.1 section 4)
//
//	0101  SFI 1 record 1: 70 { 57 track 2 equivalent data, 5F20 cardholder name }
//	0102  SFI 1 record 2: 70 { 5A PAN, 5F24 expiry, 5F25 effective date, 5F34 PSN,
//	      5F28 issuer country, 9F42 currency, 5F30 service code, 8C CDOL1, 8D CDOL2,
//	      8E CVM list, 9F07 AUC, 9F0D/9F0E/9F0F issuer action codes, 9F08 application
//	      version, 9F4A SDA tag list }
//	0201  SFI 2 record 1 (SDA, DDA): 70 { 8F CA index, 90 issuer certificate,
//	      92 issuer remainder, 9F32 issuer exponent }
//	0202  SFI 2 record 2: SDA 70 { 93 signed static application data };
//	      DDA 70 { 9F46 ICC certificate, 9F47 ICC exponent, 9F48 ICC remainder, 9F49 DDOL }
//	9102  SELECT response: the contents of FCI template A5 (50, 87, 5F2D, 9F11, 9F12)
//	9104  GET PROCESSING OPTIONS response: 82 AIP, 94 AFL
//	0D01  card risk management data: 9F14, 9F23
//	9010  PIN try counter and limit
//	8000  secret: AC, SMI and SMC keys (sealed, one key each)
//	9000  KCVs of the 8000 keys
//	8010  secret: offline PIN block (with offline PIN)
//	8201..8205  secret: ICC private key CRT components qinv, dq, dp, q, p (DDA)
//
// The DGIs are stored in that order.
//
// # Card behaviour the checks rely on
//
// GENERATE AC computes the cryptogram with the AC session key (EMV Book 2
// A1.3, from the AC master key and the ATC) as ISO/IEC 9797-1 MAC algorithm
// 3 with padding method 2 over CDOL1 data || AIP || ATC. INTERNAL
// AUTHENTICATE returns signed dynamic application data (format 05) over the
// DDOL data.
//
// # Checks
//
// [VerifyCard] checks a personalized card as a terminal and the issuer host
// would: SELECT, GET PROCESSING OPTIONS and every record the AFL lists; the
// issuer certificate recovered with the CA key, then SDA or DDA with a
// fresh unpredictable number (EMV Book 2 sections 5 and 6); an ARQC
// verified with the issuer master key through [perso.KeyDeriver]
// (Cryptogram), and an AAC to complete the transaction.
package emv
