package edge

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// snapshot is the immutable view of the configuration the edge answers
// from; a new one replaces it when the store's config version changes.
type snapshot struct {
	version int64
	byUser  map[string]*sipdesk.SIPAccount
	byID    map[int64]*sipdesk.SIPAccount
	// IP accounts: entries with a port (address:port, matched first and
	// alone), then exact host addresses, then wider CIDRs.
	ipPort map[netip.AddrPort][]*sipdesk.SIPAccount
	ipHost map[netip.Addr][]*sipdesk.SIPAccount
	ipNets []ipNet
	dids   map[string]*sipdesk.DID // by "+digits"
	custs  map[int64]*sipdesk.Customer
	rules  map[int64]*sipdesk.CallerIDRule
}

type ipNet struct {
	p netip.Prefix
	a *sipdesk.SIPAccount
}

func emptySnapshot() *snapshot {
	return &snapshot{version: -1, byUser: map[string]*sipdesk.SIPAccount{}, byID: map[int64]*sipdesk.SIPAccount{},
		ipPort: map[netip.AddrPort][]*sipdesk.SIPAccount{}, ipHost: map[netip.Addr][]*sipdesk.SIPAccount{}, dids: map[string]*sipdesk.DID{}, custs: map[int64]*sipdesk.Customer{},
		rules: map[int64]*sipdesk.CallerIDRule{}}
}

// loadSnapshot reads everything the edge needs in one read transaction.
func loadSnapshot(ctx context.Context, st sipdesk.Store, version int64) (*snapshot, error) {
	s := emptySnapshot()
	s.version = version
	err := st.View(ctx, func(tx sipdesk.Tx) error {
		accts, err := tx.SIPAccounts(0)
		if err != nil {
			return fmt.Errorf("sip accounts: %w", err)
		}
		for _, a := range accts {
			s.byID[a.ID] = a
			switch a.AuthType {
			case sipdesk.AuthPassword:
				if a.Username != "" {
					s.byUser[a.Username] = a
				}
			case sipdesk.AuthIP:
				for _, p := range a.AllowedIPs {
					if p.Port != 0 {
						ap := netip.AddrPortFrom(p.Addr().Unmap(), p.Port)
						s.ipPort[ap] = append(s.ipPort[ap], a)
					} else if p.IsSingleIP() {
						ad := p.Addr().Unmap()
						s.ipHost[ad] = append(s.ipHost[ad], a)
					} else {
						s.ipNets = append(s.ipNets, ipNet{p.Prefix, a})
					}
				}
			}
		}
		dids, err := tx.DIDs(0)
		if err != nil {
			return fmt.Errorf("dids: %w", err)
		}
		for _, d := range dids {
			s.dids[normDID(d.Number)] = d
		}
		custs, err := tx.Customers()
		if err != nil {
			return fmt.Errorf("customers: %w", err)
		}
		for _, c := range custs {
			s.custs[c.ID] = c
		}
		rules, err := tx.Rules(0)
		if err != nil {
			return fmt.Errorf("caller id rules: %w", err)
		}
		for _, r := range rules {
			s.rules[r.ID] = r
		}
		return nil
	})
	return s, err
}

func normDID(n string) string {
	if d, err := sipdesk.NormalizeNumber(n); err == nil {
		return "+" + d
	}
	return strings.TrimSpace(n)
}

// ipAccounts returns the IP accounts that own source src: those with an
// entry for its address and port if any, else those with an entry for its
// address (or a range holding it) without a port.
func (s *snapshot) ipAccounts(src netip.AddrPort) []*sipdesk.SIPAccount {
	a := src.Addr().Unmap()
	if len(s.ipPort) > 0 {
		if out := s.ipPort[netip.AddrPortFrom(a, src.Port())]; len(out) > 0 {
			return out
		}
	}
	out := s.ipHost[a]
	if len(s.ipNets) == 0 {
		return out
	}
	var extra []*sipdesk.SIPAccount
	for _, n := range s.ipNets {
		if n.p.Contains(a) {
			extra = append(extra, n.a)
		}
	}
	if len(extra) == 0 {
		return out
	}
	return append(append([]*sipdesk.SIPAccount(nil), out...), extra...)
}

// aclAllowsFrom reports whether a password account's optional ACL admits
// source src (entries with a port admit that port only).
func aclAllowsFrom(acct *sipdesk.SIPAccount, src netip.AddrPort) bool {
	if len(acct.AllowedIPs) == 0 {
		return true
	}
	for _, p := range acct.AllowedIPs {
		if p.Matches(src) {
			return true
		}
	}
	return false
}

// invalidated reports whether the registrations of old must be dropped in
// the new snapshot: gone, not active, not a password account any more, or
// new credentials.
func invalidated(old, cur *sipdesk.SIPAccount) bool {
	if cur == nil || cur.Status != sipdesk.StatusActive || cur.AuthType != sipdesk.AuthPassword {
		return true
	}
	return old.Username != cur.Username || old.Digest != cur.Digest
}

// statusRefusal is the refusal for an account's status, or RefuseNone.
func statusRefusal(a *sipdesk.SIPAccount) Refusal {
	switch a.Status {
	case sipdesk.StatusActive:
		return RefuseNone
	case sipdesk.StatusInProcess:
		return RefuseNotReady
	default:
		return RefuseInactive
	}
}
