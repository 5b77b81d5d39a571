package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/engines"
)

// cannedEngine is an Engine of the tests' own: a canned result or error,
// optionally after block returns.
type cannedEngine struct {
	name    string
	res     EngineResult
	err     error
	pingErr error
	panics  bool
	// block, when set, runs before the answer; its error (ctx ended) is
	// the call's.
	block func(ctx context.Context) error
	calls atomic.Int32
	ended atomic.Int32 // calls that have returned
}

func (c *cannedEngine) Name() string { return c.name }

func (c *cannedEngine) Scan(ctx context.Context, _ *Message) (EngineResult, error) {
	c.calls.Add(1)
	defer c.ended.Add(1)
	if c.panics {
		panic("client bug")
	}
	if c.block != nil {
		if err := c.block(ctx); err != nil {
			return EngineResult{}, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return c.res, c.err
}

func (c *cannedEngine) Ping(context.Context) error { return c.pingErr }

// hang blocks until ctx ends.
func hang(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

var errDown = fmt.Errorf("connect to tcp://127.0.0.1:1: %w", syscall.ECONNREFUSED)

// call is an engine outcome under the default settings with on_error set.
func call(name string, onError Action, res EngineResult, err error) engineCall {
	s := DefaultPolicy().Engines.Settings(name)
	if onError != "" {
		s.OnError = onError
	}
	return engineCall{name: name, settings: s, res: res, err: err}
}

func timeoutErr(name string) error {
	return fmt.Errorf("%s: read reply: %w", name, context.DeadlineExceeded)
}

// Every rule of merge about the outside engines.
func TestMergeEngines(t *testing.T) {
	clean := result{}
	allowed := result{allow: true, symbols: []Symbol{{Name: symAllowlist}}}
	gtube := result{symbols: []Symbol{{Name: symGTUBE, Score: 20}}}
	spamish := result{symbols: []Symbol{{Name: "RULE_X", Score: 7}}}
	virus := EngineResult{Viruses: []string{"Eicar-Signature.UNOFFICIAL"}, Symbols: []Symbol{{Name: "CLAMD_VIRUS", Detail: "Eicar-Signature.UNOFFICIAL"}}}
	rsp := func(a Action, score float64) EngineResult {
		return EngineResult{Action: a, Score: score, Symbols: []Symbol{{Name: "RSPAMD_X", Score: score}}}
	}
	tests := []struct {
		name       string
		res        result
		calls      []engineCall
		weight     float64 // rspamd's score_weight when set; -1 = 0
		action     Action
		class      string
		reason     string // substring; "" = any
		score      float64
		symbols    []string // each present
		viruses    []string
		headers    []string // each among ExtraHeaders
		notHeaders []string // prefixes absent from ExtraHeaders
	}{
		{name: "engines clean", res: clean,
			calls:  []engineCall{call("clamd", "", EngineResult{}, nil), call("rspamd", "", rsp(ActionDeliver, 1), nil)},
			action: ActionDeliver, class: classClean, score: 1, symbols: []string{"RSPAMD_X"}, notHeaders: []string{hdrEngineFailed}},
		{name: "engine virus wins over everything", res: allowed,
			calls:  []engineCall{call("clamd", "", virus, nil), call("spamd", ActionTempfail, EngineResult{}, errDown), call("rspamd", "", rsp(ActionReject, 30), nil)},
			action: ActionQuarantine, class: classVirus, reason: reasonVirus, viruses: []string{"Eicar-Signature.UNOFFICIAL"}, symbols: []string{"CLAMD_VIRUS", "SPAMD_FAIL"}},
		{name: "clamd too large is a limit", res: allowed,
			calls:  []engineCall{call("clamd", ActionAccept(), EngineResult{}, fmt.Errorf("clamd: %w", engines.ErrTooLarge))},
			action: ActionQuarantine, class: classUnscannable, reason: "larger than the virus scanner (clamd) takes", symbols: []string{"CLAMD_TOO_LARGE"}},
		{name: "spamd too large is skipped and marked", res: clean,
			calls:  []engineCall{call("spamd", "", EngineResult{}, fmt.Errorf("spamd: %w", engines.ErrTooLarge))},
			action: ActionDeliver, class: classClean, symbols: []string{"SPAMD_TOO_LARGE"}, notHeaders: []string{hdrEngineFailed}},
		{name: "an engine's policy decision keeps its reason and class", res: clean,
			calls:  []engineCall{call("auth", "", EngineResult{Action: ActionReject, Class: "policy", Reason: "Message rejected: DMARC policy of example.com\r\n(DMARC_FAIL_REJECT)", Symbols: []Symbol{{Name: "DMARC_FAIL_REJECT", Score: 4}}}, nil)},
			action: ActionReject, class: classPolicy, reason: "Message rejected: DMARC policy of example.com  (DMARC_FAIL_REJECT)", score: 4, symbols: []string{"DMARC_FAIL_REJECT"}},
		{name: "on_error tempfail", res: clean,
			calls:  []engineCall{call("clamd", ActionTempfail, EngineResult{}, timeoutErr("clamd"))},
			action: ActionTempfail, class: classEngineFailed, reason: reasonEngineDown, symbols: []string{"CLAMD_FAIL"}},
		{name: "on_error quarantine", res: clean,
			calls:  []engineCall{call("clamd", ActionQuarantine, EngineResult{}, timeoutErr("clamd"))},
			action: ActionQuarantine, class: classEngineFailed, reason: "Content scanner unavailable: clamd (timeout)"},
		{name: "on_error accept is marked, never clean", res: clean,
			calls:  []engineCall{call("clamd", ActionAccept(), EngineResult{}, timeoutErr("clamd"))},
			action: ActionDeliver, class: classEngineFailed, symbols: []string{"CLAMD_FAIL"}, headers: []string{"X-Mxgate-Engine-Failed: clamd (timeout)"}},
		{name: "a reply not understood is an error", res: clean,
			calls:  []engineCall{call("rspamd", ActionAccept(), EngineResult{}, fmt.Errorf("rspamd: %w", engines.ErrProtocol))},
			action: ActionDeliver, class: classEngineFailed, headers: []string{"X-Mxgate-Engine-Failed: rspamd (protocol)"}},
		{name: "strictest on_error: quarantine over accept", res: clean,
			calls:  []engineCall{call("clamd", ActionAccept(), EngineResult{}, errDown), call("spamd", ActionQuarantine, EngineResult{}, timeoutErr("spamd"))},
			action: ActionQuarantine, class: classEngineFailed, reason: "clamd (connect), spamd (timeout)"},
		{name: "strictest on_error: tempfail over quarantine", res: clean,
			calls:  []engineCall{call("rspamd", ActionQuarantine, EngineResult{}, errDown), call("spamd", ActionTempfail, EngineResult{}, errDown)},
			action: ActionTempfail, class: classEngineFailed, reason: reasonEngineDown},
		{name: "accept keeps a spam verdict", res: spamish,
			calls:  []engineCall{call("spamd", ActionAccept(), EngineResult{}, errDown)},
			action: ActionQuarantine, class: classSpam, headers: []string{"X-Mxgate-Engine-Failed: spamd (connect)"}},
		{name: "a reject beats an engine's tempfail", res: gtube,
			calls:  []engineCall{call("clamd", ActionTempfail, EngineResult{}, errDown)},
			action: ActionReject, class: classSpam, reason: reasonSpam},
		{name: "allowlisted: on_error still applies", res: allowed,
			calls:  []engineCall{call("clamd", ActionTempfail, EngineResult{}, errDown)},
			action: ActionTempfail, class: classEngineFailed},
		{name: "engine scores add", res: result{symbols: []Symbol{{Name: "RULE_X", Score: 2}}},
			calls:  []engineCall{call("rspamd", "", rsp("", 4.5), nil)},
			action: ActionQuarantine, class: classSpam, score: 6.5},
		{name: "score_weight", res: clean, weight: 2,
			calls:  []engineCall{call("rspamd", "", rsp("", 4), nil)},
			action: ActionQuarantine, class: classSpam, score: 8},
		{name: "score_weight 0: shown, not counted", res: clean, weight: -1,
			calls:  []engineCall{call("rspamd", "", rsp("", 1000), nil)},
			action: ActionDeliver, class: classClean, symbols: []string{"RSPAMD_X"}},
		{name: "engine reject", res: clean,
			calls:  []engineCall{call("rspamd", "", rsp(ActionReject, 1), nil)},
			action: ActionReject, class: classSpam, reason: reasonSpam},
		{name: "engine soft reject", res: clean,
			calls:  []engineCall{call("rspamd", "", rsp(ActionTempfail, 1), nil)},
			action: ActionTempfail, class: classSpam, reason: reasonDeferred},
		{name: "engine quarantine", res: clean,
			calls:  []engineCall{call("rspamd", "", rsp(ActionQuarantine, 1), nil)},
			action: ActionQuarantine, class: classSpam},
		{name: "mxgate's reject beats the engine's deliver", res: gtube,
			calls:  []engineCall{call("rspamd", "", rsp(ActionDeliver, 0), nil)},
			action: ActionReject, class: classSpam},
		{name: "allowlist waives the engine's reject and scores", res: allowed,
			calls:  []engineCall{call("rspamd", "", rsp(ActionReject, 50), nil)},
			action: ActionDeliver, class: classClean, score: 50},
		{name: "engine headers, subject, sanitised", res: clean,
			calls: []engineCall{call("rspamd", "", EngineResult{Action: ActionDeliver,
				Headers: []string{"X-Spam: Yes", "X-Mxgate-Verdict: deliver (clean)", "Bad Name: x", "X-Inject: a\r\nBcc: victim@example.org", "novalue"},
				Subject: "*** SPAM *** hi\r\nX-Evil: 1"}, nil)},
			action: ActionDeliver, class: classClean,
			headers:    []string{"X-Spam: Yes", "X-Inject: a  Bcc: victim@example.org", hdrSubjectRewrite + ": *** SPAM *** hi  X-Evil: 1"},
			notHeaders: []string{"X-Mxgate-Verdict", "Bad Name", "novalue", "Bcc:", "X-Evil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			o.NodeID = "n1"
			if tt.weight != 0 {
				for i := range tt.calls {
					if tt.calls[i].name == "rspamd" {
						tt.calls[i].settings.ScoreWeight = max(tt.weight, 0)
					}
				}
			}
			v := merge(&o, []result{tt.res}, tt.calls)
			if v.Action != tt.action || v.Class != tt.class {
				t.Errorf("verdict %s (%s), want %s (%s): %s", v.Action, v.Class, tt.action, tt.class, describe(v))
			}
			if tt.reason != "" && !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", v.Reason, tt.reason)
			}
			if tt.score != 0 && fmt.Sprintf("%.4f", v.Score) != fmt.Sprintf("%.4f", tt.score) {
				t.Errorf("score %g, want %g", v.Score, tt.score)
			}
			for _, s := range tt.symbols {
				if !hasSymbol(v, s) {
					t.Errorf("no symbol %s: %s", s, describe(v))
				}
			}
			if tt.viruses != nil && !slices.Equal(v.Viruses, tt.viruses) {
				t.Errorf("viruses %q, want %q", v.Viruses, tt.viruses)
			}
			for _, h := range tt.headers {
				if !slices.Contains(v.ExtraHeaders, h) {
					t.Errorf("header %q not among %q", h, v.ExtraHeaders)
				}
			}
			for _, p := range tt.notHeaders {
				for _, h := range v.ExtraHeaders {
					if strings.HasPrefix(h, p) || strings.Contains(h, "\n") {
						t.Errorf("header %q should not be there", h)
					}
				}
			}
			if v.Action == ActionTempfail && strings.Contains(v.Reason, "clamd") || strings.Contains(v.Reason, "127.0.0.1") {
				t.Errorf("reason %q tells the client internals", v.Reason)
			}
		})
	}
}

// ActionAccept is on_error's accept, for the table.
func ActionAccept() Action { return actionAccept }

// The FAIL symbol scores 0 and says the kind of error.
func TestMergeFailSymbol(t *testing.T) {
	o := DefaultOptions()
	v := merge(&o, nil, []engineCall{call("clamd", ActionAccept(), EngineResult{}, timeoutErr("clamd"))})
	i := slices.IndexFunc(v.Symbols, func(s Symbol) bool { return s.Name == "CLAMD_FAIL" })
	if i < 0 || v.Symbols[i].Score != 0 || v.Symbols[i].Detail != engines.KindTimeout {
		t.Errorf("symbols %+v", v.Symbols)
	}
	h := v.Headers()
	if !slices.Contains(h, "X-Mxgate-Engine-Failed: clamd (timeout)") || !slices.Contains(h, "X-Mxgate-Verdict: deliver (engine_failed)") {
		t.Errorf("delivered headers %q", h)
	}
}

// A peer's verdict may carry anything in ExtraHeaders: Headers writes
// only header lines, each one line.
func TestHeadersExtraFromPeer(t *testing.T) {
	v := Verdict{Action: ActionDeliver, ExtraHeaders: []string{"X-Ok: 1", "X-Bad: a\r\nBcc: x", ": empty", "no colon", strings.Repeat("X", 2000) + ": v"}}
	h := v.Headers()[4:]
	if len(h) != 3 || h[0] != "X-Ok: 1" || h[1] != "X-Bad: a  Bcc: x" || len(h[2]) != maxExtraHeaderLen {
		t.Errorf("extra headers written %q", h)
	}
}

func enginePool(t *testing.T, timeout time.Duration, policy func(*Engines), engs ...Engine) *Pool {
	t.Helper()
	o := DefaultOptions()
	o.NodeID, o.Workers = "n1", 2
	o.Timeout.Duration = timeout
	if policy != nil {
		policy(&o.Policy.Engines)
	}
	o.Engines = engs
	p, err := NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// The engines of one scan run at the same time: each of these two waits
// for the other to have started, which only concurrent calls get past.
func TestEnginesRunConcurrently(t *testing.T) {
	var started sync.WaitGroup
	started.Add(2)
	both := make(chan struct{})
	go func() { started.Wait(); close(both) }()
	meet := func(ctx context.Context) error {
		started.Done()
		select {
		case <-both:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a := &cannedEngine{name: "clamd", block: meet}
	b := &cannedEngine{name: "spamd", block: meet, res: EngineResult{Symbols: []Symbol{{Name: "SPAMD_X", Score: 1}}}}
	p := enginePool(t, time.Minute, nil, a, b)
	v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
	if err != nil {
		t.Fatal(err)
	}
	if v.Action != ActionDeliver || v.Class != classClean || !hasSymbol(v, "SPAMD_X") || hasSymbol(v, "CLAMD_FAIL") {
		t.Errorf("verdict %s", describe(v))
	}
}

// An engine that hangs is cut off by its own timeout and gets its
// on_error; scanner.timeout ends the whole scan; either way no call is
// still running when Scan returns.
func TestEngineTimeouts(t *testing.T) {
	t.Run("engine timeout", func(t *testing.T) {
		e := &cannedEngine{name: "clamd", block: hang}
		p := enginePool(t, time.Minute, func(s *Engines) { s.Clamd.Timeout.Duration = 20 * time.Millisecond }, e)
		v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
		if err != nil {
			t.Fatal(err)
		}
		if v.Action != ActionTempfail || !slices.ContainsFunc(v.Symbols, func(s Symbol) bool { return s.Name == "CLAMD_FAIL" && s.Detail == "timeout" }) {
			t.Errorf("verdict %s", describe(v))
		}
		if e.ended.Load() != e.calls.Load() {
			t.Error("an engine call outlived the scan")
		}
		if down := p.EnginesDown(); !slices.Equal(down, []string{"clamd (timeout)"}) {
			t.Errorf("EnginesDown %q", down)
		}
	})
	t.Run("scanner timeout", func(t *testing.T) {
		e := &cannedEngine{name: "rspamd", block: hang}
		p := enginePool(t, 20*time.Millisecond, nil, e)
		_, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want the scan's deadline", err)
		}
		if e.ended.Load() != e.calls.Load() || e.calls.Load() != 1 {
			t.Errorf("calls %d, ended %d", e.calls.Load(), e.ended.Load())
		}
		if down := p.EnginesDown(); len(down) != 0 {
			t.Errorf("the scan's own end marked %q down", down)
		}
	})
	t.Run("caller gone", func(t *testing.T) {
		e := &cannedEngine{name: "spamd", block: hang}
		p := enginePool(t, time.Minute, nil, e)
		ctx, cancel := context.WithCancel(context.Background())
		e.block = func(c context.Context) error { cancel(); return hang(c) }
		if _, err := p.Scan(ctx, newMsg(textMsg("hello"))); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
		if e.ended.Load() != 1 {
			t.Error("the engine call outlived the scan")
		}
	})
}

// A client that panics costs the message its on_error, not the process.
func TestEnginePanic(t *testing.T) {
	p := enginePool(t, time.Minute, func(s *Engines) { s.Spamd.OnError = actionAccept }, &cannedEngine{name: "spamd", panics: true})
	v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
	if err != nil || v.Class != classEngineFailed || !hasSymbol(v, "SPAMD_FAIL") {
		t.Errorf("verdict %s, %v", describe(v), err)
	}
}

// Reconfigure swaps the engines for new scans; a scan in flight finishes
// with those it started with.
func TestReconfigureEngines(t *testing.T) {
	release := make(chan struct{})
	inOld := make(chan struct{})
	old := &cannedEngine{name: "rspamd", res: EngineResult{Symbols: []Symbol{{Name: "RSPAMD_OLD"}}},
		block: func(ctx context.Context) error { close(inOld); <-release; return nil }}
	neu := &cannedEngine{name: "rspamd", res: EngineResult{Symbols: []Symbol{{Name: "RSPAMD_NEW"}}}}
	p := enginePool(t, time.Minute, nil, old)
	done := make(chan Verdict)
	go func() {
		v, _ := p.Scan(context.Background(), newMsg(textMsg("hello")))
		done <- v
	}()
	<-inOld
	o := DefaultOptions()
	o.Engines = []Engine{neu}
	if err := p.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	close(release)
	if v := <-done; !hasSymbol(v, "RSPAMD_OLD") || hasSymbol(v, "RSPAMD_NEW") {
		t.Errorf("in-flight scan: %s", describe(v))
	}
	v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
	if err != nil || !hasSymbol(v, "RSPAMD_NEW") {
		t.Errorf("new scan: %s, %v", describe(v), err)
	}
}

func TestEnginesOptionsChecked(t *testing.T) {
	o := DefaultOptions()
	o.Engines = []Engine{&cannedEngine{name: "clamd"}, nil, &cannedEngine{name: "clamd"}}
	_, err := NewPool(o)
	if err == nil || !strings.Contains(err.Error(), "engine 1 is nil") || !strings.Contains(err.Error(), "engine clamd given twice") {
		t.Errorf("err %v", err)
	}
}

// Health: a failed scan marks the engine down, a good ping or scan brings
// it back; an engine whose on_error is accept never makes the node
// unhealthy.
func TestEngineHealth(t *testing.T) {
	clamd := &cannedEngine{name: "clamd", err: errDown, pingErr: errDown}
	spamd := &cannedEngine{name: "spamd", err: errDown, pingErr: errDown}
	p := enginePool(t, time.Minute, func(s *Engines) { s.Spamd.OnError = actionAccept }, clamd, spamd)
	if down := p.EnginesDown(); len(down) != 0 {
		t.Errorf("down before any call: %q", down)
	}
	p.PingEngines(context.Background())
	if down := p.EnginesDown(); !slices.Equal(down, []string{"clamd (connect)"}) {
		t.Errorf("after a failed ping: %q", down)
	}
	// The status lists every engine, the one with on_error accept too.
	if got, want := p.Engines(), []EngineState{{Name: "clamd", Down: "connect", OnError: "tempfail"}, {Name: "spamd", Down: "connect", OnError: "accept"}}; !slices.Equal(got, want) {
		t.Errorf("Engines() = %+v, want %+v", got, want)
	}
	if w, q := p.Size(); w != 2 || q != DefaultLocal().Queue { // enginePool's workers
		t.Errorf("Size() = %d, %d", w, q)
	}
	clamd.pingErr = nil
	p.PingEngines(context.Background())
	if down := p.EnginesDown(); len(down) != 0 {
		t.Errorf("after a good ping: %q", down)
	}
	if _, err := p.Scan(context.Background(), newMsg(textMsg("hello"))); err != nil {
		t.Fatal(err)
	}
	if down := p.EnginesDown(); !slices.Equal(down, []string{"clamd (connect)"}) {
		t.Errorf("after a failed scan: %q", down)
	}
	clamd.err = fmt.Errorf("clamd: %w", engines.ErrTooLarge)
	if _, err := p.Scan(context.Background(), newMsg(textMsg("hello"))); err != nil {
		t.Fatal(err)
	}
	if down := p.EnginesDown(); len(down) != 1 {
		t.Errorf("a message too large changed the health: %q", down)
	}
	clamd.err = nil
	if _, err := p.Scan(context.Background(), newMsg(textMsg("hello"))); err != nil {
		t.Fatal(err)
	}
	if down := p.EnginesDown(); len(down) != 0 {
		t.Errorf("after a good scan: %q", down)
	}
}

// The dispatcher sends everything to a healthy member while there is one;
// with only unhealthy ones it still scans there, and on_error applies.
func TestDispatcherPrefersHealthy(t *testing.T) {
	healthy, sick := &fakeWorker{name: "a"}, &fakeWorker{name: "b"}
	d := NewDispatcher(Member{Name: "b", Weight: 10, Worker: sick, Unhealthy: true}, Member{Name: "a", Weight: 1, Worker: healthy})
	for range 20 {
		if _, err := d.Scan(context.Background(), newMsg(textMsg("x"))); err != nil {
			t.Fatal(err)
		}
	}
	if healthy.calls != 20 || sick.calls != 0 {
		t.Errorf("healthy %d, unhealthy %d scans", healthy.calls, sick.calls)
	}
	// The healthy one fails: the unhealthy one is the fallback.
	healthy.err = errors.New("gone")
	if v, err := d.Scan(context.Background(), newMsg(textMsg("x"))); err != nil || v.Node != "b" {
		t.Errorf("fallback: %+v, %v", v, err)
	}

	// A member whose engine fails (not yet unhealthy in the membership)
	// costs nobody a 451 while another can scan; with none, its on_error
	// verdict stands.
	pool := enginePool(t, time.Minute, nil, &cannedEngine{name: "clamd", err: errDown})
	good := &fakeWorker{name: "n2"}
	d = NewDispatcher(Member{Name: "n1", Weight: 100, Worker: pool}, Member{Name: "n2", Weight: 1, Worker: good})
	for range 5 {
		if v, err := d.Scan(context.Background(), newMsg(textMsg("x"))); err != nil || v.Node != "n2" || v.Action != ActionDeliver {
			t.Errorf("engine failed on n1, n2 answers: %s, %v", describe(v), err)
		}
	}
	d = NewDispatcher(Member{Name: "n1", Weight: 1, Worker: pool, Unhealthy: true})
	v, err := d.Scan(context.Background(), newMsg(textMsg("x")))
	if err != nil || v.Action != ActionTempfail || v.Reason != reasonEngineDown {
		t.Errorf("only unhealthy: %s, %v", describe(v), err)
	}
}
