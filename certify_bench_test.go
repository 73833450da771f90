package perso

import (
	"context"
	"crypto/rsa"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCertifyICC signs ICC certificates with a 1984-bit issuer key
// (in the in-memory certifier: raw CRT operation with its own check) and
// recovers and checks each one, as CertifyICC does for every card.
func BenchmarkCertifyICC(b *testing.B) {
	issuer := certKey(b, "issuer1984", 1984, 3)
	m := newMemCertifier(map[KeyRef]*rsa.PrivateKey{refIssuer: issuer})
	expiry, _ := NewCertDate(2029, time.December)
	static := make([]byte, 200)
	for _, iccBits := range []int{1024, 1984} {
		icc := certKey(b, fmt.Sprintf("icc%d/3", iccBits), iccBits, 3)
		req := ICCCertRequest{
			Issuer: refIssuer, IssuerKey: &issuer.PublicKey,
			Cert:       ICCCert{PAN: testPAN, Expiry: expiry, Key: &icc.PublicKey},
			StaticData: static, Now: certNow,
		}
		b.Run(fmt.Sprintf("sign+verify/icc%d", iccBits), func(b *testing.B) {
			for b.Loop() {
				if _, err := CertifyICC(context.Background(), m, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		ck, err := CertifyICC(context.Background(), m, req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("verify/icc%d", iccBits), func(b *testing.B) {
			for b.Loop() {
				if _, err := VerifyICCCert(&issuer.PublicKey, *ck, static, testPAN, certNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
