package config

import (
	"strings"
	"testing"
	"time"
)

func TestServeDefaultsAndEnv(t *testing.T) {
	c, err := ParseServe(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "./data" || c.HTTP != "127.0.0.1:8080" || c.SIP != "127.0.0.1:5060" || c.SIPDomain != "sipdesk.local" || c.MaxCallDuration != 4*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv("SIPDESK_DATA", "/tmp/x")
	t.Setenv("SIPDESK_SIP_DOMAIN", "example.org")
	t.Setenv("SIPDESK_HTTP", "127.0.0.1:1")
	c, err = ParseServe([]string{"--http", "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/tmp/x" || c.SIPDomain != "example.org" {
		t.Fatalf("env not applied: %+v", c)
	}
	if c.HTTP != "127.0.0.1:2" {
		t.Fatalf("command line must win over env, got %s", c.HTTP)
	}
}

// TestEdgeHTTPDefault: an edge serves health and metrics on its SIP host
// unless --http (or SIPDESK_HTTP) says otherwise.
func TestEdgeHTTPDefault(t *testing.T) {
	for args, want := range map[string]string{
		"--role edge --sip 127.0.0.7:5070":                       "127.0.0.7:8080",
		"--role edge --sip 0.0.0.0:5060":                         "127.0.0.1:8080",
		"--role edge --sip [::1]:5060":                           "[::1]:8080",
		"--role edge --sip 127.0.0.7:5070 --http 127.0.0.7:9100": "127.0.0.7:9100",
		"--role all --sip 127.0.0.7:5070":                        "127.0.0.1:8080",
	} {
		c, err := ParseServe(strings.Fields(args))
		if err != nil || c.HTTP != want {
			t.Errorf("%s: HTTP %q (%v), want %q", args, c.HTTP, err, want)
		}
	}
	t.Setenv("SIPDESK_HTTP", "127.0.0.7:9200")
	if c, _ := ParseServe([]string{"--role", "edge", "--sip", "127.0.0.7:5070"}); c.HTTP != "127.0.0.7:9200" {
		t.Errorf("SIPDESK_HTTP on an edge: %q", c.HTTP)
	}
}

func TestServeRefusesBadValues(t *testing.T) {
	for name, args := range map[string][]string{
		"bad role":        {"--role", "proxy"},
		"tls without key": {"--sip-tls", "127.0.0.1:5061"},
		"bad duration":    {"--max-call-duration", "forever"},
		"bad proxy list":  {"--trusted-proxies", "10.0.0.0/8,not-a-cidr"},
	} {
		if _, err := ParseServe(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	t.Setenv("SIPDESK_DEMO", "maybe")
	if _, err := ParseServe(nil); err == nil {
		t.Error("bad env value accepted")
	}
}

func TestRedacted(t *testing.T) {
	if got := Redacted("postgres://u:secret@h:5432/db"); got != "postgres://u:****@h:5432/db" {
		t.Fatal(got)
	}
	if got := Redacted("postgres://h/db"); got != "postgres://h/db" {
		t.Fatal(got)
	}
}

// TestDrainAndLeaseTTL: --drain-timeout defaults to 30s and refuses a
// negative value; SIPDESK_LEASE_TTL (no flag) is read and bounded.
func TestDrainAndLeaseTTL(t *testing.T) {
	c, err := ParseServe(nil)
	if err != nil || c.DrainTimeout != 30*time.Second || c.LeaseTTL != 0 {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	if _, err := ParseServe([]string{"--drain-timeout", "-1s"}); err == nil {
		t.Fatal("negative --drain-timeout accepted")
	}
	t.Setenv("SIPDESK_LEASE_TTL", "6s")
	if c, err := ParseServe(nil); err != nil || c.LeaseTTL != 6*time.Second {
		t.Fatalf("SIPDESK_LEASE_TTL=6s: %v %v", err, c.LeaseTTL)
	}
	t.Setenv("SIPDESK_LEASE_TTL", "1s")
	if _, err := ParseServe(nil); err == nil {
		t.Fatal("SIPDESK_LEASE_TTL=1s accepted")
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := ParseServe([]string{"--trusted-proxies", " 10.1.2.3/8, 192.0.2.7 ,2001:db8::/32", "--metrics-token", "tk", "--metrics-customers"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.0.2.7/32 2001:db8::/32" || c.MetricsToken != "tk" || !c.MetricsCustomers {
		t.Fatalf("parsed %v, token %q, customers %v", got, c.MetricsToken, c.MetricsCustomers)
	}
	t.Setenv("SIPDESK_TRUSTED_PROXIES", "127.0.0.1")
	if c, err := ParseServe(nil); err != nil || len(c.TrustedProxies) != 1 {
		t.Fatalf("from the environment: %v %v", c.TrustedProxies, err)
	}
}
