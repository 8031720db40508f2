// Package loopback answers one question for the whole program: is this
// host on this machine? Plain HTTP, missing certificates and other
// allowances for local test servers all hang on the answer, so there is one
// answer, tested once.
package loopback

import (
	"net"
	"net/netip"
	"strings"
)

// Host reports whether hostport names this machine: an address in
// 127.0.0.0/8 or ::1 (also written in brackets, IPv4-mapped or with a
// zone), the name localhost, or a name ending in .localhost, which RFC 6761
// reserves for loopback. hostport may carry a port ("127.0.0.1:5000",
// "[::1]:5000", "localhost:5000"); the port is ignored, whatever it is.
//
// Names are compared without case and with a trailing dot removed, as DNS
// compares them; no name is resolved. Everything else is false, in
// particular names that merely start like loopback ones, such as
// localhost.corp.example or 127.example.com.
func Host(hostport string) bool {
	h := stripPort(hostport)
	if h == "" {
		return false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().IsLoopback()
	}
	if strings.HasPrefix(hostport, "[") {
		return false // brackets hold an IPv6 address, never a name
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	return name == "localhost" || (strings.HasSuffix(name, ".localhost") && len(name) > len(".localhost"))
}

// stripPort returns the host of hostport: brackets and port removed. A bare
// IPv6 address has colons but no port, so it is returned whole.
func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		return hostport[1 : len(hostport)-1]
	}
	if strings.Count(hostport, ":") == 1 {
		// host:port with a port SplitHostPort refuses (it accepts any), or
		// host: with none: the host is what comes before the colon.
		h, _, _ := strings.Cut(hostport, ":")
		return h
	}
	return hostport
}
