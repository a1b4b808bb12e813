package shield

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// AddrMatcher matches source addresses against IPs, CIDRs and IP:port.
type AddrMatcher struct {
	prefixes []netip.Prefix
	ports    map[netip.AddrPort]bool
}

// ParseAddrMatcher reads a list of IPs, CIDRs, IP:port or host names (resolved once).
func ParseAddrMatcher(list []string) (*AddrMatcher, error) {
	m := &AddrMatcher{ports: map[netip.AddrPort]bool{}}
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
func (m *AddrMatcher) Match(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	for _, p := range m.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return len(m.ports) > 0 && m.ports[netip.AddrPortFrom(a, ap.Port())]
}
