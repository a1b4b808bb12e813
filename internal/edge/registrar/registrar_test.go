package registrar

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TestRefreshOnly: a refresh skips the store write while the stored copy
// covers 90 % of the new interval, from the same source and transport.
func TestRefreshOnly(t *testing.T) {
	now := time.Now()
	b := &Binding{Reg: sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp"}, stored: now.Add(3000 * time.Second).Unix()}
	for _, tc := range []struct {
		name string
		r    sipdesk.Registration
		skip bool
	}{
		{"stored copy covers 3000 of 3200 s", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp", ExpiresAt: now.Add(3200 * time.Second)}, true},
		{"stored copy covers 3000 of 3600 s", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp", ExpiresAt: now.Add(3600 * time.Second)}, false},
		{"new source", sipdesk.Registration{Received: "127.0.0.3:5060", Transport: "udp", ExpiresAt: now.Add(60 * time.Second)}, false},
		{"new transport", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "tcp", ExpiresAt: now.Add(60 * time.Second)}, false},
	} {
		if got := refreshOnly(b, &tc.r, now); got != tc.skip {
			t.Errorf("%s: refreshOnly = %v, want %v", tc.name, got, tc.skip)
		}
	}
	if refreshOnly(nil, &sipdesk.Registration{}, now) {
		t.Error("a new binding counts as a refresh")
	}
}

// TestIndexCountAndExpiry: the index's count and its expiry sweep (which
// skips shards whose earliest expiry is still ahead) agree with a plain
// model through puts, refreshes that move an expiry later or earlier,
// deletes and sweeps.
func TestIndexCountAndExpiry(t *testing.T) {
	x := NewIndex()
	type key struct {
		id      int64
		contact string
	}
	model := map[key]time.Time{}
	t0 := time.Unix(1_800_000_000, 0)
	rnd := rand.New(rand.NewPCG(1, 2))
	put := func(id int64, contact string, exp time.Time) {
		x.Put(&Binding{Reg: sipdesk.Registration{SIPAccountID: id, Contact: contact, ExpiresAt: exp}})
		model[key{id, contact}] = exp
	}
	now := t0
	for step := range 3000 {
		id := int64(rnd.IntN(300))
		contact := fmt.Sprintf("sip:d%d@192.0.2.1", rnd.IntN(3))
		switch r := rnd.IntN(10); {
		case r < 6: // register or refresh, 1–120 s ahead (earlier or later than before)
			put(id, contact, now.Add(time.Duration(1+rnd.IntN(120))*time.Second))
		case r < 7:
			x.Delete(id, contact)
			delete(model, key{id, contact})
		case r < 8:
			x.DeleteAccount(id)
			for k := range model {
				if k.id == id {
					delete(model, k)
				}
			}
		default:
			now = now.Add(time.Duration(rnd.IntN(5000)) * time.Millisecond)
			want := 0
			for k, exp := range model {
				if !exp.After(now) {
					delete(model, k)
					want++
				}
			}
			if got := x.Expire(now); got != want {
				t.Fatalf("step %d: Expire dropped %d, want %d", step, got, want)
			}
		}
		if x.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, x.Len(), len(model))
		}
	}
	for k, exp := range model {
		if bs := x.Lookup(k.id, now); !slices.ContainsFunc(bs, func(b *Binding) bool { return b.Reg.Contact == k.contact && b.Reg.ExpiresAt.Equal(exp) }) {
			t.Fatalf("binding %v (expires %v) missing", k, exp)
		}
	}
}
