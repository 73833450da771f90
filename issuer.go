package perso

// IssuerKey is an issuer's public key material for offline data
// authentication, as a profile configuration holds it: the issuer's
// private key in the security module, and the issuer public key
// certificate (format 02, EMV Book 2 section 5.3) that the payment system's
// certification authority signed for it, with the key's remainder and
// exponent.
type IssuerKey struct {
	Key         KeyRef   `json:"key"`
	CAIndex     uint8    `json:"ca_index"`            // 8F
	Certificate HexBytes `json:"certificate"`         // 90
	Remainder   HexBytes `json:"remainder,omitempty"` // 92
	Exponent    HexBytes `json:"exponent"`            // 9F32
}
