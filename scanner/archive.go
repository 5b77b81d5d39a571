package scanner

import (
	"archive/zip"
	"errors"
	"io"
	"strings"
)

// sigCentral starts every zip central directory record.
var sigCentral = []byte("PK\x01\x02")

// zip inspects an archive held in memory: entry names for the attachment
// policy, entry contents for the patterns, nested archives up to
// maxArchiveNesting. Entries and uncompressed bytes are counted against the
// per-message limits, and contents are only ever read through a
// LimitedReader, so a zip bomb costs at most the budget.
func (w *walker) zip(data *chunks, container string, part, level int) error {
	// archive/zip allocates a File for every directory record before we
	// see one, and reads records until it meets something else, whatever
	// count the archive claims. Each record carries this signature, so
	// counting it bounds that allocation.
	if n := data.count(sigCentral); n > max(4*w.lim.maxEntries, 4096) {
		w.archiveLimit("%s: %d directory records, not opened", container, n)
		return nil
	}
	zr, err := zip.NewReader(data, data.size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		w.archiveBad("%s: %v", container, err)
		return nil
	}
	for _, f := range zr.File {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if w.p.archiveEntries >= w.lim.maxEntries {
			w.archiveLimit("more than %d archive entries", w.lim.maxEntries)
			return nil
		}
		w.p.archiveEntries++
		e := entry{name: tailName(f.Name), container: container}
		switch {
		case f.Flags&0x1 != 0:
			// Encrypted: the content cannot be looked at, the name still can.
			e.encrypted = true
		case strings.HasSuffix(f.Name, "/"):
		default:
			if err := w.zipEntry(f, &e, part, level); err != nil {
				return err
			}
		}
		w.p.entries = append(w.p.entries, e)
	}
	return nil
}

func (w *walker) zipEntry(f *zip.File, e *entry, part, level int) error {
	if w.budget <= 0 {
		w.archiveLimit("more than %d uncompressed archive bytes", w.lim.maxArchiveBytes)
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		w.archiveBad("%s: %v", e.name, err)
		return nil
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: w.budget}
	w.dec.begin(location{part: part, entry: e.name}, patEICAR)

	head := w.sc.head
	n, err := io.ReadFull(lr, head)
	head = head[:n]
	eof := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !eof {
		w.archiveBad("%s: %v", e.name, err)
		w.budget = lr.N
		return nil
	}
	e.exe = isPE(head)
	nested := isZip(head) || strings.HasSuffix(strings.ToLower(e.name), ".zip")
	if nested && level >= maxArchiveNesting {
		w.archiveLimit("%s: archives nested deeper than %d", e.name, maxArchiveNesting)
		nested = false
	}
	var inner *chunks
	if nested {
		inner = &chunks{}
		inner.write(head)
	}
	w.dec.feed(head)
	for !eof {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n, err := lr.Read(w.sc.buf)
		chunk := w.sc.buf[:n]
		w.dec.feed(chunk)
		if nested {
			inner.write(chunk)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			w.archiveBad("%s: %v", e.name, err)
			break
		}
	}
	if lr.N <= 0 {
		var one [1]byte
		if n, _ := rc.Read(one[:]); n > 0 {
			w.archiveLimit("more than %d uncompressed archive bytes", w.lim.maxArchiveBytes)
		}
	}
	w.budget = lr.N
	if nested {
		return w.zip(inner, e.name, part, level+1)
	}
	return nil
}

// tailName keeps the end of an over-long name: the extension is there.
func tailName(s string) string {
	if len(s) > maxNameLen {
		return s[len(s)-maxNameLen:]
	}
	return s
}
