// Package perso prepares and personalizes smart cards: EMV credit/debit and
// stored-value applications, from an issuer's card records to cards loaded
// through a GlobalPlatform secure channel.
package perso
