// Package rsax generates the RSA key pairs that EMV cards and issuers use
// and performs the raw (unpadded) RSA operations of EMV certificates, in pure
// Go and without the key-size policy of crypto/rsa.
//
// # Key generation
//
// [GenerateKey] makes keys with the public exponent 3 or 65537, the only two
// that EMV Book 2 allows (Annex B2.1, for certification authority, issuer and
// ICC keys alike), and with any modulus length
// that is a multiple of 8 bits from 512 to 4096: ICC keys up to 1984 bits
// (248 bytes, the EMV limit), and issuer or test certification authority
// keys such as 1152, 1408 or 1984 bits, which are not multiples of 64.
//
// Each prime has exactly half the modulus length with its two top bits set,
// so the product has exactly the requested length. Primes are found by an
// incremental search from a random odd start: a sieve over the first few
// thousand odd primes rules out most composites (and, for e = 3, the search
// steps through numbers that are 2 mod 3 so that gcd(e, p-1) = 1; for
// e = 65537 the sieve also rules out p = 1 mod e); the survivors go through
// Miller-Rabin with random bases, as many rounds as the
// Damgård-Landrock-Pomerance bound (Handbook of Applied Cryptography, fact
// 4.48) needs for an error below 2^-100 at that size, and a strong Lucas test
// (together a Baillie-PSW test), by [math/big.Int.ProbablyPrime]. The primes
// must differ by more than 2^(bits/2-100) and the private exponent d, taken
// modulo lcm(p-1, q-1) as FIPS 186-5 A.1.1 does, must exceed 2^(bits/2). Each
// key passes [crypto/rsa.PrivateKey.Validate] and a pairwise consistency test
// (a raw private operation checked with the public key) before it is returned.
//
// Key generation is not constant-time (neither is the standard library's): it
// uses variable-time arithmetic on the candidates. Run it where its timing
// cannot be observed by an adversary, or in a security module.
//
// # Raw operations
//
// [PrivateRaw] (and [Private.Raw] with the key prepared once) applies a
// private key by the Chinese remainder theorem with constant-time modular
// arithmetic (filippo.io/bigmod), so no blinding is needed, and checks its
// result with the public exponent before returning it, so that a fault in the
// computation cannot leak a factor of the modulus (the Bellcore attack).
// [PublicRaw] applies the public key. Both take and return blocks exactly as
// long as the modulus, as EMV Book 2 Annex A2.1 (digital signature scheme
// giving message recovery) needs.
//
// # CRT components
//
// [ExportCRT] returns p, q, dp, dq and qinv, each big-endian and left-padded
// to half the modulus length (ceil(bits/16) bytes), as EMV CPS v1.1 DGIs
// 8201 to 8205 carry them; [FromCRT] rebuilds and checks a private key from
// them and the public key.
//
// # Small keys and crypto/rsa
//
// Since Go 1.24, crypto/rsa refuses to sign, verify, encrypt or decrypt with
// keys shorter than 1024 bits unless the GODEBUG setting rsa1024min=0 is in
// effect. This package does not depend on that policy: its keys pass
// Validate and Precompute at every size, and its raw operations are its own.
// A program that hands such keys to crypto/rsa itself (PKCS #1 signatures
// with a 768-bit ICC key, say) must set GODEBUG=rsa1024min=0, or
// "//go:debug rsa1024min=0" in its main package.
package rsax
