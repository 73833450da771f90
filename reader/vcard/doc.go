// Package vcard is a virtual smart card: a GlobalPlatform card with an
// issuer security domain, EMV applets and a stored-value purse, which a
// personalization host loads with STORE DATA through a secure channel and
// a terminal then uses as it would a real card. [Card] implements
// perso.Transport in-process; [VPCD] puts the same card behind pcscd
// through vsmartcard's vpcd reader driver, and [Station] and
// [VPCDFeeder] hand out fresh cards to a personalizer.
//
// # The card
//
// [New] makes a card from a [Config]: its static GlobalPlatform keys (or a
// KMC, diversified on the card with the KDD as EMV CPS v1.1 section 5.3.1,
// VISA2 or the SCP03 KDF do), key version, secure channel protocol,
// sequence counter, CPLC, ATR, the applets installed, and an optional
// [Fault]. Applets start SELECTABLE (GP Card Specification 2.2 section
// 5.3.1) and become PERSONALIZED after a complete, checked
// personalization. [Card.Applets] shows each applet's state and the DGIs it
// holds, in clear, for tests; [Card.Load] personalizes an applet directly
// with clear DGIs, with the checks of a STORE DATA personalization.
//
// A Card answers every command with a status word; Transmit returns an
// error only for a card pulled out by a [Fault]. It is safe for use by one
// goroutine at a time, as a card in a reader is; a mutex serializes
// concurrent callers.
//
// # Issuer security domain
//
// The ISD (AID A000000151000000 by default, or A0000000030000 as on Open
// Platform cards) answers SELECT with its FCI (GP 2.2 11.9.3.1) and GET DATA
// for the CPLC (9F7F, GP 2.2 Appendix H.8), the key information template
// (00E0, 11.3.3.1), the card recognition data (0066, Appendix H.2) and the
// key diversification data (00CF).
//
// The secure channel is internal/gp's card side: SCP02 (GP 2.2 Appendix E,
// i=15 or 55) or SCP03 (GP 2.2 Amendment D, i=00, 10 or 70). INITIALIZE
// UPDATE and EXTERNAL AUTHENTICATE open a session for the application
// selected; the card verifies the host cryptogram (6300 when wrong) and
// every C-MAC, decrypts C-DEC data, wraps responses with R-MAC and R-ENC
// where the level asks for it (SCP03), and refuses replayed or reordered
// commands: a failed check closes the session (6982). SELECT, a new
// INITIALIZE UPDATE and a reset end the session too (GP 2.2 10.2.3). The
// SCP02 sequence counter moves on with every session opened.
//
// # Personalization
//
// An application is personalized the CPS way (EMV CPS v1.1 section 5.4):
// SELECT it, open a secure channel (INITIALIZE UPDATE, EXTERNAL
// AUTHENTICATE at a level with C-MAC), and send STORE DATA (80 E2). The GP
// way works too: select the ISD, open the session, name the application
// with INSTALL [for personalization] (GP 2.2 11.5.2.3), and send STORE DATA
// to the ISD, which passes it on.
//
// STORE DATA P1 (GP 2.2 11.11.2.1, table 11-74; CPS 5.4.2):
//
//	b8        1: last block
//	b7-b6     00: no DGI encrypted
//	          01: application dependent: the secret DGIs (8000 to 8FFF)
//	              encrypted, the others in clear
//	          10: RFU (6A86)
//	          11: every DGI of the command encrypted
//	b5-b4     00 or 01 (DGI format); 10 and 11 (BER-TLV, RFU) get 6A86
//	b3-b1     ignored
//
// P2 is the block number: 00 for the first STORE DATA of a session, one
// more for each next one (6A86 otherwise). The data are DGIs (CPS section
// 4.2: a 2-byte tag, a 1-byte length or FF and 2 bytes); one command may
// carry several, and a DGI may continue in the next command if that
// command has the same encryption bits. Encrypted DGI values are decrypted
// with the session's DEK (SCP02: 3DES-ECB under the session DEK; SCP03:
// AES-CBC with a zero IV under the static DEK). Their ISO/IEC 9797-1
// padding method 2, added where the clear value is not whole blocks, is
// removed by the DGI's clear length: fixed for keys, KCVs, the PIN block
// and the counters; the end of the BER-TLV data for templates; for the CRT
// components, half the modulus, found from p, whose last byte a prime
// makes odd. A secret DGI that arrives in clear is refused (6A80), as is a
// DGI sent twice (6A80), a DGI the application does not know (6A88), or
// more than 64 KiB in all (6A84).
//
// After the last block the application checks what it received: the KCVs
// of DGI 8000 against DGI 9000 (EMV) or of 8020 against 9020 (purse), the
// CRT components 8201 to 8205 with the exponent 9F47 of its records (p·q,
// e·dp = 1 mod p-1, e·dq = 1 mod q-1, q·qinv = 1 mod p), the records' 70
// templates, the FCI, the AFL, the PIN block. If all is well it becomes
// PERSONALIZED; otherwise it answers 6A80 and stays as it was. A session
// that ends before the last block leaves nothing behind; the next one
// starts over from block 00. A personalized application refuses STORE
// DATA (6985).
//
// # EMV applet
//
// The team's layout (emv package): SELECT answers 6F { 84 AID, A5 { DGI
// 9102 } } (EMV Book 1 11.3.4); GET PROCESSING OPTIONS answers 77 { DGI
// 9104 } (format 2, EMV Book 3 6.5.8), with the PDOL data length checked;
// READ RECORD (Book 3 6.5.11) reads the record DGIs (SFI || record; 0Dxx
// and 0Exx are internal data); GET DATA (Book 3 6.5.7) returns the ATC
// (9F36), the PIN try counter (9F17) and the data objects of DGI 0D01;
// VERIFY (Book 3 6.5.12) checks a plaintext offline PIN against DGI 8010
// (63Cx, 6983 when blocked).
//
// INTERNAL AUTHENTICATE (Book 3 6.5.9) signs format 05 dynamic data (EMV
// Book 2 6.5.1, table 17) with the card's key over the terminal's DDOL data;
// the ICC dynamic data is 08 and an 8-byte random ICC dynamic number, and
// the response is 80 L SDAD (format 1). A card without a key answers 6D00.
//
// GENERATE AC (Book 3 6.5.5) needs GET PROCESSING OPTIONS first. The first
// takes the CDOL1 data and increments the ATC; the AC session key is the
// EMV common session key derivation (Book 2 A1.3) from the AC master key
// (the first key of DGI 8000) with the ATC, and the cryptogram is ISO/IEC
// 9797-1 MAC algorithm 3 with padding method 2 over CDOL1 data || AIP ||
// ATC. After an ARQC, a second GENERATE AC takes the CDOL2 data under the
// same ATC and gives a TC or an AAC. The card grants the type P1 asks for;
// CDA (P1 b5) is not supported (6A86). The response is format 2: 77 { 9F27
// CID, 9F36 ATC, 9F26 AC, 9F10 IAD 06010A03A00000 }.
//
// # Stored-value purse
//
// The team's layout (vsvc package), in the spirit of CEN EN 1546, every MAC
// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2, 8 bytes:
//
//	GET BALANCE         80 5C 00 02, Le 04: balance (4)
//	INITIALIZE FOR LOAD 80 50 02 00, amount (4) || terminal random (8):
//	                    balance (4) || NT (2) || card random (8) || S1,
//	                    S1 = MAC(KDL, IEP id || NT || amount || terminal
//	                    random || card random)
//	CREDIT FOR LOAD     80 52 00 00, S2 = MAC(KDL, S1 || amount), at once
//	                    after INITIALIZE FOR LOAD: new balance (4) || S3,
//	                    S3 = MAC(KDL, S2 || new balance); NT + 1
//	UPDATE              80 54 00 00, tag (2) || value || MAC(KDU, IEP id ||
//	                    NT || tag || value): a DFxx parameter of record
//	                    SFI 1 record 1 (not DF01) gets a value of the same
//	                    length; NT + 1, so the command cannot be replayed
//
// An amount of zero or one that would take the balance over the maximum
// (DF06) is refused with 6A80, a wrong S2 or UPDATE MAC with 6982 (nothing
// changes), a CREDIT FOR LOAD that does not follow its INITIALIZE FOR LOAD
// with 6985, and an exhausted NT with 6985. The purse also answers READ
// RECORD and, with its RSA key, INTERNAL AUTHENTICATE as the EMV applet
// does. Until it is personalized, 80 50 is INITIALIZE UPDATE for its
// secure channel; afterwards it is INITIALIZE FOR LOAD.
//
// # Transport
//
// The card answers as a T=0 card would (ISO/IEC 7816-3 12.2, 7816-4 7.6.1):
// a command without Le that has response data gets 61xx and the data wait
// for GET RESPONSE; a case 2 command whose Le is shorter than its data gets
// 6Cxx; a case 4 command with a short Le gets the first Le bytes and 61xx.
// perso.Conn handles all three. Class bytes for other logical channels
// (6881), command chaining (6884) and ISO secure messaging (6882) are
// refused.
//
// # Faults
//
// [Fault] makes one APDU fail, counted from 1 as perso.Conn counts: the
// card is pulled out before the command ([FaultRemove]) or after executing
// it ([FaultTear]), and every later Transmit returns [ErrRemoved] until
// [Card.Reset]; or it answers a chosen status word without executing the
// command ([FaultSW]).
package vcard
