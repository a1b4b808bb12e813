package store

import (
	"database/sql"
	"errors"
	"time"

	"github.com/sipdesk/sipdesk"
)

// BumpAttempt counts one attempt of key in a fixed window of span that opens
// at the key's first attempt, unless the count is already above limit: the
// answer is the count after the bump, limit+1 at most, so an answer above
// limit means refused (nothing more was counted). One statement, so two
// nodes bumping at once both see their own count.
func (t *tx) BumpAttempt(key string, now time.Time, span time.Duration, limit int) (int, error) {
	var n int
	err := t.queryRow(`INSERT INTO attempt_counters (key, n, expires_at) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET
			n = CASE WHEN attempt_counters.expires_at <= ? THEN 1
			         WHEN attempt_counters.n <= ? THEN attempt_counters.n + 1
			         ELSE attempt_counters.n END,
			expires_at = CASE WHEN attempt_counters.expires_at <= ? THEN excluded.expires_at
			         ELSE attempt_counters.expires_at END
		RETURNING n`, key, ms(now.Add(span)), ms(now), limit, ms(now)).Scan(&n)
	if err != nil {
		return 0, t.fail("bump attempt", err)
	}
	return n, nil
}

// RefundAttempt takes back one attempt of key (one that was not tried).
func (t *tx) RefundAttempt(key string) error {
	_, err := t.exec("UPDATE attempt_counters SET n = n - 1 WHERE key = ? AND n > 0", key)
	if err != nil {
		return t.fail("refund attempt", err)
	}
	return nil
}

// Attempts returns key's count in its current window (0 when it has ended).
func (t *tx) Attempts(key string, now time.Time) (int, error) {
	var n int
	err := t.queryRow("SELECT n FROM attempt_counters WHERE key = ? AND expires_at > ?", key, ms(now)).Scan(&n)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, t.fail("read attempts", err)
	}
	return n, nil
}

// ClearAttempts forgets key's attempts (a success).
func (t *tx) ClearAttempts(key string) error {
	if _, err := t.exec("DELETE FROM attempt_counters WHERE key = ?", key); err != nil {
		return t.fail("clear attempts", err)
	}
	return nil
}

// PruneAttempts deletes the counters whose window ended at or before now,
// and the expired pending signups.
func (t *tx) PruneAttempts(now time.Time) (int, error) {
	res, err := t.exec("DELETE FROM attempt_counters WHERE expires_at <= ?", ms(now))
	if err != nil {
		return 0, t.fail("prune attempts", err)
	}
	if _, err := t.exec("DELETE FROM pending_signups WHERE expires_at <= ?", ms(now)); err != nil {
		return 0, t.fail("prune pending signups", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// InsertPendingSignup keeps a signup until its email link is opened.
func (t *tx) InsertPendingSignup(p *sipdesk.PendingSignup) error {
	_, err := t.exec("INSERT INTO pending_signups (token_hash, email, password_hash, phone, expires_at) VALUES (?, ?, ?, ?, ?)",
		p.TokenHash, p.Email, p.PasswordHash, p.Phone, ms(p.ExpiresAt))
	if err != nil {
		return t.fail("insert pending signup", err)
	}
	return nil
}

// TakePendingSignup deletes and returns the live pending signup of a token
// hash (single use); ENotFound when there is none or it has expired.
func (t *tx) TakePendingSignup(hash string, now time.Time) (*sipdesk.PendingSignup, error) {
	var p sipdesk.PendingSignup
	var exp int64
	err := t.queryRow("DELETE FROM pending_signups WHERE token_hash = ? RETURNING token_hash, email, password_hash, phone, expires_at", hash).
		Scan(&p.TokenHash, &p.Email, &p.PasswordHash, &p.Phone, &exp)
	if err != nil {
		return nil, t.get("pending signup", "take pending signup", err)
	}
	p.ExpiresAt = fromMS(exp)
	if !p.ExpiresAt.After(now) {
		return nil, sipdesk.Errorf(sipdesk.ENotFound, "pending signup not found")
	}
	return &p, nil
}
