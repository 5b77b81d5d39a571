package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/store/storetest"
)

func openEmbedded(t *testing.T) *store.Backend {
	t.Helper()
	b, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func TestEmbeddedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		b := openEmbedded(t)
		// One process holds the embedded store: another "node" of it is
		// the same Backend.
		return storetest.Env{Backend: b, Node: func(*testing.T) *store.Backend { return b }}
	})
}

func TestEmbeddedSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	raw := []byte("Subject: held\r\n\r\nbody\n\x00\r\n")

	b, err := store.OpenEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	it := quarantine.Item{ID: "Q1", Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org"}, Verdict: "spam", Expires: now.Add(time.Hour)}
	if err := b.Quarantine.Put(ctx, it, raw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Lists.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Log.Append(ctx, msglog.Record{ID: "Q1", Time: now, Action: "quarantine"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path string
		perm os.FileMode // bits that must not be set
	}{{dir, 0o027}, {filepath.Join(dir, store.FileName), 0o177}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&c.perm != 0 {
			t.Errorf("%s has mode %v", c.path, fi.Mode().Perm())
		}
	}

	b, err = store.OpenEmbedded(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b.Close()
	got, err := b.Quarantine.List(ctx, quarantine.Filter{Rcpt: "r@example.org"})
	if err != nil || len(got) != 1 || got[0].ID != "Q1" {
		t.Errorf("quarantine after reopen: %+v, %v", got, err)
	}
	if g, err := b.Quarantine.Raw(ctx, "Q1"); err != nil || !bytes.Equal(g, raw) {
		t.Errorf("raw after reopen: %q, %v", g, err)
	}
	if all, err := b.Lists.All(ctx); err != nil || len(all) != 1 || all[0].Value != "@evil.example" {
		t.Errorf("lists after reopen: %+v, %v", all, err)
	}
	if recs, err := b.Log.Search(ctx, msglog.Query{ID: "Q1"}); err != nil || len(recs) != 1 {
		t.Errorf("log after reopen: %+v, %v", recs, err)
	}
}

func TestEmbeddedSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	b, err := store.OpenEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// flock is per open file description, so a second open in this
	// process conflicts exactly as another process would.
	b2, err := store.OpenEmbedded(dir)
	if err == nil {
		b2.Close()
		t.Fatal("second OpenEmbedded on the same data dir succeeded")
	}
	want := "data dir " + dir + " is in use by another mxgate (lock on mxgate.db)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
}

func TestEmbeddedBadDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenEmbedded(filepath.Join(file, "sub")); err == nil {
		t.Error("OpenEmbedded under a regular file succeeded")
	}
	if _, err := store.OpenEmbedded(""); err == nil {
		t.Error("OpenEmbedded with an empty data dir succeeded")
	}
}
