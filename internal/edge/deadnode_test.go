package edge

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// TestStoredBindingsSkipDeadNodes: with NodeTTL, an inbound call's
// bindings leave out those held by an edge whose heartbeat stopped (its
// flows died with it: ringing them would hold the caller until the fork
// times out), and keep them again once it beats.
func TestStoredBindingsSkipDeadNodes(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	a := f.passwordAccount(f.customer(), "deadnode", "Dead-Node-Pass-1")
	now := time.Now()
	f.update(func(tx sipdesk.Tx) error {
		for _, n := range []*sipdesk.Node{{Name: "alive", Role: "edge", Heartbeat: now}, {Name: "dead", Role: "edge", Heartbeat: now.Add(-time.Minute)}} {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		for _, node := range []string{"alive", "dead", ""} {
			r := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:" + node + "x@192.0.2.1:5060", Received: "192.0.2.1:5060",
				Transport: "udp", CallID: node, CSeq: 1, Node: node, ExpiresAt: now.Add(time.Hour)}
			if err := tx.PutRegistration(r); err != nil {
				return err
			}
		}
		return nil
	})
	nodes := func(ttl time.Duration) []string {
		t.Helper()
		rs, err := policy.New(st, policy.Options{NodeTTL: ttl}).StoredBindings(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Node)
		}
		slices.Sort(out)
		return out
	}
	if got := nodes(10 * time.Second); !slices.Equal(got, []string{"", "alive"}) {
		t.Fatalf("bindings of nodes %q, want the live node's and the node-less one", got)
	}
	if got := nodes(0); len(got) != 3 {
		t.Fatalf("without NodeTTL: bindings of nodes %q, want all 3", got)
	}
	f.update(func(tx sipdesk.Tx) error {
		return tx.PutNode(&sipdesk.Node{Name: "dead", Role: "edge", Heartbeat: time.Now()})
	})
	if got := nodes(10 * time.Second); len(got) != 3 {
		t.Fatalf("after the node beats again: bindings of nodes %q, want all 3", got)
	}
}
