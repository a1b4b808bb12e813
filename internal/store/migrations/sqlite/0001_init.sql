-- sipdesk schema, SQLite dialect. Timestamps are unix milliseconds UTC
-- (0 = none), booleans 0/1: the same SQL runs on both engines. IDs use
-- AUTOINCREMENT so that a deleted row's id is never reused (audit entries
-- keep referring to it), like PostgreSQL identities.

CREATE TABLE customers (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	email             TEXT    NOT NULL,
	password_hash     TEXT    NOT NULL DEFAULT '',
	verified_phone    TEXT    NOT NULL DEFAULT '',
	billing_state     TEXT    NOT NULL DEFAULT '',
	channel_limit     INTEGER NOT NULL DEFAULT 0,
	channel_scope     TEXT    NOT NULL DEFAULT '',
	sip_account_quota INTEGER NOT NULL DEFAULT 0,
	topup_total_cents INTEGER NOT NULL DEFAULT 0,
	created_at        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX customers_email_key ON customers (email);

CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id  INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL DEFAULT '',
	hash         TEXT    NOT NULL,
	created_at   INTEGER NOT NULL DEFAULT 0,
	last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_tokens_hash_key ON api_tokens (hash);
CREATE INDEX api_tokens_customer_idx ON api_tokens (customer_id);

CREATE TABLE sip_accounts (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id     INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	name            TEXT    NOT NULL,
	auth_type       TEXT    NOT NULL,
	username        TEXT    NOT NULL DEFAULT '',
	ha1_md5         TEXT    NOT NULL DEFAULT '',
	ha1_sha256      TEXT    NOT NULL DEFAULT '',
	ha1_sha512_256  TEXT    NOT NULL DEFAULT '',
	tech_prefix     TEXT    NOT NULL DEFAULT '',
	status          TEXT    NOT NULL,
	pending_version INTEGER NOT NULL DEFAULT 0,
	held_for_review INTEGER NOT NULL DEFAULT 0,
	prev_status     TEXT    NOT NULL DEFAULT '',
	jwt_enabled     INTEGER NOT NULL DEFAULT 0,
	jwt_secret      TEXT    NOT NULL DEFAULT '', -- AES-256-GCM, base64(nonce||ciphertext)
	jwt_prev_secret TEXT    NOT NULL DEFAULT '', -- AES-256-GCM, base64(nonce||ciphertext)
	jwt_prev_until  INTEGER NOT NULL DEFAULT 0,
	channel_cap     INTEGER NOT NULL DEFAULT 0,
	default_number  TEXT    NOT NULL DEFAULT '',
	display_name    TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sip_accounts_name_key ON sip_accounts (customer_id, name);
CREATE UNIQUE INDEX sip_accounts_username_key ON sip_accounts (username) WHERE username <> '';
CREATE INDEX sip_accounts_auth_type_idx ON sip_accounts (auth_type);

CREATE TABLE sip_account_ips (
	sip_account_id INTEGER NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	cidr           TEXT    NOT NULL,
	PRIMARY KEY (sip_account_id, position)
);

CREATE TABLE caller_id_numbers (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	number      TEXT    NOT NULL,
	verified    INTEGER NOT NULL DEFAULT 0,
	code_hash   TEXT    NOT NULL DEFAULT '',
	expires_at  INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX caller_id_numbers_number_key ON caller_id_numbers (customer_id, number);

CREATE TABLE caller_id_rules (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id  INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	apply_for    TEXT    NOT NULL,
	country      TEXT    NOT NULL DEFAULT '',
	prefix       TEXT    NOT NULL DEFAULT '',
	type         TEXT    NOT NULL,
	display_name TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX caller_id_rules_customer_idx ON caller_id_rules (customer_id);

CREATE TABLE caller_id_rule_numbers (
	rule_id  INTEGER NOT NULL REFERENCES caller_id_rules (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	number   TEXT    NOT NULL,
	PRIMARY KEY (rule_id, position)
);

CREATE TABLE sip_account_rules (
	sip_account_id INTEGER NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
	rule_id        INTEGER NOT NULL REFERENCES caller_id_rules (id) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	PRIMARY KEY (sip_account_id, rule_id)
);
CREATE INDEX sip_account_rules_rule_idx ON sip_account_rules (rule_id);

CREATE TABLE tickets (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL,
	wanted      INTEGER NOT NULL DEFAULT 0,
	reason      TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL,
	message     TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL DEFAULT 0,
	decided_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tickets_customer_idx ON tickets (customer_id, status);
CREATE INDEX tickets_status_idx ON tickets (status);

-- Append-only; no foreign keys so that entries outlive what they describe.
CREATE TABLE audit_log (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id    INTEGER NOT NULL DEFAULT 0,
	sip_account_id INTEGER NOT NULL DEFAULT 0,
	actor          TEXT    NOT NULL DEFAULT '',
	action         TEXT    NOT NULL,
	detail         TEXT    NOT NULL DEFAULT '',
	at             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_customer_idx ON audit_log (customer_id, at, id);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);

CREATE TABLE credential_resets (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id    INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	sip_account_id INTEGER NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
	token_hash     TEXT    NOT NULL,
	expires_at     INTEGER NOT NULL DEFAULT 0,
	used_at        INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX credential_resets_token_hash_key ON credential_resets (token_hash);
CREATE INDEX credential_resets_sip_account_idx ON credential_resets (sip_account_id);

CREATE TABLE outbox (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	to_addr    TEXT    NOT NULL,
	subject    TEXT    NOT NULL DEFAULT '',
	text_body  TEXT    NOT NULL DEFAULT '',
	html_body  TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL DEFAULT 0,
	sent_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_sent_idx ON outbox (sent_at, id);

CREATE TABLE dids (
	number         TEXT    NOT NULL PRIMARY KEY,
	sip_account_id INTEGER NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
	customer_id    INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE
);
CREATE INDEX dids_sip_account_idx ON dids (sip_account_id);
CREATE INDEX dids_customer_idx ON dids (customer_id);

CREATE TABLE registrations (
	sip_account_id INTEGER NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
	contact        TEXT    NOT NULL,
	received       TEXT    NOT NULL DEFAULT '',
	transport      TEXT    NOT NULL DEFAULT '',
	call_id        TEXT    NOT NULL DEFAULT '',
	cseq           INTEGER NOT NULL DEFAULT 0,
	node           TEXT    NOT NULL DEFAULT '',
	user_agent     TEXT    NOT NULL DEFAULT '',
	expires_at     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (sip_account_id, contact)
);
CREATE INDEX registrations_expires_idx ON registrations (expires_at);

CREATE TABLE nodes (
	name            TEXT    NOT NULL PRIMARY KEY,
	role            TEXT    NOT NULL DEFAULT '',
	applied_version INTEGER NOT NULL DEFAULT 0,
	heartbeat       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE config_version (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
