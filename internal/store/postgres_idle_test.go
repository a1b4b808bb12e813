package store

import (
	"context"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

// TestPostgresIdleTransactionReleasesLocks: a node that stops in the middle
// of a transaction (frozen, cut off) holds its row locks only until
// IdleInTransactionTimeout: another node can then claim its lease.
func TestPostgresIdleTransactionReleasesLocks(t *testing.T) {
	dsn, key := storetest.PostgresDSN(t), testKey(t)
	db := openT(t, Options{DSN: dsn, SecretKey: key})
	ctx := context.Background()
	l := &sipdesk.CallLease{CallID: "frozen", CustomerID: 1, Direction: sipdesk.DirOutbound, Node: "n1", ExpiresAt: time.UnixMilli(1)}
	if err := db.Update(ctx, func(tx sipdesk.Tx) error { return tx.InsertLease(l) }); err != nil {
		t.Fatal(err)
	}
	stuck, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Rollback()
	if _, err := stuck.ExecContext(ctx, "UPDATE call_leases SET expires_at = 2 WHERE call_id = 'frozen'"); err != nil {
		t.Fatal(err)
	}
	// A claim skips the locked lease at once (no wait, no deadlock between
	// sweeping nodes), and gets it once PostgreSQL ends the idle transaction.
	start := time.Now()
	var lost []*sipdesk.LostCall
	for len(lost) == 0 && time.Since(start) < 3*IdleInTransactionTimeout {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err = db.Update(cctx, func(tx sipdesk.Tx) (err error) {
			lost, err = tx.ClaimExpiredLeases("n2", time.UnixMilli(10), time.Now().Add(time.Minute), 10)
			return err
		})
		cancel()
		if err != nil {
			t.Fatalf("claim: %v after %v", err, time.Since(start))
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	if len(lost) != 1 || took < IdleInTransactionTimeout/2 || took > IdleInTransactionTimeout+2*time.Second {
		t.Fatalf("claimed %d after %v, want 1 after about %v", len(lost), took, IdleInTransactionTimeout)
	}
	t.Logf("lease claimed %v after a transaction holding it went idle", took.Round(100*time.Millisecond))
}
