//go:build unix

package pcsctest

import (
	"os"
	"syscall"
	"testing"
)

// lock takes an exclusive lock on the file at path until the test ends,
// waiting for whoever holds it (flock(2)).
func lock(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("pcsctest: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("pcsctest: locking %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
