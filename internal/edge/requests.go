package edge

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
)

// Edge requests (sipdesk.EdgeRequest): what portals ask this edge to do.
// The loop claims them from the store when the store's change signal fires
// (a new request bumps the config version: NOTIFY on PostgreSQL, in-process
// on --role all) and every RequestPoll, does them beside the SIP work and
// writes the result back. Hang-ups are for the node holding the call;
// voice calls for any edge with a carrier and VoiceCalls.

// Claims and bounds per kind: a claim covers the work (a voice call rings
// for VoiceRingTimeout, then reads the code twice); at most max of a kind
// run at once, more wait in the store for this or another edge.
var requestKinds = map[string]struct {
	claim time.Duration
	max   int
}{
	sipdesk.EdgeHangUp:    {15 * time.Second, 16},
	sipdesk.EdgeVoiceCall: {b2bua.VoiceRingTimeout + 40*time.Second, 4},
}

// sweepEvery is how often an edge expires the requests nobody can finish
// any more (every node prunes the old final ones hourly: app.SweepEdgeRequests).
const sweepEvery = 5 * time.Second

type requestWorker struct {
	s     *Server
	mu    sync.Mutex
	busy  map[string]int
	wg    sync.WaitGroup
	swept time.Time
}

// requestLoop runs until ctx ends, then waits for the requests in hand.
func (s *Server) requestLoop(ctx context.Context) {
	w := &requestWorker{s: s, busy: map[string]int{}}
	defer w.wg.Wait()
	wake, stop := s.st.ConfigChanges()
	defer stop()
	poll := time.NewTicker(s.cfg.RequestPoll)
	defer poll.Stop()
	for {
		w.take(ctx)
		w.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-wake:
			if !ok {
				return
			}
		case <-poll.C:
		}
	}
}

// kinds lists what this edge takes.
func (s *Server) kinds() []string {
	k := []string{sipdesk.EdgeHangUp}
	if s.cfg.VoiceCalls && s.cfg.Carrier != "" {
		k = append(k, sipdesk.EdgeVoiceCall)
	}
	return k
}

// take claims requests of each kind with room left and starts them.
func (w *requestWorker) take(ctx context.Context) {
	s := w.s
	for _, kind := range s.kinds() {
		if kind == sipdesk.EdgeVoiceCall && s.Draining() {
			continue
		}
		for w.reserve(kind) {
			var r *sipdesk.EdgeRequest
			now := s.now()
			err := s.st.Update(ctx, func(tx sipdesk.Tx) (err error) {
				r, err = tx.ClaimEdgeRequest(s.cfg.Node, []string{kind}, now, now.Add(requestKinds[kind].claim))
				return err
			})
			if err != nil {
				w.release(kind)
				if sipdesk.ErrorCode(err) != sipdesk.ENotFound && ctx.Err() == nil {
					s.quiet.Warn("edge requests: claim failed", "kind", kind, "error", err)
				}
				break
			}
			w.wg.Go(func() {
				defer w.release(kind)
				state, result := s.do(ctx, r)
				s.log.Info("edge request", "id", r.ID, "kind", r.Kind, "state", state, "result", result)
				err := s.st.Update(context.WithoutCancel(ctx), func(tx sipdesk.Tx) error {
					return tx.FinishEdgeRequest(r.ID, s.cfg.Node, state, result, s.now())
				})
				if err != nil {
					s.quiet.Warn("edge requests: result not written", "id", r.ID, "error", err)
				}
			})
		}
	}
}

func (w *requestWorker) reserve(kind string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy[kind] >= requestKinds[kind].max {
		return false
	}
	w.busy[kind]++
	return true
}

func (w *requestWorker) release(kind string) {
	w.mu.Lock()
	w.busy[kind]--
	w.mu.Unlock()
}

// sweep expires the requests no edge can finish any more (any edge may).
func (w *requestWorker) sweep(ctx context.Context) {
	now := w.s.now()
	if now.Sub(w.swept) < sweepEvery {
		return
	}
	w.swept = now
	_ = w.s.st.Update(ctx, func(tx sipdesk.Tx) error {
		_, err := tx.ExpireEdgeRequests(now)
		return err
	})
}

// do carries one request out: the state and result to write back. A
// voice call the carrier failed is released (queued) for another try.
func (s *Server) do(ctx context.Context, r *sipdesk.EdgeRequest) (sipdesk.EdgeRequestState, string) {
	switch r.Kind {
	case sipdesk.EdgeHangUp:
		var h sipdesk.HangUpRequest
		if err := json.Unmarshal([]byte(r.Payload), &h); err != nil || h.CallID == "" {
			return sipdesk.EdgeFailed, "malformed request"
		}
		if !s.calls.EndCall(h.CallID, h.Reason) {
			return sipdesk.EdgeFailed, "the call is not up on node " + s.cfg.Node + " (it ended already)"
		}
		if s.cfg.Channels != nil {
			s.cfg.Channels.Flush(ctx)
		}
		return sipdesk.EdgeDone, "ended on node " + s.cfg.Node + ": BYE sent to the caller and the carrier"
	case sipdesk.EdgeVoiceCall:
		var v sipdesk.VoiceCallRequest
		if err := json.Unmarshal([]byte(r.Payload), &v); err != nil {
			return sipdesk.EdgeFailed, "malformed request"
		}
		err := s.calls.PlaceVoiceCall(ctx, b2bua.VoiceCall{CustomerID: v.CustomerID, Number: v.Number, Code: v.Code, From: v.From})
		switch {
		case err == nil:
			return sipdesk.EdgeDone, "answered on node " + s.cfg.Node + ": the code was read out"
		case errors.Is(err, b2bua.ErrNotAnswered) || errors.Is(err, b2bua.ErrCalleeBye):
			// The callee was reached: calling again unasked would pester them.
			return sipdesk.EdgeFailed, err.Error()
		}
		// The carrier failed (no answer, a 5xx) or this edge is draining:
		// another edge (or this one) may try while claims are left, then
		// the request expires and the sender retries with backoff.
		return sipdesk.EdgeQueued, "node " + s.cfg.Node + ": " + err.Error()
	}
	return sipdesk.EdgeFailed, "this edge does not know the request kind " + r.Kind
}
