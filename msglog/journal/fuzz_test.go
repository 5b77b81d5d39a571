package journal

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadEntries feeds arbitrary bytes, as a damaged disk might hold
// them, to the entry reader and the record decoder. Whatever the bytes,
// reading ends (clean end, torn or damaged), allocates no more than one
// entry's bound, and every entry it accepts is exactly the bytes it
// consumed, framed again.
func FuzzReadEntries(f *testing.F) {
	var valid []byte
	for i := range 3 {
		p, _, err := encodeRecord(record(i))
		if err != nil {
			f.Fatal(err)
		}
		valid = appendEntry(valid, p)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-7])
	f.Add(append(bytes.Clone(valid), make([]byte, 64)...))
	f.Add(append(bytes.Clone(valid), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0))
	f.Add(appendEntry(nil, []byte(`{"id":"x","time":"1969-12-31T23:59:59Z"}`)))
	f.Add(appendEntry(nil, []byte(`{"id":`)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		var consumed []byte
		var buf []byte
		for {
			payload, err := readEntry(br, buf)
			if err != nil {
				if err == io.EOF && len(consumed) != len(data) {
					t.Fatalf("clean end after %d of %d bytes", len(consumed), len(data))
				}
				if err != io.EOF && !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(payload) == 0 || len(payload) > maxPayload {
				t.Fatalf("accepted a payload of %d bytes", len(payload))
			}
			consumed = appendEntry(consumed, payload)
			if !bytes.HasPrefix(data, consumed) {
				t.Fatalf("accepted entry differs from the bytes read")
			}
			if r, err := decodeRecord(payload); err == nil {
				if _, _, err := encodeRecord(r); err != nil {
					t.Fatalf("decoded record %+v does not encode again: %v", r, err)
				}
			}
			buf = payload
		}
	})
}
