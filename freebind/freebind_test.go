package freebind

import (
	"context"
	"net"
	"testing"
)

// 192.0.2.1 (TEST-NET-1) is on no interface here: a plain listen fails with
// "cannot assign requested address", a free-bound one succeeds. Nothing is
// sent to that address.
func TestListenOnAnAddressNotHeld(t *testing.T) {
	if ln, err := net.Listen("tcp", "192.0.2.1:0"); err == nil {
		ln.Close()
		t.Fatal("192.0.2.1 is assigned on this host; the test needs an address that is not")
	}
	ln, err := Listen(context.Background(), "192.0.2.1:0")
	if err != nil {
		t.Fatalf("free-bound listen: %v", err)
	}
	ln.Close()
	ln, err = Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on a held address: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial the free-bound listener: %v", err)
	}
	c.Close()
}
