package policy_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/store"
)

// Two edges on one SQLite store: a ban one imposes reaches the other, and
// an operator's lift reaches both.
func TestBanSyncSharesAndLifts(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	edge := func(node string) *shield.Shield {
		sh := shield.New(2, time.Minute, 10*time.Minute, 0, time.Now)
		bs := policy.NewBanSync(st, node, sh, 100*time.Millisecond, slog.Default(), time.Now)
		sh.OnBan(bs.Post)
		done := make(chan struct{})
		go func() { defer close(done); bs.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return sh
	}
	a, b := edge("edge-a"), edge("edge-b")
	src := netip.MustParseAddr("198.51.100.7")
	within := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v", what, d)
			}
		}
	}

	a.Fail(src)
	if !a.Fail(src) || !a.Banned(src) {
		t.Fatal("edge a did not ban after 2 failures")
	}
	if b.Banned(src) {
		t.Fatal("edge b banned before it could know")
	}
	within("edge b applies edge a's ban", 2*time.Second, func() bool { return b.Banned(src) })
	var bans []*sipdesk.Ban
	if err := st.View(ctx, func(tx sipdesk.Tx) (err error) { bans, err = tx.Bans(time.Now(), 0); return err }); err != nil {
		t.Fatal(err)
	}
	if len(bans) != 1 || bans[0].Source != "198.51.100.7" || bans[0].Node != "edge-a" || bans[0].Reason != shield.ReasonFailures ||
		bans[0].ExpiresAt.Sub(bans[0].CreatedAt) < 9*time.Minute {
		t.Fatalf("stored bans: %+v", bans)
	}

	// An operator lifts it: both edges let the source in again, and its
	// failures count from zero.
	if err := st.Update(ctx, func(tx sipdesk.Tx) error { return tx.DeleteBan("198.51.100.7") }); err != nil {
		t.Fatal(err)
	}
	within("both edges drop the lifted ban", 2*time.Second, func() bool { return !a.Banned(src) && !b.Banned(src) })
	if a.Fail(src) {
		t.Fatal("one failure after the lift banned again: the old count was kept")
	}
}

// openStore is a SQLite store in a temporary folder, closed at the end.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
