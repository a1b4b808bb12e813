package edge

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// BenchmarkAdmission measures the channel work of one call through the
// edge's admission on SQLite: Acquire, SaveDialog (the answer), Release.
//   - store: the lease in the store (PostgreSQL's path, and SQLite's
//     before policy.ChannelOptions.Local): acquisitions in group commits,
//     dialog and release posted;
//   - local/short: in memory, calls shorter than a write window (nothing
//     written);
//   - local/long: in memory, every call outlives a window: its row is
//     inserted (with its dialog) and deleted, 256 calls per flush.
//
// cpu-ns/op is the CPU the process spent per call (user and system, every
// goroutine: the committer's included), which wall time per call hides
// when a call waits for its commit.
//
// Run: go test -run '^$' -bench Admission -benchmem ./internal/edge
func BenchmarkAdmission(b *testing.B) {
	setup := func(b *testing.B, local bool) (*policy.ChannelAdmission, func(string) policy.CallInfo) {
		st := openStore(b)
		f := fixture{b, st}
		cust := f.customer()
		acct := f.ipAccount(cust, "bench", "", "127.0.0.2/32")
		svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(b)})
		if _, err := svc.SetChannelLimit(context.Background(), cust, 100000); err != nil {
			b.Fatal(err)
		}
		adm := policy.NewChannels(st, svc, "bench", policy.ChannelOptions{Log: testLogger(b), Local: local})
		return adm, func(id string) policy.CallInfo {
			return policy.CallInfo{CallID: id, Direction: sipdesk.DirOutbound, Account: acct, CustomerID: cust}
		}
	}
	dialog := policy.Dialog{Node: "bench", Legs: []policy.DialogLeg{{Side: policy.LegCarrier, CallID: "carrier", CSeq: 2, Transport: "UDP",
		From: "<sip:+15550000002@127.0.0.1>;tag=ours", To: "<sip:+15551230001@127.0.0.9>;tag=theirs", Target: "sip:carrier@127.0.0.9"}}}
	ctx := context.Background()
	var seq atomic.Int64
	one := func(b *testing.B, adm *policy.ChannelAdmission, call func(string) policy.CallInfo) {
		in := call(fmt.Sprintf("bench-%d", seq.Add(1)))
		if err := adm.Acquire(ctx, in); err != nil {
			b.Fatal(err)
		}
		adm.SaveDialog(in.CallID, dialog)
		adm.Release(ctx, in)
	}
	for _, mode := range []string{"store", "local/short"} {
		b.Run(mode, func(b *testing.B) {
			adm, call := setup(b, mode != "store")
			b.Run("serial", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					one(b, adm, call)
				}
				adm.Settle(ctx, 10*time.Second)
			})
			b.Run("parallel", func(b *testing.B) {
				defer reportCPU(b)()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						one(b, adm, call)
					}
				})
				adm.Settle(ctx, 10*time.Second)
			})
		})
	}
	b.Run("local/long", func(b *testing.B) {
		adm, call := setup(b, true)
		defer reportCPU(b)()
		var open []policy.CallInfo
		for b.Loop() {
			in := call(fmt.Sprintf("bench-%d", seq.Add(1)))
			if err := adm.Acquire(ctx, in); err != nil {
				b.Fatal(err)
			}
			adm.SaveDialog(in.CallID, dialog)
			if open = append(open, in); len(open) == 256 {
				adm.Settle(ctx, 10*time.Second) // the rows are inserted
				for _, in := range open {
					adm.Release(ctx, in)
				}
				adm.Settle(ctx, 10*time.Second) // and deleted
				open = open[:0]
			}
		}
	})
}

// reportCPU reports the process's CPU per op (user and system time, every
// goroutine) from now to the returned function's call.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() { b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op") }
}
