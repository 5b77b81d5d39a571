package clamd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/testenv"
)

// cannedServer answers every connection with handle, on loopback, until
// the test ends. It returns its address and the number of connections
// it took.
func cannedServer(t *testing.T, handle func(ctx context.Context, c net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	addr := testenv.Serve(t, func(ctx context.Context, ln net.Listener) error {
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// A handler blocked on the connection ends with the test.
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				handle(ctx, c)
			}()
		}
	})
	return "tcp://" + addr, &conns
}

// instream is what a client sent for one zINSTREAM.
type instream struct {
	cmd    string
	body   []byte
	chunks []int
}

// readInstream reads a zINSTREAM command and its chunks up to the
// zero-length one, as clamd does.
func readInstream(c net.Conn) (instream, error) {
	var in instream
	cmd := make([]byte, len("zINSTREAM\x00"))
	if _, err := io.ReadFull(c, cmd); err != nil {
		return in, fmt.Errorf("command: %w", err)
	}
	in.cmd = string(cmd)
	for {
		var n uint32
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return in, fmt.Errorf("chunk length: %w", err)
		}
		if n == 0 {
			return in, nil
		}
		in.chunks = append(in.chunks, int(n))
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil {
			return in, fmt.Errorf("chunk of %d: %w", n, err)
		}
		in.body = append(in.body, buf...)
	}
}

// reply reads the whole stream, then writes r and closes.
func reply(r string) func(context.Context, net.Conn) {
	return func(_ context.Context, c net.Conn) {
		if _, err := readInstream(c); err == nil {
			io.WriteString(c, r)
		}
	}
}

func TestCannedReplies(t *testing.T) {
	huge := strings.Repeat("A", 100<<10)
	for _, tt := range []struct {
		name      string
		handle    func(context.Context, net.Conn) // nil: nobody listens
		size      int
		timeout   time.Duration
		cancel    bool // the caller's context ends during the call
		wantVirus string
		wantKind  string // "" = no error
	}{
		{name: "ok", handle: reply("stream: OK\x00"), size: 100},
		{name: "found unofficial", handle: reply("stream: Eicar-Test-Signature.UNOFFICIAL FOUND\x00"), size: 100,
			wantVirus: "Eicar-Test-Signature.UNOFFICIAL"},
		{name: "found heuristic", handle: reply("stream: Heuristics.Encrypted.Zip FOUND\x00"), size: 100,
			wantVirus: "Heuristics.Encrypted.Zip"},
		{name: "engine error", handle: reply("stream: Can't allocate memory ERROR\x00"), size: 100, wantKind: engines.KindEngine},
		{name: "size limit after a closed stream", size: 16 << 20, wantKind: engines.KindTooLarge,
			handle: func(_ context.Context, c net.Conn) {
				// As clamd does: read past the limit, answer, close with
				// the rest unread (the client's next write fails).
				io.ReadFull(c, make([]byte, 64<<10))
				io.WriteString(c, "INSTREAM size limit exceeded. ERROR\x00")
			}},
		{name: "closed without a reply", handle: reply(""), size: 100, wantKind: engines.KindProtocol},
		{name: "empty reply", handle: reply("\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "garbage", handle: reply("\x01\x02\xff\xfe\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "http", handle: reply("HTTP/1.1 400 Bad Request\r\n\r\n"), size: 100, wantKind: engines.KindProtocol},
		{name: "unknown command", handle: reply("UNKNOWN COMMAND\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "ok without its NUL", handle: reply("stream: OK"), size: 100, wantKind: engines.KindProtocol},
		{name: "found without a name", handle: reply("stream:  FOUND\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "found sharing its space", handle: reply("stream: FOUND\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "ok with trailing text", handle: reply("stream: OK but\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "huge reply", handle: reply(huge), size: 100, wantKind: engines.KindProtocol},
		{name: "huge reply ending in NUL", handle: reply(huge + "\x00"), size: 100, wantKind: engines.KindProtocol},
		{name: "closed in the middle of the stream", size: 16 << 20, wantKind: engines.KindIO,
			handle: func(_ context.Context, c net.Conn) { io.ReadFull(c, make([]byte, 64<<10)) }},
		{name: "never answers", size: 100, timeout: 200 * time.Millisecond, wantKind: engines.KindTimeout,
			handle: func(_ context.Context, c net.Conn) { io.Copy(io.Discard, c) }},
		{name: "never reads", size: 16 << 20, timeout: 200 * time.Millisecond, wantKind: engines.KindTimeout,
			handle: func(ctx context.Context, c net.Conn) { <-ctx.Done() }},
		{name: "caller gives up", size: 100, cancel: true, wantKind: engines.KindCanceled,
			handle: func(_ context.Context, c net.Conn) { io.Copy(io.Discard, c) }},
		{name: "connection refused", size: 100, wantKind: engines.KindConnect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := "tcp://" + testenv.FreeAddr(t)
			if tt.handle != nil {
				addr, _ = cannedServer(t, tt.handle)
			}
			reg := prometheus.NewRegistry()
			m, err := engines.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(addr, Options{Timeout: tt.timeout, StreamMax: 32 << 20, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testenv.Context(t, 30*time.Second)
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			res, err := c.ScanStream(ctx, bytes.NewReader(make([]byte, tt.size)), int64(tt.size))
			if tt.wantKind == "" {
				if err != nil || res.Virus != tt.wantVirus {
					t.Fatalf("ScanStream = %+v, %v; want virus %q", res, err, tt.wantVirus)
				}
				if got := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"); got != 1 {
					t.Errorf("calls{outcome=ok} = %v, want 1", got)
				}
				return
			}
			if err == nil || res != (Result{}) {
				t.Fatalf("ScanStream = %+v, %v; want an error of kind %s", res, err, tt.wantKind)
			}
			t.Logf("error: %v", err)
			if k := engines.Kind(err); k != tt.wantKind {
				t.Errorf("ScanStream error %q is of kind %s, want %s", err, k, tt.wantKind)
			}
			if !strings.Contains(err.Error(), "clamd "+addr) && !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the engine's address", err)
			}
			if got := testenv.MetricValue(t, reg, "mxgate_engine_errors_total", "kind", tt.wantKind); got != 1 {
				t.Errorf("errors{kind=%s} = %v, want 1", tt.wantKind, got)
			}
		})
	}
}

// The stream arrives whole, in 256 KiB chunks, after zINSTREAM.
func TestStreamFraming(t *testing.T) {
	got := make(chan instream, 1)
	addr, _ := cannedServer(t, func(_ context.Context, c net.Conn) {
		in, err := readInstream(c)
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		got <- in
		io.WriteString(c, "stream: OK\x00")
	})
	c, err := New(addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 2*chunkSize+1000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := c.ScanStream(testenv.Context(t, 30*time.Second), bytes.NewReader(msg), int64(len(msg))); err != nil {
		t.Fatal(err)
	}
	in := <-got
	if in.cmd != "zINSTREAM\x00" {
		t.Errorf("command %q", in.cmd)
	}
	if !bytes.Equal(in.body, msg) {
		t.Errorf("clamd got %d bytes, not the %d of the message", len(in.body), len(msg))
	}
	if want := []int{chunkSize, chunkSize, 1000}; fmt.Sprint(in.chunks) != fmt.Sprint(want) {
		t.Errorf("chunks %v, want %v", in.chunks, want)
	}
}

// A message over StreamMax is refused before any connection; a body
// shorter than its size is an error, never a verdict on part of it.
func TestNotSent(t *testing.T) {
	addr, conns := cannedServer(t, reply("stream: OK\x00"))
	c, err := New(addr, Options{StreamMax: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 30*time.Second)
	_, err = c.ScanStream(ctx, bytes.NewReader(make([]byte, 1001)), 1001)
	if !errors.Is(err, engines.ErrTooLarge) {
		t.Errorf("1001 bytes over a StreamMax of 1000: %v, want ErrTooLarge", err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections for a message over StreamMax, want 0", n)
	}
	_, err = c.ScanStream(ctx, bytes.NewReader(make([]byte, 10)), 20)
	if err == nil || !strings.Contains(err.Error(), "ended after 10 of 20 bytes") {
		t.Errorf("a body shorter than its size: %v, want an error", err)
	}
	if _, err := c.ScanStream(ctx, bytes.NewReader(make([]byte, 1000)), 1000); err != nil {
		t.Errorf("1000 bytes with a StreamMax of 1000: %v", err)
	}
}

func TestPingCanned(t *testing.T) {
	for _, tt := range []struct {
		reply    string
		wantKind string
	}{
		{"PONG\x00", ""},
		{"PONG", engines.KindProtocol},
		{"PANG\x00", engines.KindProtocol},
		{"", engines.KindProtocol},
	} {
		addr, _ := cannedServer(t, func(_ context.Context, c net.Conn) {
			cmd := make([]byte, len("zPING\x00"))
			if _, err := io.ReadFull(c, cmd); err == nil && string(cmd) == "zPING\x00" {
				io.WriteString(c, tt.reply)
			}
		})
		c, err := New(addr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(testenv.Context(t, 30*time.Second))
		if (err == nil) != (tt.wantKind == "") || err != nil && engines.Kind(err) != tt.wantKind {
			t.Errorf("Ping with reply %q = %v, want kind %q", tt.reply, err, tt.wantKind)
		}
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		addr    string
		o       Options
		wantErr string
	}{
		{"tcp://127.0.0.1:3310", Options{}, ""},
		{"unix:///run/clamav/clamd.ctl", Options{}, ""},
		{"http://127.0.0.1:3310", Options{}, "not accepted"},
		{"127.0.0.1:3310", Options{}, "want tcp://host:port or unix:///path"},
		{"tcp://127.0.0.1:3310", Options{Timeout: -1}, "must not be negative"},
	} {
		c, err := New(tt.addr, tt.o)
		if tt.wantErr == "" {
			if err != nil || c.Name() != "clamd" || c.timeout != DefaultTimeout || c.streamMax != DefaultStreamMax {
				t.Errorf("New(%q) = %+v, %v", tt.addr, c, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("New(%q, %+v) = %v, want an error saying %q", tt.addr, tt.o, err, tt.wantErr)
		}
	}
}

// FuzzReply: whatever bytes come back, the client never reads them as
// clean unless they are exactly clamd's "stream: OK", names a virus only
// from "stream: NAME FOUND", and every error is one of the reply kinds.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"stream: OK\x00", "stream: Eicar-Test-Signature.UNOFFICIAL FOUND\x00",
		"INSTREAM size limit exceeded. ERROR\x00", "stream: lstat() failed ERROR\x00",
		"", "\x00", "stream: OK", "stream: OK\x00stream: X FOUND\x00", "PONG\x00", "stream:  FOUND\x00", "stream: FOUND\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readReply(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, engines.ErrProtocol) {
				t.Fatalf("readReply(%q) = %v, not a protocol error", data, err)
			}
			return
		}
		if len(r) == 0 || len(r) > maxReply || !bytes.HasPrefix(data, []byte(r+"\x00")) {
			t.Fatalf("readReply(%q) = %q: not the bytes before the first NUL", data, r)
		}
		res, err := parseReply(r)
		switch {
		case err != nil:
			if k := engines.Kind(err); k != engines.KindProtocol && k != engines.KindEngine && k != engines.KindTooLarge {
				t.Fatalf("parseReply(%q) = %v of kind %s", r, err, k)
			}
			if res != (Result{}) {
				t.Fatalf("parseReply(%q) = %+v with error %v", r, res, err)
			}
		case res.Virus == "":
			if r != "stream: OK" {
				t.Fatalf("parseReply(%q) = clean", r)
			}
		default:
			if r != "stream: "+res.Virus+" FOUND" || !printable(res.Virus) {
				t.Fatalf("parseReply(%q) = virus %q", r, res.Virus)
			}
		}
	})
}
