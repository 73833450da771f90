// Package p11 links the PKCS#11 backend into an example program: importing
// it makes the -pkcs11 flag work. It needs cgo.
package p11

import (
	"github.com/cardperso/perso/examples/internal/cli"
	"github.com/cardperso/perso/hsm/pkcs11"
)

func init() {
	cli.OpenPKCS11 = func() (cli.Module, func() error, error) {
		cfg, err := pkcs11.ConfigFromEnv()
		if err != nil {
			return nil, nil, err
		}
		m, err := pkcs11.Open(cfg)
		if err != nil {
			return nil, nil, err
		}
		return m, m.Close, nil
	}
}
