package store

import (
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Edge requests: what portals ask edges to do (sipdesk.EdgeRequest). The
// payload column is encrypted like the verification codes.

const edgeRequestCols = `id, kind, node, payload, state, claimed_by, attempts, max_attempts, result,
	claimed_until, expires_at, created_at, updated_at`

// colEdgePayload is the column name bound into the payload's encryption.
const colEdgePayload = "edge_requests.payload"

// openEdge is the WHERE condition of a request a node may claim at now
// (args: now, now).
const openEdge = `expires_at > ? AND attempts < max_attempts
	AND (state = '` + string(sipdesk.EdgeQueued) + `' OR (state = '` + string(sipdesk.EdgeClaimed) + `' AND claimed_until <= ?))`

func (t *tx) scanEdgeRequest(s interface{ Scan(...any) error }) (*sipdesk.EdgeRequest, error) {
	var r sipdesk.EdgeRequest
	var state, payload string
	var claimed, expires, created, updated int64
	if err := s.Scan(&r.ID, &r.Kind, &r.Node, &payload, &state, &r.ClaimedBy, &r.Attempts, &r.MaxAttempts, &r.Result,
		&claimed, &expires, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if r.Payload, err = t.db.open(colEdgePayload, payload); err != nil {
		return nil, err
	}
	r.State = sipdesk.EdgeRequestState(state)
	r.ClaimedUntil, r.ExpiresAt, r.CreatedAt, r.UpdatedAt = fromMS(claimed), fromMS(expires), fromMS(created), fromMS(updated)
	return &r, nil
}

func (t *tx) InsertEdgeRequest(r *sipdesk.EdgeRequest) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 1
	}
	r.UpdatedAt, r.State = r.CreatedAt, sipdesk.EdgeQueued
	id, err := t.insert(`INSERT INTO edge_requests (kind, node, payload, state, max_attempts, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Kind, r.Node, t.db.seal(colEdgePayload, r.Payload), string(r.State), r.MaxAttempts, ms(r.ExpiresAt), ms(r.CreatedAt), ms(r.UpdatedAt))
	if err != nil {
		return t.fail("insert edge request", err)
	}
	r.ID = id
	t.configChanged() // the change signal wakes the edges (LISTEN/NOTIFY on PostgreSQL)
	return nil
}

func (t *tx) EdgeRequest(id int64) (*sipdesk.EdgeRequest, error) {
	r, err := t.scanEdgeRequest(t.queryRow("SELECT "+edgeRequestCols+" FROM edge_requests WHERE id = ?", id))
	if err != nil {
		return nil, t.get("edge request", "get edge request", err)
	}
	return r, nil
}

// ClaimEdgeRequest: one UPDATE whose WHERE is evaluated again on the locked
// row, like ClaimExpiredLeases; on PostgreSQL the candidate is locked in the
// subquery skipping rows another node is claiming. The subquery is scalar
// ("id = (…)"), which PostgreSQL runs once: under "id IN (… LIMIT 1 …
// SKIP LOCKED)" it may run it again for each row, each time skipping the
// rows it just locked, and claim them all.
func (t *tx) ClaimEdgeRequest(node string, kinds []string, at, until time.Time) (*sipdesk.EdgeRequest, error) {
	if len(kinds) == 0 {
		return nil, notFound("edge request")
	}
	lock := ""
	if t.db.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(kinds)), ", ")
	args := []any{string(sipdesk.EdgeClaimed), node, ms(until), ms(at), ms(at), ms(at)}
	args = append(args, node, ms(at), ms(at))
	for _, k := range kinds {
		args = append(args, k)
	}
	r, err := t.scanEdgeRequest(t.queryRow(`UPDATE edge_requests SET state = ?, claimed_by = ?, claimed_until = ?,
			attempts = attempts + 1, updated_at = ?
		WHERE `+openEdge+` AND id = (SELECT id FROM edge_requests
			WHERE (node = '' OR node = ?) AND `+openEdge+` AND kind IN (`+in+`) ORDER BY id LIMIT 1`+lock+`)
		RETURNING `+edgeRequestCols, args...))
	if err != nil {
		return nil, t.get("edge request", "claim edge request", err)
	}
	return r, nil
}

func (t *tx) FinishEdgeRequest(id int64, node string, state sipdesk.EdgeRequestState, result string, at time.Time) error {
	// A final request drops its payload; a released one (queued) keeps it
	// for the edge that takes it next.
	payload, claimedBy := "''", "claimed_by"
	if state == sipdesk.EdgeQueued {
		payload, claimedBy = "payload", "''"
	}
	res, err := t.exec(`UPDATE edge_requests SET state = ?, result = ?, payload = `+payload+`, claimed_by = `+claimedBy+`,
		claimed_until = 0, updated_at = ? WHERE id = ? AND claimed_by = ? AND state = ?`,
		string(state), result, ms(at), id, node, string(sipdesk.EdgeClaimed))
	return t.affected("edge request", "finish edge request", res, err)
}

func (t *tx) ExpireEdgeRequests(at time.Time) (int, error) {
	res, err := t.exec(`UPDATE edge_requests SET state = ?, payload = '', updated_at = ?,
		result = CASE WHEN state = ? THEN 'the edge that took it stopped before finishing'
			WHEN result = '' THEN 'no edge took it in time' ELSE 'no edge took it in time (' || result || ')' END
		WHERE (state = ? AND expires_at <= ?)
		OR (state = ? AND claimed_until <= ? AND (attempts >= max_attempts OR expires_at <= ?))`,
		string(sipdesk.EdgeExpired), ms(at), string(sipdesk.EdgeClaimed),
		string(sipdesk.EdgeQueued), ms(at), string(sipdesk.EdgeClaimed), ms(at), ms(at))
	if err != nil {
		return 0, t.fail("expire edge requests", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) PruneEdgeRequests(before time.Time) (int, error) {
	res, err := t.exec("DELETE FROM edge_requests WHERE state IN (?, ?, ?) AND updated_at < ?",
		string(sipdesk.EdgeDone), string(sipdesk.EdgeFailed), string(sipdesk.EdgeExpired), ms(before))
	if err != nil {
		return 0, t.fail("prune edge requests", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
