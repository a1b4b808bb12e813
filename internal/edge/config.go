package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config of the SIP edge.
type Config struct {
	Addr                     string // UDP and TCP, e.g. 127.0.0.1:5060
	TLSAddr, TLSCert, TLSKey string
	// WSAddr listens for SIP over WebSocket (RFC 7118), WSS when TLSCert and
	// TLSKey are set; WS tunes it (Origin allow-list, timeouts, pings).
	WSAddr string
	WS     WSConfig
	// Media bridges calls with a WebRTC leg to plain RTP (webrtc.go); nil:
	// calls keep their SDP as sent.
	Media MediaConfig
	// AdvertiseHost is the host put in Via/Contact toward peers; default the
	// host of Addr (or 127.0.0.1 when Addr listens on every address).
	AdvertiseHost string
	Realm         string // default "sipdesk.local"
	Carrier       string // "sip:host:port" (";transport=tcp" allowed)
	// CarrierAddrs are IPs, CIDRs or IP:port; default: the Carrier host, any port.
	CarrierAddrs                     []string
	CarrierUsername, CarrierPassword string
	MaxCallDuration                  time.Duration // default 4h
	Node                             string
	NonceKey                         []byte        // HMAC key for stateless nonces, shared by all nodes
	BanFailures                      int           // default 5; negative disables bans
	BanWindow, BanDuration           time.Duration // 60s, 10m
	// ChallengeRate bans a source that sends more than this many requests
	// without credentials per second (a scan or flood: each would get a
	// challenge); 0 disables it. The carrier is exempt.
	ChallengeRate          int
	MinExpires, MaxExpires time.Duration // 60s, 3600s
	PollInterval           time.Duration // config version poll, default 250ms
	// UDPReadBuffer is the socket receive buffer asked for (default 8 MB).
	UDPReadBuffer int
	// TCPIdleTimeout closes TCP/TLS connections that stay silent (default
	// 15m); TCPWriteTimeout bounds a blocked write (default 10s).
	TCPIdleTimeout, TCPWriteTimeout time.Duration
	// SHA256First puts the SHA-256 challenge before the MD5 one (RFC 8760
	// order of preference); the default puts MD5 first for clients that
	// only read the first challenge.
	SHA256First bool
	// MD5OnlyUserAgents are User-Agent prefixes that get an MD5-only
	// challenge: libre before 2.0 (baresip 1.x) fails the whole
	// authentication when any challenge is not MD5. Default
	// DefaultMD5OnlyUserAgents; an empty non-nil slice disables it.
	MD5OnlyUserAgents []string
	// Admission is asked before a call is forwarded, outbound or inbound
	// (channel limits: NewChannels); nil admits everything. When it also
	// implements Runner, Run runs for the server's life (lease renewal);
	// when it implements CallRecorder it gets the call records.
	Admission Admission
	// Records stores call records; default: the Admission when it is a
	// CallRecorder, else none.
	Records CallRecorder
	// Registry gets the edge's Prometheus metrics; nil: not exported.
	Registry *prometheus.Registry
	// RingTimeout bounds how long a call may ring (default RingTimeout).
	RingTimeout time.Duration
	// RetryAfter is the Retry-After of 503 refusals (default 5s).
	RetryAfter time.Duration
	// SessionExpires is the session interval (RFC 4028) offered to callers
	// that support timers without asking one (default 1800s; negative:
	// no session timers, probing only); MinSE the shortest accepted
	// (default 90s).
	SessionExpires, MinSE time.Duration
	// ProbeInterval is the period of in-dialog OPTIONS to callers without
	// session timers (default 60s; negative disables); ProbeTimeout how
	// long a probe may stay unanswered (default 32s).
	ProbeInterval, ProbeTimeout time.Duration
}

// Runner is an Admission with a background loop (lease renewal).
type Runner interface {
	Run(ctx context.Context)
}

func (c *Config) setDefaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:5060"
	}
	if c.Realm == "" {
		c.Realm = "sipdesk.local"
	}
	if c.MaxCallDuration <= 0 {
		c.MaxCallDuration = 4 * time.Hour
	}
	if c.Node == "" {
		c.Node = "edge"
	}
	if len(c.NonceKey) < 16 {
		return errors.New("edge: NonceKey must have at least 16 bytes")
	}
	if c.BanFailures == 0 {
		c.BanFailures = 5
	}
	if c.BanWindow <= 0 {
		c.BanWindow = 60 * time.Second
	}
	if c.BanDuration <= 0 {
		c.BanDuration = 10 * time.Minute
	}
	if c.MinExpires <= 0 {
		c.MinExpires = 60 * time.Second
	}
	if c.MaxExpires <= 0 {
		c.MaxExpires = 3600 * time.Second
	}
	if c.MaxExpires < c.MinExpires {
		c.MaxExpires = c.MinExpires
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.UDPReadBuffer <= 0 {
		c.UDPReadBuffer = 8 << 20
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = 15 * time.Minute
	}
	if c.TCPWriteTimeout <= 0 {
		c.TCPWriteTimeout = 10 * time.Second
	}
	if c.AdvertiseHost == "" {
		h, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return fmt.Errorf("edge: bad Addr %q: %w", c.Addr, err)
		}
		if a, err := netip.ParseAddr(h); err != nil || a.IsUnspecified() {
			h = "127.0.0.1"
		}
		c.AdvertiseHost = h
	}
	if c.MD5OnlyUserAgents == nil {
		c.MD5OnlyUserAgents = DefaultMD5OnlyUserAgents
	}
	if c.Admission == nil {
		c.Admission = nopAdmission{}
	}
	if c.Records == nil {
		if r, ok := c.Admission.(CallRecorder); ok {
			c.Records = r
		}
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = RingTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.SessionExpires == 0 {
		c.SessionExpires = 1800 * time.Second
	}
	if c.MinSE <= 0 {
		c.MinSE = 90 * time.Second
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 60 * time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 32 * time.Second
	}
	return nil
}

// DefaultMD5OnlyUserAgents are the clients known to fail on a SHA-256
// challenge next to the MD5 one.
var DefaultMD5OnlyUserAgents = []string{"baresip v0.", "baresip v1."}

// addrMatcher matches source addresses against IPs, CIDRs and IP:port.
type addrMatcher struct {
	prefixes []netip.Prefix
	ports    map[netip.AddrPort]bool
}

func parseAddrMatcher(list []string) (*addrMatcher, error) {
	m := &addrMatcher{ports: map[netip.AddrPort]bool{}}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			m.ports[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			m.prefixes = append(m.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			// A host name: resolve once.
			ips, lerr := net.LookupIP(s)
			if lerr != nil || len(ips) == 0 {
				return nil, fmt.Errorf("edge: carrier address %q: not an IP, CIDR or IP:port", s)
			}
			for _, ip := range ips {
				if a, ok := netip.AddrFromSlice(ip); ok {
					a = a.Unmap()
					m.prefixes = append(m.prefixes, netip.PrefixFrom(a, a.BitLen()))
				}
			}
			continue
		}
		a = a.Unmap()
		m.prefixes = append(m.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return m, nil
}

// Match reports whether ap is one of the addresses; port 0 matches by IP only.
func (m *addrMatcher) Match(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	for _, p := range m.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return len(m.ports) > 0 && m.ports[netip.AddrPortFrom(a, ap.Port())]
}
