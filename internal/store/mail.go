package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

const mailCols = "id, to_addr, subject, text_body, html_body, created_at, sent_at"

func scanMail(s interface{ Scan(...any) error }) (*sipdesk.Mail, error) {
	var m sipdesk.Mail
	var created, sent int64
	if err := s.Scan(&m.ID, &m.To, &m.Subject, &m.Text, &m.HTML, &created, &sent); err != nil {
		return nil, err
	}
	m.CreatedAt, m.SentAt = fromMS(created), fromMS(sent)
	return &m, nil
}

func (t *tx) InsertMail(m *sipdesk.Mail) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO outbox (to_addr, subject, text_body, html_body, created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
		m.To, m.Subject, m.Text, m.HTML, ms(m.CreatedAt), ms(m.SentAt))
	if err != nil {
		return t.fail("insert mail", err)
	}
	m.ID = id
	return nil
}

// Mails returns the newest limit mails (all when limit <= 0), newest first.
func (t *tx) Mails(limit int) ([]*sipdesk.Mail, error) {
	rows, err := t.query("SELECT " + mailCols + " FROM outbox ORDER BY id DESC" + limitClause(limit))
	if err != nil {
		return nil, t.fail("list mails", err)
	}
	return collect(t, rows, "list mails", scanMail)
}

func (t *tx) Mail(id int64) (*sipdesk.Mail, error) {
	m, err := scanMail(t.queryRow("SELECT "+mailCols+" FROM outbox WHERE id = ?", id))
	if err != nil {
		return nil, t.get("mail", "get mail", err)
	}
	return m, nil
}

func (t *tx) MarkMailSent(id int64, at time.Time) error {
	q := "UPDATE outbox SET sent_at = ? WHERE id = ?"
	if !at.IsZero() {
		q += " AND sent_at = 0" // a claim: only one node wins it
	}
	res, err := t.exec(q, ms(at), id)
	return t.affected("mail", "mark mail sent", res, err)
}

// UnsentMails returns the oldest limit unsent mails (all when limit <= 0),
// oldest first.
func (t *tx) UnsentMails(limit int) ([]*sipdesk.Mail, error) {
	rows, err := t.query("SELECT " + mailCols + " FROM outbox WHERE sent_at = 0 ORDER BY id" + limitClause(limit))
	if err != nil {
		return nil, t.fail("list unsent mails", err)
	}
	return collect(t, rows, "list unsent mails", scanMail)
}

// RedactMail replaces the bodies of a delivered mail (they may carry a reset
// link or a code) so the outbox keeps only who, what and when.
func (t *tx) RedactMail(id int64) error {
	res, err := t.exec("UPDATE outbox SET text_body = ?, html_body = '' WHERE id = ?", sipdesk.RedactedMailBody, id)
	return t.affected("mail", "redact mail", res, err)
}

// PruneMails deletes the mails created before before.
func (t *tx) PruneMails(before time.Time) (int, error) {
	res, err := t.exec("DELETE FROM outbox WHERE created_at < ?", ms(before))
	if err != nil {
		return 0, t.fail("prune mails", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
