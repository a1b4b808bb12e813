package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// codecKind is what the relay understands on either leg. Anything else
// (Opus, G.722, G.729, red, CN …) is ignored.
type codecKind uint8

const (
	kindNone codecKind = iota
	kindPCMU
	kindPCMA
	kindDTMF // telephone-event/8000, RFC 4733
	numKinds
)

func (k codecKind) String() string {
	switch k {
	case kindPCMU:
		return "PCMU"
	case kindPCMA:
		return "PCMA"
	case kindDTMF:
		return "telephone-event"
	}
	return "none"
}

func (k codecKind) audio() bool { return k == kindPCMU || k == kindPCMA }

// carrierPT are the payload types we offer to a carrier.
var carrierPT = [numKinds]uint8{kindPCMU: 0, kindPCMA: 8, kindDTMF: 101}

type codecEntry struct {
	kind codecKind
	pt   uint8
}

// audioDesc is the part of an SDP the relay needs: the first audio m-line.
type audioDesc struct {
	addr   netip.AddrPort // c= address and m= port; the address may be unspecified (hold, ICE)
	proto  string
	codecs []codecEntry // known codecs, in m-line (preference) order
	others []string     // names of the codecs we do not handle, for error messages
}

// firstAudio returns the first PCMU/PCMA entry.
func (d *audioDesc) firstAudio() (codecEntry, bool) {
	for _, c := range d.codecs {
		if c.kind.audio() {
			return c, true
		}
	}
	return codecEntry{}, false
}

// pt returns the payload type of kind, if listed.
func (d *audioDesc) pt(kind codecKind) (uint8, bool) {
	for _, c := range d.codecs {
		if c.kind == kind {
			return c.pt, true
		}
	}
	return 0, false
}

// kinds maps every payload type to its kind.
func (d *audioDesc) kinds() (m [128]codecKind) {
	for _, c := range d.codecs {
		m[c.pt&0x7f] = c.kind
	}
	return m
}

var (
	errNoAudio = errors.New("no audio m-line")
)

// parseAudio parses an SDP and extracts its first audio stream. It never panics
// on garbage; every problem is an error.
func parseAudio(text string) (d *audioDesc, err error) {
	defer func() {
		// pion/sdp is well tested, but a parser of input from the network must
		// never take the process down.
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("malformed SDP: %v", r)
		}
	}()
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty SDP")
	}
	var s sdp.SessionDescription
	if err := s.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("malformed SDP: %w", err)
	}
	var m *sdp.MediaDescription
	for _, md := range s.MediaDescriptions {
		if md.MediaName.Media == "audio" {
			m = md
			break
		}
	}
	if m == nil {
		return nil, errNoAudio
	}
	if m.MediaName.Port.Value <= 0 || m.MediaName.Port.Value > 65535 {
		return nil, fmt.Errorf("audio m-line rejected or invalid port %d", m.MediaName.Port.Value)
	}
	d = &audioDesc{proto: strings.Join(m.MediaName.Protos, "/")}
	ci := m.ConnectionInformation
	if ci == nil {
		ci = s.ConnectionInformation
	}
	addr := netip.IPv4Unspecified()
	if ci != nil && ci.Address != nil {
		a := ci.Address.Address
		if i := strings.IndexByte(a, '/'); i >= 0 { // multicast TTL
			a = a[:i]
		}
		if addr, err = netip.ParseAddr(a); err != nil {
			return nil, fmt.Errorf("c= address %q is not an IP address", ci.Address.Address)
		}
		addr = addr.Unmap()
	}
	d.addr = netip.AddrPortFrom(addr, uint16(m.MediaName.Port.Value))

	rtpmap := map[string]string{}
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(a.Value, " ")
		if ok {
			rtpmap[pt] = strings.TrimSpace(enc)
		}
	}
	for _, f := range m.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			if d.proto == "UDP/DTLS/SCTP" || strings.Contains(d.proto, "SCTP") {
				continue
			}
			return nil, fmt.Errorf("invalid payload type %q", f)
		}
		enc, ok := rtpmap[f]
		if !ok {
			switch n { // static payload types, RFC 3551
			case 0:
				enc = "PCMU/8000"
			case 8:
				enc = "PCMA/8000"
			default:
				enc = "PT" + f
			}
		}
		kind := kindNone
		name, rate, _ := strings.Cut(enc, "/")
		rate, _, _ = strings.Cut(rate, "/")
		switch {
		case strings.EqualFold(name, "PCMU") && rate == "8000":
			kind = kindPCMU
		case strings.EqualFold(name, "PCMA") && rate == "8000":
			kind = kindPCMA
		case strings.EqualFold(name, "telephone-event") && rate == "8000":
			kind = kindDTMF
		}
		if kind == kindNone {
			d.others = append(d.others, name)
			continue
		}
		if _, dup := d.pt(kind); dup {
			continue
		}
		d.codecs = append(d.codecs, codecEntry{kind: kind, pt: uint8(n)})
	}
	return d, nil
}

// plainSDP writes a plain RTP/AVP description toward a carrier.
func plainSDP(ip netip.Addr, port uint16, sessID uint64, codecs []codecEntry) string {
	ipv := "IP4"
	if ip.Is6() {
		ipv = "IP6"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=sipdesk %d 1 IN %s %s\r\ns=sipdesk\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP", sessID, ipv, ip, ipv, ip, port)
	for _, c := range codecs {
		fmt.Fprintf(&b, " %d", c.pt)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		switch c.kind {
		case kindPCMU:
			fmt.Fprintf(&b, "a=rtpmap:%d PCMU/8000\r\n", c.pt)
		case kindPCMA:
			fmt.Fprintf(&b, "a=rtpmap:%d PCMA/8000\r\n", c.pt)
		case kindDTMF:
			fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", c.pt, c.pt)
		}
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return b.String()
}

func describeOthers(others []string) string {
	if len(others) == 0 {
		return "no codec"
	}
	return strings.Join(others, ", ")
}
