package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ErrBackupElsewhere wraps Options.Backup's answer when this node's store
// is backed up by other means (Redis): the route answers 409 with the
// error's text, which says how.
var ErrBackupElsewhere = errors.New("no backup through mxgate")

// backup streams a consistent copy of the node's embedded store (GET
// /api/v1/backup, `mxgate backup`). The copy is taken first, into a file
// Options.Backup makes, so a slow client never holds the store's read
// transaction open; its size is sent as Content-Length, so a cut transfer
// shows.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if s.o.Backup == nil {
		writeError(w, http.StatusNotFound, "backups are not served by this node")
		return
	}
	snap, size, err := s.o.Backup()
	if errors.Is(err, ErrBackupElsewhere) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.internal(w, r, "backup", err)
		return
	}
	defer snap.Close()
	// A large store outlasts the server's write timeout, which is meant
	// for the JSON answers.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mxgate-%s-%s.db"`,
		safeFileName(s.o.NodeID), s.now().UTC().Format("20060102T150405Z")))
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, snap); err != nil {
		s.log.Warn("backup not sent whole", "sent", n, "size", size, "err", err)
	}
}

// safeFileName keeps the letters, digits and ._- of a node id, for a file
// name in a header.
func safeFileName(id string) string {
	b := []byte(id)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "node"
	}
	return string(out)
}

// Backup writes a consistent copy of the node's embedded store to w and
// returns its size. A transfer cut short is an error, so a partial copy is
// never taken for a whole one.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/backup", nil, nil, 0)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("backup: got %d bytes of %d", n, resp.ContentLength)
	}
	return n, nil
}
