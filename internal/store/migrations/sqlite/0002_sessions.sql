-- Portal sessions: only the token's hash is stored.
CREATE TABLE sessions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	hash        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL DEFAULT 0,
	expires_at  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sessions_hash_key ON sessions (hash);
CREATE INDEX sessions_customer_idx ON sessions (customer_id);
