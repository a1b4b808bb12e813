package transport

import "testing"

// FuzzNormOrigin: WebSocket Origin values normalise to a fixed point.
func FuzzNormOrigin(f *testing.F) {
	for _, s := range []string{"https://Portal.Example.com:443", "http://x:80", "null", "", "https://[::1]:443", "HTTPS://a/b?c", "://", "https://a:99999", "https://:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, o string) {
		n := normOrigin(o)
		if n != "" && normOrigin(n) != n {
			t.Fatalf("%q -> %q -> %q", o, n, normOrigin(n))
		}
	})
}
