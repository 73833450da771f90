//go:build unix

package pcsctest

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// lockWait bounds how long a test waits for another test process to
// release the vpcd readers.
const lockWait = 5 * time.Minute

// lock takes an exclusive lock on the file at path until the test ends,
// waiting for whoever holds it (flock(2)).
func lock(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
	deadline := time.Now().Add(lockWait)
	for logged := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("pcsctest: locking %s: %v", path, err)
		}
		if !logged {
			t.Logf("pcsctest: waiting for another test process to release the vpcd readers (%s)", path)
			logged = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
