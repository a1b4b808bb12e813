// Package config reads sipdesk's flags, each also settable from the
// environment as SIPDESK_<FLAG> (e.g. SIPDESK_DATA), with the Contract's
// defaults. There is no global configuration: main passes values down.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
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
	WSOrigins        string // comma-separated Origin allow-list of --sip-ws
	Carrier          string
	CarrierAddrs     string
	CarrierUsername  string
	CarrierPassword  string
	AllowPrivateIPs  bool
	HoldIPAccounts   bool
	MaxCallDuration  time.Duration
	RTPPorts         string
	BanFailures      int
	BanWindow        time.Duration
	BanDuration      time.Duration
	ChallengeRate    int
	PaidChannelLimit int
	LogLevel         string
	DrainTimeout     time.Duration // graceful stop: how long calls may go on
	LeaseTTL         time.Duration // SIPDESK_LEASE_TTL (tests, no flag): lease life, renewal, fence, sweep scaled; 0: default
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
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:8080", "portal and API listen address")
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
	fs.StringVar(&c.WSOrigins, "ws-origins", "", "comma-separated Origins allowed on --sip-ws (default: the --base-url origin)")
	fs.StringVar(&c.Carrier, "carrier", "", "carrier trunk URI, e.g. sip:203.0.113.5:5060")
	fs.StringVar(&c.CarrierAddrs, "carrier-addrs", "", "comma-separated IPs, CIDRs or IP:port of the carrier (default: the --carrier host)")
	fs.StringVar(&c.CarrierUsername, "carrier-username", "", "digest username toward the carrier")
	fs.StringVar(&c.CarrierPassword, "carrier-password", "", "digest password toward the carrier")
	fs.BoolVar(&c.HoldIPAccounts, "hold-ip-accounts", false, "keep new IP accounts in process until `admin sip-account approve`")
	fs.DurationVar(&c.MaxCallDuration, "max-call-duration", 4*time.Hour, "maximum duration of a call")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long calls up may go on (new calls get 503) before they are ended")
	fs.StringVar(&c.RTPPorts, "rtp-ports", "20000-20999", "UDP port range of the media relay")
	fs.IntVar(&c.BanFailures, "ban-failures", 5, "failed SIP authentications from one address that ban it (0: never ban)")
	fs.DurationVar(&c.BanWindow, "ban-window", time.Minute, "window in which --ban-failures are counted")
	fs.DurationVar(&c.BanDuration, "ban-duration", 10*time.Minute, "how long a banned address is ignored")
	fs.IntVar(&c.ChallengeRate, "challenge-rate", 200, "requests without credentials per second from one address that ban it as a flood (0: off)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	switch c.Role {
	case "all", "portal", "edge":
	default:
		return nil, fmt.Errorf("--role must be all, portal or edge, not %q", c.Role)
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
