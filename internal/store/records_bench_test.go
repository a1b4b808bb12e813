package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// BenchmarkCallRecordWrites: what the edge writes per call into
// call_records on SQLite (an insert at admission, the final update), in
// lazy-commit transactions of the calls one window of the record writer
// gathers at 1,000 calls/s: 20 in 20 ms, 250 in 250 ms (each commit writes
// the pages it changed again). "before-0018" puts back the two indexes
// migration 0018 dropped.
func BenchmarkCallRecordWrites(b *testing.B) {
	for _, tc := range []struct {
		name  string
		batch int
		extra bool
	}{{"window=20ms", 20, false}, {"window=250ms", 250, false}, {"before-0018", 20, true}} {
		batch, extra := tc.batch, tc.extra
		b.Run(tc.name, func(b *testing.B) {
			db, err := Open(context.Background(), Options{DataDir: b.TempDir(), SecretKey: make([]byte, SecretKeyLen)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := sipdesk.LazyCommit(context.Background())
			c := &sipdesk.Customer{Email: "bench@example.com", PasswordHash: "x", BillingState: sipdesk.BillingPaid}
			if err := db.Update(ctx, func(t sipdesk.Tx) error {
				if extra {
					for _, q := range []string{"CREATE INDEX call_records_started_idx ON call_records (customer_id, started_at)",
						"CREATE INDEX call_records_customer_idx ON call_records (customer_id, id)"} {
						if _, err := t.(*tx).exec(q); err != nil {
							return err
						}
					}
				}
				return t.InsertCustomer(c)
			}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				rs := make([]*sipdesk.CallRecord, batch)
				if err := db.Update(ctx, func(tx sipdesk.Tx) error {
					for i := range rs {
						n++
						rs[i] = &sipdesk.CallRecord{CallID: fmt.Sprintf("c%d@bench", n), CustomerID: c.ID, Direction: sipdesk.DirOutbound,
							From: "sip:alice@bench.local", To: "sip:+4930123456@bench.local", StartedAt: now, Disposition: sipdesk.DispActive}
						if err := tx.InsertCallRecord(rs[i]); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if err := db.Update(ctx, func(tx sipdesk.Tx) error {
					for _, r := range rs {
						r.AnsweredAt, r.EndedAt, r.Disposition, r.Reason = now, now.Add(time.Second), sipdesk.DispAnswered, "bye_caller"
						if err := tx.UpdateCallRecord(r); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/1000, "µs/call")
		})
	}
}
