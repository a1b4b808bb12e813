package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

// TestPostgresLeaseSweepKeepsItsLimit: with statistics taken when no lease
// had expired (the usual case: a node dies after the last ANALYZE), the
// planner expects one expired lease and puts the candidates' subquery on
// the inner side of a nested loop. Run there once per row, "call_id IN
// (… LIMIT 3 … SKIP LOCKED)" skipped the leases it had just claimed and
// claimed all 10; the sweep must claim 3.
func TestPostgresLeaseSweepKeepsItsLimit(t *testing.T) {
	db := openT(t, Options{DSN: storetest.PostgresDSN(t), SecretKey: testKey(t)})
	ctx := context.Background()
	if _, err := db.write.ExecContext(ctx, `INSERT INTO call_leases (call_id, customer_id, direction, node, started_at, expires_at)
		SELECT 'live' || i, 1, 'outbound', 'n2', 0, 4000000000000 + i FROM generate_series(1, 5000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, "ANALYZE call_leases"); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx sipdesk.Tx) error {
		for i := range 10 {
			l := &sipdesk.CallLease{CallID: fmt.Sprintf("dead%d", i), CustomerID: 1, Direction: sipdesk.DirOutbound, Node: "n1", ExpiresAt: time.UnixMilli(int64(i + 1))}
			if err := tx.InsertLease(l); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{3, 3, 3, 1, 0} {
		var lost []*sipdesk.LostCall
		if err := db.Update(ctx, func(tx sipdesk.Tx) (err error) {
			lost, err = tx.ClaimExpiredLeases("n3", time.UnixMilli(100), time.UnixMilli(200), 3)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(lost) != want {
			t.Fatalf("a sweep with limit 3 claimed %d leases, want %d", len(lost), want)
		}
	}
}
