-- Sign-in security: where each portal session started (the sessions list),
-- forgotten-password links (only their hash), the authenticator app of a
-- customer (its secret encrypted with the store's secret key) and its
-- recovery codes (only their hash).
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN source TEXT NOT NULL DEFAULT '';

CREATE TABLE password_resets (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	token_hash  TEXT    NOT NULL,
	expires_at  INTEGER NOT NULL DEFAULT 0,
	used_at     INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX password_resets_hash_key ON password_resets (token_hash);
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);

CREATE TABLE customer_totp (
	customer_id INTEGER PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
	secret      TEXT    NOT NULL,
	enabled_at  INTEGER NOT NULL DEFAULT 0,
	last_step   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	hash        TEXT    NOT NULL,
	used_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_customer_idx ON recovery_codes (customer_id, hash);
