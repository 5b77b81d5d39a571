// Package store opens the backend that holds the gateway's shared data and
// hands out its stores: quarantine, lists, message log, membership,
// cluster configuration, reports, the digest's state, the console's
// revoked sessions (and the peer API's nonces). The embedded backend is
// one bbolt file for a single node; the Redis backend is shared by a
// cluster. Each store, with both its backends, is its own
// package's; every backend passes the same conformance suite
// (store/storetest).
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/console/sessions"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/kv"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/peer"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/report"
)

// Backend is one opened store. Close it when done.
type Backend struct {
	Quarantine quarantine.Store
	Lists      lists.Store
	Log        msglog.Store
	Members    members.Store
	Config     clusterconf.Store
	Reports    report.Store
	// Digest is the recipients' digest: signing keys, sends, opt-outs.
	Digest digest.Store
	// Sessions are the web console's revoked sessions, so that a logout
	// holds on every node.
	Sessions sessions.Store
	// PeerNonces remembers the peer API's request nonces for every node
	// and across restarts (nil on the embedded store: see peer's
	// replayGuard for what stands in for it there).
	PeerNonces peer.NonceStore
	// Shared is true for a store several nodes use (Redis).
	Shared bool
	// Name says which store this is, for logs (the Redis URL without its
	// password).
	Name string

	db     *bbolt.DB // the embedded file; nil on Redis
	closer io.Closer
}

// ErrNoSnapshot is Snapshot's answer on a Redis store: Redis is backed up
// with its own tools.
var ErrNoSnapshot = errors.New("this node's store is Redis, shared by the cluster: back up Redis itself (redis-cli BGSAVE, then copy its RDB file)")

// Snapshot writes a consistent copy of the embedded database file to w, as
// of one read transaction: writers go on meanwhile. Give it a fast w (a
// local file), not a network peer: while the transaction is open the file
// cannot grow its memory map, so a writer that needs to waits for it. On
// Redis it returns ErrNoSnapshot.
func (b *Backend) Snapshot(w io.Writer) (int64, error) {
	if b.db == nil {
		return 0, ErrNoSnapshot
	}
	var n int64
	err := b.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("snapshot of %s: %w", b.db.Path(), err)
	}
	return n, nil
}

// ErrUnreachable comes with a usable Backend from OpenRedis when Redis did
// not answer at start: the client reconnects by itself.
var ErrUnreachable = errors.New("the shared store does not answer")

// pingTimeout bounds the start-up check of the shared store.
const pingTimeout = 3 * time.Second

// OpenRedis opens the shared store at url (redis://, rediss://,
// redis-sentinel://, redis+cluster://). A bad URL is an error; a Redis that
// does not answer gives a Backend and an error wrapping ErrUnreachable, so
// the caller can start degraded.
func OpenRedis(ctx context.Context, url string) (*Backend, error) {
	c, err := kv.Dial(url)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		Quarantine: quarantine.NewRedis(c),
		Lists:      lists.NewRedis(c),
		Log:        msglog.NewRedis(c),
		Members:    members.NewRedis(c),
		Config:     clusterconf.NewRedis(c),
		Reports:    report.NewRedis(c),
		Digest:     digest.NewRedis(c),
		Sessions:   sessions.NewRedis(c),
		PeerNonces: peer.NewRedisNonces(c),
		Shared:     true,
		Name:       kv.Redact(url),
		closer:     c,
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		return b, fmt.Errorf("redis store %s: %w: %w", b.Name, ErrUnreachable, err)
	}
	return b, nil
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
	cc, err := clusterconf.NewBolt(db)
	if err != nil {
		return nil, err
	}
	r, err := report.NewBolt(db)
	if err != nil {
		return nil, err
	}
	d, err := digest.NewBolt(db)
	if err != nil {
		return nil, err
	}
	sv, err := sessions.NewBolt(db)
	if err != nil {
		return nil, err
	}
	return &Backend{Quarantine: q, Lists: l, Log: m, Members: members.NewMemory(), Config: cc, Reports: r, Digest: d, Sessions: sv,
		Name: "embedded " + db.Path(), db: db, closer: db}, nil
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
