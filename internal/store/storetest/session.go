package storetest

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Portal sessions (store: session.go).

func testSessions(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	live := &sipdesk.Session{CustomerID: c.ID, Hash: "h" + uniq(), CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	old := &sipdesk.Session{CustomerID: c.ID, Hash: "h" + uniq(), CreatedAt: at(0), ExpiresAt: at(-time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertSession(live); err != nil {
			return err
		}
		return tx.InsertSession(old)
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SessionByHash(live.Hash)
		if err != nil {
			return err
		}
		equal(t, "SessionByHash", got, live)
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredSessions(at(0))
		if err == nil && n < 1 {
			t.Errorf("DeleteExpiredSessions deleted %d", n)
		}
		return err
	})
	wantCode(t, "expired session", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.SessionByHash(old.Hash); return err }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSession(live.Hash) })
	wantCode(t, "deleted session", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.SessionByHash(live.Hash); return err }), sipdesk.ENotFound, "")
}
