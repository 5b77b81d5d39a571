// Command idle opens many SMTP sessions to a server and holds them idle, so
// that the server's memory per idle session can be measured (bench/run.sh).
//
// Each session connects, reads the 220 greeting, sends EHLO and reads the
// 250 reply, then stays open without sending anything else. When every
// session is set up (or has failed) it prints one line
//
//	READY n=1000 banner=1000 ehlo=1000 failed=0 elapsed=1.234s
//
// to stdout and waits for SIGINT/SIGTERM (or, with -stdin, for end of file
// on standard input as well), then sends QUIT on every session and exits:
// 0 when every session got its greeting and EHLO reply, 1 otherwise.
//
//	go run ./bench/idle -addr 127.0.0.1:24525 -n 1000
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type session struct {
	conn   net.Conn
	banner bool
	ehlo   bool
	err    error
}

func main() {
	addr := flag.String("addr", "127.0.0.1:24525", "SMTP server host:port")
	n := flag.Int("n", 1000, "number of sessions")
	helo := flag.String("ehlo", "idle.bench.test", "name sent with EHLO")
	par := flag.Int("parallel", 50, "sessions set up concurrently")
	timeout := flag.Duration("timeout", 30*time.Second, "limit for connect, greeting and EHLO reply of one session")
	stdin := flag.Bool("stdin", false, "also stop at end of file on standard input")
	flag.Parse()
	if *n < 1 || *par < 1 {
		fmt.Fprintln(os.Stderr, "idle: -n and -parallel must be at least 1")
		os.Exit(2)
	}

	start := time.Now()
	sessions := make([]*session, *n)
	sem := make(chan struct{}, *par)
	var wg sync.WaitGroup
	for i := range sessions {
		s := &session{}
		sessions[i] = s
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			open(s, *addr, *helo, *timeout)
		}()
	}
	wg.Wait()

	var banner, ehlo, failed int
	reasons := map[string]int{}
	for _, s := range sessions {
		if s.banner {
			banner++
		}
		if s.ehlo {
			ehlo++
		}
		if s.err != nil {
			failed++
			reasons[s.err.Error()]++
		}
	}
	if len(reasons) > 0 {
		keys := make([]string, 0, len(reasons))
		for k := range reasons {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool { return reasons[keys[a]] > reasons[keys[b]] })
		for i, k := range keys {
			if i == 10 {
				fmt.Fprintf(os.Stderr, "idle: ... %d more distinct errors\n", len(keys)-10)
				break
			}
			fmt.Fprintf(os.Stderr, "idle: %d sessions: %s\n", reasons[k], k)
		}
	}
	fmt.Printf("READY n=%d banner=%d ehlo=%d failed=%d elapsed=%s\n", *n, banner, ehlo, failed, time.Since(start).Round(time.Millisecond))

	stop := make(chan struct{}, 2)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; stop <- struct{}{} }()
	if *stdin {
		go func() { io.Copy(io.Discard, os.Stdin); stop <- struct{}{} }()
	}
	<-stop

	for _, s := range sessions {
		if s.conn != nil {
			s.conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(s.conn, "QUIT\r\n")
			s.conn.Close()
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// open sets up one session; on failure the connection is closed and s.err
// says where it failed.
func open(s *session, addr, helo string, timeout time.Duration) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		s.err = fmt.Errorf("connect: %v", err)
		return
	}
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	fail := func(stage string, err error) {
		s.err = fmt.Errorf("%s: %v", stage, err)
		c.Close()
	}
	if err := expect(r, "220"); err != nil {
		fail("greeting", err)
		return
	}
	s.banner = true
	if _, err := io.WriteString(c, "EHLO "+helo+"\r\n"); err != nil {
		fail("EHLO", err)
		return
	}
	if err := expect(r, "250"); err != nil {
		fail("EHLO reply", err)
		return
	}
	s.ehlo = true
	c.SetDeadline(time.Time{})
	s.conn = c
}

// expect reads one (possibly multi-line) SMTP reply and checks its code.
func expect(r *bufio.Reader, code string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 || line[:3] != code {
			return fmt.Errorf("unexpected reply %q", truncate(line, 80))
		}
		if len(line) == 3 || line[3] == ' ' {
			return nil
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
