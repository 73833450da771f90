module github.com/cardperso/perso

go 1.26.0

require (
	filippo.io/bigmod v0.1.0 // indirect
	github.com/ThalesGroup/crypto11 v1.6.2 // indirect
	github.com/ebfe/scard v0.0.0-20241214075232-7af069cabc25 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/miekg/pkcs11 v1.1.2 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/thales-e-security/pool v0.0.2 // indirect
	golang.org/x/sys v0.11.0 // indirect
)
