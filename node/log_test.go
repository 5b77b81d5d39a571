package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/testenv"
)

// uniqueKeys decodes one JSON value from d and fails on an object that
// has a key twice, at any depth. encoding/json keeps the last of
// duplicate keys without a word, so the tokens are read one by one.
func uniqueKeys(d *json.Decoder, path string) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice in %s", key, path)
			}
			seen[key] = true
			if err := uniqueKeys(d, path+"."+key); err != nil {
				return err
			}
		}
		_, err = d.Token() // }
	case json.Delim('['):
		for i := 0; d.More(); i++ {
			if err := uniqueKeys(d, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err = d.Token() // ]
	}
	return err
}

func TestUniqueKeys(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1,"b":2}]}`, true},
		{`{"a":1,"a":2}`, false},
		{`{"a":{"b":1,"b":1}}`, false},
		{`{"a":[{"b":1,"b":1}]}`, false},
	} {
		err := uniqueKeys(json.NewDecoder(strings.NewReader(tc.in)), "$")
		if (err == nil) != tc.ok {
			t.Errorf("uniqueKeys(%s) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

// durationish are the attribute keys that hold a duration; each must be a
// string such as "1.5s" in a JSON line.
var durationish = []string{"duration", "timeout", "interval", "elapsed", "waited", "retry_in", "for", "delay", "grace"}

// checkLogLines fails on a line that is not one JSON object with unique
// keys, or that writes a duration as a number.
func checkLogLines(t *testing.T, logs string) {
	t.Helper()
	n := 0
	for line := range strings.Lines(logs) {
		n++
		if err := uniqueKeys(json.NewDecoder(strings.NewReader(line)), "$"); err != nil {
			t.Errorf("log line %d: %v\n%s", n, err, line)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %d is not a JSON object: %v\n%s", n, err, line)
			continue
		}
		for k, v := range m {
			for _, d := range durationish {
				if k != d && !strings.HasSuffix(k, "_"+d) && !strings.HasPrefix(k, d+"_") {
					continue
				}
				s, ok := v.(string)
				if _, err := time.ParseDuration(s); !ok || err != nil {
					t.Errorf("log line %d: %s = %v (%T), want a duration string such as \"1.5s\"\n%s", n, k, v, v, line)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d log lines: the node said too little to check anything\n%s", n, logs)
	}
}

// A node logging JSON, run through start, clean mail, a quarantined and
// released message, a refused transaction, a reload and a stop: every
// line is one object without a repeated key, durations are strings, the
// refused transaction lists its recipients, and nothing speaks of a node
// file when the node has none.
func TestJSONLogLines(t *testing.T) {
	ctx := context.Background()
	logs := &testenv.SyncBuffer{}
	sink := testenv.StartSink(t)
	cfg := nodeConfig(t, sink.Addr, "")
	n, err := Build(ctx, cfg, NewLogger(logs, "json", slog.LevelDebug))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := n.Start(ctx); err != nil {
		n.Stop(ctx)
		t.Fatalf("Start: %v", err)
	}
	defer n.Stop(ctx)
	smtpAddr := n.SMTPAddrs()[0].String()
	ac, err := admin.NewClient("http://"+n.AdminAddr().String(), "")
	if err != nil {
		t.Fatal(err)
	}

	send(t, smtpAddr, "clean", "hello")
	_, qid, _ := strings.Cut(send(t, smtpAddr, "spam", gtube), "queued as ")
	if _, err := ac.QuarantineRelease(ctx, qid, admin.ReleaseOptions{}); err != nil {
		t.Fatalf("release %q: %v", qid, err)
	}
	if _, err := ac.ListAdd(ctx, admin.ListRequest{Kind: lists.Block, Value: "@spam.example", Comment: "ticket 42"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n.lists.Set().Len() == 1 })
	c, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Hello("client.test")
	c.Mail("x@spam.example", nil)
	var se *smtp.SMTPError
	if err := c.Rcpt("b@example.org", nil); !errors.As(err, &se) || !strings.Contains(se.Message, "list entry block @spam.example") {
		t.Errorf("blocked RCPT: %v", err)
	}
	c.Quit()
	edited := cfg
	edited.Scanner.Thresholds.Quarantine = 7
	n.Reload(ctx, edited)
	n.Stop(ctx)

	out := logs.String()
	checkLogLines(t, out)
	if strings.Contains(out, "node file") {
		t.Errorf("a node without a node file speaks of one:\n%s", out)
	}
	var refused map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "message" && m["action"] == "refused" {
			refused = m
		}
	}
	if r, _ := refused["refused"].([]any); len(r) != 1 || !strings.HasPrefix(fmt.Sprint(r[0]), "<b@example.org> 550 5.7.1 Sender blocked by list entry block @spam.example") {
		t.Errorf("refused transaction's line: %v", refused)
	}
	if d, _ := refused["duration"].(string); !strings.HasSuffix(d, "s") {
		t.Errorf("refused transaction's duration = %v, want a duration string", refused["duration"])
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The text format writes durations the same way.
func TestTextLogDurations(t *testing.T) {
	var b bytes.Buffer
	NewLogger(&b, "text", slog.LevelInfo).Info("x", "duration", 1500*time.Millisecond)
	NewLogger(&b, "json", slog.LevelInfo).Info("x", "duration", 1500*time.Millisecond)
	if got := b.String(); !strings.Contains(got, "duration=1.5s") || !strings.Contains(got, `"duration":"1.5s"`) {
		t.Errorf("logged %q", got)
	}
}

// reservedKeys are the keys slog's handlers write themselves: an attribute
// with one of them makes a JSON line with that key twice.
var reservedKeys = map[string]bool{slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, slog.SourceKey: true}

// Every slog call in the module, read from its source: no key twice in one
// call, none of the handler's own keys. What a call builds at run time is
// what TestJSONLogLines checks.
func TestLogCallsHaveUniqueKeys(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(node ast.Node) bool {
			c, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			kv := slogArgs(c)
			if kv == nil {
				return true
			}
			calls++
			seen := map[string]bool{}
			for i := 0; i < len(kv); i++ {
				key, pair := attrKey(kv[i])
				if pair {
					i++ // the value
				}
				if key == "" {
					continue
				}
				pos := fset.Position(c.Pos())
				if seen[key] {
					t.Errorf("%s:%d: key %q twice in one log call", strings.TrimPrefix(pos.Filename, root+"/"), pos.Line, key)
				}
				if reservedKeys[key] {
					t.Errorf("%s:%d: key %q is the handler's own", strings.TrimPrefix(pos.Filename, root+"/"), pos.Line, key)
				}
				seen[key] = true
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 50 {
		t.Errorf("found %d log calls: the scan is looking at the wrong thing", calls)
	}
}

// slogArgs are the key-value arguments of a call that looks like a slog
// logging method (by name and argument shape), or nil.
func slogArgs(c *ast.CallExpr) []ast.Expr {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	skip := 0
	switch sel.Sel.Name {
	case "Debug", "Info", "Warn", "Error":
		skip = 1
	case "DebugContext", "InfoContext", "WarnContext", "ErrorContext":
		skip = 2
	case "Log":
		skip = 3
	default:
		return nil
	}
	if len(c.Args) <= skip {
		return nil
	}
	// The message: a string literal or an expression that builds one.
	if _, ok := c.Args[skip-1].(*ast.BasicLit); !ok {
		if _, ok := c.Args[skip-1].(*ast.BinaryExpr); !ok {
			return nil
		}
	}
	if c.Ellipsis.IsValid() {
		return c.Args[skip : len(c.Args)-1]
	}
	return c.Args[skip:]
}

// attrKey is the literal key of the argument at a key position ("" when it
// is not a literal) and whether a value argument follows it (false for a
// slog.Attr).
func attrKey(e ast.Expr) (key string, pair bool) {
	if call, ok := e.(*ast.CallExpr); ok {
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "slog" && len(call.Args) > 0 {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					k, _ := strconv.Unquote(lit.Value)
					return k, false
				}
				return "", false
			}
		}
	}
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		k, _ := strconv.Unquote(lit.Value)
		return k, true
	}
	return "", true
}
