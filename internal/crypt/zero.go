// Package crypt holds the symmetric primitives that the standard library
// lacks and that the rest of the module shares.
package crypt

// Zero overwrites b with zeros.
func Zero(b []byte) {
	clear(b)
}
