-- Attempt counters shared by every portal node: login failures per account,
-- source and known browser; verification codes sent and tried per number;
-- signups and verification messages per source and customer. One row per
-- key and fixed window; a row whose window has ended is reused or pruned.
CREATE TABLE attempt_counters (
	key        TEXT    NOT NULL PRIMARY KEY,
	n          INTEGER NOT NULL,
	expires_at BIGINT  NOT NULL
);
CREATE INDEX attempt_counters_expires_idx ON attempt_counters (expires_at);

-- Signups waiting for their email link: nothing is created and nothing is
-- said about the email until the owner of the address opens it.
CREATE TABLE pending_signups (
	token_hash    TEXT   NOT NULL PRIMARY KEY,
	email         TEXT   NOT NULL,
	password_hash TEXT   NOT NULL,
	phone         TEXT   NOT NULL,
	expires_at    BIGINT NOT NULL
);
CREATE INDEX pending_signups_expires_idx ON pending_signups (expires_at);
