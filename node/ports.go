package node

import (
	"context"
	"fmt"
	"net"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/freebind"
)

// boundPorts are the admin and peer API listeners, bound before the node
// serves any SMTP: a port in use stops the start at once with its key
// named, instead of failing in the background of a node that already
// answers mail. take hands a listener to its server; close closes the ones
// not taken.
type boundPorts struct{ admin, peer net.Listener }

// bindPorts binds admin.listen (when set) and, withPeer, cluster.peer_listen.
func bindPorts(ctx context.Context, cfg config.Config, withPeer bool) (*boundPorts, error) {
	p := &boundPorts{}
	if cfg.Admin.Listen != "" {
		ln, err := freebind.Listen(ctx, cfg.Admin.Listen)
		if err != nil {
			return nil, fmt.Errorf("admin.listen: %w", err)
		}
		p.admin = ln
	}
	if withPeer {
		ln, err := freebind.Listen(ctx, cfg.Cluster.PeerListen)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("cluster.peer_listen: %w", err)
		}
		p.peer = ln
	}
	return p, nil
}

func (p *boundPorts) take(l *net.Listener) net.Listener {
	ln := *l
	*l = nil
	return ln
}

func (p *boundPorts) close() {
	for _, l := range []net.Listener{p.admin, p.peer} {
		if l != nil {
			l.Close()
		}
	}
}
