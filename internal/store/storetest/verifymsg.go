package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Verification messages (store: verifymsg.go).

func testVerificationMessages(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	msg := func(c *sipdesk.Customer, number int64, next time.Duration) *sipdesk.VerificationMessage {
		return &sipdesk.VerificationMessage{PublicID: uniq(), CustomerID: c.ID, NumberID: number, Channel: "kannel",
			Purpose: sipdesk.PurposeSignup, To: "+44" + digits(9), Code: "123456", State: sipdesk.MessageQueued,
			NextAt: at(next), ExpiresAt: at(10 * time.Minute), CreatedAt: at(0)}
	}
	numA := 1<<40 + int64(ca.ID)
	m1, m2, m3 := msg(ca, numA, 0), msg(ca, numA, time.Minute), msg(cb, numA+1, 0)
	update(t, s, func(tx sipdesk.Tx) error {
		for _, m := range []*sipdesk.VerificationMessage{m1, m2, m3} {
			if err := tx.InsertVerificationMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.VerificationMessage(m1.ID)
		if err != nil {
			return err
		}
		equal(t, "VerificationMessage", got, m1)
		latest, err := tx.LatestVerificationMessage(numA)
		if err != nil {
			return err
		}
		equal(t, "LatestVerificationMessage", latest, m2)
		_, err = tx.VerificationMessage(1 << 50)
		wantCode(t, "VerificationMessage unknown", err, sipdesk.ENotFound, "")
		_, err = tx.VerificationMessageByReport("")
		wantCode(t, "VerificationMessageByReport empty", err, sipdesk.ENotFound, "")
		due, err := tx.DueVerificationMessages(ca.ID, at(30*time.Second), 0)
		if err != nil {
			return err
		}
		equal(t, "DueVerificationMessages of a, at 30s", due, []*sipdesk.VerificationMessage{m1})
		all, err := tx.DueVerificationMessages(0, at(2*time.Minute), 0)
		if err != nil {
			return err
		}
		got3 := ids(all, func(m *sipdesk.VerificationMessage) int64 { return m.ID })
		if !slices.Contains(got3, m2.ID) || !slices.Contains(got3, m3.ID) {
			t.Errorf("DueVerificationMessages(0) = %v, misses %d or %d", got3, m2.ID, m3.ID)
		}
		return nil
	})

	// A claim is won once; the claimed message is due again only at until.
	update(t, s, func(tx sipdesk.Tx) error {
		return tx.ClaimVerificationMessage(m1.ID, at(time.Second), at(time.Minute), "h-"+m1.PublicID)
	})
	wantCode(t, "second claim", txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.ClaimVerificationMessage(m1.ID, at(2*time.Second), at(time.Minute), "other")
	}), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.VerificationMessageByReport("h-" + m1.PublicID)
		if err != nil {
			return err
		}
		if got.ID != m1.ID || got.Attempts != 1 || !got.NextAt.Equal(at(time.Minute)) {
			t.Errorf("claimed message: %s", dump(got))
		}
		return nil
	})

	// Sent: the code is dropped.
	m1.State, m1.Code, m1.Attempts, m1.ReportHash = sipdesk.MessageSent, "", 1, "h-"+m1.PublicID
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateVerificationMessage(m1) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.VerificationMessage(m1.ID)
		if err != nil {
			return err
		}
		if got.State != sipdesk.MessageSent || got.Code != "" {
			t.Errorf("after update: %s", dump(got))
		}
		return nil
	})

	// A new code replaces the queued messages of its number only.
	var n int
	update(t, s, func(tx sipdesk.Tx) (err error) { n, err = tx.ReplaceVerificationMessages(numA); return err })
	if n != 1 {
		t.Errorf("ReplaceVerificationMessages = %d, want 1 (m2)", n)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.VerificationMessage(m2.ID)
		if err != nil {
			return err
		}
		if got.State != sipdesk.MessageReplaced || got.Code != "" {
			t.Errorf("replaced: %s", dump(got))
		}
		if got, _ := tx.VerificationMessage(m3.ID); got == nil || got.State != sipdesk.MessageQueued {
			t.Errorf("another number's message changed: %s", dump(got))
		}
		return nil
	})

	update(t, s, func(tx sipdesk.Tx) (err error) { n, err = tx.PruneVerificationMessages(at(time.Second)); return err })
	if n < 3 {
		t.Errorf("PruneVerificationMessages = %d, want at least 3", n)
	}
	wantCode(t, "pruned", s.View(t.Context(), func(tx sipdesk.Tx) error { _, err := tx.VerificationMessage(m1.ID); return err }), sipdesk.ENotFound, "")
}
