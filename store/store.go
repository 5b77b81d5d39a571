// Package store opens the backend that holds the gateway's shared data:
// quarantine, lists and message log. The embedded backend is one bbolt file
// for a single node; a Redis backend for clusters implements the same
// interfaces and passes the same conformance suite (store/storetest).
package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
)

// Backend is one opened store. Close it when done.
type Backend struct {
	Quarantine quarantine.Store
	Lists      lists.Store
	Log        msglog.Store

	closer io.Closer
}

// FileName is the embedded database file inside the data directory.
const FileName = "mxgate.db"

// lockTimeout is how long OpenEmbedded waits for the file lock: long enough
// for a restarting node's predecessor to let go, short enough to tell a
// second node on the same data directory at once.
const lockTimeout = time.Second

// OpenEmbedded opens (creating if needed) <dataDir>/mxgate.db. Writes are
// fsync'd on commit. The file is locked: a second process on the same data
// directory gets an error saying so.
func OpenEmbedded(dataDir string) (*Backend, error) {
	if dataDir == "" {
		return nil, errors.New("open embedded store: empty data dir")
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use by another mxgate (lock on %s)", dataDir, FileName)
	}
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	b, err := newEmbedded(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	return b, nil
}

func newEmbedded(db *bbolt.DB) (*Backend, error) {
	q, err := quarantine.NewBolt(db)
	if err != nil {
		return nil, err
	}
	l, err := lists.NewBolt(db)
	if err != nil {
		return nil, err
	}
	m, err := msglog.NewBolt(db)
	if err != nil {
		return nil, err
	}
	return &Backend{Quarantine: q, Lists: l, Log: m, closer: db}, nil
}

// Close releases the backend (for the embedded one: the file and its lock).
func (b *Backend) Close() error {
	if b == nil || b.closer == nil {
		return nil
	}
	if err := b.closer.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
