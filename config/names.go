package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The syntax of the names and addresses the sections hold.

func validPort(s string, zeroOK bool) bool {
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 || n < 0 {
		return false
	}
	return n > 0 || zeroOK
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return validHostname(h)
}

func loopbackListen(a string) bool {
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ValidNodeID reports whether s can name a node: 1-64 letters, digits,
// '.', '_' or '-'.
func ValidNodeID(s string) bool { return validNodeID(s) }

func validNodeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validHostname accepts what real hosts are called, '_' included (container
// and Windows names have it): it is announced, never resolved, here.
func validHostname(s string) bool {
	return validLabels(strings.TrimSuffix(s, "."), true)
}

// validDomain is a mail domain: letters, digits and '-' in dot-separated labels.
func validDomain(s string) bool {
	return validLabels(s, false)
}

func validLabels(s string, underscore bool) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || underscore && r == '_') {
				return false
			}
		}
	}
	return true
}

// validHelo is a host name or an address literal ([192.0.2.1], [IPv6:...]).
func validHelo(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		ip := strings.TrimPrefix(s[1:len(s)-1], "IPv6:")
		_, err := netip.ParseAddr(ip)
		return err == nil
	}
	return validHostname(s)
}
