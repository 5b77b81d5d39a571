package mailauth

import (
	"context"
	"net"
	"strings"
)

// NewResolver is a resolver that sends every query to the DNS server at
// addr (host:port), over UDP and, for truncated answers, TCP; the
// deadline of the lookup's context bounds each exchange. With addr empty
// it is the system's resolver (/etc/resolv.conf).
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// fqdn makes name absolute, so that the resolver never tries the
// system's search domains with a name taken from a message.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}
