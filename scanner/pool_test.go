package scanner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockCheck holds a scan until released or cancelled.
type blockCheck struct {
	started chan struct{}
	release chan struct{}
}

func (blockCheck) Name() string { return "block" }

func (c blockCheck) Check(ctx context.Context, _ *parsed) (result, error) {
	c.started <- struct{}{}
	select {
	case <-c.release:
		return result{}, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

type panicCheck struct{}

func (panicCheck) Name() string { return "panic" }

func (panicCheck) Check(_ context.Context, p *parsed) (result, error) {
	if strings.Contains(p.msg.ID, "boom") {
		panic("check bug")
	}
	return result{}, nil
}

func quietOptions() Options {
	o := DefaultOptions()
	o.NodeID = "n1"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func poolWith(t *testing.T, o Options, extra ...check) *Pool {
	t.Helper()
	e := testEngine(t, o)
	e.checks = append(e.checks, extra...)
	p := newPool(e)
	t.Cleanup(p.Close)
	return p
}

// waitQueued spins until the pool reports n queued scans (no clock: the
// test cannot pass or fail by timing).
func waitQueued(p *Pool, n int) {
	for {
		if _, q := p.Stats(); q == n {
			return
		}
		runtime.Gosched()
	}
}

func TestPoolOverload(t *testing.T) {
	o := quietOptions()
	o.Workers, o.Queue = 1, 1
	bc := blockCheck{started: make(chan struct{}, 2), release: make(chan struct{})}
	p := poolWith(t, o, bc)
	msg := newMsg(textMsg("hello"))

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Scan(context.Background(), msg)
		}()
		if i == 0 {
			<-bc.started // the only worker is busy
		} else {
			waitQueued(p, 1) // the only queue place is taken
		}
	}
	if busy, queued := p.Stats(); busy != 1 || queued != 1 {
		t.Errorf("stats %d busy %d queued", busy, queued)
	}
	if _, err := p.Scan(context.Background(), msg); !errors.Is(err, ErrOverloaded) {
		t.Errorf("third scan: %v, want ErrOverloaded", err)
	}
	close(bc.release)
	<-bc.started
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("scan %d: %v", i, err)
		}
	}
	// Places are given back: the pool takes work again.
	if _, err := p.Scan(context.Background(), msg); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestPoolZeroQueue(t *testing.T) {
	o := quietOptions()
	o.Workers, o.Queue = 2, 0
	bc := blockCheck{started: make(chan struct{}, 2), release: make(chan struct{})}
	p := poolWith(t, o, bc)
	msg := newMsg(textMsg("hello"))
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Scan(context.Background(), msg)
		}()
		<-bc.started
	}
	if _, err := p.Scan(context.Background(), msg); !errors.Is(err, ErrOverloaded) {
		t.Errorf("got %v, want ErrOverloaded", err)
	}
	close(bc.release)
	wg.Wait()
}

func TestPoolCallerCancels(t *testing.T) {
	o := quietOptions()
	o.Workers = 1
	bc := blockCheck{started: make(chan struct{}, 1), release: make(chan struct{})}
	p := poolWith(t, o, bc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.Scan(ctx, newMsg(textMsg("x")))
		done <- err
	}()
	<-bc.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestPoolTimeout(t *testing.T) {
	o := quietOptions()
	o.Workers, o.Timeout.Duration = 1, time.Nanosecond
	bc := blockCheck{started: make(chan struct{}, 1), release: make(chan struct{})}
	p := poolWith(t, o, bc)
	_, err := p.Scan(context.Background(), newMsg(textMsg("x")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
}

func TestPoolPanicRecovered(t *testing.T) {
	o := quietOptions()
	o.Workers = 1
	p := poolWith(t, o, panicCheck{})
	m := newMsg(textMsg("x"))
	m.ID = "boom-1"
	_, err := p.Scan(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "panic: check bug") {
		t.Errorf("got %v", err)
	}
	// The one worker survived.
	m2 := newMsg(textMsg(gtubeText))
	v, err := p.Scan(context.Background(), m2)
	if err != nil || !hasSymbol(v, symGTUBE) {
		t.Errorf("after panic: %v %s", err, describe(v))
	}
}

func TestPoolClose(t *testing.T) {
	before := runtime.NumGoroutine()
	o := quietOptions()
	o.Workers, o.Queue = 4, 4
	bc := blockCheck{started: make(chan struct{}, 8), release: make(chan struct{})}
	e := testEngine(t, o)
	e.checks = append(e.checks, bc)
	p := newPool(e)

	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := p.Scan(context.Background(), newMsg(textMsg("x")))
			errs <- err
		}()
	}
	for range 4 {
		<-bc.started
	}
	waitQueued(p, 4)
	p.Close() // must cancel the running scans, fail the queued ones and wait
	p.Close()
	for range 8 {
		if err := <-errs; !errors.Is(err, errClosed) {
			t.Errorf("scan during close: %v", err)
		}
	}
	if _, err := p.Scan(context.Background(), newMsg(textMsg("x"))); !errors.Is(err, errClosed) {
		t.Errorf("scan after close: %v", err)
	}
	// The workers are gone (the 8 callers above have returned too). The
	// wait is in time, not in yields: on a loaded machine a goroutine that
	// is already ending may not run for a while.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 5s after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewPoolOptionErrors(t *testing.T) {
	o := DefaultOptions()
	o.Workers, o.Queue, o.VirusAction = -1, -2, "drop"
	o.Attachments.BlockedExtensions = []string{".exe", "a.b"}
	o.Attachments.BlockedTypes = []string{"application"}
	_, err := NewPool(o)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"workers: must be 0 (number of CPUs) or more, got -1", "queue: must be 0 or more, got -2", `virus_action: "drop"`, `"a.b" is not an extension`, `"application" is not a MIME type`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestPoolScans(t *testing.T) {
	p, err := NewPool(quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var w Worker = p
	v, err := w.Scan(context.Background(), newMsg(textMsg(eicarText)))
	if err != nil || v.Class != classVirus || v.Node != "n1" {
		t.Errorf("%v %s", err, describe(v))
	}
	if _, err := p.Scan(context.Background(), &Message{ID: "nobody"}); err == nil {
		t.Error("message without body scanned")
	}
}

func TestPoolReconfigure(t *testing.T) {
	tests := []struct {
		name    string
		change  func(o *Options)
		msg     string
		wantErr string
		check   func(t *testing.T, before, after Verdict)
	}{
		{
			name:   "rule added",
			change: func(o *Options) { o.Rules = []string{`SUBJ_Q header Subject =~ /quarterly/i 7`} },
			msg:    textMsg("hello"),
			check: func(t *testing.T, before, after Verdict) {
				if hasSymbol(before, "SUBJ_Q") || !hasSymbol(after, "SUBJ_Q") || after.Action != ActionQuarantine {
					t.Errorf("before %s; after %s", describe(before), describe(after))
				}
			},
		},
		{
			name:   "thresholds",
			change: func(o *Options) { o.Thresholds.Quarantine, o.Thresholds.Reject = 100, 200 },
			msg:    textMsg(gtubeText),
			check: func(t *testing.T, before, after Verdict) {
				if before.Action == ActionDeliver || after.Action != ActionDeliver {
					t.Errorf("before %s; after %s", describe(before), describe(after))
				}
			},
		},
		{
			name:   "virus action",
			change: func(o *Options) { o.VirusAction = ActionReject },
			msg:    textMsg(eicarText),
			check: func(t *testing.T, before, after Verdict) {
				if before.Action != ActionQuarantine || after.Action != ActionReject {
					t.Errorf("before %s; after %s", describe(before), describe(after))
				}
			},
		},
		{
			name: "attachment policy",
			change: func(o *Options) {
				o.Attachments.BlockedExtensions = []string{"iso"}
				o.Attachments.BlockedTypes = []string{"application/x-iso9660-image"}
			},
			msg: multipartMsg(textPart("see attached"), b64Part("application/octet-stream", `attachment; filename="run.bat"`, []byte("echo hi"))),
			check: func(t *testing.T, before, after Verdict) {
				if before.Class != classBanned || after.Class == classBanned {
					t.Errorf("before %s; after %s", describe(before), describe(after))
				}
			},
		},
		{
			name:    "invalid options keep the engine",
			change:  func(o *Options) { o.Rules = []string{"not a rule"}; o.VirusAction = "drop" },
			msg:     textMsg(eicarText),
			wantErr: `virus_action: "drop"`,
			check: func(t *testing.T, before, after Verdict) {
				if after.Action != before.Action || after.Class != classVirus {
					t.Errorf("before %s; after %s", describe(before), describe(after))
				}
			},
		},
		{
			name:   "workers and queue ignored, node id kept",
			change: func(o *Options) { o.Workers, o.Queue, o.NodeID = 64, 0, "" },
			msg:    textMsg("hello"),
			check: func(t *testing.T, before, after Verdict) {
				if after.Node != "n1" {
					t.Errorf("node %q", after.Node)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := quietOptions()
			o.Workers, o.Queue = 2, 3
			p, err := NewPool(o)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			before, err := p.Scan(context.Background(), newMsg(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			n := o
			tt.change(&n)
			err = p.Reconfigure(n)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Reconfigure: %v, want error %q", err, tt.wantErr)
			}
			after, err := p.Scan(context.Background(), newMsg(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, before, after)
			if cap(p.turns) != 2 || p.queue != 3 {
				t.Errorf("workers %d queue %d after Reconfigure, want 2 and 3", cap(p.turns), p.queue)
			}
		})
	}
}

// A scan that started before Reconfigure ends with the engine it started
// with; scans after it use the new one.
func TestPoolReconfigureRunningScanKeepsEngine(t *testing.T) {
	o := quietOptions()
	o.Workers = 2
	bc := blockCheck{started: make(chan struct{}, 1), release: make(chan struct{})}
	p := poolWith(t, o, bc)
	type res struct {
		v   Verdict
		err error
	}
	done := make(chan res)
	go func() {
		v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
		done <- res{v, err}
	}()
	<-bc.started

	n := o
	n.Rules = []string{`SUBJ_Q header Subject =~ /quarterly/i 1`}
	if err := p.Reconfigure(n); err != nil {
		t.Fatal(err)
	}
	// The new engine has no block check: this scan finishes while the
	// first one is still held.
	v, err := p.Scan(context.Background(), newMsg(textMsg("hello")))
	if err != nil || !hasSymbol(v, "SUBJ_Q") {
		t.Errorf("new scan: %v %s", err, describe(v))
	}
	close(bc.release)
	r := <-done
	if r.err != nil || hasSymbol(r.v, "SUBJ_Q") {
		t.Errorf("running scan: %v %s", r.err, describe(r.v))
	}
}

func TestPoolReconfigureConcurrent(t *testing.T) {
	o := quietOptions()
	o.Workers, o.Queue = 4, 100
	p := poolWith(t, o)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := p.Scan(context.Background(), newMsg(textMsg("hello"))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		n := o
		n.Thresholds.Quarantine = float64(6 + i%3)
		if err := p.Reconfigure(n); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	p.Close()
	if err := p.Reconfigure(o); !errors.Is(err, errClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestPoolSimulatedDelay(t *testing.T) {
	t.Run("adds the delay", func(t *testing.T) {
		o := quietOptions()
		o.SimulatedDelay.Duration = 30 * time.Millisecond
		p := poolWith(t, o)
		start := time.Now()
		v, err := p.Scan(context.Background(), newMsg(textMsg(gtubeText)))
		if err != nil || !hasSymbol(v, symGTUBE) {
			t.Fatalf("%v %s", err, describe(v))
		}
		if d := time.Since(start); d < o.SimulatedDelay.Duration {
			t.Errorf("scan took %s, less than the delay", d)
		}
	})
	t.Run("occupies the worker and honours ctx", func(t *testing.T) {
		o := quietOptions()
		o.Workers, o.Queue, o.SimulatedDelay.Duration = 1, 1, MaxSimulatedDelay
		p := poolWith(t, o)
		ctx1, cancel1 := context.WithCancel(context.Background())
		ctx2, cancel2 := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		go func() { _, err := p.Scan(ctx1, newMsg(textMsg("x"))); errs <- err }()
		for busy, _ := p.Stats(); busy != 1; busy, _ = p.Stats() {
			runtime.Gosched()
		}
		go func() { _, err := p.Scan(ctx2, newMsg(textMsg("x"))); errs <- err }()
		waitQueued(p, 1) // the delayed scan holds the only worker
		if _, err := p.Scan(context.Background(), newMsg(textMsg("x"))); !errors.Is(err, ErrOverloaded) {
			t.Errorf("third scan: %v, want ErrOverloaded", err)
		}
		cancel1()
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("first scan: %v, want context.Canceled", err)
		}
		waitQueued(p, 0) // the second scan got the worker
		cancel2()
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("second scan: %v, want context.Canceled", err)
		}
	})
	t.Run("cut by Timeout", func(t *testing.T) {
		o := quietOptions()
		o.SimulatedDelay.Duration, o.Timeout.Duration = MaxSimulatedDelay, 20*time.Millisecond
		p := poolWith(t, o)
		if _, err := p.Scan(context.Background(), newMsg(textMsg("x"))); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want DeadlineExceeded", err)
		}
	})
	t.Run("negative", func(t *testing.T) {
		o := quietOptions()
		o.SimulatedDelay.Duration = -time.Second
		if _, err := NewPool(o); err == nil || !strings.Contains(err.Error(), "simulated_delay: must be 0 to 1m, got -1s") {
			t.Errorf("got %v", err)
		}
	})
}
