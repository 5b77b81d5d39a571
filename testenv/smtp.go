package testenv

import (
	"fmt"
	"net"
	"net/textproto"
	"time"
)

// SendFrom runs one transaction from sender to b@example.org on a new
// connection to addr, with sender as the Subject, and returns the DATA
// reply's code (0: the session broke before it). Safe in goroutines: it
// returns an error instead of failing a test.
func SendFrom(addr, sender string) (int, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := textproto.NewConn(nc)
	if _, _, err := c.ReadResponse(220); err != nil {
		return 0, fmt.Errorf("greeting: %w", err)
	}
	for _, step := range []struct {
		cmd  string
		want int
	}{{"EHLO client.test", 250}, {"MAIL FROM:<" + sender + ">", 250}, {"RCPT TO:<b@example.org>", 250}, {"DATA", 354}} {
		if err := c.PrintfLine("%s", step.cmd); err != nil {
			return 0, err
		}
		if _, msg, err := c.ReadResponse(step.want); err != nil {
			return 0, fmt.Errorf("%s: %s %w", step.cmd, msg, err)
		}
	}
	if err := c.PrintfLine("Subject: %s\r\n\r\nbody of %s\r\n.", sender, sender); err != nil {
		return 0, err
	}
	code, _, err := c.ReadResponse(0)
	c.PrintfLine("QUIT")
	if code == 0 {
		return 0, fmt.Errorf("DATA reply: %w", err)
	}
	return code, nil
}
