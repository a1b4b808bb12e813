package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// BenchmarkChannelLimitsRead: what a single edge reads on SQLite when its
// cache of channel limits lacks a (customer, SIP account), as after a start
// or a config change: "use" is the read it made before (ChannelUse in a read
// transaction: counts live leases, compiled each time), "limits" the one it
// makes now. 1,000 customers with 6 calls up each, as in the harness's
// 20 s-hold run.
func BenchmarkChannelLimitsRead(b *testing.B) {
	db, err := Open(context.Background(), Options{DataDir: b.TempDir(), SecretKey: make([]byte, SecretKeyLen)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Now()
	var custs, accts []int64
	if err := db.Update(ctx, func(t sipdesk.Tx) error {
		for i := range 1000 {
			c := &sipdesk.Customer{Email: fmt.Sprintf("c%d@example.com", i), PasswordHash: "x", BillingState: sipdesk.BillingPaid,
				ChannelLimit: 10, ChannelScope: sipdesk.ScopeBoth}
			if err := t.InsertCustomer(c); err != nil {
				return err
			}
			a := &sipdesk.SIPAccount{CustomerID: c.ID, Name: "a", AuthType: sipdesk.AuthPassword, Username: fmt.Sprintf("u%d", i),
				Digest: sipdesk.NewDigestHashes(fmt.Sprintf("u%d", i), "bench.local", "Secret-Password-1"), Status: sipdesk.StatusActive}
			if err := t.InsertSIPAccount(a); err != nil {
				return err
			}
			custs, accts = append(custs, c.ID), append(accts, a.ID)
			for j := range 6 {
				if err := t.InsertLease(&sipdesk.CallLease{CallID: fmt.Sprintf("%d-%d", i, j), CustomerID: c.ID, SIPAccountID: a.ID,
					Direction: sipdesk.DirOutbound, Node: "bench", StartedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"use", "limits"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % len(custs)
				i++
				if err := db.View(ctx, func(t sipdesk.Tx) error {
					var err error
					if name == "use" {
						_, err = t.ChannelUse(custs[k], accts[k], now)
					} else {
						_, err = t.ChannelLimits(custs[k], accts[k])
					}
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
