package perso

import (
	"bufio"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
)

// Checkpoint is a point that a data preparation run can restart from after
// it was interrupted, even by a killed process: the input records it had
// accounted for (written or rejected), the card number counter after them,
// and, for the caller's reject log, its size then.
type Checkpoint struct {
	Input    int    `json:"input"`
	Written  int    `json:"written"`
	Rejected int    `json:"rejected"`
	Counter  uint64 `json:"counter,omitempty"`
	Rejects  int64  `json:"rejects,omitempty"`
}

// resumeState is the checkpoint file: the checkpoint and the batch
// writer's state at it.
type resumeState struct {
	Checkpoint Checkpoint        `json:"checkpoint"`
	Offset     int64             `json:"offset"`
	Count      uint64            `json:"count"`
	Digest     []byte            `json:"digest"` // the SHA-256 state, marshaled
	Counters   map[string]uint64 `json:"counters,omitempty"`
}

// ResumableWriter writes a batch file that survives an interrupted run: it
// writes to PATH.partial, Checkpoint syncs that file and records in
// PATH.checkpoint how to continue, and Close finishes the trailer, renames
// the file to PATH and removes the checkpoint. [ResumeFile] reopens an
// interrupted one at its last checkpoint.
type ResumableWriter struct {
	*Writer
	f    *os.File
	path string
	done bool
}

func partialPath(path string) string    { return path + ".partial" }
func checkpointPath(path string) string { return path + ".checkpoint" }

// CreateResumable starts a resumable batch file at path. It fails if an
// interrupted run left a partial file there: resume it or remove it.
func CreateResumable(path string, h *Header) (*ResumableWriter, error) {
	f, err := os.OpenFile(partialPath(path), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("perso: creating batch file: %w", err)
	}
	os.Remove(checkpointPath(path))
	w, err := NewWriter(f, h)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &ResumableWriter{Writer: w, f: f, path: path}, nil
}

// Checkpoint makes what was written so far durable and records cp with it.
// Called by a Preparer's Job.Checkpoint, it records exactly the records the
// run has accounted for.
func (rw *ResumableWriter) Checkpoint(cp Checkpoint) error {
	if rw.done {
		return errClosed
	}
	w := rw.Writer
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("perso: checkpoint: %w", err)
	}
	if err := rw.f.Sync(); err != nil {
		return fmt.Errorf("perso: checkpoint: %w", err)
	}
	digest, err := w.sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("perso: checkpoint: %w", err)
	}
	st := resumeState{Checkpoint: cp, Offset: w.off, Count: w.count, Digest: digest, Counters: maps.Clone(w.counters)}
	b, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	return writeFileSync(checkpointPath(rw.path), b)
}

// writeFileSync replaces path with b atomically and durably.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("perso: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("perso: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrNoCheckpoint is returned by ResumeFile when there is nothing to resume.
var ErrNoCheckpoint = errors.New("perso: no interrupted batch file to resume")

// ResumeFile reopens the batch file an interrupted run left at path, cut
// back to its last checkpoint, and returns it with that checkpoint, which
// the caller gives the Preparer as Job.Resume. Records written after the
// checkpoint are dropped: the resumed run prepares them again.
func ResumeFile(path string) (*ResumableWriter, *Checkpoint, error) {
	b, err := os.ReadFile(checkpointPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, nil, fmt.Errorf("perso: %w", err)
	}
	var st resumeState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, fmt.Errorf("perso: checkpoint %s: %v", checkpointPath(path), err)
	}
	f, err := os.OpenFile(partialPath(path), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("perso: resuming: %w", err)
	}
	fail := func(err error) (*ResumableWriter, *Checkpoint, error) {
		f.Close()
		return nil, nil, fmt.Errorf("perso: resuming %s: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() < st.Offset {
		return fail(errors.New("the partial file is shorter than its checkpoint"))
	}
	rd, err := NewReader(io.LimitReader(f, st.Offset))
	if err != nil {
		return fail(err)
	}
	sum := newDigest()
	if err := sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Digest); err != nil {
		return fail(fmt.Errorf("digest state: %v", err))
	}
	if err := f.Truncate(st.Offset); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return fail(err)
	}
	w := &Writer{bw: bufio.NewWriterSize(f, 64<<10), sum: sum, hdr: rd.Header(), off: st.Offset, count: st.Count, counters: map[string]uint64{}}
	maps.Copy(w.counters, st.Counters)
	cp := st.Checkpoint
	return &ResumableWriter{Writer: w, f: f, path: path}, &cp, nil
}

// Close writes the trailer, syncs, renames the file to its path and
// removes the checkpoint.
func (rw *ResumableWriter) Close() error {
	if rw.done {
		return errClosed
	}
	rw.done = true
	if err := commitFile(rw.Writer, rw.f, partialPath(rw.path), rw.path); err != nil {
		return err
	}
	os.Remove(checkpointPath(rw.path))
	return nil
}

// Abort removes the partial file and its checkpoint.
func (rw *ResumableWriter) Abort() error {
	if rw.done {
		return nil
	}
	rw.done = true
	os.Remove(checkpointPath(rw.path))
	return abandonFile(rw.Writer, rw.f)
}

func newDigest() hash.Hash { return sha256.New() }
