// Package gp implements the GlobalPlatform secure channel protocols that
// personalization uses, host side and card side: SCP02 (GP Card
// Specification 2.2, Appendix E) and SCP03 (GP Card Specification 2.2
// Amendment D, v1.1).
//
// It works on command and response structures ([Command], [Response]) whose
// fields match the module's perso.Command and perso.Response, so that the
// module's APDU layer converts to and from them; it does not encode APDUs
// itself.
//
// # Opening a session (host)
//
// A [HostSession] builds INITIALIZE UPDATE (CLA 80, INS 50, P1 key version,
// an 8-byte host challenge, 16 in SCP03 S16 mode) and reads the response
// ([ParseInitUpdateResponse]): the key diversification data (KDD, 10 bytes),
// the key information (key version, SCP identifier and, for SCP03, "i"),
// then for SCP02 the sequence counter (2), card challenge (6) and card
// cryptogram (8), for SCP03 the card challenge and card cryptogram (8 or 16
// each) and, with a pseudo-random challenge, the sequence counter (3).
//
// The package never derives session keys on the host: a security module
// that holds the card's keys does, from the KDD and the sequence counter
// (SCP02) or the context host challenge || card challenge (SCP03,
// [HostSession.Context]), and hands them over as [SessionKeys].
// [HostSession.ExternalAuthenticate] checks the card cryptogram with them
// before anything else is sent: a mismatch wraps [ErrCardCryptogram],
// closes the session, and must not be retried. Otherwise it returns
// EXTERNAL AUTHENTICATE (CLA 84, INS 82, P1 the security level) with the
// host cryptogram and its C-MAC.
//
// # Cryptograms
//
// SCP02 (E.4.2): card cryptogram = MAC(S-ENC, host challenge || sequence
// counter || card challenge), host cryptogram = MAC(S-ENC, sequence counter
// || card challenge || host challenge), full triple-DES CBC-MAC (ISO/IEC
// 9797-1 MAC algorithm 1) with padding method 2 and a zero ICV. SCP03
// (Amendment D 6.2.2): the data derivation function of 4.1.5 under S-MAC
// with constants 00 (card) and 01 (host) and the context host challenge ||
// card challenge.
//
// # Security levels and command protection
//
// [Level] is P1 of EXTERNAL AUTHENTICATE: 00 (authentication only), 01
// (C-MAC), 03 (C-MAC and C-DEC), and for SCP03 where "i" allows it 11, 13
// (R-MAC) and 33 (R-MAC and R-ENC). [HostSession.Wrap] protects each later
// command, for example every STORE DATA of a personalization:
//
//   - SCP02 (E.4.4, E.4.6): C-MAC by ISO/IEC 9797-1 MAC algorithm 3
//     (single DES, final triple DES) with padding method 2 under the C-MAC
//     key, over the class byte with b3 set, INS, P1, P2, Lc counting the
//     MAC, and the plaintext data; the ICV is zero for EXTERNAL
//     AUTHENTICATE and then the previous C-MAC, encrypted with single DES
//     under the first half of the C-MAC key when "i" b5 says so (i=15,
//     i=55). C-DEC then encrypts the data, always padded, with 3DES-CBC
//     under S-ENC and a zero ICV.
//   - SCP03 (6.2.4, 6.2.6): C-DEC first, AES-CBC under S-ENC with the ICV
//     AES(S-ENC, encryption counter), the counter starting at 1 for the
//     first command after EXTERNAL AUTHENTICATE and moving on for every
//     command, with or without data; then the C-MAC: AES-CMAC under S-MAC
//     of the MAC chaining value || header || Lc || data as sent, whose full
//     value chains to the next command. R-MAC (6.2.5) is the AES-CMAC under
//     S-RMAC of the chaining value || response data || SW, and R-ENC
//     (6.2.7) encrypts response data with the counter's ICV, first byte 80.
//     Responses with an error status word carry no protection.
//
// For the C-MAC the class byte's logical channel is set to zero; the
// command goes out on its own channel (0 to 3).
//
// # Card side
//
// A [Card] holds a security domain's static keys (already diversified for
// the card), its KDD, AID and sequence counter. [Card.InitializeUpdate]
// derives the session keys (SCP02 E.4.1: 3DES-CBC of constant || counter
// || zeros; SCP03 6.2.1: the data derivation function with constants 04,
// 06, 07), makes the card challenge, random or pseudo-random (SCP02 i=55:
// the C-MAC algorithm over the AID under the C-MAC session key; SCP03 "i"
// b5: the data derivation function with constant 02 under the static ENC
// key over counter || AID), and the card cryptogram. The [CardSession] it
// returns verifies EXTERNAL AUTHENTICATE, then unwraps each command in
// order, and protects responses with R-MAC and R-ENC where the level says
// so. Any failed check closes the session; replaying or reordering a
// command fails because the MAC chain has moved on. [StatusWord] maps the
// card-side errors to the status words a card answers.
//
// # Sensitive data
//
// [EncryptSensitive] encrypts key components and secret values for the card
// under the DEK: 3DES-ECB under the SCP02 session DEK (E.4.7), AES-CBC with
// a zero ICV under the SCP03 static DEK.
//
// # Limits
//
// Protected commands are short APDUs: at most 239 bytes of plaintext with
// C-DEC (S8) and 247 with C-MAC only. SCP02 R-MAC, implicit initiation and
// single-base-key variants are not implemented. Key bytes never appear in
// errors or in the String, GoString, Format and LogValue output of the
// types that hold them.
package gp
