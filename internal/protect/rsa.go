package protect

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/cardperso/perso/internal/crypt"
)

// pkcs8 is PrivateKeyInfo of RFC 5208 section 5.
type pkcs8 struct {
	Version    int
	Algorithm  asn1.RawValue
	PrivateKey []byte
	Attributes asn1.RawValue `asn1:"optional,tag:0"`
}

type rsaPrivateKeyASN1 struct {
	Version int
	N       *big.Int
	E       *big.Int
	D       *big.Int
	P       *big.Int
	Q       *big.Int
	DP      *big.Int
	DQ      *big.Int
	QInv    *big.Int
}

var oidRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

// RSAComponent extracts one CRT component (1 p, 2 q, 3 dp, 4 dq, 5 qinv)
// from a DER PKCS#8 RSA private key, big-endian and left-padded to half of
// modLen (rounded up). Up to 7 zero bytes after the DER are allowed: tokens
// whose CKM_AES_KEY_WRAP_PAD zero-pads to a multiple of 8 before wrapping
// (SoftHSM2) return them on unwrapping. The caller zeroes der and the
// result.
func RSAComponent(der []byte, component uint8, modLen int) ([]byte, error) {
	var info pkcs8
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) > 7 || !allZero(rest) {
		return nil, errors.New("protect: unwrapped private key is not PKCS#8")
	}
	var alg struct {
		OID    asn1.ObjectIdentifier
		Params asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(info.Algorithm.FullBytes, &alg); err != nil || !alg.OID.Equal(oidRSA) {
		return nil, errors.New("protect: unwrapped private key is not RSA")
	}
	var k rsaPrivateKeyASN1
	if rest, err := asn1.Unmarshal(info.PrivateKey, &k); err != nil || len(rest) != 0 {
		crypt.Zero(info.PrivateKey)
		return nil, errors.New("protect: malformed RSA private key")
	}
	defer func() {
		for _, v := range []*big.Int{k.D, k.P, k.Q, k.DP, k.DQ, k.QInv} {
			if v != nil {
				v.SetInt64(0)
			}
		}
	}()
	if k.N == nil || (k.N.BitLen()+7)/8 != modLen {
		return nil, fmt.Errorf("protect: private key modulus is not %d bytes", modLen)
	}
	var v *big.Int
	switch component {
	case 1:
		v = k.P
	case 2:
		v = k.Q
	case 3:
		v = k.DP
	case 4:
		v = k.DQ
	case 5:
		v = k.QInv
	default:
		return nil, fmt.Errorf("protect: RSA component %d", component)
	}
	half := (modLen + 1) / 2
	if v == nil || v.Sign() <= 0 || (v.BitLen()+7)/8 > half {
		return nil, fmt.Errorf("protect: RSA component %d out of range", component)
	}
	return v.FillBytes(make([]byte, half)), nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
