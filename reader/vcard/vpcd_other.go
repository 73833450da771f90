//go:build !linux

package vcard

import "net"

// quickAcker does nothing where TCP_QUICKACK does not exist.
func quickAcker(net.Conn) func() { return func() {} }
