package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

func (t *tx) InsertSession(s *sipdesk.Session) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO sessions (customer_id, hash, created_at, expires_at, user_agent, source) VALUES (?, ?, ?, ?, ?, ?)",
		s.CustomerID, s.Hash, ms(s.CreatedAt), ms(s.ExpiresAt), s.UserAgent, s.Source)
	if err != nil {
		return t.fail("insert session", err)
	}
	s.ID = id
	return nil
}

func (t *tx) SessionByHash(hash string) (*sipdesk.Session, error) {
	var s sipdesk.Session
	var created, expires int64
	err := t.queryRow("SELECT id, customer_id, hash, created_at, expires_at, user_agent, source FROM sessions WHERE hash = ?", hash).
		Scan(&s.ID, &s.CustomerID, &s.Hash, &created, &expires, &s.UserAgent, &s.Source)
	if err != nil {
		return nil, t.get("session", "get session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return &s, nil
}

func (t *tx) DeleteSession(hash string) error {
	_, err := t.exec("DELETE FROM sessions WHERE hash = ?", hash)
	if err != nil {
		return t.fail("delete session", err)
	}
	return nil
}

func (t *tx) DeleteExpiredSessions(at time.Time) (int, error) {
	res, err := t.exec("DELETE FROM sessions WHERE expires_at <= ?", ms(at))
	if err != nil {
		return 0, t.fail("delete expired sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
