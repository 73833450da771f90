// Package kdf holds clear-key reference implementations of the key
// derivations that card personalization uses: the EMV issuer master key
// derivations and session keys, the GlobalPlatform card key
// diversifications from a KMC, and the SCP02 and SCP03 session key
// derivations.
//
// A security module performs these inside its boundary; this package is
// what the software module and the tests compute them with. Every
// function takes and returns clear key bytes, so callers must treat its
// results as secrets and clear them ([crypt.Zero]) when done. Errors name
// lengths and offsets, never key bytes, PAN digits or derived values.
//
// # Master keys made ready once
//
// Each derivation from a master key has a Cipher form that takes the
// master key's triple-DES cipher instead of its bytes: [OptionACipher],
// [OptionBCipher], [EncryptDataCipher], [DiversifyCPSCipher],
// [DiversifyVISA2Cipher] and [SCP02SessionKeyCipher]. A security module
// that derives the keys of many cards from one master key makes the
// cipher (its DES key schedules, the costly part of a derivation) once and
// keeps it; the byte-slice forms make a [crypt.DES2] on each call and are
// thin wrappers over the Cipher forms.
//
// # EMV (EMV 4.4 Book 2 Annex A1)
//
//   - [OptionA] and [OptionB]: ICC master keys (MK-AC, MK-SMI, MK-SMC)
//     from issuer master keys, A1.4.1 and A1.4.2, with [PANPSNBlock] the
//     derivation data of option A.
//   - [SessionKey] and [SessionKeyR]: the common session key derivation
//     of A1.3.1.
//   - [AC]: the application cryptogram MAC (Book 2 8.1.2: ISO/IEC 9797-1
//     MAC algorithm 3, padding method 2); [ARPC1]: ARPC method 1 (8.2.1).
//   - [EncryptData]: a key made by encrypting data and its complement
//     under a master key, as stored-value card keys (KDL, KDU) are.
//
// The DES card keys that these functions return have odd parity, as an
// HSM gives them; raw cipher output differs from them in the parity bits
// only. SCP02 session keys are the raw cipher output, as the card derives
// them; DES ignores the parity bits either way.
//
// # GlobalPlatform card keys
//
//   - [DiversifyCPS]: EMV CPS v1.1 section 5.3.1 (KMC, KEYDATA).
//   - [DiversifyVISA2]: the VISA2 layout of the same.
//   - [DiversifySCP03]: AES card keys from an AES KMC with a NIST SP
//     800-108 counter-mode KDF over AES-CMAC.
//
// # Secure channel session keys
//
//   - [SCP02SessionKey]: GP Card Specification 2.2 Appendix E.4.1.
//   - [SCP03KDF]: GP Card Specification 2.2 Amendment D section 6.2.1
//     (the data derivation scheme of 4.1.5, NIST SP 800-108 counter mode,
//     AES-CMAC PRF), for session keys, cryptograms and card challenges.
package kdf
