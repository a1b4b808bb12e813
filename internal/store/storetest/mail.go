package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Outbox (store: mail.go).

func testMails(t *testing.T, su *suite) {
	s := su.open(t)
	m1 := &sipdesk.Mail{To: "a-" + uniq() + "@example.com", Subject: "Welcome", Text: "Hello", HTML: "<p>Hello</p>", CreatedAt: at(0)}
	m2 := &sipdesk.Mail{To: "b-" + uniq() + "@example.com", Subject: "Code", Text: "123456"}
	m3 := &sipdesk.Mail{To: "c-" + uniq() + "@example.com", Subject: "Sent", SentAt: at(time.Minute)}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, m := range []*sipdesk.Mail{m1, m2, m3} {
			if err := tx.InsertMail(m); err != nil {
				return err
			}
		}
		return nil
	})
	if m1.ID == 0 || m2.CreatedAt.IsZero() {
		t.Fatal("InsertMail did not set ID/CreatedAt")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Mail(m1.ID)
		if err != nil {
			return err
		}
		equal(t, "Mail", got, m1)
		_, err = tx.Mail(1 << 50)
		wantCode(t, "Mail unknown", err, sipdesk.ENotFound, "")
		list, err := tx.Mails(3)
		if err != nil {
			return err
		}
		equal(t, "Mails newest first", list, []*sipdesk.Mail{m3, m2, m1})
		list, err = tx.Mails(1)
		if err != nil {
			return err
		}
		equal(t, "Mails limit 1", list, []*sipdesk.Mail{m3})
		unsent, err := tx.UnsentMails(0)
		if err != nil {
			return err
		}
		got3 := ids(unsent, func(m *sipdesk.Mail) int64 { return m.ID })
		i1, i2 := slices.Index(got3, m1.ID), slices.Index(got3, m2.ID)
		if i1 < 0 || i2 < 0 || i1 > i2 || slices.Contains(got3, m3.ID) {
			t.Errorf("UnsentMails = %v, want %d before %d and not %d", got3, m1.ID, m2.ID, m3.ID)
		}
		return nil
	})
	m1.SentAt = at(time.Hour)
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m1.ID, m1.SentAt) })
	wantCode(t, "MarkMailSent unknown", txErr(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(1<<50, at(0)) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Mail(m1.ID)
		if err != nil {
			return err
		}
		equal(t, "Mail after MarkMailSent", got, m1)
		unsent, err := tx.UnsentMails(0)
		if err != nil {
			return err
		}
		if slices.Contains(ids(unsent, func(m *sipdesk.Mail) int64 { return m.ID }), m1.ID) {
			t.Error("UnsentMails lists a sent mail")
		}
		return nil
	})
}

func testMailClaim(t *testing.T, su *suite) {
	s := su.open(t)
	m := &sipdesk.Mail{To: uniq() + "@example.com", Subject: "claim", Text: "t"}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertMail(m) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(time.Minute)) })
	wantCode(t, "second claim", txErr(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(2*time.Minute)) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, time.Time{}) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(3*time.Minute)) })
}
