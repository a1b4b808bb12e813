// Package media bridges a browser's WebRTC leg (ICE, DTLS-SRTP) and a
// carrier's plain RTP/AVP leg in process, with pion/webrtc. Both legs are
// negotiated to G.711 (PCMU preferred, PCMA accepted) and telephone-event, so
// packets are relayed without decoding: only SSRC, sequence number, timestamp
// and payload type are rewritten (and PCMU<->PCMA is a byte table when the two
// sides settle on different laws).
//
// Only this package imports pion.
package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Config is the relay's configuration, shared by all calls.
type Config struct {
	// PortMin and PortMax (inclusive) bound every UDP port the relay binds:
	// the ICE ports toward browsers and the RTP/RTCP pairs toward carriers
	// (--rtp-ports 20000-20999). A call takes three ports.
	PortMin, PortMax uint16
	// PublicIP is the address written in the carrier SDP's c= line and in the
	// ICE host candidates. When it belongs to a local interface the relay binds
	// to it only; otherwise (1:1 NAT, e.g. a cloud VM) it binds to all
	// interfaces and rewrites its host candidates to PublicIP.
	PublicIP netip.Addr
	// Log receives per-call events; nil discards them.
	Log *slog.Logger
}

// Errors the edge may want to tell apart (compare with errors.Is).
var (
	// ErrNoPorts: the RTP port range is exhausted (answer the call 503).
	ErrNoPorts = errors.New("media: no free UDP port in the RTP port range")
	// ErrNoCommonCodec: a leg offered neither PCMU nor PCMA (answer 488).
	ErrNoCommonCodec = errors.New("media: no common codec (PCMU or PCMA required)")
	// ErrClosed: the bridge was closed.
	ErrClosed = errors.New("media: bridge closed")
)

const (
	gatherTimeout  = 5 * time.Second  // host candidates on one address take milliseconds
	connectTimeout = 30 * time.Second // answer given, but the browser never connected
)

// Relay creates bridges. It is safe for concurrent use.
type Relay struct {
	cfg    Config
	log    *slog.Logger
	bindIP netip.Addr // address the plain RTP sockets bind to
	local  bool       // PublicIP is on a local interface

	mu   sync.Mutex
	next uint16 // where the next port search starts
}

// NewRelay checks cfg and returns a Relay.
func NewRelay(cfg Config) (*Relay, error) {
	if cfg.PortMin == 0 || cfg.PortMax < cfg.PortMin {
		return nil, fmt.Errorf("media: invalid RTP port range %d-%d", cfg.PortMin, cfg.PortMax)
	}
	if int(cfg.PortMax)-int(cfg.PortMin) < 2 {
		return nil, fmt.Errorf("media: RTP port range %d-%d too small: a call needs 3 ports", cfg.PortMin, cfg.PortMax)
	}
	if !cfg.PublicIP.IsValid() || cfg.PublicIP.IsUnspecified() {
		return nil, errors.New("media: PublicIP is required")
	}
	cfg.PublicIP = cfg.PublicIP.Unmap()
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, log: log, next: cfg.PortMin}
	r.local = isLocalAddr(cfg.PublicIP)
	if r.local {
		r.bindIP = cfg.PublicIP
	} else if cfg.PublicIP.Is4() {
		r.bindIP = netip.IPv4Unspecified()
	} else {
		r.bindIP = netip.IPv6Unspecified()
	}
	return r, nil
}

func isLocalAddr(ip netip.Addr) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// allocPair binds an even RTP port and the RTCP port above it, both in range.
// The RTCP socket is held (so nobody else gets it and carriers' RTCP is not
// answered with ICMP) but not read: its kernel buffer just fills and drops.
func (r *Relay) allocPair() (rtpConn, rtcpConn *net.UDPConn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lo, hi := int(r.cfg.PortMin), int(r.cfg.PortMax)
	if lo%2 == 1 {
		lo++
	}
	n := (hi - lo + 1) / 2 // number of even/odd pairs in range
	if n <= 0 {
		return nil, nil, ErrNoPorts
	}
	start := int(r.next)
	if start < lo || start+1 > hi {
		start = lo
	}
	start -= (start - lo) % 2
	for i := range n {
		p := lo + ((start-lo)/2+i)%n*2
		c1, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.bindIP, uint16(p))))
		if err != nil {
			continue
		}
		c2, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.bindIP, uint16(p+1))))
		if err != nil {
			c1.Close()
			continue
		}
		r.next = uint16(p + 2)
		return c1, c2, nil
	}
	return nil, nil, fmt.Errorf("%w %d-%d", ErrNoPorts, r.cfg.PortMin, r.cfg.PortMax)
}

// newPeerConnection builds a PeerConnection whose MediaEngine knows only the
// given audio codecs (in preference order) and, if dtmf, telephone-event.
// Each call gets its own API: pion's MediaEngine must not be shared.
func (r *Relay) newPeerConnection(audio []codecKind, dtmf bool) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	for _, k := range audio {
		mime := webrtc.MimeTypePCMU
		if k == kindPCMA {
			mime = webrtc.MimeTypePCMA
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000, Channels: 1},
			PayloadType:        webrtc.PayloadType(carrierPT[k]),
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	if dtmf {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 8000, SDPFmtpLine: "0-16"},
			PayloadType:        webrtc.PayloadType(carrierPT[kindDTMF]),
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}

	var se webrtc.SettingEngine
	if err := se.SetEphemeralUDPPortRange(r.cfg.PortMin, r.cfg.PortMax); err != nil {
		return nil, err
	}
	if r.cfg.PublicIP.Is4() {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	}
	// A server has no use for mDNS: browsers' .local candidates are ignored
	// and their address is learnt from their connectivity checks (prflx).
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if r.local {
		pub := r.cfg.PublicIP
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == pub
		})
		if pub.IsLoopback() {
			se.SetIncludeLoopbackCandidate(true)
		}
	} else {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        []string{r.cfg.PublicIP.String()},
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, err
		}
	}
	// Disconnected after 5 s without traffic, failed 10 s later: then the
	// bridge closes itself and tells the edge.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)

	// No interceptors (NACK, TWCC, reports): audio is relayed as is and every
	// ticker per call costs CPU at scale.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{})
}

// ParsePortRange parses the --rtp-ports value, "20000-20999".
func ParsePortRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("RTP port range %q: want MIN-MAX, e.g. 20000-20999", s)
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l+2 {
		return 0, 0, fmt.Errorf("RTP port range %q: want MIN-MAX with 1 ≤ MIN and MAX ≥ MIN+2", s)
	}
	return uint16(l), uint16(h), nil
}
