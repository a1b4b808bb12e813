-- What portals ask edges to do (sipdesk.EdgeRequest): end a call held by
-- one node (node set) or place a voice call on any edge able to (node '').
-- Edges claim a row (claimed_by, claimed_until), do it and write the result
-- back; the payload is encrypted with the store's secret key and dropped
-- once the request is final. Final rows are pruned after a day.
CREATE TABLE edge_requests (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	kind          TEXT    NOT NULL,
	node          TEXT    NOT NULL DEFAULT '',
	payload       TEXT    NOT NULL DEFAULT '',
	state         TEXT    NOT NULL,
	claimed_by    TEXT    NOT NULL DEFAULT '',
	attempts      INTEGER NOT NULL DEFAULT 0,
	max_attempts  INTEGER NOT NULL DEFAULT 1,
	result        TEXT    NOT NULL DEFAULT '',
	claimed_until INTEGER NOT NULL DEFAULT 0,
	expires_at    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL DEFAULT 0,
	updated_at    INTEGER NOT NULL DEFAULT 0
);
-- Open requests are few: the claim and the expiry sweep read them by state.
CREATE INDEX edge_requests_state_idx ON edge_requests (state, id);
CREATE INDEX edge_requests_updated_idx ON edge_requests (updated_at);
