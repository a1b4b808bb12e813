package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Edge requests (store: edgerequest.go). Kinds are unique per test, so the
// claims see only this test's rows.

func insertEdgeRequests(t *testing.T, s sipdesk.Store, rs ...*sipdesk.EdgeRequest) {
	t.Helper()
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range rs {
			if err := tx.InsertEdgeRequest(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func claimEdge(t *testing.T, s sipdesk.Store, node string, kinds []string, now, until time.Time) (*sipdesk.EdgeRequest, error) {
	var r *sipdesk.EdgeRequest
	err := s.Update(t.Context(), func(tx sipdesk.Tx) (err error) {
		r, err = tx.ClaimEdgeRequest(node, kinds, now, until)
		return err
	})
	return r, err
}

func testEdgeRequestRoundTrip(t *testing.T, su *suite) {
	s := su.open(t)
	kind := "k" + uniq()
	r := &sipdesk.EdgeRequest{Kind: kind, Node: "edge-a", Payload: `{"call_id":"c1"}`, MaxAttempts: 2,
		ExpiresAt: at(time.Minute), CreatedAt: at(0)}
	before, err := s.ConfigVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	insertEdgeRequests(t, s, r)
	if after, _ := s.ConfigVersion(t.Context()); after <= before {
		t.Errorf("config version %d after inserting a request, want above %d (the edges' wake-up)", after, before)
	}
	equal(t, "state", r.State, sipdesk.EdgeQueued)
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.EdgeRequest(r.ID)
		if err != nil {
			return err
		}
		equal(t, "EdgeRequest", got, r)
		_, err = tx.EdgeRequest(r.ID + 1000000)
		wantCode(t, "missing request", err, sipdesk.ENotFound, "")
		return nil
	})

	// Another node and another kind do not get it; its node does.
	now := at(0)
	_, err = claimEdge(t, s, "edge-b", []string{kind}, now, now.Add(time.Minute))
	wantCode(t, "claim by another node", err, sipdesk.ENotFound, "")
	_, err = claimEdge(t, s, "edge-a", []string{"other" + kind}, now, now.Add(time.Minute))
	wantCode(t, "claim of another kind", err, sipdesk.ENotFound, "")
	got, err := claimEdge(t, s, "edge-a", []string{"other" + kind, kind}, now, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "claimed", []any{got.ID, got.State, got.ClaimedBy, got.Attempts, got.Payload, got.ClaimedUntil},
		[]any{r.ID, sipdesk.EdgeClaimed, "edge-a", 1, r.Payload, ms(now.Add(time.Minute))})
	_, err = claimEdge(t, s, "edge-a", []string{kind}, now, now.Add(time.Minute))
	wantCode(t, "second claim", err, sipdesk.ENotFound, "")

	// Only the holder finishes it; the result stays, the payload goes.
	err = txErr(t, s, func(tx sipdesk.Tx) error { return tx.FinishEdgeRequest(r.ID, "edge-b", sipdesk.EdgeDone, "x", now) })
	wantCode(t, "finish by another node", err, sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error {
		return tx.FinishEdgeRequest(r.ID, "edge-a", sipdesk.EdgeFailed, "no such call", now)
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.EdgeRequest(r.ID)
		if err != nil {
			return err
		}
		equal(t, "finished", []any{got.State, got.Result, got.Payload}, []any{sipdesk.EdgeFailed, "no such call", ""})
		return nil
	})
	err = txErr(t, s, func(tx sipdesk.Tx) error { return tx.FinishEdgeRequest(r.ID, "edge-a", sipdesk.EdgeDone, "x", now) })
	wantCode(t, "finish twice", err, sipdesk.ENotFound, "")
}

// Two nodes on two stores claim the same requests at once: each request is
// claimed exactly once (two edges never both place the call).
func testEdgeRequestClaimOnce(t *testing.T, su *suite) {
	stores := []sipdesk.Store{su.open(t), su.open(t)}
	kind := "k" + uniq()
	const n = 10
	for range n {
		insertEdgeRequests(t, stores[0], &sipdesk.EdgeRequest{Kind: kind, Payload: "{}", ExpiresAt: time.Now().Add(time.Minute)})
	}
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	for i := range 8 {
		node := fmt.Sprintf("edge-%d", i)
		wg.Go(func() {
			for {
				r, err := claimEdge(t, stores[i%2], node, []string{kind}, time.Now(), time.Now().Add(time.Minute))
				if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
					return
				}
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				if by, ok := claimed[r.ID]; ok {
					t.Errorf("request %d claimed by %s and %s", r.ID, by, node)
				}
				claimed[r.ID] = node
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("claimed %d requests, want %d", len(claimed), n)
	}
}

// A claim that ran out (its edge died) is taken by another edge while
// claims are left and the request has not expired; then it expires, and
// final requests are pruned.
func testEdgeRequestExpiry(t *testing.T, su *suite) {
	s := su.open(t)
	kind := "k" + uniq()
	now := at(0)
	retried := &sipdesk.EdgeRequest{Kind: kind, Payload: "p", MaxAttempts: 2, ExpiresAt: now.Add(time.Minute)}
	unclaimed := &sipdesk.EdgeRequest{Kind: "none" + kind, Payload: "p", ExpiresAt: now.Add(time.Second)}
	insertEdgeRequests(t, s, retried, unclaimed)

	r, err := claimEdge(t, s, "edge-a", []string{kind}, now, now.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "first claim", []any{r.ID, r.ClaimedBy, r.Attempts}, []any{retried.ID, "edge-a", 1})
	_, err = claimEdge(t, s, "edge-b", []string{kind}, now.Add(5*time.Second), now.Add(15*time.Second))
	wantCode(t, "claim while held", err, sipdesk.ENotFound, "")
	r, err = claimEdge(t, s, "edge-b", []string{kind}, now.Add(11*time.Second), now.Add(20*time.Second))
	if err != nil {
		t.Fatalf("claim after edge-a's claim ran out: %v", err)
	}
	equal(t, "second claim", []any{r.ID, r.ClaimedBy, r.Attempts, r.Payload}, []any{retried.ID, "edge-b", 2, "p"})
	err = txErr(t, s, func(tx sipdesk.Tx) error { return tx.FinishEdgeRequest(r.ID, "edge-a", sipdesk.EdgeDone, "", now) })
	wantCode(t, "finish by the node that lost it", err, sipdesk.ENotFound, "")

	// edge-b dies too: no claims left, it expires; so does the unclaimed one.
	_, err = claimEdge(t, s, "edge-c", []string{kind}, now.Add(21*time.Second), now.Add(30*time.Second))
	wantCode(t, "claim with no claims left", err, sipdesk.ENotFound, "")
	var expired int
	update(t, s, func(tx sipdesk.Tx) (err error) {
		expired, err = tx.ExpireEdgeRequests(now.Add(21 * time.Second))
		return err
	})
	if expired < 2 {
		t.Errorf("expired %d requests, want at least 2", expired)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		for _, want := range []struct {
			r      *sipdesk.EdgeRequest
			result string
		}{{retried, "the edge that took it stopped before finishing"}, {unclaimed, "no edge took it in time"}} {
			got, err := tx.EdgeRequest(want.r.ID)
			if err != nil {
				return err
			}
			equal(t, "expired", []any{got.State, got.Result, got.Payload}, []any{sipdesk.EdgeExpired, want.result, ""})
		}
		return nil
	})

	// Released with a reason and never taken again: the reason stays.
	kept := &sipdesk.EdgeRequest{Kind: "kept" + kind, Payload: "r", MaxAttempts: 2, ExpiresAt: now.Add(time.Minute)}
	insertEdgeRequests(t, s, kept)
	if _, err := claimEdge(t, s, "edge-a", []string{"kept" + kind}, now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.FinishEdgeRequest(kept.ID, "edge-a", sipdesk.EdgeQueued, "carrier: 503", now); err != nil {
			return err
		}
		_, err := tx.ExpireEdgeRequests(now.Add(2 * time.Minute))
		return err
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.EdgeRequest(kept.ID)
		if err != nil {
			return err
		}
		equal(t, "released, then expired", []any{got.State, got.Result}, []any{sipdesk.EdgeExpired, "no edge took it in time (carrier: 503)"})
		return nil
	})

	// A released request goes back to the queue for another edge.
	released := &sipdesk.EdgeRequest{Kind: kind, Payload: "q", MaxAttempts: 3, ExpiresAt: time.Now().Add(time.Minute)}
	insertEdgeRequests(t, s, released)
	if _, err := claimEdge(t, s, "edge-a", []string{kind}, time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx sipdesk.Tx) error {
		return tx.FinishEdgeRequest(released.ID, "edge-a", sipdesk.EdgeQueued, "draining", time.Now())
	})
	r, err = claimEdge(t, s, "edge-b", []string{kind}, time.Now(), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "released then claimed", []any{r.ID, r.ClaimedBy, r.Attempts, r.Payload}, []any{released.ID, "edge-b", 2, "q"})

	var pruned int
	update(t, s, func(tx sipdesk.Tx) (err error) {
		pruned, err = tx.PruneEdgeRequests(at(time.Hour))
		return err
	})
	view(t, s, func(tx sipdesk.Tx) error {
		for _, id := range []int64{retried.ID, unclaimed.ID} {
			_, err := tx.EdgeRequest(id)
			wantCode(t, "pruned request", err, sipdesk.ENotFound, "")
		}
		_, err := tx.EdgeRequest(released.ID) // open: kept
		return err
	})
	if pruned < 2 {
		t.Errorf("pruned %d, want at least 2", pruned)
	}
}
