package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

// downEngine is an engine of the test's own that never answers, as a
// stopped daemon does (connection refused).
type downEngine struct {
	name  string
	pings atomic.Int32
}

func (e *downEngine) Name() string { return e.name }
func (e *downEngine) Scan(context.Context, *scanner.Message) (scanner.EngineResult, error) {
	return scanner.EngineResult{}, errors.Join(errors.New("connect"), syscall.ECONNREFUSED)
}
func (e *downEngine) Ping(context.Context) error {
	e.pings.Add(1)
	return errors.Join(errors.New("connect"), syscall.ECONNREFUSED)
}

// The seam: an address makes its engine through the maker of its name,
// with the policy's settings and the node's metrics; an engine this build
// has no maker for is refused, never ignored.
func TestBuildEngines(t *testing.T) {
	cfg := config.Default()
	var got []string
	mk := func(addr string, s scanner.EngineSettings, m *engines.Metrics) (scanner.Engine, error) {
		got = append(got, addr+" "+s.Timeout.String())
		return &downEngine{name: "x"}, nil
	}
	makers := map[string]engineMaker{scanner.EngineClamd: mk, scanner.EngineSpamd: mk}
	if e, err := buildEngines(cfg, cfg.Scanner.Policy, makers, nil, nil); err != nil || len(e) != 0 {
		t.Errorf("no addresses: %v, %v", e, err)
	}
	cfg.Scanner.Clamd, cfg.Scanner.Spamd = "tcp://127.0.0.1:3310", "tcp://127.0.0.1:783"
	p := cfg.Scanner.Policy
	p.Engines.Spamd.Timeout.Duration = 7 * time.Second
	if e, err := buildEngines(cfg, p, makers, nil, nil); err != nil || len(e) != 2 || strings.Join(got, ",") != "tcp://127.0.0.1:3310 30s,tcp://127.0.0.1:783 7s" {
		t.Errorf("made %q: %v", got, err)
	}
	cfg.Scanner.Rspamd = "http://127.0.0.1:11333"
	if _, err := buildEngines(cfg, p, makers, nil, nil); err == nil || !strings.Contains(err.Error(), "scanner.rspamd: this build has no rspamd client") {
		t.Errorf("rspamd without a client: %v", err)
	}
	for _, name := range []string{scanner.EngineClamd, scanner.EngineRspamd, scanner.EngineSpamd} {
		if engineMakers(scanner.Local{})[name] == nil {
			t.Errorf("this build has no %s client", name)
		}
	}
}

// A node whose clamd is down (on_error tempfail) says so on /healthz (503,
// naming the engine) and answers a message 451 4.7.0 "Content scanner
// unavailable", naming nothing else.
func TestNodeEngineDown(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	sink := testenv.StartSink(t)
	cfg := nodeConfig(t, sink.Addr, "")
	cfg.Scanner.Clamd = "tcp://127.0.0.1:1"
	clamd := &downEngine{name: scanner.EngineClamd}
	makers := map[string]engineMaker{scanner.EngineClamd: func(string, scanner.EngineSettings, *engines.Metrics) (scanner.Engine, error) {
		return clamd, nil
	}}
	n, err := buildWith(ctx, cfg, testLogger(t), makers)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + n.AdminAddr().String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
		if code != http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond) // until the first ping has run
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "clamd (connect)") {
		t.Errorf("/healthz %d %q", code, body)
	}

	c, w := openData(t, n.SMTPAddrs()[0].String())
	io.WriteString(w, "From: a@sender.test\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhello\r\n")
	err = w.Close()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) || se.Message != "Content scanner unavailable, try again later" {
		t.Errorf("DATA with clamd down: %v", err)
	}
	c.Quit()
}
