package vcard

import (
	"net"
	"syscall"
)

// quickAcker returns a function that sets TCP_QUICKACK on conn, which
// Linux clears again as the connection goes on: called before each read,
// it makes the kernel acknowledge what arrives at once instead of delaying
// the acknowledgement (tcp(7)).
func quickAcker(conn net.Conn) func() {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return func() {}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return func() {}
	}
	set := func(fd uintptr) {
		// Best effort: without it the exchange is slower, not wrong.
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}
	return func() { _ = rc.Control(set) }
}
