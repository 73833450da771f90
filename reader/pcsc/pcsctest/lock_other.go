//go:build !unix

package pcsctest

import "testing"

// lock does nothing where flock(2) does not exist: run the PC/SC tests of
// one package at a time there (go test -p 1).
func lock(testing.TB, string) {}
