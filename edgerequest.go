package sipdesk

import "time"

// EdgeRequest is something a portal (console, API, verification codes) asks
// an edge to do: end a call the edge holds (for one node: the lease records
// which) or place a voice call (for any edge able to). Edges claim requests
// from the store, do them and write the result back; the asker reads it.
// The payload is stored encrypted (a voice call's carries a code).
type EdgeRequest struct {
	ID           int64
	Kind         string // EdgeHangUp, EdgeVoiceCall
	Node         string // the node that must do it; "" any edge able to
	Payload      string // JSON: HangUpRequest, VoiceCallRequest
	State        EdgeRequestState
	ClaimedBy    string // the node that holds (or held) it
	Attempts     int    // claims so far
	MaxAttempts  int    // claims allowed (a claimer that dies leaves it to another)
	Result       string // done: what happened; failed, expired: why not
	ClaimedUntil time.Time
	ExpiresAt    time.Time // not claimed again after it
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// EdgeRequestState is where an edge request is.
type EdgeRequestState string

// Edge request states: queued and claimed are open; done, failed and
// expired are final.
const (
	EdgeQueued  EdgeRequestState = "queued"
	EdgeClaimed EdgeRequestState = "claimed"
	EdgeDone    EdgeRequestState = "done"
	EdgeFailed  EdgeRequestState = "failed"  // the edge tried; Result says why it failed
	EdgeExpired EdgeRequestState = "expired" // no edge did it in time; Result says why
)

// Final reports whether the request is finished.
func (s EdgeRequestState) Final() bool {
	return s == EdgeDone || s == EdgeFailed || s == EdgeExpired
}

// Edge request kinds.
const (
	EdgeHangUp    = "hang_up"    // HangUpRequest, for the node holding the call
	EdgeVoiceCall = "voice_call" // VoiceCallRequest, for any edge with a carrier and --voice-calls
)

// HangUpRequest ends a live call on both legs (BYE to the caller and the
// carrier); Reason goes to the call record ("operator_hangup").
type HangUpRequest struct {
	CallID string `json:"call_id"`
	Reason string `json:"reason"`
}

// VoiceCallRequest reads a verification code out by a call over the
// carrier ("Call me instead").
type VoiceCallRequest struct {
	CustomerID int64  `json:"customer_id"`
	Number     string `json:"number"`
	Code       string `json:"code"`
	From       string `json:"from"`
}

// EdgeRequestTx holds the edge requests' part of a transaction
// (internal/store/edgerequest.go).
type EdgeRequestTx interface {
	// InsertEdgeRequest queues r (sets ID, CreatedAt, UpdatedAt; State
	// queued). It bumps the config version, so the edges' change signal
	// wakes them at once.
	InsertEdgeRequest(r *EdgeRequest) error
	EdgeRequest(id int64) (*EdgeRequest, error)
	// ClaimEdgeRequest hands node the oldest open request of one of kinds
	// meant for it or for any edge: queued, or claimed by a node whose
	// claim ran out, not expired, with claims left. It is claimed until
	// `until`; two nodes never claim the same request (row locks skipped
	// on PostgreSQL, one writer on SQLite). None: ENotFound.
	ClaimEdgeRequest(node string, kinds []string, now, until time.Time) (*EdgeRequest, error)
	// FinishEdgeRequest writes the result of a request node holds (done or
	// failed) and drops its payload; a request node no longer holds is
	// ENotFound. State queued releases it for another edge.
	FinishEdgeRequest(id int64, node string, state EdgeRequestState, result string, now time.Time) error
	// ExpireEdgeRequests ends the open requests that no edge can take any
	// more (expired while queued, or their claim ran out with no claims
	// left or past their expiry) and drops their payload.
	ExpireEdgeRequests(now time.Time) (int, error)
	// PruneEdgeRequests deletes the final requests last updated before
	// `before`.
	PruneEdgeRequests(before time.Time) (int, error)
}

// AuditCallHungUp is an operator ending a live call (the detail names the
// call and the node that held it).
const AuditCallHungUp = "call.hung_up_by_operator"

// EndOperatorHangUp is the call record reason of a call an operator ended.
const EndOperatorHangUp = "operator_hangup"
