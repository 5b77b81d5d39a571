package node

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/store"
)

// backup takes a consistent copy of the embedded store for the admin API.
// The copy goes to an unlinked file in node.data_dir first: the store's
// read transaction then lasts as long as the local disk needs, not as long
// as a slow client, and nothing is left behind if the node dies. It costs
// the store's size on that disk while the copy is sent.
func (n *Node) backup() (io.ReadCloser, int64, error) {
	if n.store.Shared {
		return nil, 0, fmt.Errorf("%w: %w", admin.ErrBackupElsewhere, store.ErrNoSnapshot)
	}
	f, err := os.CreateTemp(n.cfg.Node.DataDir, ".backup-*")
	if err != nil {
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	size, err := n.store.Snapshot(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, store.ErrNoSnapshot) {
			return nil, 0, fmt.Errorf("%w: %w", admin.ErrBackupElsewhere, err)
		}
		return nil, 0, fmt.Errorf("backup: %w", err)
	}
	return f, size, nil
}
