// Package spool holds one message body, written once and read many times:
// in memory up to a limit, then in a temporary file, so that the scanners,
// the relay and the quarantine each open their own reader without copying.
package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Writer receives a message body. Call Finish to get the Buffer, or Abort to
// throw away what was written.
type Writer struct {
	dir      string
	memLimit int
	mem      bytes.Buffer
	file     *os.File
	size     int64
	done     bool
}

// NewWriter keeps up to memLimit bytes in memory and spills to a temporary
// file in dir (the system default when empty) beyond that.
func NewWriter(dir string, memLimit int) *Writer {
	return &Writer{dir: dir, memLimit: memLimit}
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("spool: write after finish")
	}
	if w.file == nil && w.mem.Len()+len(p) > w.memLimit {
		f, err := os.CreateTemp(w.dir, "mxgate-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool to file: %w", err)
		}
		// Unlinked at once: a crash leaves nothing behind, and readers keep
		// the open descriptor.
		os.Remove(f.Name())
		if _, err := f.Write(w.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool to file: %w", err)
		}
		w.mem = bytes.Buffer{}
		w.file = f
	}
	var n int
	var err error
	if w.file != nil {
		n, err = w.file.Write(p)
	} else {
		n, err = w.mem.Write(p)
	}
	w.size += int64(n)
	return n, err
}

// Finish freezes the body; the Writer must not be used afterwards.
func (w *Writer) Finish() *Buffer {
	w.done = true
	if w.file != nil {
		return &Buffer{file: w.file, size: w.size}
	}
	return &Buffer{mem: w.mem.Bytes(), size: w.size}
}

// Abort releases what was written.
func (w *Writer) Abort() {
	w.done = true
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
	w.mem = bytes.Buffer{}
}

// Buffer is an immutable message body.
type Buffer struct {
	mem  []byte
	file *os.File
	size int64
}

// FromBytes wraps a body that is already in memory.
func FromBytes(b []byte) *Buffer { return &Buffer{mem: b, size: int64(len(b))} }

// Size is the body length in bytes.
func (b *Buffer) Size() int64 { return b.size }

// Reader returns an independent reader over the whole body; any number may
// be open at once, from any goroutine.
func (b *Buffer) Reader() *io.SectionReader {
	if b.file != nil {
		return io.NewSectionReader(b.file, 0, b.size)
	}
	return io.NewSectionReader(bytes.NewReader(b.mem), 0, b.size)
}

// Bytes returns the whole body in memory (read from the file when spilled).
func (b *Buffer) Bytes() ([]byte, error) {
	if b.file == nil {
		return b.mem, nil
	}
	out := make([]byte, b.size)
	if _, err := b.file.ReadAt(out, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read spooled body: %w", err)
	}
	return out, nil
}

// Close releases the temporary file, if any. Readers must be done.
func (b *Buffer) Close() error {
	if b.file != nil {
		err := b.file.Close()
		b.file = nil
		return err
	}
	return nil
}
