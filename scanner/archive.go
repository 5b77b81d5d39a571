package scanner

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
)

// Archives (zip, gzip, tar, in any nesting up to maxArchiveNesting) are
// opened and every file in them inspected like an attachment: its name for
// the attachment policy, its content for the patterns and PE sniffing.
// Entries and bytes are counted against the per-message limits, and every
// byte an archive yields is read through the budget (budgetReader), so a
// bomb costs at most the budget; a byte a nested archive yields counts once
// for each layer it passes. Whatever a limit keeps from being read is
// recorded as such, never passed over in silence.

// sigCentral starts every zip central directory record.
var sigCentral = []byte("PK\x01\x02")

type archiveKind uint8

const (
	archiveNone archiveKind = iota
	archiveZip
	archiveGzip
	archiveTar
)

func isZip(b []byte) bool {
	return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06"))
}

func isGzip(b []byte) bool { return len(b) >= 3 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8 }

// isTar recognises a POSIX or GNU tar header by its magic.
func isTar(b []byte) bool { return len(b) >= 262 && string(b[257:262]) == "ustar" }

// sniffArchive says what archive a file is: by its content, else by what
// its type or names claim (then a file that is not one is malformed).
func sniffArchive(head []byte, ctype string, names []string) archiveKind {
	switch {
	case isZip(head):
		return archiveZip
	case isGzip(head):
		return archiveGzip
	case isTar(head):
		return archiveTar
	}
	switch ctype {
	case "application/zip", "application/x-zip-compressed", "application/x-zip":
		return archiveZip
	case "application/gzip", "application/x-gzip", "application/x-gunzip", "application/x-compressed-tar":
		return archiveGzip
	case "application/x-tar", "application/x-gtar", "application/x-ustar":
		return archiveTar
	}
	for _, n := range names {
		n = normalizeName(n)
		switch {
		case strings.HasSuffix(n, ".zip"):
			return archiveZip
		case strings.HasSuffix(n, ".gz"), strings.HasSuffix(n, ".tgz"), strings.HasSuffix(n, ".taz"),
			strings.HasSuffix(n, ".gzip"):
			return archiveGzip
		case strings.HasSuffix(n, ".tar"):
			return archiveTar
		}
	}
	return archiveNone
}

// archive opens an archive held in memory at the given nesting level.
func (w *walker) archive(kind archiveKind, data *chunks, container string, part, level int) error {
	switch kind {
	case archiveZip:
		return w.zip(data, container, part, level)
	case archiveGzip:
		return w.gunzip(io.NewSectionReader(data, 0, data.size), container, part, level)
	case archiveTar:
		return w.untar(io.NewSectionReader(data, 0, data.size), container, part, level)
	}
	return nil
}

// takeEntry counts one more archive entry; false past the limit.
func (w *walker) takeEntry() bool {
	if w.p.archiveEntries >= w.lim.maxEntries {
		w.archiveLimit(limitArchiveEntries, "more than %d archive entries", w.lim.maxEntries)
		return false
	}
	w.p.archiveEntries++
	return true
}

// zip inspects a zip archive held in memory (zip is read from its end).
func (w *walker) zip(data *chunks, container string, part, level int) error {
	// archive/zip allocates a File for every directory record before we
	// see one, and reads records until it meets something else, whatever
	// count the archive claims. Each record carries this signature, so
	// counting it bounds that allocation.
	if n := data.count(sigCentral); n > max(4*w.lim.maxEntries, 4096) {
		w.archiveLimit(limitArchiveRecords, "%s: %d directory records, not opened", container, n)
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
		if !w.takeEntry() {
			return nil
		}
		e := entry{name: tailName(f.Name), container: container}
		switch {
		case f.Flags&0x1 != 0:
			// Encrypted: the content cannot be looked at, the name still can.
			e.encrypted = true
		case strings.HasSuffix(f.Name, "/"):
		default:
			rc, err := f.Open()
			switch {
			case errors.Is(err, zip.ErrAlgorithm):
				// 7-Zip and others unpack what archive/zip cannot (LZMA,
				// bzip2, Deflate64...): content not scanned, not clean.
				w.archiveLimit(limitArchiveMethod, "%s: %s: compression method %d not supported", container, e.name, f.Method)
			case err != nil:
				w.archiveBad("%s: %v", e.name, err)
			default:
				err := w.member(rc, &e, part, level)
				rc.Close()
				if err != nil {
					return err
				}
			}
		}
		w.p.entries = append(w.p.entries, e)
	}
	return nil
}

// gunzip inspects the file a gzip stream holds. Its name is the one in the
// gzip header (what 7-Zip and gunzip -N use) and the container's without
// .gz (what gunzip uses); the policy sees both.
func (w *walker) gunzip(r io.Reader, container string, part, level int) error {
	if !w.takeEntry() {
		return nil
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		w.archiveBad("%s: %v", container, err)
		return nil
	}
	defer zr.Close()
	outer := gunzipName(container)
	e := entry{name: tailName(zr.Name), container: container}
	if e.name == "" {
		e.name = outer
	}
	if err := w.member(zr, &e, part, level); err != nil {
		return err
	}
	w.p.entries = append(w.p.entries, e)
	if outer != e.name {
		w.p.entries = append(w.p.entries, entry{name: outer, container: container, exe: e.exe})
	}
	return nil
}

// gunzipName is the name gunzip gives the file in a gzip named n.
func gunzipName(n string) string {
	lower := strings.ToLower(n)
	for _, s := range []struct{ suffix, repl string }{
		{".tgz", ".tar"}, {".taz", ".tar"}, {".gzip", ""}, {".gz", ""}, {".z", ""},
	} {
		if strings.HasSuffix(lower, s.suffix) && len(n) > len(s.suffix) {
			return n[:len(n)-len(s.suffix)] + s.repl
		}
	}
	return n
}

// untar inspects a tar stream. Every entry's content is read through
// member, whatever its type, so the reader never skips unread bytes of a
// compressed stream outside the budget.
func (w *walker) untar(r io.Reader, container string, part, level int) error {
	tr := tar.NewReader(r)
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			w.archiveBad("%s: %v", container, err)
			return nil
		}
		if !w.takeEntry() {
			return nil
		}
		e := entry{name: tailName(hdr.Name), container: container}
		if err := w.member(tr, &e, part, level); err != nil {
			return err
		}
		w.p.entries = append(w.p.entries, e)
	}
}

// member inspects one file inside an archive or an encoding at the given
// nesting level: every byte through the budget and the patterns, the head
// sniffed for a PE, and an archive inside opened in turn.
func (w *walker) member(r io.Reader, e *entry, part, level int) error {
	br := &budgetReader{w: w, r: r}
	m := &matcher{found: &w.p.found, where: &w.p.where}
	m.begin(location{part: part, entry: e.name}, patEICAR)
	// Members nest (a tar entry is read while its gzip is), so each has a
	// buffer of its own from the scratch pool, never the leaf's.
	buf := w.sc.getBuf()
	defer w.sc.putBuf(buf)
	head := buf[:sniffLen]
	n, err := io.ReadFull(br, head)
	head = head[:n]
	eof := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !eof {
		w.archiveBad("%s: %v", e.name, err)
		return nil
	}
	e.exe = isPE(head)
	kind := archiveNone
	if w.lim.scanArchives {
		kind = sniffArchive(head, "", []string{e.name})
	}
	if kind != archiveNone && level >= maxArchiveNesting {
		w.archiveLimit(limitArchiveNesting, "%s: archives nested deeper than %d", e.name, maxArchiveNesting)
		kind = archiveNone
	}
	switch kind {
	case archiveGzip, archiveTar:
		// Streamed, and the stream goes through the patterns whatever the
		// archive reader makes of it: what a broken archive hides from
		// the reader is still matched.
		src := io.TeeReader(io.MultiReader(bytes.NewReader(bytes.Clone(head)), br), m)
		var err error
		if kind == archiveGzip {
			err = w.gunzip(src, e.name, part, level+1)
		} else {
			err = w.untar(src, e.name, part, level+1)
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, src)
		return nil
	}
	var inner *chunks
	if kind == archiveZip {
		inner = &chunks{}
		inner.write(head)
	}
	m.feed(head)
	for !eof {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n, err := br.Read(buf)
		chunk := buf[:n]
		m.feed(chunk)
		if inner != nil {
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
	if inner != nil {
		return w.zip(inner, e.name, part, level+1)
	}
	return nil
}

// budgetReader reads what an archive yields against the message's budget.
// Past it, one byte more means a limit was hit.
type budgetReader struct {
	w *walker
	r io.Reader
}

func (b *budgetReader) Read(p []byte) (int, error) {
	w := b.w
	if w.p.budget <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(b.r, one[:]); n > 0 {
			w.archiveLimit(limitArchiveBytes, "more than %d uncompressed archive bytes", w.lim.maxArchiveBytes)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > w.p.budget {
		p = p[:w.p.budget]
	}
	n, err := b.r.Read(p)
	// Nested layers count the same bytes again, and the inner read is
	// counted before the outer one: the budget ends at 0, not below.
	w.p.budget = max(0, w.p.budget-int64(n))
	return n, err
}

// tailName keeps the end of an over-long name: the extension is there.
func tailName(s string) string {
	if len(s) > maxNameLen {
		return s[len(s)-maxNameLen:]
	}
	return s
}
