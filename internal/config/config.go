// Package config reads sipdesk's flags, each also settable from the
// environment as SIPDESK_<FLAG> (e.g. SIPDESK_DATA), with the Contract's
// defaults. There is no global configuration: main passes values down.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Store selects the database: SQLite under Data, or PostgreSQL.
type Store struct {
	Data     string // data folder: SQLite file, secret key
	Database string // postgres://… DSN; empty = SQLite in Data
}

// Serve is the configuration of `sipdesk serve`.
type Serve struct {
	Store
	HTTP             string
	OpsHTTP          string // the operator console's own address; "": under /ops/ on HTTP
	BaseURL          string
	Role             string // all, portal or edge
	Node             string
	SMTP             string
	Demo             bool
	SIP              string
	SIPDomain        string
	SIPTLS           string
	SIPTLSCert       string
	SIPTLSKey        string
	SIPWS            string
	SIPWSURL         string // what browsers connect to (default from --sip-ws)
	PublicSIPHost    string // what customers register to (connection page)
	WSOrigins        string // comma-separated Origin allow-list of --sip-ws
	Carrier          string
	CarrierAddrs     string
	CarrierUsername  string
	CarrierPassword  string
	AllowPrivateIPs  bool
	HoldIPAccounts   bool
	MaxCallDuration  time.Duration
	MaxContacts      int
	RTPPorts         string
	BanFailures      int
	BanWindow        time.Duration
	BanDuration      time.Duration
	ChallengeRate    int
	PaidChannelLimit int
	LogLevel         string
	DrainTimeout     time.Duration // graceful stop: how long calls may go on
	OverloadWait     time.Duration // CPU wait past which new calls get 503; 0: never
	LeaseTTL         time.Duration // SIPDESK_LEASE_TTL (tests, no flag): lease life, renewal, fence, sweep scaled; 0: default

	// The failure budget per SIP account (--sip-account-*).
	AccountFailures      int
	AccountFailureWindow time.Duration
	AccountGuard         time.Duration
	AccountTrust         time.Duration
	SMS                  SMS
	Web                  // portal hardening: proxies, /metrics
}

// SMS selects how verification codes reach phones (internal/notify): Kannel's
// sendsms or a signed webhook; neither means the dev mailbox (without
// --smtp) or no delivery at all (with it: the customer is told).
type SMS struct {
	Kannel         string // sendsms URL
	KannelUser     string
	KannelPassword string // prefer SIPDESK_SMS_KANNEL_PASSWORD: flags show in ps
	From           string // sender id
	Webhook        string // URL
	WebhookSecret  string // prefer SIPDESK_SMS_WEBHOOK_SECRET
	// Voice offers "Call me instead" (portal roles) and places those calls
	// through --carrier (edge roles): the portal queues an edge request,
	// an edge with --voice-calls takes it and reads the code out.
	Voice     bool
	VoiceFrom string // the caller the callee sees (E.164 or a name)
}

// Web is the portal's HTTP hardening: which proxies may name the client,
// and who may read /metrics.
type Web struct {
	TrustedProxies   []netip.Prefix // --trusted-proxies
	MetricsToken     string         // --metrics-token
	MetricsCustomers bool           // --metrics-customers
}

func webFlags(fs *flag.FlagSet, w *Web) {
	fs.Func("trusted-proxies", "comma-separated CIDRs or addresses of reverse proxies whose X-Forwarded-For/Forwarded name the client (default: none, the connection's address)", func(v string) error {
		ps, err := ParsePrefixes(v)
		w.TrustedProxies = ps
		return err
	})
	fs.StringVar(&w.MetricsToken, "metrics-token", "", "bearer token /metrics requires (default: none)")
	fs.BoolVar(&w.MetricsCustomers, "metrics-customers", false, "keep customer ids in /metrics labels (default: summed without them)")
}

// ParsePrefixes reads a comma-separated list of CIDRs or single addresses.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an address", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Admin is the configuration of `sipdesk admin`: the store and the domain
// settings that the records it writes depend on (the realm of HA1s).
type Admin struct {
	Store
	SIPDomain        string
	AllowPrivateIPs  bool
	PaidChannelLimit int
	BaseURL          string
}

func storeFlags(fs *flag.FlagSet, s *Store) {
	fs.StringVar(&s.Data, "data", "./data", "data folder (SQLite database, secret key)")
	fs.StringVar(&s.Database, "database", "", "PostgreSQL DSN (postgres://…); empty: SQLite in the data folder")
}

func domainFlags(fs *flag.FlagSet, realm *string, private *bool, paid *int, base *string) {
	fs.StringVar(realm, "sip-domain", "sipdesk.local", "SIP domain and digest realm")
	fs.BoolVar(private, "allow-private-ips", false, "admit private and loopback addresses in IP lists (labs, tests)")
	fs.IntVar(paid, "paid-channel-limit", 10, "channel limit after the first top-up")
	fs.StringVar(base, "base-url", "", "public URL of the portal, for links in emails (default http://<http addr>)")
}

// ParseServe parses serve's arguments.
func ParseServe(args []string) (*Serve, error) {
	c := &Serve{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	storeFlags(fs, &c.Store)
	domainFlags(fs, &c.SIPDomain, &c.AllowPrivateIPs, &c.PaidChannelLimit, &c.BaseURL)
	fs.StringVar(&c.OpsHTTP, "ops-http", "", "serve the operator console (/ops/) and API (/api/ops/v1) only on this address, not on --http (keep it off the internet)")
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:8080", "HTTP listen address: portal and API, /healthz, /readyz, /metrics (--role edge: health and metrics only; default <--sip host>:8080)")
	fs.StringVar(&c.Role, "role", "all", "what this node runs: all, portal or edge")
	host, _ := os.Hostname()
	fs.StringVar(&c.Node, "node", host, "node name (unique per process sharing a database)")
	fs.StringVar(&c.SMTP, "smtp", "", "SMTP URL smtp://user:pass@host:port; empty: dev mailbox at /dev/mail")
	fs.BoolVar(&c.Demo, "demo", false, "create demo data on first start")
	fs.StringVar(&c.SIP, "sip", "127.0.0.1:5060", "SIP UDP and TCP listen address")
	fs.StringVar(&c.SIPTLS, "sip-tls", "", "SIP TLS listen address (needs --sip-tls-cert and --sip-tls-key)")
	fs.StringVar(&c.SIPTLSCert, "sip-tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&c.SIPTLSKey, "sip-tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&c.SIPWS, "sip-ws", "", "SIP over WebSocket listen address (WSS with --sip-tls-cert/--sip-tls-key)")
	fs.StringVar(&c.SIPWSURL, "sip-ws-url", "", "WebSocket URL the browser softphone connects to (default ws[s]://<--sip-ws host or base-url host>:<port>)")
	fs.StringVar(&c.PublicSIPHost, "public-sip-host", "", "SIP host name or address the connection page tells customers (default: the --sip host, or the --base-url host when --sip listens on every address)")
	fs.StringVar(&c.WSOrigins, "ws-origins", "", "comma-separated Origins allowed on --sip-ws (default: the --base-url origin)")
	fs.StringVar(&c.Carrier, "carrier", "", "carrier trunk URI, e.g. sip:203.0.113.5:5060")
	fs.StringVar(&c.CarrierAddrs, "carrier-addrs", "", "comma-separated IPs, CIDRs or IP:port of the carrier (default: the --carrier host)")
	fs.StringVar(&c.CarrierUsername, "carrier-username", "", "digest username toward the carrier")
	fs.StringVar(&c.CarrierPassword, "carrier-password", "", "digest password toward the carrier")
	fs.BoolVar(&c.HoldIPAccounts, "hold-ip-accounts", false, "keep new IP accounts in process until `admin sip-account approve`")
	fs.DurationVar(&c.MaxCallDuration, "max-call-duration", 4*time.Hour, "maximum duration of a call")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long calls up may go on (new calls get 503) before they are ended")
	fs.DurationVar(&c.OverloadWait, "overload-wait", 100*time.Millisecond, "new calls get 503 while the edge's work waits this long for a CPU (90th percentile) or in its UDP socket (every datagram), in two 250 ms samples in a row; 0: never")
	fs.StringVar(&c.RTPPorts, "rtp-ports", "20000-20999", "UDP port range of the media relay")
	fs.IntVar(&c.MaxContacts, "max-contacts", 10, "registered contacts per SIP account, on all edges together (0: no limit)")
	fs.IntVar(&c.BanFailures, "ban-failures", 5, "failed SIP authentications from one address that ban it (0: never ban)")
	fs.DurationVar(&c.BanWindow, "ban-window", time.Minute, "window in which --ban-failures are counted")
	fs.DurationVar(&c.BanDuration, "ban-duration", 10*time.Minute, "how long a banned address is ignored")
	fs.IntVar(&c.ChallengeRate, "challenge-rate", 200, "requests without credentials per second from one address that ban it as a flood (0: off)")
	fs.IntVar(&c.AccountFailures, "sip-account-failures", 20, "failed passwords for one SIP account, from any addresses, that guard it (0: never)")
	fs.DurationVar(&c.AccountFailureWindow, "sip-account-failure-window", 10*time.Minute, "window in which --sip-account-failures are counted")
	fs.DurationVar(&c.AccountGuard, "sip-account-guard", 30*time.Minute, "how long a guarded SIP account accepts only addresses that authenticated for it recently")
	fs.DurationVar(&c.AccountTrust, "sip-account-trust", 24*time.Hour, "how long an address that authenticated for a SIP account stays accepted during its guard")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	smsFlags(fs, &c.SMS)
	webFlags(fs, &c.Web)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := c.SMS.check(); err != nil {
		return nil, err
	}
	switch c.Role {
	case "all", "portal", "edge":
	default:
		return nil, fmt.Errorf("--role must be all, portal or edge, not %q", c.Role)
	}
	if c.SMS.Voice && c.Role != "portal" && c.Carrier == "" {
		return nil, errors.New("--voice-calls needs --carrier on a node with an edge (--role all or edge): the edge places the calls")
	}
	httpSet := false
	fs.Visit(func(f *flag.Flag) { httpSet = httpSet || f.Name == "http" })
	if c.Role == "edge" && !httpSet {
		c.HTTP = edgeHTTP(c.SIP)
	}
	if (c.SIPTLS != "") != (c.SIPTLSCert != "" && c.SIPTLSKey != "") {
		return nil, errors.New("--sip-tls needs --sip-tls-cert and --sip-tls-key")
	}
	if c.Node == "" {
		c.Node = "node"
	}
	if c.DrainTimeout < 0 {
		return nil, errors.New("--drain-timeout must not be negative")
	}
	if c.OverloadWait < 0 {
		return nil, errors.New("--overload-wait must not be negative (0: never refuse calls for load)")
	}
	if v := os.Getenv("SIPDESK_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 3*time.Second {
			return nil, fmt.Errorf("SIPDESK_LEASE_TTL must be a duration of at least 3s, not %q", v)
		}
		c.LeaseTTL = d
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.HTTP
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.WSOrigins == "" {
		if u, err := url.Parse(c.BaseURL); err == nil && u.Host != "" {
			c.WSOrigins = u.Scheme + "://" + u.Host
		}
	}
	if c.SIPWS != "" && c.SIPWSURL == "" {
		c.SIPWSURL = defaultWSURL(c)
	}
	return c, nil
}

// edgeHTTP is an edge's default health and metrics address: port 8080 on
// the host of its SIP address, so edges on their own addresses of one
// machine do not collide (127.0.0.1 when SIP listens on every address).
func edgeHTTP(sip string) string {
	host, _, err := net.SplitHostPort(sip)
	if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, "8080")
}

// ParseAdmin parses the flags before admin's subcommand and returns the rest.
func ParseAdmin(args []string) (*Admin, []string, error) {
	c := &Admin{}
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	storeFlags(fs, &c.Store)
	domainFlags(fs, &c.SIPDomain, &c.AllowPrivateIPs, &c.PaidChannelLimit, &c.BaseURL)
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://127.0.0.1:8080"
	}
	return c, fs.Args(), nil
}

// parse applies SIPDESK_<FLAG> environment values to flags not given on the
// command line (the command line wins), after parsing args.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
			}
		}
	})
	return err
}

// EnvName is the environment variable of a flag: --sip-domain → SIPDESK_SIP_DOMAIN.
func EnvName(flag string) string {
	return "SIPDESK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Redacted returns the DSN or URL with any password replaced, for logs.
func Redacted(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || scheme > at {
		return u
	}
	cred := u[scheme+3 : at]
	if i := strings.IndexByte(cred, ':'); i >= 0 {
		return u[:scheme+3] + cred[:i] + ":****" + u[at:]
	}
	return u
}

// defaultWSURL is the softphone's WebSocket URL from --sip-ws: its host
// (or the base URL's when it listens on every address) and port, wss when
// a TLS certificate is set.
func defaultWSURL(c *Serve) string {
	host, port, err := net.SplitHostPort(c.SIPWS)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	scheme := "ws"
	if c.SIPTLSCert != "" && c.SIPTLSKey != "" {
		scheme = "wss"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// SIPEndpoint is the host and ports customers connect to: --public-sip-host
// (or the --sip host; the base URL's when --sip listens on every address),
// --sip's port for UDP and TCP, --sip-tls's port.
func (c *Serve) SIPEndpoint() (host string, port, tlsPort int) {
	h, p, err := net.SplitHostPort(c.SIP)
	if err == nil {
		port, _ = strconv.Atoi(p)
	}
	if _, tp, err := net.SplitHostPort(c.SIPTLS); err == nil {
		tlsPort, _ = strconv.Atoi(tp)
	}
	host = c.PublicSIPHost
	if host == "" {
		host = h
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
			if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
				host = u.Hostname()
			}
		}
	}
	return host, port, tlsPort
}

func smsFlags(fs *flag.FlagSet, s *SMS) {
	fs.StringVar(&s.Kannel, "sms-kannel", "", "Kannel sendsms URL for verification codes, e.g. http://127.0.0.1:13013/cgi-bin/sendsms")
	fs.StringVar(&s.KannelUser, "sms-kannel-user", "", "Kannel sendsms-user username")
	fs.StringVar(&s.KannelPassword, "sms-kannel-password", "", "Kannel sendsms-user password (better: SIPDESK_SMS_KANNEL_PASSWORD)")
	fs.StringVar(&s.From, "sms-from", "", "SMS sender id (Kannel's from)")
	fs.StringVar(&s.Webhook, "sms-webhook", "", "URL that gets verification codes as signed JSON (instead of Kannel)")
	fs.StringVar(&s.WebhookSecret, "sms-webhook-secret", "", "HMAC-SHA256 key of --sms-webhook (better: SIPDESK_SMS_WEBHOOK_SECRET)")
	fs.BoolVar(&s.Voice, "voice-calls", false, "offer \"Call me instead\": verification codes read out by a call over --carrier (portal: offer it; edge: place the calls, needs --carrier)")
	fs.StringVar(&s.VoiceFrom, "voice-from", "", "the caller a verification call shows, e.g. +15550100 (default: sipdesk)")
}

func (s *SMS) check() error {
	if s.Kannel != "" && s.Webhook != "" {
		return errors.New("--sms-kannel and --sms-webhook: choose one")
	}
	// A password or secret without its gateway is ignored: nodes may share
	// one environment.
	return nil
}
