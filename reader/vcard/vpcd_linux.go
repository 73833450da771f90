package vcard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// fdLink reads and writes a duplicate of the connection's socket in
// blocking mode: the goroutine serving the card sleeps in read(2) and the
// kernel wakes its thread as soon as the driver writes, without the
// network poller's hand-offs between threads.
type fdLink struct {
	conn net.Conn
	f    *os.File
	fd   int

	mu     sync.Mutex // keeps shutdown off a descriptor close has released
	closed bool
}

func newLink(conn net.Conn) (link, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return connLink{conn}, nil
	}
	f, err := tc.File() // a duplicate descriptor
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, fmt.Errorf("blocking mode: %w", err)
	}
	return &fdLink{conn: conn, f: f, fd: fd}, nil
}

func (l *fdLink) Read(b []byte) (int, error) {
	for {
		l.quickAck()
		n, err := syscall.Read(l.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (l *fdLink) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := syscall.Write(l.fd, b[done:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// quickAck sets TCP_QUICKACK, which Linux clears again as the connection
// goes on, so Read sets it before each read(2) (tcp(7)). Best effort:
// without it the exchange is slower, not wrong.
func (l *fdLink) quickAck() {
	_ = syscall.SetsockoptInt(l.fd, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}

// shutdown shuts the socket down for both directions, which ends a
// read(2) in progress on any descriptor of it.
func (l *fdLink) shutdown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		_ = syscall.Shutdown(l.fd, syscall.SHUT_RDWR)
	}
}

func (l *fdLink) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	_ = syscall.Shutdown(l.fd, syscall.SHUT_RDWR)
	l.f.Close()
	l.conn.Close()
}
