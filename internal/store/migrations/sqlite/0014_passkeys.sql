-- Passkeys (WebAuthn credentials) of customers: the credential id and
-- public key (base64url text), the authenticator's signature counter and
-- flags, the transports it offered, the name the customer gave it, and
-- when it was added and last used.
CREATE TABLE passkeys (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id   INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	credential_id TEXT    NOT NULL,
	public_key    TEXT    NOT NULL,
	sign_count    INTEGER NOT NULL DEFAULT 0,
	transports    TEXT    NOT NULL DEFAULT '',
	flags         INTEGER NOT NULL DEFAULT 0,
	aaguid        TEXT    NOT NULL DEFAULT '',
	name          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL DEFAULT 0,
	last_used_at  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX passkeys_credential_key ON passkeys (credential_id);
CREATE INDEX passkeys_customer_idx ON passkeys (customer_id);
