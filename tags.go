package perso

import "fmt"

// Sensitivity says how a printer must treat a data object's value. The
// zero value, Unclassified, is what a tag outside the dictionary gets, and
// is printed as a secret would be: a proprietary tag may hold anything.
type Sensitivity uint8

const (
	// Unclassified: the tag is not in the dictionary; print only the length.
	Unclassified Sensitivity = iota
	// PublicData: may be printed as is.
	PublicData
	// PANData: holds the PAN, alone (5A) or inside track data (57, 56,
	// 9F6B). A printer masks it, showing at most the first six and last
	// four digits (PCI DSS requirement 3.4), unless told otherwise.
	PANData
	// PersonalData: identifies the cardholder (5F20, 9F0B) or is track
	// discretionary data (9F1F, 9F20), which may carry card verification
	// values. A printer leaves it out unless told otherwise.
	PersonalData
	// SecretData: PIN data (99); never printed.
	SecretData
)

// String names the sensitivity as TLV printing shows it.
func (s Sensitivity) String() string {
	switch s {
	case Unclassified:
		return "unclassified"
	case PublicData:
		return "public"
	case PANData:
		return "PAN data"
	case PersonalData:
		return "personal data"
	case SecretData:
		return "secret"
	}
	return fmt.Sprintf("Sensitivity(%d)", uint8(s))
}

// TagInfo is the dictionary entry of an EMV tag.
type TagInfo struct {
	Name        string
	Sensitivity Sensitivity
}

// LookupTag returns the dictionary entry for t: the data elements and
// templates of EMV Book 3 Annex A; the track 1 data (56) of the contactless
// kernels; and the payment-system tags (9F50 to 9F7F, which EMV leaves to
// each payment system) that the Visa VSDC and stored-value profiles of this
// module use, named as Visa names them. Where another payment system gives
// the same tag a meaning that carries the PAN (9F6B, Mastercard's track 2
// data), the entry has the stricter sensitivity.
func LookupTag(t Tag) (TagInfo, bool) {
	i, ok := emvTags[t]
	return i, ok
}

// Name returns t's name from the dictionary, or "" for a tag it lacks.
func (t Tag) Name() string { return emvTags[t].Name }

// Sensitivity returns t's sensitivity from the dictionary, [Unclassified]
// for a tag it lacks.
func (t Tag) Sensitivity() Sensitivity { return emvTags[t].Sensitivity }

// emvTags is the tag dictionary. Names follow EMV Book 3 Annex A; "(Visa)"
// marks payment-system-specific meanings.
var emvTags = map[Tag]TagInfo{
	// Templates.
	0x61:   {"Application Template", PublicData},
	0x6F:   {"File Control Information (FCI) Template", PublicData},
	0x70:   {"READ RECORD Response Message Template", PublicData},
	0x71:   {"Issuer Script Template 1", PublicData},
	0x72:   {"Issuer Script Template 2", PublicData},
	0x73:   {"Directory Discretionary Template", PublicData},
	0x77:   {"Response Message Template Format 2", PublicData},
	0xA5:   {"File Control Information (FCI) Proprietary Template", PublicData},
	0xBF0C: {"File Control Information (FCI) Issuer Discretionary Data", PublicData},

	// Card data: application selection and identification.
	0x42:   {"Issuer Identification Number (IIN)", PublicData},
	0x4F:   {"Application Dedicated File (ADF) Name", PublicData},
	0x50:   {"Application Label", PublicData},
	0x84:   {"Dedicated File (DF) Name", PublicData},
	0x87:   {"Application Priority Indicator", PublicData},
	0x88:   {"Short File Identifier (SFI)", PublicData},
	0x9D:   {"Directory Definition File (DDF) Name", PublicData},
	0x5F2D: {"Language Preference", PublicData},
	0x5F50: {"Issuer URL", PublicData},
	0x5F53: {"International Bank Account Number (IBAN)", PersonalData},
	0x5F54: {"Bank Identifier Code (BIC)", PublicData},
	0x5F55: {"Issuer Country Code (alpha2 format)", PublicData},
	0x5F56: {"Issuer Country Code (alpha3 format)", PublicData},
	0x9F06: {"Application Identifier (AID) - terminal", PublicData},
	0x9F11: {"Issuer Code Table Index", PublicData},
	0x9F12: {"Application Preferred Name", PublicData},
	0x9F38: {"Processing Options Data Object List (PDOL)", PublicData},
	0x9F4D: {"Log Entry", PublicData},
	0x9F4F: {"Log Format", PublicData},

	// Card data: cardholder and account.
	0x56:   {"Track 1 Data", PANData},
	0x57:   {"Track 2 Equivalent Data", PANData},
	0x5A:   {"Application Primary Account Number (PAN)", PANData},
	0x5F20: {"Cardholder Name", PersonalData},
	0x5F24: {"Application Expiration Date", PublicData},
	0x5F25: {"Application Effective Date", PublicData},
	0x5F28: {"Issuer Country Code", PublicData},
	0x5F30: {"Service Code", PublicData},
	0x5F34: {"Application Primary Account Number (PAN) Sequence Number", PublicData},
	0x9F0B: {"Cardholder Name Extended", PersonalData},
	0x9F1F: {"Track 1 Discretionary Data", PersonalData},
	0x9F20: {"Track 2 Discretionary Data", PersonalData},

	// Card data: processing and risk management.
	0x82:   {"Application Interchange Profile", PublicData},
	0x8C:   {"Card Risk Management Data Object List 1 (CDOL1)", PublicData},
	0x8D:   {"Card Risk Management Data Object List 2 (CDOL2)", PublicData},
	0x8E:   {"Cardholder Verification Method (CVM) List", PublicData},
	0x94:   {"Application File Locator (AFL)", PublicData},
	0x97:   {"Transaction Certificate Data Object List (TDOL)", PublicData},
	0x9F05: {"Application Discretionary Data", PublicData},
	0x9F07: {"Application Usage Control", PublicData},
	0x9F08: {"Application Version Number", PublicData},
	0x9F0D: {"Issuer Action Code - Default", PublicData},
	0x9F0E: {"Issuer Action Code - Denial", PublicData},
	0x9F0F: {"Issuer Action Code - Online", PublicData},
	0x9F10: {"Issuer Application Data", PublicData},
	0x9F13: {"Last Online Application Transaction Counter (ATC) Register", PublicData},
	0x9F14: {"Lower Consecutive Offline Limit", PublicData},
	0x9F17: {"Personal Identification Number (PIN) Try Counter", PublicData},
	0x9F23: {"Upper Consecutive Offline Limit", PublicData},
	0x9F26: {"Application Cryptogram", PublicData},
	0x9F27: {"Cryptogram Information Data", PublicData},
	0x9F36: {"Application Transaction Counter (ATC)", PublicData},
	0x9F3B: {"Application Reference Currency", PublicData},
	0x9F42: {"Application Currency Code", PublicData},
	0x9F43: {"Application Reference Currency Exponent", PublicData},
	0x9F44: {"Application Currency Exponent", PublicData},
	0x9F4C: {"ICC Dynamic Number", PublicData},

	// Card data: offline data authentication (EMV Book 2).
	0x8F:   {"Certification Authority Public Key Index", PublicData},
	0x90:   {"Issuer Public Key Certificate", PublicData},
	0x92:   {"Issuer Public Key Remainder", PublicData},
	0x93:   {"Signed Static Application Data", PublicData},
	0x9F2D: {"ICC PIN Encipherment Public Key Certificate", PublicData},
	0x9F2E: {"ICC PIN Encipherment Public Key Exponent", PublicData},
	0x9F2F: {"ICC PIN Encipherment Public Key Remainder", PublicData},
	0x9F32: {"Issuer Public Key Exponent", PublicData},
	0x9F46: {"ICC Public Key Certificate", PublicData},
	0x9F47: {"ICC Public Key Exponent", PublicData},
	0x9F48: {"ICC Public Key Remainder", PublicData},
	0x9F49: {"Dynamic Data Authentication Data Object List (DDOL)", PublicData},
	0x9F4A: {"Static Data Authentication Tag List", PublicData},
	0x9F4B: {"Signed Dynamic Application Data", PublicData},

	// Command and response data.
	0x80: {"Response Message Template Format 1", PublicData},
	0x83: {"Command Template", PublicData},
	0x86: {"Issuer Script Command", PublicData},
	0x91: {"Issuer Authentication Data", PublicData},
	0x99: {"Transaction Personal Identification Number (PIN) Data", SecretData},

	// Terminal and transaction data.
	0x81:   {"Amount, Authorised (Binary)", PublicData},
	0x89:   {"Authorisation Code", PublicData},
	0x8A:   {"Authorisation Response Code", PublicData},
	0x95:   {"Terminal Verification Results", PublicData},
	0x98:   {"Transaction Certificate (TC) Hash Value", PublicData},
	0x9A:   {"Transaction Date", PublicData},
	0x9B:   {"Transaction Status Information", PublicData},
	0x9C:   {"Transaction Type", PublicData},
	0x5F2A: {"Transaction Currency Code", PublicData},
	0x5F36: {"Transaction Currency Exponent", PublicData},
	0x9F01: {"Acquirer Identifier", PublicData},
	0x9F02: {"Amount, Authorised (Numeric)", PublicData},
	0x9F03: {"Amount, Other (Numeric)", PublicData},
	0x9F04: {"Amount, Other (Binary)", PublicData},
	0x9F09: {"Application Version Number - terminal", PublicData},
	0x9F15: {"Merchant Category Code", PublicData},
	0x9F16: {"Merchant Identifier", PublicData},
	0x9F18: {"Issuer Script Identifier", PublicData},
	0x9F1A: {"Terminal Country Code", PublicData},
	0x9F1B: {"Terminal Floor Limit", PublicData},
	0x9F1C: {"Terminal Identification", PublicData},
	0x9F1D: {"Terminal Risk Management Data", PublicData},
	0x9F1E: {"Interface Device (IFD) Serial Number", PublicData},
	0x9F21: {"Transaction Time", PublicData},
	0x9F22: {"Certification Authority Public Key Index - terminal", PublicData},
	0x9F33: {"Terminal Capabilities", PublicData},
	0x9F34: {"Cardholder Verification Method (CVM) Results", PublicData},
	0x9F35: {"Terminal Type", PublicData},
	0x9F37: {"Unpredictable Number", PublicData},
	0x9F39: {"Point-of-Service (POS) Entry Mode", PublicData},
	0x9F3A: {"Amount, Reference Currency", PublicData},
	0x9F3C: {"Transaction Reference Currency Code", PublicData},
	0x9F3D: {"Transaction Reference Currency Exponent", PublicData},
	0x9F40: {"Additional Terminal Capabilities", PublicData},
	0x9F41: {"Transaction Sequence Counter", PublicData},
	0x9F45: {"Data Authentication Code", PublicData},
	0x9F4E: {"Merchant Name and Location", PublicData},

	// Payment-system tags (EMV leaves 9F50-9F7F to each payment system).
	0x9F51: {"Application Currency Code (Visa)", PublicData},
	0x9F52: {"Application Default Action (Visa)", PublicData},
	0x9F53: {"Consecutive Transaction Limit (International) (Visa)", PublicData},
	0x9F54: {"Cumulative Total Transaction Amount Limit (Visa)", PublicData},
	0x9F55: {"Geographic Indicator (Visa)", PublicData},
	0x9F56: {"Issuer Authentication Indicator (Visa)", PublicData},
	0x9F57: {"Issuer Country Code (Visa)", PublicData},
	0x9F58: {"Lower Consecutive Offline Limit (Visa)", PublicData},
	0x9F59: {"Upper Consecutive Offline Limit (Visa)", PublicData},
	0x9F5C: {"Cumulative Total Transaction Amount Upper Limit (Visa)", PublicData},
	0x9F5D: {"Available Offline Spending Amount (Visa)", PublicData},
	0x9F66: {"Terminal Transaction Qualifiers (Visa)", PublicData},
	0x9F68: {"Card Additional Processes (Visa)", PublicData},
	0x9F69: {"Card Authentication Related Data (Visa)", PublicData},
	0x9F6B: {"Card CVM Limit (Visa); Track 2 Data (Mastercard)", PANData},
	0x9F6C: {"Card Transaction Qualifiers (Visa)", PublicData},
	0x9F6E: {"Form Factor Indicator (Visa)", PublicData},
	0x9F7C: {"Customer Exclusive Data (Visa)", PublicData},
}

// DGIInfo is the dictionary entry of a DGI.
type DGIInfo struct {
	Name string
	// Secret: the DGI holds key material or PIN data, which data
	// preparation protects under the transport KEK and STORE DATA sends
	// encrypted under the session DEK (see SecretDGI).
	Secret bool
}

// LookupDGI returns the dictionary entry for a DGI of EMV CPS v1.1: the
// record DGIs (the high byte an SFI from 1 to 30, the low byte a record
// number from 1 to 254; the value is the record's 70 template), and the
// common DGIs of the payment application profiles. Entries marked
// "(scheme-specific)" follow the common use of payment-system profiles
// rather than CPS itself.
func LookupDGI(tag uint16) (DGIInfo, bool) {
	if sfi, rec := tag>>8, tag&0xFF; sfi >= 1 && sfi <= 30 && rec >= 1 && rec <= 0xFE {
		return DGIInfo{Name: fmt.Sprintf("SFI %d record %d", sfi, rec)}, true
	}
	name, ok := cpsDGIs[tag]
	return DGIInfo{Name: name, Secret: SecretDGI(tag)}, ok
}

// DGIName returns the dictionary name of a DGI, or "" for one it lacks.
func DGIName(tag uint16) string {
	i, _ := LookupDGI(tag)
	return i.Name
}

// SecretDGI reports whether a DGI holds secret data by the EMV CPS
// convention: identifiers 8000 to 8FFF carry keys, PIN data and private key
// components, sent encrypted; their companions 9000 to 9FFF carry what may
// be sent in clear (key check values, PIN try data). It holds for DGIs the
// dictionary does not know.
func SecretDGI(tag uint16) bool { return tag>>12 == 0x8 }

// cpsDGIs names the non-record DGIs.
var cpsDGIs = map[uint16]string{
	0x8000: "Application DES keys (AC, SMI, SMC)",
	0x8001: "Application keys, second set (scheme-specific)",
	0x8010: "Offline PIN block (reference PIN)",
	0x8201: "ICC private key CRT constant q^-1 mod p",
	0x8202: "ICC private key CRT constant d mod (q-1)",
	0x8203: "ICC private key CRT constant d mod (p-1)",
	0x8204: "ICC private key CRT prime factor q",
	0x8205: "ICC private key CRT prime factor p",
	0x9000: "Key check values of DGI 8000",
	0x9001: "Key check values of DGI 8001",
	0x9010: "PIN try counter and PIN try limit",
	0x9102: "SELECT response data (FCI proprietary template)",
	0x9103: "SELECT response data, contactless (scheme-specific)",
	0x9104: "GET PROCESSING OPTIONS response data (AIP, AFL)",
	0x9200: "GENERATE AC response data: issuer application data (scheme-specific)",
}
