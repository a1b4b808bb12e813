package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Edge requests: what a portal asks an edge to do (sipdesk.EdgeRequest).
// The request is queued in the store, an edge claims it (woken by the
// store's change signal, or its poll) and writes the result back; the asker
// polls the row. On --role all the same path runs within one process.

// Edge request timing.
const (
	// EdgeRequestPoll is how often a waiting asker reads its request again.
	EdgeRequestPoll = 100 * time.Millisecond
	// EdgeRequestKeep is how long final requests stay for operators to see.
	EdgeRequestKeep = 24 * time.Hour
	// hangUpTTL bounds a hang-up: queued and claimed within it, else it
	// expires (the node holding the call is gone: so is the call).
	hangUpTTL = 10 * time.Second
)

// VoiceCallQueue is how long a voice call waits for an edge to take it.
const VoiceCallQueue = 15 * time.Second

// askEdge queues r, then waits until it is final or ctx ends; it returns the
// request as it last read it (open when ctx ended first).
func (s *Service) askEdge(ctx context.Context, r *sipdesk.EdgeRequest, payload any, also func(tx sipdesk.Tx) error) (*sipdesk.EdgeRequest, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	r.Payload, r.CreatedAt = string(b), s.now()
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		if err := tx.InsertEdgeRequest(r); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.WaitEdgeRequest(ctx, r.ID)
}

// WaitEdgeRequest reads request id until it is final or ctx ends. A
// request nobody can finish any more (expired in the queue, or its edge
// died holding it) is expired here too, so the asker is not left waiting
// for an edge sweep.
func (s *Service) WaitEdgeRequest(ctx context.Context, id int64) (*sipdesk.EdgeRequest, error) {
	t := time.NewTicker(EdgeRequestPoll)
	defer t.Stop()
	for {
		var r *sipdesk.EdgeRequest
		err := s.view(context.WithoutCancel(ctx), func(tx sipdesk.Tx) (err error) {
			r, err = tx.EdgeRequest(id)
			return err
		})
		if err != nil {
			return nil, err
		}
		now := s.now()
		if !r.State.Final() && stuck(r, now) {
			if err := s.SweepEdgeRequests(context.WithoutCancel(ctx), false); err != nil {
				return nil, err
			}
			continue
		}
		if r.State.Final() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, nil
		case <-t.C:
		}
	}
}

// stuck reports whether no edge can finish r any more (ExpireEdgeRequests
// would end it).
func stuck(r *sipdesk.EdgeRequest, now time.Time) bool {
	switch r.State {
	case sipdesk.EdgeQueued:
		return !r.ExpiresAt.After(now)
	case sipdesk.EdgeClaimed:
		return !r.ClaimedUntil.After(now) && (r.Attempts >= r.MaxAttempts || !r.ExpiresAt.After(now))
	}
	return false
}

// SweepEdgeRequests expires the requests no edge can finish any more and,
// with prune, deletes the final ones older than EdgeRequestKeep (the table
// stays small).
func (s *Service) SweepEdgeRequests(ctx context.Context, prune bool) error {
	now := s.now()
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.ExpireEdgeRequests(now); err != nil {
			return err
		}
		if prune {
			_, err := tx.PruneEdgeRequests(now.Add(-EdgeRequestKeep))
			return err
		}
		return nil
	})
}

// PlaceVoiceCall asks an edge with a carrier and --voice-calls to read a
// verification code out, and waits for the call's end (ctx bounds it: the
// ring timeout and the code read out twice).
func (s *Service) PlaceVoiceCall(ctx context.Context, v sipdesk.VoiceCallRequest) (*sipdesk.EdgeRequest, error) {
	// Two claims: an edge whose carrier failed releases the call for one
	// more try. An edge that dies mid-call holds its claim past the
	// queue's expiry, so no other edge calls meanwhile; the request then
	// expires and the sender counts a failed try.
	r := &sipdesk.EdgeRequest{Kind: sipdesk.EdgeVoiceCall, MaxAttempts: 2, ExpiresAt: s.now().Add(VoiceCallQueue)}
	return s.askEdge(ctx, r, v, nil)
}
