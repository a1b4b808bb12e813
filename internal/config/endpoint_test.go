package config

import "testing"

// TestSIPEndpoint: --public-sip-host wins; else the --sip host; the base
// URL's host when --sip listens on every address.
func TestSIPEndpoint(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		host     string
		port, tl int
	}{
		{[]string{"--sip", "192.0.2.10:5070"}, "192.0.2.10", 5070, 0},
		{[]string{"--sip", "0.0.0.0:5060", "--base-url", "https://portal.example.com"}, "portal.example.com", 5060, 0},
		{[]string{"--sip", "10.0.0.5:5060", "--public-sip-host", "sip.example.com", "--sip-tls", "10.0.0.5:5061",
			"--sip-tls-cert", "c.pem", "--sip-tls-key", "k.pem"}, "sip.example.com", 5060, 5061},
	} {
		c, err := ParseServe(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		h, p, tl := c.SIPEndpoint()
		if h != tc.host || p != tc.port || tl != tc.tl {
			t.Errorf("%v: %s %d %d", tc.args, h, p, tl)
		}
	}
}
