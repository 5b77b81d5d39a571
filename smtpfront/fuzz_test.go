package smtpfront

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary bytes to a real front end (real scanner,
// store and smtp-sink downstream) as a client would send them. Whatever
// arrives, the server must answer and end the session by itself: no
// panic, no hang. The client half-closes after its input, so a session
// that is still waiting after that is a hang.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.org>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.org>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n",
		"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<\"q@x\"@example.org>\r\nRCPT TO:<a%b@example.org>\r\nRSET\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test> SIZE=99999999999\r\nSTARTTLS\r\nAUTH PLAIN\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n\n.\n\r.\rMAIL FROM:<x@y>\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\x00\xff\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	fr := startFront(f, nil, func(o *Options) {
		o.ReadTimeout = 2 * time.Second
		o.DataTimeout = 2 * time.Second
		o.MaxLineLength = 4096
	})
	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.DialTimeout("tcp", fr.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c)
			done <- err
		}()
		c.Write(input)
		c.(*net.TCPConn).CloseWrite()
		if err := <-done; err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("session still open 10 s after the client finished (input %q)", input)
			}
		}
	})
}
