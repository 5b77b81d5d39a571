package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// On disk the journal is a directory of segment files, oldest first by
// their sequence number in the name. A segment starts with segmentMagic
// and holds entries:
//
//	length  uint32 little-endian, of the payload
//	crc     uint32 little-endian, CRC-32C of the 4 length bytes and the payload
//	payload a msglog.Record as JSON
//
// Only whole groups of entries are written, each followed by an fdatasync,
// so a kill -9 leaves whole entries; a power loss or a bad disk may leave a
// torn or damaged one, which the checksum tells apart from a good one
// (a length field alone could point anywhere).
const (
	segmentMagic = "MXGJRNL1"
	headerSize   = int64(len(segmentMagic))
	entryHeader  = 8
	// maxPayload bounds one entry: a record is a few hundred bytes, and
	// encodeRecord shortens anything larger. A length field above it is
	// damage, rejected before anything is allocated for it.
	maxPayload = 256 << 10
	segmentExt = ".jnl"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errTorn is an entry cut short by the end of the data.
	errTorn = errors.New("torn entry")
	// errCorrupt is an entry whose length or checksum is wrong.
	errCorrupt = errors.New("damaged entry")
)

// appendEntry frames payload as one entry at the end of b.
func appendEntry(b, payload []byte) []byte {
	var h [entryHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(h[0:4], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	b = append(b, h[:]...)
	return append(b, payload...)
}

// readEntry reads the next entry's payload from r into buf (grown as
// needed; the result aliases it). At a clean end of data it returns io.EOF;
// an entry cut short is errTorn; a length above maxPayload or a checksum
// mismatch is errCorrupt.
func readEntry(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [entryHeader]byte
	_, err := io.ReadFull(r, h[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		return nil, errTorn
	case err != nil:
		return nil, err
	}
	size := binary.LittleEndian.Uint32(h[0:4])
	if size == 0 || size > maxPayload {
		// A zero length is what a zero-filled tail (a file extended but not
		// written before a power loss) looks like; no record is empty.
		return nil, errCorrupt
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errTorn
		}
		return nil, err
	}
	crc := crc32.Update(crc32.Checksum(h[0:4], castagnoli), castagnoli, buf)
	if crc != binary.LittleEndian.Uint32(h[4:8]) {
		return nil, errCorrupt
	}
	return buf, nil
}

// segmentName is the file name of segment seq: fixed-width hex, so names
// sort as numbers do.
func segmentName(seq uint64) string {
	return fmt.Sprintf("%016x%s", seq, segmentExt)
}

// parseSegmentName is the sequence number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(base) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 16, 64)
	return seq, err == nil
}

// segment is one journal file. The committer owns w and writes at end; the
// shipper owns r. end and sealed are guarded by Journal.mu.
type segment struct {
	seq    uint64
	path   string
	w      *os.File // the active segment's write handle, nil once sealed
	r      *os.File // the shipper's read handle, opened on first read
	end    int64    // bytes that are on disk (for the active one: fsync'd)
	sealed bool     // nothing more will be written to it
	old    bool     // left by an earlier run: what is read from it is replayed
}

// createSegment makes a new segment file with its header, durable with its
// directory entry before anything is written to it.
func createSegment(dir string, seq uint64) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(segmentMagic), 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create journal segment %s: %w", path, err)
	}
	if err := fdatasync(f); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create journal segment %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create journal segment %s: %w", path, err)
	}
	return &segment{seq: seq, path: path, w: f, end: headerSize}, nil
}

// fdatasync flushes f's data and the metadata needed to read it back (its
// size): one disk flush, without the inode's times.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

// syncDir makes a new or renamed entry of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
