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
// accounts of the current configuration that may register.
func (s *Registrar) Load(ctx context.Context) error {
	snap := s.pol.Config()
	rs, err := s.pol.StoredBindings(ctx, 0)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if a := snap.Account(r.SIPAccountID); a == nil || a.UsableAtEdge() != nil {
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

// Bindings are the live bindings of an account: this node's, else those
// the store holds (another node may have them).
func (s *Registrar) Bindings(id int64) []*Binding {
	if bs := s.idx.Lookup(id, s.now()); len(bs) > 0 {
		return bs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rs, _ := s.pol.StoredBindings(ctx, id)
	var out []*Binding
	for _, r := range rs {
		if b, ok := NewBinding(r); ok {
			out = append(out, b)
		}
	}
	return out
}
