-- The provider's staff: the operator console and the operator API. Only
-- password and token hashes are stored; the TOTP secret is needed in clear.
CREATE TABLE operators (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	email          TEXT    NOT NULL,
	password_hash  TEXT    NOT NULL,
	role           TEXT    NOT NULL,
	totp_secret    TEXT    NOT NULL,
	totp_last_step BIGINT  NOT NULL DEFAULT 0,
	disabled       INTEGER NOT NULL DEFAULT 0,
	created_at     BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX operators_email_key ON operators (email);

CREATE TABLE operator_sessions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	operator_id BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
	hash        TEXT   NOT NULL,
	created_at  BIGINT NOT NULL DEFAULT 0,
	expires_at  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX operator_sessions_hash_key ON operator_sessions (hash);
CREATE INDEX operator_sessions_expires_idx ON operator_sessions (expires_at);

CREATE TABLE operator_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	operator_id  BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
	name         TEXT   NOT NULL,
	hash         TEXT   NOT NULL,
	created_at   BIGINT NOT NULL DEFAULT 0,
	last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX operator_tokens_hash_key ON operator_tokens (hash);
