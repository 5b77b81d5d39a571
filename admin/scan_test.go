package admin

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/scanner"
)

// POST /api/v1/scan runs the message through a real scanner pool and
// answers the verdict with every symbol; bad requests get a clear error.
func TestScan(t *testing.T) {
	opts := scanner.DefaultOptions()
	opts.NodeID = "n1"
	pool, err := scanner.NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var seen scanner.Envelope
	f := newFixture(t, func(o *Options) {
		o.Scan = func(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
			seen = m.Env
			return pool.Scan(ctx, m)
		}
		o.MaxScanBytes = 4096
	})
	const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	for _, tt := range []struct {
		name, query, body string
		code              int
		action, symbol    string
		wantErr           string
	}{
		{"gtube", "?from=a@x.example&rcpt=b@example.org&rcpt=c@example.org&ip=192.0.2.7&helo=h.example", "Subject: t\r\n\r\n" + gtube + "\r\n", 200, "quarantine", "GTUBE", ""},
		{"clean", "", "Subject: hello\r\n\r\nhello\r\n", 200, "deliver", "", ""},
		{"empty", "", "", 400, "", "", "empty message"},
		{"too large", "", "Subject: x\r\n\r\n" + strings.Repeat("x", 5000), 413, "", "", "message larger than 4096 bytes"},
		{"bad ip", "?ip=999.1.1.1", "Subject: x\r\n\r\nx\r\n", 400, "", "", "ip: not an IP address"},
		{"too many rcpts", "?" + strings.Repeat("rcpt=a@b.example&", maxScanRcpts+1), "Subject: x\r\n\r\nx\r\n", 400, "", "", "rcpt: at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := f.req("POST", "/api/v1/scan"+tt.query, tt.body)
			if a.code != tt.code {
				t.Fatalf("status %d, want %d: %s", a.code, tt.code, a.body)
			}
			if tt.wantErr != "" {
				if msg := a.errMsg(t); !strings.Contains(msg, tt.wantErr) {
					t.Errorf("error %q, want it to say %q", msg, tt.wantErr)
				}
				return
			}
			var res ScanResult
			if err := json.Unmarshal([]byte(a.body), &res); err != nil {
				t.Fatal(err)
			}
			if res.Action != tt.action || res.Node != "n1" || res.Size != int64(len(tt.body)) {
				t.Errorf("verdict %+v, want action %s from n1, size %d", res, tt.action, len(tt.body))
			}
			found := tt.symbol == ""
			for _, s := range res.Symbols {
				found = found || s.Name == tt.symbol && s.Score > 0
			}
			if !found || len(res.Headers) == 0 {
				t.Errorf("symbols %+v (want %s), headers %q", res.Symbols, tt.symbol, res.Headers)
			}
			if tt.name == "gtube" && (seen.Sender != "a@x.example" || len(seen.Recipients) != 2 || seen.ClientIP.String() != "192.0.2.7" || seen.Helo != "h.example") {
				t.Errorf("envelope passed to the scanner: %+v", seen)
			}
		})
	}
	if a := newFixture(t, nil).req("POST", "/api/v1/scan", "Subject: x\r\n\r\nx\r\n"); a.code != 404 {
		t.Errorf("scan on a node without a scanner: %d, want 404", a.code)
	}
}

// Learning: a quarantined message is taught as spam (or ham) through
// Options.Learn, with its raw bytes; a release can teach ham after the
// delivery, and a failed lesson then is a warning, not a failed release.
func TestLearn(t *testing.T) {
	type lesson struct {
		spam bool
		raw  string
	}
	var lessons []lesson
	var failLearn error
	f := newFixture(t, func(o *Options) {
		o.Learn = func(_ context.Context, spam bool, raw []byte) error {
			if failLearn != nil {
				return failLearn
			}
			lessons = append(lessons, lesson{spam, string(raw)})
			return nil
		}
	})
	for _, tt := range []struct {
		name, method, path string
		fail               error
		code               int
		want               []lesson
		inBody             string
	}{
		{"spam", "POST", "/api/v1/quarantine/Q1/learn?as=spam", nil, 200, []lesson{{true, string(testRaw)}}, `"learned": "spam"`},
		{"ham", "POST", "/api/v1/quarantine/Q1/learn?as=ham", nil, 200, []lesson{{false, string(testRaw)}}, `"learned": "ham"`},
		{"bad as", "POST", "/api/v1/quarantine/Q1/learn?as=maybe", nil, 400, nil, "as: want spam or ham"},
		{"unknown id", "POST", "/api/v1/quarantine/nope/learn?as=spam", nil, 404, nil, "no quarantined message"},
		{"engine fails", "POST", "/api/v1/quarantine/Q1/learn?as=spam", errors.New("rspamd controller: connection refused"), 502, nil, "learn Q1 as spam: rspamd controller: connection refused"},
		{"release, learn ham", "POST", "/api/v1/quarantine/Q2/release?learn=ham", nil, 200, []lesson{{false, string(testRaw)}}, `"learned": "ham"`},
		{"release, lesson fails", "POST", "/api/v1/quarantine/Q3/release?learn=ham", errors.New("timeout"), 200, nil, "delivered, but learning it as ham failed: timeout"},
		{"release, bad learn", "POST", "/api/v1/quarantine/Q3/release?learn=spam", nil, 400, nil, "learn: want ham"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lessons, failLearn = nil, tt.fail
			a := f.req(tt.method, tt.path, "")
			if a.code != tt.code || !strings.Contains(a.body, tt.inBody) {
				t.Errorf("%d %s; want %d with %q", a.code, a.body, tt.code, tt.inBody)
			}
			if len(lessons) != len(tt.want) || len(tt.want) > 0 && lessons[0] != tt.want[0] {
				t.Errorf("lessons %+v, want %+v", lessons, tt.want)
			}
		})
	}
	if !slices.Equal(f.released, []string{"Q2", "Q3"}) {
		t.Errorf("released %v, want Q2 and Q3 (a failed lesson does not undo a delivery)", f.released)
	}
	noLearn := newFixture(t, nil)
	for _, path := range []string{"/api/v1/quarantine/Q1/learn?as=spam", "/api/v1/quarantine/Q1/release?learn=ham"} {
		if a := noLearn.req("POST", path, ""); a.code != 501 || !strings.Contains(a.body, "scanner.rspamd_controller") {
			t.Errorf("%s without a learning engine: %d %s", path, a.code, a.body)
		}
	}
	if len(noLearn.released) != 0 {
		t.Errorf("a release asking for a lesson no engine gives went ahead: %v", noLearn.released)
	}
}
