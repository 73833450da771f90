package perso

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/cardperso/perso/internal/bcd"
	"github.com/cardperso/perso/internal/rsax"
)

// Formats of the data that EMV Book 2 recovers from a certificate or a
// signature: the byte that follows the header 6A.
const (
	CertFormatIssuer byte = 0x02 // issuer public key certificate (Book 2 5.3, Table 13)
	CertFormatSSAD   byte = 0x03 // signed static application data (Book 2 5.4, Table 7)
	CertFormatICC    byte = 0x04 // ICC public key certificate (Book 2 6.4, Table 14)
	CertFormatSDAD   byte = 0x05 // signed dynamic application data (Book 2 6.5, Table 17)
)

// Algorithm indicators in certificates (EMV Book 2 Annex B). They are the
// only ones EMV defines for these formats.
const (
	HashSHA1 byte = 0x01 // Hash Algorithm Indicator: SHA-1 (Annex B3.1)
	KeyRSA   byte = 0x01 // Public Key Algorithm Indicator: RSA (Annex B2.1)
)

// MaxCertKeyLen is the longest modulus, in bytes, of a certification
// authority, issuer or ICC key: 248 bytes, 1984 bits (EMV Book 2 sections
// 5.1 and 6.1: N_ICC <= N_I <= N_CA <= 248).
const MaxCertKeyLen = 248

const (
	certHeader  = 0x6A
	certTrailer = 0xBC
	certPad     = 0xBB
	hashLen     = sha1.Size
)

// Sentinel errors for certificates and signatures. A [CertError] wraps one
// of them; test with errors.Is.
var (
	// ErrCertLength: the certificate or signature is not as long as the
	// modulus of the key that recovers it, or a length inside it is out of
	// range.
	ErrCertLength = errors.New("perso: certificate length")
	// ErrCertHeader: the recovered data does not start with 6A.
	ErrCertHeader = errors.New("perso: recovered data header is not 6A")
	// ErrCertTrailer: the recovered data does not end with BC.
	ErrCertTrailer = errors.New("perso: recovered data trailer is not BC")
	// ErrCertFormat: the format byte is not the one expected.
	ErrCertFormat = errors.New("perso: wrong certificate format")
	// ErrCertAlgorithm: an unknown hash or public key algorithm indicator.
	ErrCertAlgorithm = errors.New("perso: unknown algorithm indicator")
	// ErrCertHash: the hash result does not match the data.
	ErrCertHash = errors.New("perso: certificate hash does not match")
	// ErrCertKey: the certified key is malformed: its length, exponent,
	// remainder or padding.
	ErrCertKey = errors.New("perso: certified key is malformed")
	// ErrCertDate: the expiration date is not a valid MMYY.
	ErrCertDate = errors.New("perso: malformed certificate date")
	// ErrCertExpired: the certificate's expiration month has passed.
	ErrCertExpired = errors.New("perso: certificate expired")
	// ErrCertPAN: the issuer identifier or application PAN does not match
	// the PAN, or is malformed.
	ErrCertPAN = errors.New("perso: certificate does not match the PAN")
)

// CertError reports a certificate or signature that fails a check of EMV
// Book 2: the format being checked (02, 03, 04 or 05), the field or check
// that failed, and the reason, which wraps one of the ErrCert sentinels.
// Certificates are public, so the reason may show recovered bytes.
type CertError struct {
	Format byte
	Field  string
	Err    error
}

func (e *CertError) Error() string {
	return fmt.Sprintf("perso: %s (format %02X): %s: %s", certName(e.Format), e.Format, e.Field,
		strings.TrimPrefix(e.Err.Error(), "perso: "))
}

func (e *CertError) Unwrap() error { return e.Err }

func certName(format byte) string {
	switch format {
	case CertFormatIssuer:
		return "issuer public key certificate"
	case CertFormatSSAD:
		return "signed static application data"
	case CertFormatICC:
		return "ICC public key certificate"
	case CertFormatSDAD:
		return "signed dynamic application data"
	}
	return "certificate"
}

// certErr returns a CertError whose reason wraps sentinel, with detail
// appended when it is not empty.
func certErr(format byte, field string, sentinel error, detail string, args ...any) *CertError {
	err := sentinel
	if detail != "" {
		err = fmt.Errorf("%w ("+detail+")", append([]any{sentinel}, args...)...)
	}
	return &CertError{Format: format, Field: field, Err: err}
}

// CertDate is a certificate expiration date as certificates carry it: MMYY
// in BCD (EMV Book 2 Tables 13 and 14). The certificate is valid up to and
// including the last day of that month. Two-digit years are read as EMV
// reads them: 00-49 are 2000-2049 and 50-99 are 1950-1999.
type CertDate [2]byte

// NewCertDate returns the date for month of year, which must be from 1950
// to 2049.
func NewCertDate(year int, month time.Month) (CertDate, error) {
	if year < 1950 || year > 2049 || month < time.January || month > time.December {
		return CertDate{}, fmt.Errorf("%w: %d-%02d is not a month from 1950 to 2049", ErrBadInput, year, int(month))
	}
	yy := year % 100
	return CertDate{byte(month/10)<<4 | byte(month%10), byte(yy/10)<<4 | byte(yy%10)}, nil
}

// CertDateOf returns the certificate date of a card expiry date as the
// card data carries it (tag 5F24): YYMMDD, or YYMM.
func CertDateOf(expiry string) (CertDate, error) {
	if len(expiry) != 4 && len(expiry) != 6 {
		return CertDate{}, fmt.Errorf("%w: expiry date %q is not YYMMDD or YYMM", ErrBadInput, expiry)
	}
	b, err := bcd.N(expiry[:4], 2)
	if err != nil {
		return CertDate{}, fmt.Errorf("%w: expiry date %q is not digits", ErrBadInput, expiry)
	}
	d := CertDate{b[1], b[0]}
	if !d.Valid() {
		return CertDate{}, fmt.Errorf("%w: expiry date %q has no valid month", ErrBadInput, expiry)
	}
	return d, nil
}

// Valid reports whether d is BCD with a month from 01 to 12.
func (d CertDate) Valid() bool {
	for _, b := range d {
		if b>>4 > 9 || b&0x0F > 9 {
			return false
		}
	}
	m := d.Month()
	return m >= time.January && m <= time.December
}

// Month returns the month, or 0 for a date that is not BCD.
func (d CertDate) Month() time.Month {
	if d[0]>>4 > 9 || d[0]&0x0F > 9 {
		return 0
	}
	return time.Month(d[0]>>4*10 + d[0]&0x0F)
}

// Year returns the four-digit year.
func (d CertDate) Year() int {
	yy := int(d[1]>>4)*10 + int(d[1]&0x0F)
	if yy < 50 {
		return 2000 + yy
	}
	return 1900 + yy
}

// ExpiredAt reports whether the last day of d's month is before the date
// of now, in now's location (EMV Book 2 5.3 step 9, 6.4 step 11).
func (d CertDate) ExpiredAt(now time.Time) bool {
	y, m, _ := now.Date()
	return y > d.Year() || y == d.Year() && m > d.Month()
}

// String returns the date as MM/YY, or its hex for a malformed date.
func (d CertDate) String() string {
	if !d.Valid() {
		return fmt.Sprintf("CertDate(%X)", d[:])
	}
	return fmt.Sprintf("%02X/%02X", d[0], d[1])
}

// checkDate checks a recovered date's form.
func checkDate(format byte, d CertDate) error {
	if !d.Valid() {
		return certErr(format, "expiration date", ErrCertDate, "%X", d[:])
	}
	return nil
}

// checkExpiry checks a certificate's date against now.
func checkExpiry(format byte, d CertDate, now time.Time) error {
	if d.ExpiredAt(now) {
		return certErr(format, "expiration date", ErrCertExpired, "valid through %s, now %s", d, now.Format(time.DateOnly))
	}
	return nil
}

// NewIssuerID packs the leftmost 3 to 8 digits of a PAN as an issuer
// identifier: BCD, right-padded with F (EMV Book 2 Table 13).
func NewIssuerID(digits string) (IssuerID, error) {
	var id IssuerID
	if len(digits) < 3 || len(digits) > 8 {
		return id, fmt.Errorf("%w: issuer identifier of %d digits, want 3 to 8", ErrBadInput, len(digits))
	}
	b, err := bcd.CN(digits, 4)
	if err != nil {
		return id, fmt.Errorf("%w: issuer identifier is not digits", ErrBadInput)
	}
	copy(id[:], b)
	return id, nil
}

// Digits returns the issuer identifier's digits, or an error if it is not
// 3 to 8 BCD digits followed only by F padding.
func (id IssuerID) Digits() (string, error) {
	d, err := bcd.Digits(id[:])
	if err != nil || len(d) < 3 {
		return "", fmt.Errorf("%w: issuer identifier %s is not 3 to 8 digits padded with F", ErrCertPAN, id)
	}
	return d, nil
}

// MatchesPAN reports whether the identifier's digits are the leftmost
// digits of pan (EMV Book 2 5.3 step 8).
func (id IssuerID) MatchesPAN(pan string) bool {
	d, err := id.Digits()
	return err == nil && checkPAN(pan) == nil && strings.HasPrefix(pan, d)
}

// checkPAN checks that pan is a PAN of 8 to 19 digits (ISO/IEC 7812-1).
func checkPAN(pan string) error {
	if len(pan) < 8 || len(pan) > 19 {
		return fmt.Errorf("%w: PAN of %d digits, want 8 to 19", ErrBadInput, len(pan))
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return fmt.Errorf("%w: PAN has a non-digit at offset %d", ErrBadInput, i)
		}
	}
	return nil
}

// exponentBytes encodes an EMV public key exponent: 03 or 01 00 01.
func exponentBytes(e int) ([]byte, error) {
	switch e {
	case 3:
		return []byte{0x03}, nil
	case 65537:
		return []byte{0x01, 0x00, 0x01}, nil
	}
	return nil, fmt.Errorf("exponent %d is not 3 or 65537", e)
}

// checkKey checks a key to be certified, or one that signs: EMV keys have
// a whole number of bytes with the top bit set (so that every recovered
// block, which starts with 6A, is below the modulus), at most
// MaxCertKeyLen bytes, an odd modulus and the exponent 3 or 65537.
func checkKey(k *rsa.PublicKey) error {
	switch {
	case k == nil || k.N == nil:
		return errors.New("no key")
	case k.N.BitLen()%8 != 0 || k.N.BitLen() == 0:
		return fmt.Errorf("%d-bit modulus is not a whole number of bytes", k.N.BitLen())
	case k.N.BitLen() > 8*MaxCertKeyLen:
		return fmt.Errorf("%d-byte modulus is longer than %d", k.N.BitLen()/8, MaxCertKeyLen)
	case k.N.Bit(0) == 0:
		return errors.New("modulus is even")
	}
	_, err := exponentBytes(k.E)
	return err
}

// CertifiedKey is a public key certificate with the data objects that
// travel with it on a card: the certificate (tag 90 for an issuer key, 9F46
// for an ICC key), the rightmost bytes of the modulus that did not fit in it
// (92 or 9F48; empty when the key fits), and the exponent (9F32 or 9F47).
type CertifiedKey struct {
	Cert      []byte
	Remainder []byte
	Exponent  []byte
}

// RecoverCert applies the public key of the certifier (the certification
// authority for format 02, the issuer for formats 03 and 04, the card for
// format 05) to a certificate or signature, after checking that it is as
// long as the modulus: EMV Book 2 Annex A2.1 recovery and step 1 of
// sections 5.3, 5.4, 6.4 and 6.5.2. Its further checks are the Parse
// functions'. format only names the data in errors.
func RecoverCert(key *rsa.PublicKey, format byte, cert []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, certErr(format, "recovery key", ErrCertKey, "%v", err)
	}
	if n := key.N.BitLen() / 8; len(cert) != n {
		return nil, certErr(format, "length", ErrCertLength, "%d bytes, the key's modulus %d", len(cert), n)
	}
	block, err := rsax.PublicRaw(key, cert)
	if err != nil {
		return nil, certErr(format, "recovery", ErrCertLength, "%v", err)
	}
	return block, nil
}

// recovered is a recovered block being checked: header, format and trailer
// (Book 2 steps 2 to 4), then the hash over every byte between the header
// and the hash result, followed by the data signed with it (step 5 to 7).
type recovered struct {
	format byte
	b      []byte
}

// open checks the frame of a recovered block of at least min bytes.
func open(format byte, b []byte, min int) (*recovered, error) {
	if len(b) < min {
		return nil, certErr(format, "length", ErrCertLength, "%d bytes, want at least %d", len(b), min)
	}
	if b[len(b)-1] != certTrailer {
		return nil, certErr(format, "trailer", ErrCertTrailer, "%02X", b[len(b)-1])
	}
	if b[0] != certHeader {
		return nil, certErr(format, "header", ErrCertHeader, "%02X", b[0])
	}
	if b[1] != format {
		return nil, certErr(format, "format", ErrCertFormat, "%02X", b[1])
	}
	return &recovered{format: format, b: b}, nil
}

// checkHash checks the hash algorithm indicator at offset i and the hash
// result over b[1:len-21] || extra.
func (r *recovered) checkHash(i int, extra ...[]byte) error {
	if r.b[i] != HashSHA1 {
		return certErr(r.format, "hash algorithm indicator", ErrCertAlgorithm, "%02X", r.b[i])
	}
	want := certHash(r.b[1:len(r.b)-1-hashLen], extra...)
	if subtle.ConstantTimeCompare(want[:], r.b[len(r.b)-1-hashLen:len(r.b)-1]) != 1 {
		return certErr(r.format, "hash result", ErrCertHash, "")
	}
	return nil
}

// openSigned checks the frame of recovered signed data of at least min
// bytes, whose hash algorithm indicator follows the format byte, and its
// hash over the data and extra.
func openSigned(format byte, b []byte, min int, extra []byte) (*recovered, error) {
	r, err := open(format, b, min)
	if err != nil {
		return nil, err
	}
	return r, r.checkHash(2, extra)
}

// fillPad sets every byte of b to the pad pattern BB.
func fillPad(b []byte) {
	for i := range b {
		b[i] = certPad
	}
}

// checkPad checks that b[from:to] is the pad pattern BB.
func (r *recovered) checkPad(field string, from, to int) error {
	for i := from; i < to; i++ {
		if r.b[i] != certPad {
			return certErr(r.format, field, ErrCertKey, "byte %d is %02X, not BB", i, r.b[i])
		}
	}
	return nil
}

// certHash is SHA-1 over the concatenation of its arguments.
func certHash(data []byte, extra ...[]byte) [hashLen]byte {
	h := sha1.New()
	h.Write(data)
	for _, e := range extra {
		h.Write(e)
	}
	var out [hashLen]byte
	h.Sum(out[:0])
	return out
}

// finish sets the hash result, header and trailer of a block whose fields
// from offset 1 are written, hashing them with extra.
func finish(b []byte, extra ...[]byte) []byte {
	b[0] = certHeader
	h := certHash(b[1:len(b)-1-hashLen], extra...)
	copy(b[len(b)-1-hashLen:], h[:])
	b[len(b)-1] = certTrailer
	return b
}

// keyCert is the layout that issuer (02) and ICC (04) public key
// certificates share (EMV Book 2 Tables 13 and 14): header, format, an
// identifier of idLen bytes, expiration date, serial number, hash and public
// key algorithm indicators, key and exponent lengths, the leftmost bytes of
// the key (padded with BB), hash result, trailer.
type keyCert struct {
	format byte
	idLen  int
}

var (
	issuerLayout = keyCert{format: CertFormatIssuer, idLen: 4}
	iccLayout    = keyCert{format: CertFormatICC, idLen: 10}
)

// overhead is the number of bytes that are not the key: 36 for format 02,
// 42 for format 04.
func (l keyCert) overhead() int { return 1 + 1 + l.idLen + 2 + 3 + 1 + 1 + 1 + 1 + hashLen + 1 }

// keyFields are the variable fields of a key certificate.
type keyFields struct {
	id     []byte
	expiry CertDate
	serial [3]byte
	key    *rsa.PublicKey
}

// marshal builds the block to sign with a certifier key of n bytes, and the
// remainder and exponent that go with it. extra is hashed after them (the
// static data to be authenticated, for format 04).
func (l keyCert) marshal(f keyFields, n int, extra []byte) (block, remainder, exponent []byte, err error) {
	if n < l.overhead()+1 || n > MaxCertKeyLen {
		return nil, nil, nil, certErr(l.format, "length", ErrCertLength, "certifier key of %d bytes", n)
	}
	if err := checkKey(f.key); err != nil {
		return nil, nil, nil, certErr(l.format, "public key", ErrCertKey, "%v", err)
	}
	if !f.expiry.Valid() {
		return nil, nil, nil, certErr(l.format, "expiration date", ErrCertDate, "%X", f.expiry[:])
	}
	modulus := f.key.N.Bytes()
	if len(modulus) > n {
		return nil, nil, nil, certErr(l.format, "public key length", ErrCertKey, "%d-byte key, longer than its %d-byte certifier", len(modulus), n)
	}
	exponent, _ = exponentBytes(f.key.E)
	block = make([]byte, n)
	b := append(block[:1], l.format)
	b = append(b, f.id...)
	b = append(b, f.expiry[:]...)
	b = append(b, f.serial[:]...)
	b = append(b, HashSHA1, KeyRSA, byte(len(modulus)), byte(len(exponent)))
	field := block[len(b) : n-1-hashLen]
	if k := copy(field, modulus); k < len(field) {
		fillPad(field[k:])
	} else {
		remainder = bytes.Clone(modulus[k:])
	}
	return finish(block, remainder, exponent, extra), remainder, exponent, nil
}

// parse checks a recovered key certificate (Book 2 5.3 steps 2 to 7 and 11,
// 6.4 steps 2 to 9 and 12) and returns its fields. The key is no longer
// than the block, which is as long as the certifier's key.
func (l keyCert) parse(block, remainder, exponent, extra []byte) (keyFields, error) {
	var f keyFields
	r, err := open(l.format, block, l.overhead()+1)
	if err != nil {
		return f, err
	}
	if len(block) > MaxCertKeyLen {
		return f, certErr(l.format, "length", ErrCertLength, "%d bytes, more than %d", len(block), MaxCertKeyLen)
	}
	i := 2 + l.idLen
	if err := r.checkHash(i+5, remainder, exponent, extra); err != nil {
		return f, err
	}
	if block[i+6] != KeyRSA {
		return f, certErr(l.format, "public key algorithm indicator", ErrCertAlgorithm, "%02X", block[i+6])
	}
	f.id = block[2:i]
	f.expiry = CertDate(block[i : i+2])
	copy(f.serial[:], block[i+2:i+5])
	if err := checkDate(l.format, f.expiry); err != nil {
		return f, err
	}
	keyLen, expLen := int(block[i+7]), int(block[i+8])
	field := block[i+9 : len(block)-1-hashLen]
	var modulus []byte
	switch {
	case keyLen == 0:
		return f, certErr(l.format, "public key length", ErrCertKey, "zero")
	case keyLen > len(block):
		return f, certErr(l.format, "public key length", ErrCertKey, "%d bytes, longer than the %d-byte certifier key", keyLen, len(block))
	case keyLen <= len(field):
		if len(remainder) != 0 {
			return f, certErr(l.format, "public key remainder", ErrCertKey, "%d bytes for a key that fits in the certificate", len(remainder))
		}
		if err := r.checkPad("public key padding", i+9+keyLen, len(block)-1-hashLen); err != nil {
			return f, err
		}
		modulus = field[:keyLen]
	case len(remainder) != keyLen-len(field):
		return f, certErr(l.format, "public key remainder", ErrCertKey, "%d bytes, want %d", len(remainder), keyLen-len(field))
	default:
		modulus = append(bytes.Clone(field), remainder...)
	}
	if len(exponent) != expLen {
		return f, certErr(l.format, "public key exponent length", ErrCertKey, "field says %d, exponent is %d bytes", expLen, len(exponent))
	}
	e := 0
	switch {
	case bytes.Equal(exponent, []byte{0x03}):
		e = 3
	case bytes.Equal(exponent, []byte{0x01, 0x00, 0x01}):
		e = 65537
	default:
		return f, certErr(l.format, "public key exponent", ErrCertKey, "%X is not 03 or 010001", exponent)
	}
	f.key = &rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: e}
	if modulus[0]&0x80 == 0 || modulus[len(modulus)-1]&1 == 0 {
		return f, certErr(l.format, "public key", ErrCertKey, "modulus %02X..%02X is not odd with its top bit set", modulus[0], modulus[len(modulus)-1])
	}
	return f, nil
}

// IssuerCert is the content of an issuer public key certificate, format 02
// (EMV Book 2 section 5.3 and Table 13): what a certification authority
// certifies about an issuer's public key.
type IssuerCert struct {
	IssuerID IssuerID // leftmost 3 to 8 PAN digits, padded with F
	Expiry   CertDate
	Serial   [3]byte // assigned by the certification authority
	Key      *rsa.PublicKey
}

// Block returns the data a certification authority with an n-byte key signs
// for c (the certificate before the private key operation), with the key's
// remainder (empty when the key fits in the n-36 bytes for it) and its
// exponent. The key may be no longer than n bytes.
func (c *IssuerCert) Block(n int) (block, remainder, exponent []byte, err error) {
	if _, err := c.IssuerID.Digits(); err != nil {
		return nil, nil, nil, certErr(CertFormatIssuer, "issuer identifier", ErrCertPAN, "%s", c.IssuerID)
	}
	return issuerLayout.marshal(keyFields{id: c.IssuerID[:], expiry: c.Expiry, serial: c.Serial, key: c.Key}, n, nil)
}

// ParseIssuerCert checks the data recovered from an issuer public key
// certificate with its remainder and exponent (EMV Book 2 5.3 steps 2 to 7,
// 11 and 12) and returns its content: trailer, header, format, hash
// algorithm and hash result, public key algorithm, the form of the issuer
// identifier and date, and the key's length fields, padding, remainder and
// exponent. It does not compare the issuer identifier with a PAN nor the
// date with today; [IssuerCert.Check] does.
func ParseIssuerCert(block, remainder, exponent []byte) (*IssuerCert, error) {
	f, err := issuerLayout.parse(block, remainder, exponent, nil)
	if err != nil {
		return nil, err
	}
	c := &IssuerCert{Expiry: f.expiry, Serial: f.serial, Key: f.key}
	copy(c.IssuerID[:], f.id)
	if _, err := c.IssuerID.Digits(); err != nil {
		return nil, certErr(CertFormatIssuer, "issuer identifier", ErrCertPAN, "%s", c.IssuerID)
	}
	return c, nil
}

// Check compares the certificate's issuer identifier with the leftmost
// digits of pan and its expiration date with now (EMV Book 2 5.3 steps 8
// and 9).
func (c *IssuerCert) Check(pan string, now time.Time) error {
	if err := checkPAN(pan); err != nil {
		return err
	}
	if !c.IssuerID.MatchesPAN(pan) {
		return certErr(CertFormatIssuer, "issuer identifier", ErrCertPAN, "%s is not a prefix of the PAN %s", c.IssuerID, MaskPAN(pan))
	}
	return checkExpiry(CertFormatIssuer, c.Expiry, now)
}

// VerifyIssuerCert recovers an issuer public key certificate with the
// certification authority's public key and performs every check of EMV Book
// 2 section 5.3 against the card's PAN and today's date, now.
func VerifyIssuerCert(ca *rsa.PublicKey, ck CertifiedKey, pan string, now time.Time) (*IssuerCert, error) {
	block, err := RecoverCert(ca, CertFormatIssuer, ck.Cert)
	if err != nil {
		return nil, err
	}
	c, err := ParseIssuerCert(block, ck.Remainder, ck.Exponent)
	if err != nil {
		return nil, err
	}
	if err := c.Check(pan, now); err != nil {
		return nil, err
	}
	return c, nil
}

// ICCCert is the content of an ICC public key certificate, format 04 (EMV
// Book 2 section 6.4 and Table 14): what an issuer certifies about a card's
// public key. The certificate's hash also covers the card's static data to
// be authenticated.
type ICCCert struct {
	PAN    string // the application PAN (5A), 8 to 19 digits
	Expiry CertDate
	Serial [3]byte // assigned by the issuer
	Key    *rsa.PublicKey
}

// Block returns the data an issuer with an n-byte key signs for c, with the
// key's remainder (empty when the key fits in the n-42 bytes for it) and
// exponent. staticData is the static data to be authenticated (EMV Book 3
// section 10.3). The key may be no longer than n bytes.
func (c *ICCCert) Block(n int, staticData []byte) (block, remainder, exponent []byte, err error) {
	if checkPAN(c.PAN) != nil {
		return nil, nil, nil, certErr(CertFormatICC, "application PAN", ErrCertPAN, "not 8 to 19 digits")
	}
	pan, _ := bcd.CN(c.PAN, 10)
	return iccLayout.marshal(keyFields{id: pan, expiry: c.Expiry, serial: c.Serial, key: c.Key}, n, staticData)
}

// ParseICCCert checks the data recovered from an ICC public key
// certificate with its remainder, exponent and the static data to be
// authenticated (EMV Book 2 6.4 steps 2 to 9, 12 and 13) and returns its
// content. The key may be no longer than the block, so no longer than the
// issuer's key. It does not compare the PAN nor the date; [ICCCert.Check]
// does.
func ParseICCCert(block, remainder, exponent, staticData []byte) (*ICCCert, error) {
	f, err := iccLayout.parse(block, remainder, exponent, staticData)
	if err != nil {
		return nil, err
	}
	pan, err := bcd.Digits(f.id)
	if err != nil || checkPAN(pan) != nil {
		return nil, certErr(CertFormatICC, "application PAN", ErrCertPAN, "not 8 to 19 digits padded with F")
	}
	return &ICCCert{PAN: pan, Expiry: f.expiry, Serial: f.serial, Key: f.key}, nil
}

// Check compares the certificate's PAN with the application PAN read from
// the card and its expiration date with now (EMV Book 2 6.4 steps 10 and
// 11).
func (c *ICCCert) Check(pan string, now time.Time) error {
	if err := checkPAN(pan); err != nil {
		return err
	}
	if c.PAN != pan {
		return certErr(CertFormatICC, "application PAN", ErrCertPAN, "certificate for %s, card %s", MaskPAN(c.PAN), MaskPAN(pan))
	}
	return checkExpiry(CertFormatICC, c.Expiry, now)
}

// VerifyICCCert recovers an ICC public key certificate with the issuer's
// public key and performs every check of EMV Book 2 section 6.4 against the
// static data to be authenticated, the application PAN and today's date.
func VerifyICCCert(issuer *rsa.PublicKey, ck CertifiedKey, staticData []byte, pan string, now time.Time) (*ICCCert, error) {
	block, err := RecoverCert(issuer, CertFormatICC, ck.Cert)
	if err != nil {
		return nil, err
	}
	c, err := ParseICCCert(block, ck.Remainder, ck.Exponent, staticData)
	if err != nil {
		return nil, err
	}
	if err := c.Check(pan, now); err != nil {
		return nil, err
	}
	return c, nil
}

// ssadOverhead is the part of signed static application data that is not
// pad: header, format, hash algorithm, data authentication code, hash,
// trailer (EMV Book 2 Table 7).
const ssadOverhead = 1 + 1 + 1 + 2 + hashLen + 1

// SignedStaticData is the content of signed static application data,
// format 03 (EMV Book 2 section 5.4 and Table 7), tag 93.
type SignedStaticData struct {
	DAC [2]byte // data authentication code, 9F45 once verified
}

// Block returns the data an issuer with an n-byte key signs over the static
// data to be authenticated.
func (s *SignedStaticData) Block(n int, staticData []byte) ([]byte, error) {
	if n < ssadOverhead || n > MaxCertKeyLen {
		return nil, certErr(CertFormatSSAD, "length", ErrCertLength, "issuer key of %d bytes", n)
	}
	b := make([]byte, n)
	b[1], b[2], b[3], b[4] = CertFormatSSAD, HashSHA1, s.DAC[0], s.DAC[1]
	fillPad(b[5 : n-1-hashLen])
	return finish(b, staticData), nil
}

// ParseSignedStaticData checks the data recovered from signed static
// application data against the static data to be authenticated (EMV Book 2
// 5.4 steps 2 to 7) and returns its content.
func ParseSignedStaticData(block, staticData []byte) (*SignedStaticData, error) {
	r, err := openSigned(CertFormatSSAD, block, ssadOverhead, staticData)
	if err != nil {
		return nil, err
	}
	if err := r.checkPad("pad pattern", 5, len(block)-1-hashLen); err != nil {
		return nil, err
	}
	return &SignedStaticData{DAC: [2]byte(block[3:5])}, nil
}

// VerifySignedStaticData recovers signed static application data (tag 93)
// with the issuer's public key and performs the checks of EMV Book 2
// section 5.4.
func VerifySignedStaticData(issuer *rsa.PublicKey, ssad, staticData []byte) (*SignedStaticData, error) {
	block, err := RecoverCert(issuer, CertFormatSSAD, ssad)
	if err != nil {
		return nil, err
	}
	return ParseSignedStaticData(block, staticData)
}

// sdadOverhead is the part of signed dynamic application data that is
// neither ICC dynamic data nor pad: header, format, hash algorithm, the
// dynamic data length, hash, trailer (EMV Book 2 Table 17).
const sdadOverhead = 1 + 1 + 1 + 1 + hashLen + 1

// SignedDynamicData is the content of signed dynamic application data,
// format 05 (EMV Book 2 section 6.5 and Table 17), tag 9F4B: the ICC
// dynamic data the card signed with the terminal's dynamic data (the data
// its DDOL names, such as the unpredictable number).
type SignedDynamicData struct {
	DynamicData []byte
}

// Block returns the data a card with an n-byte key signs over its dynamic
// data and the terminal's (EMV Book 2 6.5.1).
func (s *SignedDynamicData) Block(n int, terminalData []byte) ([]byte, error) {
	if n < sdadOverhead || n > MaxCertKeyLen {
		return nil, certErr(CertFormatSDAD, "length", ErrCertLength, "ICC key of %d bytes", n)
	}
	if l := len(s.DynamicData); l > n-sdadOverhead {
		return nil, certErr(CertFormatSDAD, "ICC dynamic data length", ErrCertLength, "%d bytes, at most %d fit", l, n-sdadOverhead)
	}
	b := make([]byte, n)
	b[1], b[2], b[3] = CertFormatSDAD, HashSHA1, byte(len(s.DynamicData))
	fillPad(b[4+copy(b[4:], s.DynamicData) : n-1-hashLen])
	return finish(b, terminalData), nil
}

// ParseSignedDynamicData checks the data recovered from signed dynamic
// application data against the terminal's dynamic data (EMV Book 2 6.5.2
// steps 2 to 7) and returns its content.
func ParseSignedDynamicData(block, terminalData []byte) (*SignedDynamicData, error) {
	r, err := openSigned(CertFormatSDAD, block, sdadOverhead, terminalData)
	if err != nil {
		return nil, err
	}
	l := int(block[3])
	if l > len(block)-sdadOverhead {
		return nil, certErr(CertFormatSDAD, "ICC dynamic data length", ErrCertLength, "%d bytes, at most %d fit", l, len(block)-sdadOverhead)
	}
	if err := r.checkPad("pad pattern", 4+l, len(block)-1-hashLen); err != nil {
		return nil, err
	}
	return &SignedDynamicData{DynamicData: bytes.Clone(block[4 : 4+l])}, nil
}

// VerifySignedDynamicData recovers signed dynamic application data (tag
// 9F4B) with the card's public key and performs the checks of EMV Book 2
// section 6.5.2 against the terminal's dynamic data.
func VerifySignedDynamicData(icc *rsa.PublicKey, sdad, terminalData []byte) (*SignedDynamicData, error) {
	block, err := RecoverCert(icc, CertFormatSDAD, sdad)
	if err != nil {
		return nil, err
	}
	return ParseSignedDynamicData(block, terminalData)
}

// DynamicNumber returns the ICC dynamic number (9F4C) that starts the ICC
// dynamic data of DDA: a length byte of 2 to 8 and that many bytes (EMV
// Book 2 Table 16).
func (s *SignedDynamicData) DynamicNumber() ([]byte, error) {
	d := s.DynamicData
	if len(d) < 1 || d[0] < 2 || d[0] > 8 || int(d[0]) > len(d)-1 {
		return nil, certErr(CertFormatSDAD, "ICC dynamic number", ErrCertLength, "ICC dynamic data does not start with a 2 to 8 byte number")
	}
	return bytes.Clone(d[1 : 1+d[0]]), nil
}

// CAPublicKey is a certification authority public key as a terminal holds
// it: the registered application provider identifier (RID), the key's index
// (tag 8F on the card, 9F22 in the terminal) and the key.
type CAPublicKey struct {
	RID   [5]byte
	Index byte
	Key   *rsa.PublicKey
}

// Checksum returns the key's check sum, SHA-1 over RID || index || modulus ||
// exponent, which a terminal verifies when the key is loaded (EMV Book 2
// section 11.2).
func (k *CAPublicKey) Checksum() ([hashLen]byte, error) {
	if err := checkKey(k.Key); err != nil {
		return [hashLen]byte{}, fmt.Errorf("perso: certification authority key %X/%02X: %w: %v", k.RID[:], k.Index, ErrBadInput, err)
	}
	e, _ := exponentBytes(k.Key.E)
	return certHash(k.RID[:], []byte{k.Index}, k.Key.N.Bytes(), e), nil
}
