package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sipdesk/sipdesk/internal/app"
)

// ClientAddr is the address a request comes from: the connection's, unless
// the connection is from one of the trusted proxies; then the nearest
// address in X-Forwarded-For (or, without it, Forwarded's for=) that is not
// itself a trusted proxy, read from the right, as each proxy appends the
// address it saw. Entries a client wrote itself sit further left and are
// never reached past an untrusted hop.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !inPrefixes(peer, trusted) {
		return peer
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return peer // garbage from a client: count it as the proxy's own
		}
		a = a.Unmap()
		if !inPrefixes(a, trusted) {
			return a
		}
		peer = a
	}
	return peer
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the hop addresses of X-Forwarded-For, else of the
// RFC 7239 Forwarded header's for= parameters, left to right, without
// ports, brackets or quotes.
func forwardedFor(h http.Header) []string {
	var out []string
	if xs := h.Values("X-Forwarded-For"); len(xs) > 0 {
		for _, x := range xs {
			for _, f := range strings.Split(x, ",") {
				out = append(out, stripPort(strings.TrimSpace(f)))
			}
		}
		return out
	}
	for _, x := range h.Values("Forwarded") {
		for _, elem := range strings.Split(x, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					out = append(out, stripPort(strings.Trim(v, `"`)))
				}
			}
		}
	}
	return out
}

// stripPort turns "1.2.3.4:80", "[::1]:80" and "[::1]" into the address.
func stripPort(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
}

// withClientAddr puts the client address into the request's context, where
// the service's limits read it (app.WithSource).
func withClientAddr(h http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(app.WithSource(r.Context(), ClientAddr(r, trusted))))
	})
}
