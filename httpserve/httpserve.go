// Package httpserve runs an http.Server for as long as a context lives and
// then stops it gracefully: the one shutdown sequence the admin API and the
// peer scan API share.
package httpserve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves hs on ln (which it closes) until ctx is done, then shuts
// down, giving requests under way grace to finish before the connections
// are closed. With hs.TLSConfig it serves HTTPS only (its certificate
// from the config). Requests keep ctx's values but not its cancellation, so a
// release or a scan running when the node stops is not cut short. An error
// of the server itself ends Serve at once.
func Serve(ctx context.Context, hs *http.Server, ln net.Listener, grace time.Duration) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs.BaseContext = func(net.Listener) context.Context { return base }
	served := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			served <- hs.ServeTLS(ln, "", "")
			return
		}
		served <- hs.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-served // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
