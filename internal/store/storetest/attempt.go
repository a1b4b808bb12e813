package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Attempt counters and pending signups (store: attempt.go), outbox
// redaction and pruning (mail.go).

func testAttempts(t *testing.T, su *suite) {
	s := su.open(t)
	key := "test:" + uniq()
	bump := func(now time.Time) int {
		t.Helper()
		var n int
		update(t, s, func(tx sipdesk.Tx) (err error) { n, err = tx.BumpAttempt(key, now, time.Minute, 3); return err })
		return n
	}
	var got []int
	for range 5 {
		got = append(got, bump(at(0)))
	}
	equal(t, "counts up to the limit, then limit+1 without counting", got, []int{1, 2, 3, 4, 4})
	read := func(now time.Time) int {
		t.Helper()
		var n int
		view(t, s, func(tx sipdesk.Tx) (err error) { n, err = tx.Attempts(key, now); return err })
		return n
	}
	if n := read(at(30 * time.Second)); n != 4 {
		t.Fatalf("Attempts within the window: %d", n)
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.RefundAttempt(key) })
	if n := bump(at(time.Second)); n != 4 {
		t.Fatalf("after a refund the next bump is refused again: %d, want 4", n)
	}
	if n := read(at(time.Minute)); n != 0 {
		t.Fatalf("Attempts once the window ended: %d", n)
	}
	if n := bump(at(time.Minute)); n != 1 {
		t.Fatalf("a bump after the window opens a new one: %d", n)
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.ClearAttempts(key) })
	if n := read(at(time.Minute)); n != 0 {
		t.Fatalf("after ClearAttempts: %d", n)
	}

	// Two stores (two nodes) bumping one key at once: exactly the limit
	// get through.
	shared, other := "test:"+uniq(), su.open(t)
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = other
			}
			var n int
			err := st.Update(t.Context(), func(tx sipdesk.Tx) (err error) { n, err = tx.BumpAttempt(shared, at(0), time.Hour, 5); return err })
			if err != nil {
				t.Error(err)
				return
			}
			if n <= 5 {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passed != 5 {
		t.Fatalf("%d of 20 concurrent bumps passed a limit of 5", passed)
	}

	// Pruning deletes ended windows only.
	live := "test:" + uniq()
	update(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.BumpAttempt(live, at(time.Hour), time.Hour, 5)
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error { _, err := tx.PruneAttempts(at(90 * time.Minute)); return err })
	view(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.Attempts(shared, at(0))
		if err == nil && n != 0 {
			t.Errorf("an ended window survived PruneAttempts: %d", n)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.BumpAttempt(live, at(90*time.Minute), time.Hour, 5)
		if err == nil && n != 2 {
			t.Errorf("a live window lost its count to PruneAttempts: %d", n)
		}
		return err
	})
}

func testPendingSignups(t *testing.T, su *suite) {
	s := su.open(t)
	p := &sipdesk.PendingSignup{TokenHash: "h" + uniq(), Email: uniq() + "@example.com", PasswordHash: "$argon2id$x", Phone: "+4477009" + digits(5), ExpiresAt: at(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertPendingSignup(p) })
	update(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.TakePendingSignup(p.TokenHash, at(0))
		if err != nil {
			return err
		}
		equal(t, "pending signup", got, p)
		_, err = tx.TakePendingSignup(p.TokenHash, at(0))
		wantCode(t, "taken twice", err, sipdesk.ENotFound, "")
		return nil
	})
	old := &sipdesk.PendingSignup{TokenHash: "h" + uniq(), Email: uniq() + "@example.com", PasswordHash: "x", Phone: "+1", ExpiresAt: at(time.Minute)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertPendingSignup(old) })
	err := s.Update(t.Context(), func(tx sipdesk.Tx) error { _, err := tx.TakePendingSignup(old.TokenHash, at(time.Minute)); return err })
	wantCode(t, "expired", err, sipdesk.ENotFound, "")
}

func testMailRedactPrune(t *testing.T, su *suite) {
	s := su.open(t)
	ancient := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &sipdesk.Mail{To: "r-" + uniq() + "@example.com", Subject: "Reset", Text: "token=secret", HTML: "<a href=\"token=secret\">x</a>", CreatedAt: ancient}
	keep := &sipdesk.Mail{To: "k-" + uniq() + "@example.com", Subject: "Keep", Text: "t", CreatedAt: ancient.Add(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertMail(m); err != nil {
			return err
		}
		return tx.InsertMail(keep)
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.RedactMail(m.ID) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Mail(m.ID)
		if err == nil && (got.Text != sipdesk.RedactedMailBody || got.HTML != "" || got.Subject != "Reset" || got.To != m.To) {
			t.Errorf("redacted mail: %+v", got)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error { _, err := tx.PruneMails(ancient.Add(time.Minute)); return err })
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.Mail(m.ID)
		wantCode(t, "pruned mail", err, sipdesk.ENotFound, "")
		_, err = tx.Mail(keep.ID)
		return err
	})
}
