package web

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientAddr: forwarding headers count only from a trusted proxy, read
// from the right; a client's own entries further left are never reached.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	cases := []struct {
		name, remote, xff, fwd, want string
	}{
		{"direct", "203.0.113.5:4000", "", "", "203.0.113.5"},
		{"untrusted peer, forged XFF", "203.0.113.5:4000", "198.51.100.1", "", "203.0.113.5"},
		{"trusted proxy", "10.0.0.2:4000", "198.51.100.1", "", "198.51.100.1"},
		{"client prepends a lie", "10.0.0.2:4000", "1.2.3.4, 198.51.100.1", "", "198.51.100.1"},
		{"two trusted hops", "10.0.0.2:4000", "198.51.100.1, 10.0.0.9", "", "198.51.100.1"},
		{"Forwarded", "10.0.0.2:4000", "", `for=192.0.2.60;proto=http, for="[2a00:1450::17]:4711"`, "2a00:1450::17"},
		{"Forwarded, IPv4 last", "10.0.0.2:4000", "", `for="[2a00:1450::17]:4711", for=192.0.2.60`, "192.0.2.60"},
		{"garbage from the proxy's client", "10.0.0.2:4000", "not-an-ip", "", "10.0.0.2"},
		{"mapped peer", "[::ffff:203.0.113.5]:4000", "", "", "203.0.113.5"},
		{"all trusted", "10.0.0.2:4000", "10.0.0.3", "", "10.0.0.3"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.fwd != "" {
			r.Header.Set("Forwarded", c.fwd)
		}
		if got := ClientAddr(r, trusted); got.String() != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	// Without trusted proxies the headers mean nothing.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:4000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := ClientAddr(r, nil); got.String() != "10.0.0.2" {
		t.Errorf("no trusted proxies: %s", got)
	}
}
