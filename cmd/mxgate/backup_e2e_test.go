package main

// Hot backup of the embedded store (issue 11, point 14): a copy taken from a
// running node, while mail goes on, opens as a store and holds the node's
// quarantine, message log and lists; a file is never overwritten; a node
// on Redis says to back up Redis instead.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

func TestBackupOfRunningNode(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	id := quarantineGTUBE(t, g)
	if out, err := g.cli(t, "lists", "add", "block", "@bad.test", "--comment", "before the backup"); err != nil {
		t.Fatalf("lists add: %v\n%s", err, out)
	}
	// The message log reaches the store in batches: wait for the record.
	waitFor(t, "the quarantined message's log record in the store", func() bool {
		out, err := g.cli(t, "log", "--id", id, "--json")
		return err == nil && strings.Contains(out, id)
	})

	// Mail goes on while the backups are taken (swaks directly: t.Fatal
	// belongs to the test's goroutine).
	bin := testenv.Need(t, "swaks")[0]
	host, port, _ := strings.Cut(g.SMTP, ":")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = exec.CommandContext(ctx, bin, "--server", host, "--port", port, "--helo", "client.test",
				"--from", "a@sender.test", "--to", "bob@example.org", "--header", "Subject: during backup "+strconv.Itoa(i)).Run()
		}
	})
	defer func() { stop(); wg.Wait() }()

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	out, err := g.cli(t, "backup", file)
	if err != nil || !strings.Contains(out, "bytes written to "+file) {
		t.Fatalf("mxgate backup %s: %v\n%s", file, err, out)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600 (it holds the quarantined mail)", st.Mode().Perm())
	}
	checkBackup(t, file, id)

	// A second backup to the same file is refused and leaves it alone.
	before, _ := os.ReadFile(file)
	out, err = g.cli(t, "backup", file)
	if err == nil || !strings.Contains(out, "exists already") {
		t.Errorf("backup over an existing file: err %v, want a refusal naming it\n%s", err, out)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("a refused backup changed the existing file")
	}

	// The route itself: a size announced and kept, the same data.
	resp, err := http.Get("http://" + g.Admin + "/api/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/backup: %d %v", resp.StatusCode, err)
	}
	if resp.ContentLength != int64(len(body)) || len(body) == 0 {
		t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="mxgate-gw1-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	viaHTTP := filepath.Join(dir, "http.db")
	if err := os.WriteFile(viaHTTP, body, 0o600); err != nil {
		t.Fatal(err)
	}
	checkBackup(t, viaHTTP, id)

	// A restore: the copy in a fresh data directory serves the same data.
	stop()
	wg.Wait()
	g2 := newGateway(t)
	if err := os.WriteFile(filepath.Join(g2.DataDir, store.FileName), body, 0o600); err != nil {
		t.Fatal(err)
	}
	g2.serve(t, g2.writeConfig(t, sink.Addr, nil))
	items := g2.quarantine(t)
	if len(items) != 1 || items[0]["id"] != id {
		t.Errorf("restored node's quarantine: %v, want the one item %s", items, id)
	}
	if ents, err := os.ReadDir(g.DataDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".backup-") {
				t.Errorf("backup left %s in the data directory", e.Name())
			}
		}
	}
}

// checkBackup opens a backup with bbolt, checks its consistency, and finds
// the node's data in it through the store the node uses.
func checkBackup(t *testing.T, file, quarantined string) {
	t.Helper()
	db, err := bbolt.Open(file, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt cannot open the backup: %v", err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatalf("backup fails bbolt's check: %v", err)
	}

	// OpenEmbedded wants a data directory, and may write to it.
	dir := t.TempDir()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := store.OpenEmbedded(dir)
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer be.Close()
	ctx := context.Background()
	it, err := be.Quarantine.Get(ctx, quarantined)
	if err != nil {
		t.Fatalf("quarantined item %s not in the backup: %v", quarantined, err)
	}
	if it.Sender != "spammer@sender.test" {
		t.Errorf("item's sender %q", it.Sender)
	}
	raw, err := be.Quarantine.Raw(ctx, quarantined)
	if err != nil || !bytes.Contains(raw, []byte(gtube)) {
		t.Errorf("the backup's raw message lacks GTUBE (err %v)", err)
	}
	recs, err := be.Log.Search(ctx, msglog.Query{ID: quarantined})
	if err != nil || len(recs) != 1 || recs[0].Action != "quarantine" {
		t.Errorf("message log record of %s in the backup: %v %v", quarantined, recs, err)
	}
	ents, err := be.Lists.All(ctx)
	found := false
	for _, e := range ents {
		found = found || (e.Value == "@bad.test" && e.Comment == "before the backup")
	}
	if err != nil || !found {
		t.Errorf("list entry not in the backup: %v %v", ents, err)
	}
}

func TestBackupOnRedisSaysToBackUpRedis(t *testing.T) {
	sink := testenv.StartSink(t)
	r := testenv.StartRedis(t)
	g := startGateway(t, sink.Addr, map[string]string{"store": fmt.Sprintf("  redis: %q", r.URL)})
	file := filepath.Join(t.TempDir(), "backup.db")
	out, err := g.cli(t, "backup", file)
	if err == nil || !strings.Contains(out, "BGSAVE") || !strings.Contains(out, "409") {
		t.Errorf("backup on Redis: err %v, want a 409 naming BGSAVE\n%s", err, out)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s behind (%v)", file, err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
