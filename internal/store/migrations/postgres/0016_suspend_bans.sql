-- An operator's suspension of a customer account (0: not suspended), and
-- the source bans of the edge nodes, shared so that every edge applies them
-- and an operator can lift them.
ALTER TABLE customers ADD COLUMN suspended_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN suspended_reason TEXT NOT NULL DEFAULT '';

CREATE TABLE bans (
	source     TEXT   NOT NULL PRIMARY KEY,
	reason     TEXT   NOT NULL DEFAULT '',
	node       TEXT   NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bans_expires_idx ON bans (expires_at);
