// Package crypt holds the symmetric primitives that the standard library
// lacks and that the rest of the module shares: DES and triple-DES keys in
// the forms payment systems use, ECB and CBC over whole blocks, ISO/IEC
// 9797-1 padding and MACs, CMAC, AES key wrap, key check values and parity.
//
// Everything here is pure Go on top of crypto/des, crypto/aes,
// crypto/cipher and crypto/subtle, and builds without cgo.
//
// # Keys
//
// [NewDES3] accepts double-length (K1 K2, used as K1 K2 K1) and
// triple-length keys, as EMV and GlobalPlatform do. [NewDES2] makes a
// double-length key ready with two DES key schedules instead of three: a
// [DES2] is the same triple-DES cipher (NIST SP 800-67 keying option 2),
// cheaper for a key used on a few blocks, and it computes MAC algorithm 3
// without scheduling its keys again ([DES2.MACAlg3]). DES key bytes carry an
// odd-parity bit in their least significant bit; [SetOddParity],
// [HasOddParity] and [EqualModParity] deal with it. [KCV] and [KCVAES] give
// the 3-byte key check values that key ceremonies and GlobalPlatform use
// (AES key check values as Amendment D, SCP03, defines them for PUT KEY).
//
// # Modes
//
// [EncryptECB], [DecryptECB], [EncryptCBC] and [DecryptCBC] work on whole
// blocks and return an error, never panic, for input that is not.
//
// # Padding and MACs (ISO/IEC 9797-1:2011)
//
// [Pad] implements padding methods 1 and 2 (section 6.3), [Unpad2] removes
// method 2. [MACAlg1] is MAC algorithm 1 (CBC-MAC, section 7.2) with any
// block cipher; [MACAlg3] is MAC algorithm 3 (section 7.4, the "retail
// MAC" of ANSI X9.19) with a double-length DES key, as EMV uses for
// application cryptograms and GlobalPlatform SCP02 for C-MAC.
//
// # CMAC (NIST SP 800-38B)
//
// [CMAC] computes the full-length CMAC with a 64- or 128-bit block cipher
// (SP 800-38B section 6), as SCP03 does with AES.
//
// # Key wrap (RFC 3394, RFC 5649)
//
// [Wrap] and [Unwrap] are the AES key wrap of RFC 3394 section 2.2;
// [WrapPad] and [UnwrapPad] the key wrap with padding of RFC 5649 section
// 4. Integrity failures wrap [ErrUnwrap], and the functions zero the
// intermediate plaintext before they return one.
//
// # Secrets
//
// No error from this package carries key or plaintext bytes. [Equal]
// compares MACs and cryptograms in constant time; [Zero] clears buffers.
package crypt
