package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

// Bans shared by the edge nodes.

const qPutBan = `INSERT INTO bans (source, reason, node, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, node = excluded.node,
	created_at = excluded.created_at, expires_at = excluded.expires_at
	WHERE excluded.expires_at > bans.expires_at`

func (t *tx) PutBans(bs []*sipdesk.Ban) error {
	for _, b := range bs {
		if b.CreatedAt.IsZero() {
			b.CreatedAt = now()
		}
		if _, err := t.exec(qPutBan, b.Source, b.Reason, b.Node, ms(b.CreatedAt), ms(b.ExpiresAt)); err != nil {
			return t.fail("put ban", err)
		}
	}
	return nil
}

const banCols = "source, reason, node, created_at, expires_at"

func scanBan(s interface{ Scan(...any) error }) (*sipdesk.Ban, error) {
	var b sipdesk.Ban
	var created, expires int64
	if err := s.Scan(&b.Source, &b.Reason, &b.Node, &created, &expires); err != nil {
		return nil, err
	}
	b.CreatedAt, b.ExpiresAt = fromMS(created), fromMS(expires)
	return &b, nil
}

func (t *tx) Ban(source string) (*sipdesk.Ban, error) {
	b, err := scanBan(t.queryRow("SELECT "+banCols+" FROM bans WHERE source = ?", source))
	if err != nil {
		return nil, t.get("ban", "get ban", err)
	}
	return b, nil
}

func (t *tx) Bans(at time.Time, limit int) ([]*sipdesk.Ban, error) {
	q := "SELECT " + banCols + " FROM bans WHERE expires_at > ? ORDER BY expires_at DESC, source"
	args := []any{ms(at)}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, t.fail("list bans", err)
	}
	return collect(t, rows, "list bans", scanBan)
}

func (t *tx) DeleteBan(source string) error {
	t.configChanged() // every edge re-reads its bans at once
	res, err := t.exec("DELETE FROM bans WHERE source = ?", source)
	return t.affected("ban", "delete ban", res, err)
}

func (t *tx) DeleteExpiredBans(at time.Time) (int, error) {
	res, err := t.exec("DELETE FROM bans WHERE expires_at <= ?", ms(at))
	if err != nil {
		return 0, t.fail("delete expired bans", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
