-- Live calls holding a channel (leases, renewed by their node) and call
-- records. Leases have no foreign keys: a call may outlive its SIP account
-- by a moment, and the count must never fail on it.
CREATE TABLE call_leases (
	call_id        TEXT   NOT NULL PRIMARY KEY,
	customer_id    INTEGER NOT NULL,
	sip_account_id INTEGER NOT NULL DEFAULT 0,
	direction      TEXT   NOT NULL,
	node           TEXT   NOT NULL,
	started_at     INTEGER NOT NULL DEFAULT 0,
	expires_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX call_leases_customer_idx ON call_leases (customer_id, expires_at);
CREATE INDEX call_leases_node_idx ON call_leases (node);

CREATE TABLE call_records (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	call_id           TEXT   NOT NULL DEFAULT '',
	customer_id       INTEGER NOT NULL,
	sip_account_id    INTEGER NOT NULL DEFAULT 0,
	direction         TEXT   NOT NULL DEFAULT '',
	from_uri          TEXT   NOT NULL DEFAULT '',
	to_uri            TEXT   NOT NULL DEFAULT '',
	caller_id         TEXT   NOT NULL DEFAULT '',
	caller_id_rule_id INTEGER NOT NULL DEFAULT 0,
	caller_id_reason  TEXT   NOT NULL DEFAULT '',
	started_at        INTEGER NOT NULL DEFAULT 0,
	answered_at       INTEGER NOT NULL DEFAULT 0,
	ended_at          INTEGER NOT NULL DEFAULT 0,
	disposition       TEXT   NOT NULL DEFAULT '',
	sip_code          INTEGER NOT NULL DEFAULT 0,
	reason            TEXT   NOT NULL DEFAULT '',
	node              TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX call_records_customer_idx ON call_records (customer_id, id);
CREATE INDEX call_records_started_idx ON call_records (customer_id, started_at);
