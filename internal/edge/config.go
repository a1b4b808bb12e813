package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/transport"
	"github.com/sipdesk/sipdesk/internal/media"
)

// Config of the SIP edge.
type Config struct {
	Addr                     string // UDP and TCP, e.g. 127.0.0.1:5060
	TLSAddr, TLSCert, TLSKey string
	// WSAddr listens for SIP over WebSocket (RFC 7118), WSS when TLSCert and
	// TLSKey are set; WS tunes it (Origin allow-list, timeouts, pings).
	WSAddr string
	WS     transport.WSConfig
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
	// Shared: several edges share the store (PostgreSQL). REGISTER waits
	// for its store write (503 after 2 s) and lists every edge's contacts;
	// inbound calls ring every edge's bindings, through the holding edge.
	Shared bool
	// NodeTTL: with a shared store, inbound calls skip the bindings of
	// edges whose heartbeat is older than this (dead or cut off: nothing
	// reaches their devices); 0 rings every stored binding.
	NodeTTL time.Duration
	// MaxContacts is the per-SIP-account contact limit (default 10;
	// negative: none).
	MaxContacts  int
	PollInterval time.Duration // fallback config version poll (changes are signalled), default 1s
	// VoiceCalls: this edge takes the voice calls portals ask for ("Call me
	// instead", requests.go); it needs Carrier.
	VoiceCalls bool
	// RequestPoll is the fallback check for edge requests (new ones are
	// signalled like config changes), default 1s.
	RequestPoll time.Duration
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
	// Channels is the channel-limit admission (policy.NewChannels),
	// asked before a call is forwarded, outbound or inbound; its lease
	// renewal runs for the server's life. nil admits everything.
	Channels *policy.ChannelAdmission
	// Records stores call records (usually the same ChannelAdmission,
	// which batches them); nil: none.
	Records policy.CallRecorder
	// Registry gets the edge's Prometheus metrics; nil: not exported.
	Registry *prometheus.Registry
	// RingTimeout bounds how long a call may ring (default RingTimeout).
	RingTimeout time.Duration
	// RetryAfter is the Retry-After of 503 refusals (default 5s).
	RetryAfter time.Duration
	// OverloadWait: while the edge's goroutines wait longer than this for
	// a CPU (90th percentile) or every datagram that long in the UDP socket,
	// in two 250 ms samples in a row, new INVITEs get 503 with Retry-After
	// (overload.go); default 100 ms, negative: never.
	OverloadWait time.Duration
	// DrainTimeout is how long the calls up may go on once Run's context
	// is done (graceful stop): new calls get 503 with Retry-After and
	// OPTIONS 503 meanwhile; then the calls left are ended with BYE. 0:
	// ended at once.
	DrainTimeout time.Duration
	// SessionExpires is the session interval (RFC 4028) offered to callers
	// that support timers without asking one (default 1800s; negative:
	// no session timers, probing only); MinSE the shortest accepted
	// (default 90s).
	SessionExpires, MinSE time.Duration
	// ProbeInterval is the period of in-dialog OPTIONS to callers without
	// session timers (default 60s; negative disables); ProbeTimeout how
	// long a probe may stay unanswered (default 32s).
	ProbeInterval, ProbeTimeout time.Duration

	// AccountGuard is the failure budget per SIP account (shield.AccountGuard):
	// zero fields take the shield.DefaultGuard* values; Failures < 0 turns
	// it off.
	AccountGuard shield.GuardConfig
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
	if c.RequestPoll <= 0 {
		c.RequestPoll = time.Second
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
	c.AccountGuard = guardDefaults(c.AccountGuard)
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
		c.PollInterval = time.Second
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
	if c.RingTimeout <= 0 {
		c.RingTimeout = b2bua.RingTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
	if c.OverloadWait == 0 {
		c.OverloadWait = 100 * time.Millisecond
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

// MediaConfig is the media relay of the edge.
type MediaConfig struct {
	// PortMin and PortMax bound the relay's UDP ports (--rtp-ports); 0: no
	// relay (WebRTC offers are then refused with 488).
	PortMin, PortMax uint16
	// PublicIP is written in SDPs and ICE candidates (default: the host of
	// AdvertiseHost when it is an IP).
	PublicIP netip.Addr
}

// newMediaRelay is the media relay of cfg, nil when it has no ports.
func newMediaRelay(cfg *Config, log *slog.Logger) (*media.Relay, error) {
	mc := cfg.Media
	if mc.PortMin == 0 {
		return nil, nil
	}
	if !mc.PublicIP.IsValid() {
		if a, err := netip.ParseAddr(cfg.AdvertiseHost); err == nil {
			mc.PublicIP = a
		}
	}
	r, err := media.NewRelay(media.Config{PortMin: mc.PortMin, PortMax: mc.PortMax, PublicIP: mc.PublicIP, Log: log.With("component", "media")})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// guardDefaults fills the zero fields of a failure budget.
func guardDefaults(g shield.GuardConfig) shield.GuardConfig {
	if g.Failures == 0 {
		g.Failures = shield.DefaultGuardFailures
	}
	if g.Window <= 0 {
		g.Window = shield.DefaultGuardWindow
	}
	if g.Duration <= 0 {
		g.Duration = shield.DefaultGuardDuration
	}
	if g.Trust <= 0 {
		g.Trust = shield.DefaultGuardTrust
	}
	return g
}
