package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// Snapshot is the immutable view of the configuration the edge answers
// from; a new one replaces it when the store's config version changes.
type Snapshot struct {
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

func emptySnapshot() *Snapshot {
	return &Snapshot{version: -1, byUser: map[string]*sipdesk.SIPAccount{}, byID: map[int64]*sipdesk.SIPAccount{},
		ipPort: map[netip.AddrPort][]*sipdesk.SIPAccount{}, ipHost: map[netip.Addr][]*sipdesk.SIPAccount{}, dids: map[string]*sipdesk.DID{}, custs: map[int64]*sipdesk.Customer{},
		rules: map[int64]*sipdesk.CallerIDRule{}}
}

// LoadSnapshot reads everything the edge needs in one read transaction and
// indexes it with NewSnapshot (nil and the error when the read fails).
func LoadSnapshot(ctx context.Context, st sipdesk.Store, version int64) (*Snapshot, error) {
	var (
		accts []*sipdesk.SIPAccount
		dids  []*sipdesk.DID
		custs []*sipdesk.Customer
		rules []*sipdesk.CallerIDRule
	)
	err := st.View(ctx, func(tx sipdesk.Tx) error {
		var err error
		if accts, err = tx.SIPAccounts(0); err != nil {
			return fmt.Errorf("sip accounts: %w", err)
		}
		if dids, err = tx.DIDs(0); err != nil {
			return fmt.Errorf("dids: %w", err)
		}
		if custs, err = tx.Customers(); err != nil {
			return fmt.Errorf("customers: %w", err)
		}
		if rules, err = tx.Rules(0); err != nil {
			return fmt.Errorf("caller id rules: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewSnapshot(version, accts, dids, custs, rules), nil
}

// NewSnapshot indexes a configuration read at version: accounts by
// username, id and source address, DIDs by number, customers and Caller ID
// rules by id. The snapshot keeps the values; do not change them after.
// LoadSnapshot builds every snapshot of a running edge with it; tests build
// one from values without a store.
func NewSnapshot(version int64, accts []*sipdesk.SIPAccount, dids []*sipdesk.DID, custs []*sipdesk.Customer, rules []*sipdesk.CallerIDRule) *Snapshot {
	s := emptySnapshot()
	s.version = version
	for _, c := range custs {
		s.custs[c.ID] = c
	}
	for _, a := range accts {
		if c := s.custs[a.CustomerID]; c != nil && c.Suspended() {
			// A copy: UsableAtEdge refuses it wherever the edge asks.
			cp := *a
			cp.CustomerSuspended = true
			a = &cp
		}
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
	for _, d := range dids {
		s.dids[normDID(d.Number)] = d
	}
	for _, r := range rules {
		s.rules[r.ID] = r
	}
	return s
}

func normDID(n string) string {
	if d, err := sipdesk.NormalizeNumber(n); err == nil {
		return "+" + d
	}
	return strings.TrimSpace(n)
}

// IPAccounts returns the IP accounts that own source src: those with an
// entry for its address and port if any, else those with an entry for its
// address (or a range holding it) without a port.
func (s *Snapshot) IPAccounts(src netip.AddrPort) []*sipdesk.SIPAccount {
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

// ACLAllows reports whether a password account's optional ACL admits
// source src (entries with a port admit that port only).
func ACLAllows(acct *sipdesk.SIPAccount, src netip.AddrPort) bool {
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

// Invalidated reports whether the registrations of old must be dropped in
// the new snapshot: gone, not active, not a password account any more, or
// new credentials.
func Invalidated(old, cur *sipdesk.SIPAccount) bool {
	if cur == nil || cur.UsableAtEdge() != nil || cur.AuthType != sipdesk.AuthPassword {
		return true
	}
	return old.Username != cur.Username || old.Digest != cur.Digest
}

// Version is the config version the snapshot was read at (-1: empty).
func (s *Snapshot) Version() int64 { return s.version }

// AccountByUser is the password account of a digest or JWT username.
func (s *Snapshot) AccountByUser(u string) *sipdesk.SIPAccount { return s.byUser[u] }

// Account is a SIP account by id, or nil.
func (s *Snapshot) Account(id int64) *sipdesk.SIPAccount { return s.byID[id] }

// DID is the DID routed for a dialed number, or nil.
func (s *Snapshot) DID(number string) *sipdesk.DID { return s.dids[normDID(number)] }
