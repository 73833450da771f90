package vcard

import (
	"crypto/sha1"
	"fmt"

	"github.com/cardperso/perso/internal/rsax"
)

// signDynamicData builds and signs the signed dynamic application data of
// EMV Book 2 section 6.5.1, table 17 (format 05), with the ICC private key:
//
//	6A || 05 || 01 || LDD || ICC dynamic data || BB..BB || hash || BC
//
// as long as the ICC modulus, where the hash is SHA-1 of everything from
// the format byte through the padding followed by the terminal dynamic
// data (the DDOL data of INTERNAL AUTHENTICATE), and the block is then
// signed by the raw RSA private operation (Book 2 A2.1).
func signDynamicData(k *rsax.Private, iccDynamic, terminalDynamic []byte) ([]byte, error) {
	n := k.Size()
	ldd := len(iccDynamic)
	if ldd > n-25 {
		return nil, fmt.Errorf("vcard: %d bytes of ICC dynamic data do not fit a %d-byte key", ldd, n)
	}
	block := make([]byte, 0, n)
	block = append(block, 0x6A, 0x05, 0x01, byte(ldd))
	block = append(block, iccDynamic...)
	for len(block) < n-21 {
		block = append(block, 0xBB)
	}
	h := sha1.New()
	h.Write(block[1:])
	h.Write(terminalDynamic)
	block = h.Sum(block)
	block = append(block, 0xBC)
	return k.Raw(block)
}
