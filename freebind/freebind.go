// Package freebind opens TCP listeners that may bind an address this host
// does not hold yet: a cluster node listens on the VIP before it is master,
// so the SMTP, admin and peer listeners answer the moment the VIP arrives,
// without a restart or the host-wide net.ipv4.ip_nonlocal_bind.
package freebind

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen is net.Listen("tcp", addr) with IP_FREEBIND set on the socket.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: control}
	return lc.Listen(ctx, "tcp", addr)
}

func control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		// IP_FREEBIND is honoured on IPv4 and IPv6 sockets alike.
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
