package main

// The message log across a kill -9 of the real binary: every message that
// got its 250 has its record after the restart, replayed from the node's
// journal, and none has two.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// journalLogSenders is `mxgate log --json`, counted by sender.
func (g *gateway) journalLogSenders(t *testing.T) map[string]int {
	t.Helper()
	out, err := g.cli(t, "log", "--json", "--limit", "10000")
	if err != nil {
		return nil // the node may still be starting
	}
	var recs []struct {
		Sender string `json:"sender"`
	}
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("mxgate log --json: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, r := range recs {
		got[r.Sender]++
	}
	return got
}

func (g *gateway) journalMetrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tearJournal cuts the last entry of the newest journal file short, as a
// power loss during its write leaves it.
func tearJournal(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jnl"))
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	for _, f := range files { // fixed-width names: the last in order is the newest
		if fi, err := os.Stat(f); err == nil && fi.Size() > 8 && f > newest {
			newest = f
		}
	}
	if newest == "" {
		t.Fatalf("no journal file with records in %s (%v)", dir, files)
	}
	fi, _ := os.Stat(newest)
	if err := os.Truncate(newest, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
}

func TestMessageLogSurvivesKill(t *testing.T) {
	kill := func(p *testenv.Process) { p.Cmd.Process.Kill() }
	term := func(p *testenv.Process) { p.Cmd.Process.Signal(syscall.SIGTERM) }
	tests := []struct {
		name      string
		redis     bool
		redisDown bool // stopped before the messages, started again before the restart
		stop      func(*testenv.Process)
		tear      bool // cut the journal's last entry short before the restart, as a power loss may
	}{
		{"embedded store, kill -9", false, false, kill, false},
		{"redis, kill -9", true, false, kill, false},
		{"redis down, kill -9", true, true, kill, false},
		{"redis down, SIGTERM", true, true, term, false},
		{"redis down, kill -9, torn tail", true, true, kill, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := testenv.StartSink(t)
			var r *testenv.Redis
			url := ""
			if tc.redis {
				r = testenv.StartRedis(t)
				url = r.URL
			}
			g := newGateway(t)
			cfg := g.writeConfig(t, sink.Addr, map[string]string{"store": fmt.Sprintf("  redis: %q", url)})
			g.serve(t, cfg)
			if tc.redisDown {
				r.Stop()
			}

			const workers, each = 8, 6
			var mu sync.Mutex
			accepted := map[string]bool{}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for n := range each {
						sender := fmt.Sprintf("k%d-%d@sender.test", w, n)
						code, err := testenv.SendFrom(g.SMTP, sender)
						if err != nil {
							t.Errorf("%s: %v", sender, err)
							return
						}
						mu.Lock()
						accepted[sender] = code == 250
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			// At once after the last reply.
			tc.stop(g.Proc)
			if !g.Proc.Wait(15 * time.Second) {
				t.Fatal("the node did not end")
			}
			n := 0
			for _, ok := range accepted {
				if ok {
					n++
				}
			}
			if n != workers*each {
				t.Fatalf("%d of %d messages accepted", n, workers*each)
			}
			wantMissing := 0
			if tc.tear {
				tearJournal(t, filepath.Join(g.DataDir, "msglog-journal"))
				wantMissing = 1
			}
			if tc.redisDown {
				r.Start()
			}
			g.serve(t, cfg)
			var got map[string]int
			deadline := time.Now().Add(30 * time.Second)
			for {
				got = g.journalLogSenders(t)
				present := 0
				for s := range accepted {
					if got[s] > 0 {
						present++
					}
				}
				if present >= len(accepted)-wantMissing || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			missing, twice := 0, 0
			for s := range accepted {
				switch got[s] {
				case 0:
					missing++
				case 1:
				default:
					twice++
				}
			}
			if missing != wantMissing || twice > 0 || len(got) != len(accepted)-wantMissing {
				t.Errorf("after the restart: %d of %d accepted messages without a record (want %d), %d with several, %d senders in the log",
					missing, len(accepted), wantMissing, twice, len(got))
			}
			metrics := g.journalMetrics(t)
			if want := fmt.Sprintf(`mxgate_msglog_dropped_total{reason="corrupt"} %d`, wantMissing); !strings.Contains(metrics, want+"\n") {
				t.Errorf("metrics lack %s", want)
			}
			if tc.redisDown {
				// Nothing reached Redis before the restart: all of it is a replay.
				if want := fmt.Sprintf("mxgate_msglog_replayed_total %d", len(accepted)-wantMissing); !strings.Contains(metrics, want+"\n") {
					t.Errorf("metrics lack %s", want)
				}
			}
			// A clean stop with the store up leaves nothing to replay.
			g.Proc.Stop(syscall.SIGTERM, 10*time.Second)
			if left, _ := filepath.Glob(filepath.Join(g.DataDir, "msglog-journal", "*.jnl")); len(left) != 0 {
				t.Errorf("journal files left after a clean stop: %v", left)
			}
		})
	}
}
