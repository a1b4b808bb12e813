-- Verification codes on their way to phones (internal/notify): one row per
-- code issued while an SMS or voice channel is configured. code holds the
-- code encrypted with the store's secret key, only until the gateway took
-- the message or it was given up; report_hash is the hash of the token in
-- the delivery report URL of the last try.
CREATE TABLE verification_messages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	public_id   TEXT    NOT NULL UNIQUE,
	customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	number_id   INTEGER NOT NULL,
	channel     TEXT    NOT NULL,
	purpose     TEXT    NOT NULL,
	to_number   TEXT    NOT NULL,
	code        TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	report_hash TEXT    NOT NULL DEFAULT '',
	expires_at  INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX verification_messages_due_idx ON verification_messages (state, next_at);
CREATE INDEX verification_messages_number_idx ON verification_messages (number_id, id);
CREATE INDEX verification_messages_report_idx ON verification_messages (report_hash);
CREATE INDEX verification_messages_created_idx ON verification_messages (created_at);
