// Package pkcs11 is the security module backend for PKCS#11 tokens (HSMs,
// and SoftHSM2 for development and tests). A [Module] implements
// [perso.KeyDeriver], [perso.Certifier], [perso.Protector] and
// [perso.Translator], so one token serves the issuer side (data
// preparation) and the bureau side (personalization).
//
// It uses crypto11 for configuration, login and issuer key pairs, and
// miekg/pkcs11 directly for what crypto11 lacks: key derivation, wrapping,
// unwrapping and raw RSA. It is the only package of the module that needs
// cgo and a PKCS#11 library.
//
// # Configuration
//
// A [Config] names the library, the token (label, serial number or slot)
// and the PIN, as crypto11.Config does, plus the size of the session pool;
// [ConfigFromEnv] reads PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN and
// PERSO_PKCS11_PIN. [Open] logs in once and probes what the token can do.
//
// # Concurrency
//
// A Module is safe for concurrent use. It keeps Config.Sessions sessions
// (default: one per CPU, one per pipeline worker); each operation has one
// session to itself for its whole duration, as PKCS#11 v2.40 section 5.1.4
// requires, so that many operations run in the token in parallel and the
// rest wait (bounded by their context and Config.SessionWait). Intermediate
// objects are session objects, destroyed before the operation returns.
//
// # Key labels
//
// A master key, KMC or issuer key pair named by a [perso.KeyRef] has
// CKA_LABEL = KeyRef.String() ("IMK-AC/v1"); a KEK has CKA_LABEL =
// [perso.KEKID.Label] ("KEK/45123FFF/v1"), of type AES for
// [perso.SchemeAESKW] and DES2 for [perso.SchemeDES3ECB]. [Module.CreateKey],
// [Module.CreateKEK], [Module.CreateIssuerKey] and [Module.ImportIssuerKey]
// put such keys on a token for tests, examples and key ceremonies: never
// extractable, sensitive, with only the usages of their role (a master key
// can only derive, a KEK can only wrap and unwrap).
//
// The Module uses each token key through a session copy of it, made on
// first use with C_CopyObject (PKCS#11 lets a copy keep but never weaken
// the key's sensitivity, extractability and usages). With SoftHSM2's file
// store every use of a token object checks the object's file, which makes
// a derivation or a wrap under a token key about twice as slow as under a
// session copy (SoftHSM2 2.6.1). Config.NoKeyCopies turns this off.
//
// # Card keys (issuer side)
//
// [Module.Derive] runs C_DeriveKey with CKM_DES3_ECB_ENCRYPT_DATA (or
// CKM_AES_ECB_ENCRYPT_DATA) from the master key on the derivation data of
// the method: EMV option A and B (EMV Book 2 A1.4.1, A1.4.2; option B's
// SHA-1 decimalization is computed on the host from the public PAN), encrypt
// data, EMV CPS v1.1 5.3.1 and VISA2 diversification. The result is a
// session key that is sensitive and extractable only by wrapping; its KCV is
// computed in the token, it is wrapped under the KEK with C_WrapKey
// (CKM_AES_KEY_WRAP, RFC 3394) and destroyed. The clear key never reaches
// the host. The parameter CK_KEY_DERIVATION_STRING_DATA, for which
// miekg/pkcs11 has no type, is laid out in Go memory that a runtime.Pinner
// holds still during the call.
//
// [Module.Cryptogram] computes ARQCs and ARPCs (EMV Book 2 8.1.2, 8.2.1,
// A1.3) with keys derived in the token; the ISO/IEC 9797-1 MAC algorithm 3
// runs as CKM_DES3_CBC under a derived K1 || K1 and CKM_DES3_ECB under
// the session key, because tokens such as SoftHSM2 refuse single DES.
//
// [Module.GenerateCardKey] generates the card's RSA key pair in the token
// (CKA_PUBLIC_EXPONENT 3 or 65537) and wraps the private key with
// CKM_AES_KEY_WRAP_PAD, RFC 5649 of its PKCS#8 encoding, from which the
// bureau side takes the CRT components of DGIs 8201 to 8205 (EMV CPS v1.1
// A.5). [Module.SignRaw] signs with the issuer's private key by
// CKM_RSA_X_509 (EMV Book 2 A2.1) and checks the result with the public
// key before returning it. [Module.NewMACKey] and [Module.MAC] generate the
// per-application MAC key in the token and compute AES-CMAC (NIST SP
// 800-38B) there.
//
// # Translation (bureau side)
//
// [Module.SessionKeys] diversifies the card's keys from the KMC in the
// token and derives the GlobalPlatform session keys (Card Specification
// 2.2 E.4.1 for SCP02 by CKM_DES3_CBC_ENCRYPT_DATA; Amendment D 6.2.1 for
// SCP03 by CKM_AES_CMAC). [Module.Translate] unwraps a sealed secret into
// a session object and wraps it under the card's DEK; what the token
// cannot do it does on the host in one function that zeroes the clear
// value at once.
//
// # Capabilities
//
// [Module.Capabilities] says what runs in the token and lists every step
// the host performs with clear key material; [CapabilityReport] formats it
// for a start-up banner. Open probes the token rather than trusting its
// mechanism flags. On SoftHSM2 2.6.1:
//
//   - derivation, card key generation, signing and MACs run in the token;
//   - it cannot wrap under a 3DES key (C_WrapKey with CKM_DES3_ECB or
//     CKM_DES3_CBC fails although the flags say it can), so
//     [perso.SchemeDES3ECB] is unavailable and SCP02 translation happens
//     on the host under the session DEK, which SessionKeys then returns;
//   - its CKM_AES_KEY_WRAP_PAD zero-pads the value to a multiple of 8 bytes
//     before RFC 5649 wrapping. Seal therefore wraps values of other
//     lengths block by block (each AES block a C_WrapKey with CKM_AES_CBC
//     under the KEK) to stay RFC 5649; a card's PKCS#8 private key, which
//     never leaves the token in clear, is sealed with up to 7 zero bytes
//     after its DER encoding, which a reader skips;
//   - it has no NIST SP 800-108 derivation, so MethodSCP03KDF runs as
//     CKM_AES_CMAC signatures and the diversified key passes through the
//     host before it is imported;
//   - RSA CRT components and values that need padding for the card are
//     opened on the host for translation.
//
// # Tests
//
// The tests use the token that PERSO_PKCS11_MODULE, PERSO_PKCS11_TOKEN
// and PERSO_PKCS11_PIN name, or make a SoftHSM2 token in a temporary
// directory when SoftHSM2 is installed; they skip only when no module can
// be found, and fail instead when CI=true.
package pkcs11
