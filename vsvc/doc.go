// Package vsvc is the Visa stored value profile: an intersector electronic
// purse (IEP) in the spirit of CEN EN 1546, as WO 99/19846 lists its data,
// and the checks that prove a personalized purse works.
//
// # Keys
//
// The purse's load key KDL and update key KDU are derived inside the
// security module from the issuer's KML and KMU by encrypting the
// rightmost 8 bytes of the IEP identifier (perso.MethodEncryptData); they
// reach the file only sealed under the KEK. The card's secret key is an RSA
// key pair generated in the security module, its CRT components sealed, its
// public key certified by the issuer (EMV Book 2 format 04, with the IEP
// identifier in place of the PAN) over the purse parameters record.
//
// # Card fields
//
// The IEP identifier is the PAN in format cn, 10 bytes. A card may set
// "balance" (initial balance in minor units), "activation" and
// "deactivation" (YYMMDD); otherwise the balance is the profile's initial
// balance, activation the card's effective date (or expiry less the
// validity), and deactivation the card's expiry date. The expiration date
// is always the card's expiry.
//
// # Data grouping
//
//	9102  SELECT response: the contents of A5 (50 label, 87 priority)
//	0101  SFI 1 record 1, purse parameters: 70 { DF01 IEP identifier, DF02
//	      authentication mode, DF03 application profile, DF04 currency, DF05
//	      currency exponent, DF06 maximum balance, DF07 activation date, DF08
//	      deactivation date, DF09 expiration date, DF0A card supplier id, DF0B
//	      type of EF, DF0C IEP version, DF0D key version, 8F CA index }
//	0102  SFI 1 record 2, certificates: 70 { 90, 92, 9F32 issuer certificate,
//	      remainder, exponent; 9F46, 9F47, 9F48 card certificate, exponent,
//	      remainder; DF10 purse provider certificate }
//	9103  initial balance (4 bytes) and transaction number NT (2 bytes, 0000)
//	8020  secret: KDL and KDU
//	9020  KCVs of KDL and KDU
//	8201..8205  secret: card secret key CRT components qinv, dq, dp, q, p
//
// # Purse commands
//
// A personalized purse answers GET BALANCE (80 5C 00 02); a load runs
// INITIALIZE FOR LOAD (80 50 02 00: amount || terminal random), whose answer
// balance || NT || card random || S1 carries S1 = MAC(KDL, IEP id || NT ||
// amount || terminal random || card random), and CREDIT FOR LOAD (80 52 00
// 00: S2 = MAC(KDL, S1 || amount)), answered by new balance || S3 with
// S3 = MAC(KDL, S2 || new balance). UPDATE (80 54 00 00: tag(2) || value ||
// MAC(KDU, IEP id || NT || tag || value)) changes a parameter and moves NT
// on, so that the same command cannot be replayed. INTERNAL AUTHENTICATE
// (00 88) signs the terminal's challenge with the card secret key (signed
// dynamic data, EMV Book 2 format 05). Every MAC is ISO/IEC 9797-1 MAC
// algorithm 3 with padding method 2.
//
// # Checks
//
// [VerifyPurse] checks a personalized purse as a terminal and the issuer
// host would: the certificate chain from the CA key through the issuer to
// the card over its parameters record, INTERNAL AUTHENTICATE with a fresh
// challenge, the balance, a load whose S1 and S3 are checked with MACs from
// [PurseKeys] (in the issuer's security module: [ModuleKeys]), and
// optionally an UPDATE.
package vsvc
