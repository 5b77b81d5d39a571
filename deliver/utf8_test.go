package deliver

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/testenv"
)

func TestASCIIHeader(t *testing.T) {
	cases := []struct {
		msg string
		ok  bool
	}{
		{"Subject: plain\r\n\r\nGrüße\r\n", true},
		{"Subject: plain\n\nGrüße\n", true},
		{"\r\nGrüße: not a header\r\n", true},
		{"Subject: Grüße\r\n\r\nbody\r\n", false},
		{"Subject: x\r\nFrom: Jörg <j@example.org>\r\n\r\n", false},
		{"Subject: x\r\n \r\n\r\n", true},
		{"Subject: x\r\rGrüße: y\r\n\r\n", false}, // a bare CR ends no header section
		{"Subject: no body ever Grüße", false},
	}
	for _, c := range cases {
		for _, chunk := range []int{1, 3, 1 << 10} {
			r := &asciiHeader{r: &chunked{s: c.msg, n: chunk}}
			got, err := io.ReadAll(r)
			if ok := err == nil; ok != c.ok {
				t.Errorf("%q in chunks of %d: err %v, want ok=%v", c.msg, chunk, err, c.ok)
			}
			if err == nil && string(got) != c.msg {
				t.Errorf("%q passed as %q", c.msg, got)
			}
		}
	}
}

// chunked reads s n bytes at a time.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

// smtp-sink announces no SMTPUTF8: a transaction that asked for it runs
// without it while it is ASCII, and is refused for good where it is not.
func TestSMTPUTF8Downgrade(t *testing.T) {
	sink := testenv.StartSink(t)
	ctx := context.Background()
	o := Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second}
	utf8 := &smtp.MailOptions{UTF8: true}
	c, err := Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	permanent := func(what string, err error, code int) {
		t.Helper()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != (smtp.EnhancedCode{5, 6, 7}) || IsTransient(err) {
			t.Errorf("%s: err %v, want a permanent %d 5.6.7", what, err, code)
		}
	}
	permanent("UTF-8 sender", c.Mail(ctx, "jörg@sender.test", utf8), 553)

	if err := c.Mail(ctx, "a@sender.test", utf8); err != nil {
		t.Fatalf("ASCII sender with SMTPUTF8: %v", err)
	}
	permanent("UTF-8 recipient", c.Rcpt(ctx, "jörg@example.org", nil), 553)
	if err := c.Rcpt(ctx, "b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Data(ctx, nil, strings.NewReader("Subject: ascii\r\n\r\nGrüße\r\n")); err != nil {
		t.Fatalf("ASCII header, 8-bit body: %v", err)
	}

	if err := c.Mail(ctx, "a@sender.test", utf8); err != nil {
		t.Fatal(err)
	}
	c.Rcpt(ctx, "b@example.org", nil)
	// Over 64 KiB of header, so part of it is on the wire before the
	// UTF-8 turns up: the transaction must be abandoned, not ended.
	long := "Subject: x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 70)+"\r\n", 1200) + "X-Name: Jörg\r\n\r\nbody\r\n"
	_, err = c.Data(ctx, nil, strings.NewReader(long))
	permanent("UTF-8 header", err, 554)
	if err := c.Mail(ctx, "a@sender.test", nil); err == nil || IsRefusal(err) {
		t.Errorf("MAIL on the abandoned connection: %v, want a connection error", err)
	}

	msgs := sink.WaitMessages(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if msgs = sink.Messages(t); len(msgs) != 1 {
		t.Fatalf("sink has %d messages, want only the ASCII one", len(msgs))
	}
	if args := testenv.Header(msgs[0], "X-Mail-Args"); strings.Contains(args, "SMTPUTF8") {
		t.Errorf("SMTPUTF8 sent to a server without it: %s", args)
	}

	// A release (Send) of a UTF-8 envelope asks for SMTPUTF8 and gets the
	// same permanent refusal.
	_, err = Send(ctx, o, "jörg@sender.test", []string{"b@example.org"}, nil, strings.NewReader("Subject: x\r\n\r\ny\r\n"))
	permanent("Send with a UTF-8 sender", err, 553)
}

func TestPoolDropsAbandonedConnection(t *testing.T) {
	sink := testenv.StartSink(t)
	ctx := context.Background()
	p := NewPool(Options{Addr: sink.Addr, Helo: "gw.test", Timeout: 5 * time.Second}, 2, time.Minute)
	defer p.Close()
	c, _, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Mail(ctx, "a@sender.test", &smtp.MailOptions{UTF8: true})
	c.Rcpt(ctx, "b@example.org", nil)
	if _, err := c.Data(ctx, nil, strings.NewReader("Subject: Grüße\r\n\r\n")); err == nil {
		t.Fatal("UTF-8 header delivered to a server without SMTPUTF8")
	}
	p.Put(c)
	if c2, reused, _ := p.Get(ctx); reused || c2 == c {
		t.Error("the pool handed out an abandoned connection")
	}
}
