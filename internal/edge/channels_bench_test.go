package edge

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// BenchmarkAcquireRelease measures one svc.AcquireChannel plus one
// svc.ReleaseChannel (the store work of a call's channel) on SQLite and on
// PostgreSQL (SIPDESK_TEST_POSTGRES), serially and from 8×GOMAXPROCS goroutines
// against one customer (the worst case: every acquire locks the same
// customer row). Run: go test -run '^$' -bench AcquireRelease ./internal/edge
func BenchmarkAcquireRelease(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			var st sipdesk.Store
			if engine == "sqlite" {
				st = openStore(b)
			} else {
				st, _ = openPG(b)
			}
			f := fixture{b, st}
			cust := f.customer()
			acct := f.ipAccount(cust, "bench", "", "127.0.0.2/32")
			svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(b)})
			if _, err := svc.SetChannelLimit(context.Background(), cust, 1000); err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			one := func() {
				id := fmt.Sprintf("bench-%d", seq.Add(1))
				if err := svc.AcquireChannel(context.Background(), &sipdesk.CallLease{CallID: id, CustomerID: cust,
					SIPAccountID: acct.ID, Direction: sipdesk.DirOutbound, Node: "bench"}); err != nil {
					b.Fatal(err)
				}
				if err := svc.ReleaseChannel(context.Background(), id); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					one()
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						one()
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		})
	}
}
