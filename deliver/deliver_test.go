package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

func TestQuoteAddress(t *testing.T) {
	cases := map[string]string{
		"user@example.org":       "user@example.org",
		"first.last@example.org": "first.last@example.org",
		"john doe@example.org":   `"john doe"@example.org`,
		`a"b@example.org`:        `"a\"b"@example.org`,
		"user@x@example.org":     `"user@x"@example.org`,
		".lead@example.org":      `".lead"@example.org`,
		"":                       "",
		"postmaster":             "postmaster",
	}
	for in, want := range cases {
		if got := QuoteAddress(in); got != want {
			t.Errorf("QuoteAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendToSmtpSink(t *testing.T) {
	sink := testenv.StartSink(t)
	ctx := context.Background()
	o := Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second}
	reply, err := Send(ctx, o, "a@sender.test", []string{"b@example.org", "c@example.org"}, []string{"X-Test: 1"}, strings.NewReader("Subject: s\r\n\r\nbody\r\n"))
	if err != nil || !strings.HasPrefix(reply, "2.0.0") {
		t.Fatalf("Send = %q, %v", reply, err)
	}
	m := sink.WaitMessages(t, 1, 5*time.Second)[0]
	if testenv.Header(m, "X-Test") != "1" || strings.Count(m, "X-Rcpt-Args:") != 2 || testenv.Header(m, "X-Helo-Args") != "gw.test" {
		t.Errorf("delivered:\n%s", m)
	}
}

func TestSendRefusals(t *testing.T) {
	ctx := context.Background()
	hard := testenv.StartSink(t, "-f", "RCPT")
	_, err := Send(ctx, Options{Addr: hard.Addr, Helo: "gw.test", Timeout: 5 * time.Second}, "a@s.test", []string{"b@example.org"}, nil, strings.NewReader("x\r\n"))
	if !IsRefusal(err) || IsTransient(err) {
		t.Errorf("every recipient refused with 5xx: err %v, want a permanent refusal", err)
	}
	_, err = Send(ctx, Options{Addr: testenv.FreeAddr(t), Helo: "gw.test", Timeout: 2 * time.Second}, "a@s.test", []string{"b@example.org"}, nil, strings.NewReader("x\r\n"))
	if err == nil || IsRefusal(err) || !IsTransient(err) {
		t.Errorf("nothing listening: err %v, want a transient connection error", err)
	}
}

func TestPoolReusesAndExpires(t *testing.T) {
	sink := testenv.StartSink(t)
	ctx := context.Background()
	p := NewPool(Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second}, 1, 200*time.Millisecond)
	defer p.Close()
	c1, reused, err := p.Get(ctx)
	if err != nil || reused {
		t.Fatalf("first Get: reused=%v err=%v", reused, err)
	}
	if err := c1.Mail(ctx, "a@s.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c1.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	p.Put(c1)
	c2, reused, err := p.Get(ctx)
	if err != nil || !reused || c2 != c1 {
		t.Fatalf("second Get: reused=%v same=%v err=%v", reused, c2 == c1, err)
	}
	if err := c2.Mail(ctx, "a@s.test", nil); err != nil {
		t.Fatalf("kept connection unusable: %v", err)
	}
	c2.Reset(ctx)
	p.Put(c2)
	time.Sleep(300 * time.Millisecond)
	if _, reused, _ := p.Get(ctx); reused {
		t.Error("an expired connection was handed out")
	}
}

func TestDataIsStuffedExactly(t *testing.T) {
	sink := testenv.StartSink(t)
	ctx := context.Background()
	c, err := Dial(ctx, Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bodies := []string{
		"Subject: a\r\n\r\n.dot\r\n..two\r\nno final newline",
		"Subject: b\r\n\r\nbare\nlf\n.\nend\n",
		"Subject: c\r\n\r\n" + strings.Repeat("0123456789\r\n.", 3000) + "\r\n",
	}
	for _, b := range bodies {
		if err := c.Mail(ctx, "a@s.test", nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(ctx, "b@example.org", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Data(ctx, []string{"X-Hop: 1"}, strings.NewReader(b)); err != nil {
			t.Fatalf("Data: %v", err)
		}
	}
	msgs := sink.WaitMessages(t, len(bodies), 5*time.Second)
	for _, want := range []string{"X-Hop: 1\n", "\n.dot\n..two\nno final newline\n\n", "\nbare\nlf\n.\nend\n\n", strings.Repeat("0123456789\n.", 3000) + "\n"} {
		found := 0
		for _, m := range msgs {
			if strings.Contains(m, want) {
				found++
			}
		}
		if found == 0 {
			t.Errorf("no delivered message contains %.60q", want)
		}
	}
}

// TestSendUnconfirmed: only a failure after the end of the data leaves the
// outcome open (ErrUnconfirmed); a refusal, or a break before the data was
// complete, says for certain that nothing was delivered.
func TestSendUnconfirmed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name            string
		sink            []string
		wantUnconfirmed bool
	}{
		{"connection dropped after the end of data", []string{"-q", "."}, true},
		{"data refused", []string{"-f", "."}, false},
		{"connection dropped at DATA", []string{"-q", "DATA"}, false},
		{"connection dropped at RCPT", []string{"-q", "RCPT"}, false},
		{"delivered", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := testenv.StartSink(t, tc.sink...)
			_, err := Send(ctx, Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second}, "a@s.test", []string{"b@example.org"}, nil, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			if got := errors.Is(err, ErrUnconfirmed); got != tc.wantUnconfirmed {
				t.Errorf("err %v: unconfirmed %v, want %v", err, got, tc.wantUnconfirmed)
			}
			if tc.sink == nil && err != nil {
				t.Errorf("delivery to a willing sink: %v", err)
			}
		})
	}
}
