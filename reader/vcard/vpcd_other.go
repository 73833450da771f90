//go:build !linux

package vcard

import "net"

func newLink(conn net.Conn) (link, error) { return connLink{conn}, nil }
