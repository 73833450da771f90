// Package soft is an in-process software security module for development,
// tests and the quickstart.
//
// # Not for production
//
// Every key of this module, master keys included, lives in ordinary process
// memory: anyone who can read the process or its key file holds the
// issuer's keys. A real deployment uses a hardware security module (see
// package hsm/pkcs11). [New] refuses to start unless it is given
// [NotForProduction], so that nobody ends up with it by accident.
//
// # What it implements
//
// A [*Module] is a [perso.KeyDeriver], [perso.Certifier], [perso.Protector]
// and [perso.Translator], with the same wire conventions as the PKCS#11
// backend: keys are filed by their [perso.KeyRef] (label and version) and
// KEKs by issuer and version, as [perso.KEKID.Label] names them; keys are
// wrapped with RFC 3394 and values with RFC 5649 under an AES KEK, both
// with 3DES-ECB under a 3DES KEK. A batch prepared with one module is
// personalized with the other.
//
// A double-length DES master key (an issuer master key, a KMC) is made
// ready once, when it is imported: the derivations use its triple-DES
// cipher rather than scheduling the key for every card.
//
// # Keys
//
// Keys are imported ([Module.ImportKey], [Module.ImportKEK],
// [Module.ImportRSAKey]), generated ([Module.GenerateKey],
// [Module.GenerateRSAKey]), or loaded from a key file ([Module.LoadKeyFile],
// format in [KeyFile]). [WithSeed] makes generation deterministic, for
// tests that want the same keys in every run.
package soft
