package registrar

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// Load indexes the live bindings the store holds (at start) for the
// accounts of the current configuration that may register: this edge's
// own when several edges share the store (the others' flows end at their
// edge and are read from the store per call).
func (s *Registrar) Load(ctx context.Context) error {
	snap := s.pol.Config()
	rs, err := s.pol.StoredBindings(ctx, 0)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if a := snap.Account(r.SIPAccountID); a == nil || a.UsableAtEdge() != nil || (s.cfg.Shared && r.Node != s.cfg.Node) {
			continue
		}
		if b, ok := NewBinding(r); ok {
			s.idx.Put(b)
		}
	}
	return nil
}

// Invalidate drops bindings of accounts that are gone, not active, changed
// auth type or credentials, or whose ACL no longer admits the binding.
// It is the policy's OnChange.
func (s *Registrar) Invalidate(ctx context.Context, old, cur *policy.Snapshot) {
	now := s.now()
	for _, id := range s.idx.Accounts() {
		o := old.Account(id)
		c := cur.Account(id)
		drop := c == nil || c.UsableAtEdge() != nil || c.AuthType != sipdesk.AuthPassword || (o != nil && policy.Invalidated(o, c))
		if drop {
			n := s.idx.DeleteAccount(id)
			// Through the registrar's queue, after its pending writes.
			err := s.pol.SaveBindings(policy.BindingChange{AccountID: id, All: true})
			s.log.Info("registrations dropped", "sip_account", id, "bindings", n, "error", err)
			continue
		}
		for _, b := range s.idx.Lookup(id, now) {
			ap, err := netip.ParseAddrPort(b.Reg.Received)
			if err == nil && !policy.ACLAllows(c, ap) {
				s.idx.Delete(id, b.Reg.Contact)
				err := s.pol.SaveBindings(policy.BindingChange{AccountID: id, Deletes: []string{b.Reg.Contact}})
				s.log.Info("registration dropped", "sip_account", id, "reason", "acl", "error", err)
			}
		}
	}
}

// Expire drops expired bindings from the index.
func (s *Registrar) Expire(now time.Time) { s.idx.Expire(now) }

// DropWS removes the WebSocket bindings received from raddr (its
// connection closed: nothing can reach the browser there any more).
func (s *Registrar) DropWS(raddr string) {
	now := s.now()
	for _, id := range s.idx.Accounts() {
		for _, b := range s.idx.Lookup(id, now) {
			t := strings.ToLower(b.Reg.Transport)
			if (t != "ws" && t != "wss") || b.Reg.Received != raddr {
				continue
			}
			s.idx.Delete(id, b.Reg.Contact)
			err := s.pol.SaveBindings(policy.BindingChange{AccountID: id, Deletes: []string{b.Reg.Contact}})
			s.log.Info("registration dropped", "sip_account", id, "reason", "websocket closed", "error", err)
		}
	}
}

// Target is a binding an inbound call rings: this edge's own flow (Via
// ""), or a binding held by another edge, reached through that edge's SIP
// address Via (the edge-to-edge hop), so that the INVITE reaches the
// device over its own NAT binding or connection.
type Target struct {
	*Binding
	Via string
}

// Bindings are the live bindings of an account on every edge: this edge's
// index, and with a shared store the others' read from it (one indexed
// query per call, no copy kept: a register, unregister or expiry on any
// edge is seen by the next call). A store failure leaves the local ones.
func (s *Registrar) Bindings(id int64) []Target {
	now := s.now()
	local := s.idx.Lookup(id, now)
	out := make([]Target, 0, len(local))
	for _, b := range local {
		out = append(out, Target{Binding: b})
	}
	if !s.cfg.Shared && len(out) > 0 {
		return out // one node: its index holds every binding
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	rs, err := s.pol.StoredBindings(ctx, id)
	if err != nil {
		s.log.Warn("inbound: stored bindings", "sip_account", id, "error", err)
		return out
	}
	for _, r := range rs {
		// With a shared store this edge's flows are in its index (a stored
		// copy it no longer has is being deleted); rows without an edge
		// address, and every row on one node, are rung directly.
		if (s.cfg.Shared && r.Node == s.cfg.Node) || !r.ExpiresAt.After(now) {
			continue
		}
		if !s.cfg.Shared {
			r.EdgeAddr = ""
		}
		b, ok := NewBinding(r)
		if !ok {
			continue
		}
		out = append(out, Target{Binding: b, Via: r.EdgeAddr})
	}
	return out
}

// Local is this edge's live binding of an account's contact (the target
// of an edge-to-edge hop), or nil.
func (s *Registrar) Local(id int64, contact string) *Binding {
	b := s.idx.Get(id, contact)
	if b == nil || !b.Reg.ExpiresAt.After(s.now()) {
		return nil
	}
	return b
}
