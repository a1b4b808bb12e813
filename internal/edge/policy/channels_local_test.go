package policy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

// Channel admission of a single edge (ChannelOptions.Local) on a real
// SQLite store: limits decided in memory, lease rows written behind.

// updateCounter counts the write transactions of a store.
type updateCounter struct {
	sipdesk.Store
	updates atomic.Int64
}

func (s *updateCounter) Update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

type localEnv struct {
	t    *testing.T
	st   *updateCounter
	svc  *app.Service
	cust int64
	acct *sipdesk.SIPAccount
}

func newLocalEnv(t *testing.T, limit int) *localEnv {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &localEnv{t: t, st: &updateCounter{Store: db}}
	e.svc = app.New(db, app.Options{Realm: "sip.test", LeaseTTL: 3 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := &sipdesk.Customer{Email: "local@example.com", PasswordHash: "x", VerifiedPhone: "+15550000001",
		BillingState: sipdesk.BillingPaid, ChannelLimit: limit, ChannelScope: sipdesk.ScopeOutbound, SIPAccountQuota: 100}
	e.acct = &sipdesk.SIPAccount{Name: "trunk", AuthType: sipdesk.AuthIP, Status: sipdesk.StatusActive,
		AllowedIPs: []sipdesk.AllowedIP{mustIP(t, "192.0.2.1/32")}}
	if err := db.Update(context.Background(), func(tx sipdesk.Tx) error {
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		e.acct.CustomerID = c.ID
		return tx.InsertSIPAccount(e.acct)
	}); err != nil {
		t.Fatal(err)
	}
	e.cust = c.ID
	return e
}

func mustIP(t *testing.T, s string) sipdesk.AllowedIP {
	a, err := sipdesk.ParseAllowedIP(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *localEnv) admission(node string) *ChannelAdmission {
	return NewChannels(e.st, e.svc, node, ChannelOptions{Local: true, Timing: sipdesk.LeaseTimingFor(3 * time.Second),
		Timeout: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func (e *localEnv) call(id, dir string) CallInfo {
	return CallInfo{CallID: id, Direction: dir, Account: e.acct, CustomerID: e.cust, Node: "n1"}
}

// rows are the lease rows in the store, by Call-ID.
func (e *localEnv) rows() map[string]*sipdesk.CallLease {
	e.t.Helper()
	ls, err := e.svc.ActiveCalls(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]*sipdesk.CallLease{}
	for _, l := range ls {
		m[l.CallID] = l
	}
	return m
}

// acquireAll runs n Acquires at once and returns the admitted Call-IDs and
// the refusals' codes.
func acquireAll(c *ChannelAdmission, e *localEnv, prefix, dir string, n int) (ok []string, refused map[string]int) {
	var mu sync.Mutex
	refused = map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			in := e.call(fmt.Sprintf("%s-%d", prefix, i), dir)
			err := c.Acquire(context.Background(), in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused[sipdesk.ErrorCode(err)]++
			} else {
				ok = append(ok, in.CallID)
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, refused
}

// TestLocalChannelsLimitExact: 200 parallel acquisitions against a limit
// of 7 admit exactly 7 and refuse the rest with channel_limit_reached;
// inbound calls (scope outbound) do not count; releases free channels;
// the SIP account's cap holds the same way.
func TestLocalChannelsLimitExact(t *testing.T) {
	e := newLocalEnv(t, 7)
	c := e.admission("n1")
	ok, refused := acquireAll(c, e, "out", sipdesk.DirOutbound, 200)
	if len(ok) != 7 || refused[sipdesk.EChannelLimit] != 193 {
		t.Fatalf("admitted %d, refused %v; want 7 and 193 channel_limit_reached", len(ok), refused)
	}
	if in, refused := acquireAll(c, e, "in", sipdesk.DirInbound, 20); len(in) != 20 {
		t.Fatalf("inbound under scope outbound: admitted %d, refused %v; want all 20", len(in), refused)
	}
	for _, id := range ok[:3] {
		c.Release(context.Background(), e.call(id, sipdesk.DirOutbound))
	}
	if more, refused := acquireAll(c, e, "again", sipdesk.DirOutbound, 50); len(more) != 3 {
		t.Fatalf("after 3 releases: admitted %d, refused %v; want 3", len(more), refused)
	}

	// A cap of 2 on the SIP account, limit 100: 2 admitted, channel_cap_reached.
	e2 := newLocalEnv(t, 100)
	e2.acct.ChannelCap = 2
	if err := e2.st.Update(context.Background(), func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(e2.acct) }); err != nil {
		t.Fatal(err)
	}
	c2 := e2.admission("n1")
	if ok, refused := acquireAll(c2, e2, "cap", sipdesk.DirOutbound, 50); len(ok) != 2 || refused[sipdesk.EChannelCap] != 48 {
		t.Fatalf("cap 2: admitted %d, refused %v", len(ok), refused)
	}
}

// TestLocalChannelsLimitChange: a limit set in the portal applies to the
// very next call (no wait for the edge's config refresh), raised and
// lowered, and so does a SIP account's cap.
func TestLocalChannelsLimitChange(t *testing.T) {
	e := newLocalEnv(t, 1)
	c := e.admission("n1")
	ctx := context.Background()
	if err := c.Acquire(ctx, e.call("a", sipdesk.DirOutbound)); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire(ctx, e.call("b", sipdesk.DirOutbound)); sipdesk.ErrorCode(err) != sipdesk.EChannelLimit {
		t.Fatalf("second call at limit 1: %v", err)
	}
	if _, err := e.svc.SetChannelLimit(ctx, e.cust, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire(ctx, e.call("b", sipdesk.DirOutbound)); err != nil {
		t.Fatalf("next call after the limit went to 3: %v", err)
	}
	if _, err := e.svc.SetChannelLimit(ctx, e.cust, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire(ctx, e.call("c", sipdesk.DirOutbound)); sipdesk.ErrorCode(err) != sipdesk.EChannelLimit {
		t.Fatalf("next call after the limit went down to 2 (2 live): %v", err)
	}
	e.acct.ChannelCap = 1
	if err := e.st.Update(ctx, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(e.acct) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetChannelLimit(ctx, e.cust, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire(ctx, e.call("c", sipdesk.DirOutbound)); sipdesk.ErrorCode(err) != sipdesk.EChannelCap {
		t.Fatalf("next call with a cap of 1 (2 live): %v", err)
	}
}

// TestLocalChannelsWriteBehind: a call acquired and released before a
// flush is never written (no transaction at all); a long call's row is
// written within a window of the running admission, with its dialog
// riding on the insert, and deleted after its release.
func TestLocalChannelsWriteBehind(t *testing.T) {
	e := newLocalEnv(t, 10)
	c := e.admission("n1")
	ctx := context.Background()
	for i := range 5 {
		in := e.call(fmt.Sprintf("short-%d", i), sipdesk.DirOutbound)
		if err := c.Acquire(ctx, in); err != nil {
			t.Fatal(err)
		}
		c.SaveDialog(in.CallID, Dialog{Node: "n1"})
		c.Release(ctx, in)
	}
	before := e.st.updates.Load()
	if !c.Settle(ctx, time.Second) {
		t.Fatal("settle")
	}
	if n := e.st.updates.Load() - before; n != 0 {
		t.Errorf("%d write transactions for calls acquired and released within a window, want 0", n)
	}
	if rows := e.rows(); len(rows) != 0 {
		t.Errorf("lease rows of short calls: %v", rows)
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(rctx) }()
	defer func() { cancel(); <-done }()
	long := e.call("long", sipdesk.DirOutbound)
	if err := c.Acquire(ctx, long); err != nil {
		t.Fatal(err)
	}
	d := Dialog{Node: "n1", Legs: []DialogLeg{{Side: LegCarrier, CallID: "carrier-1", CSeq: 2, Transport: "UDP"}}}
	c.SaveDialog(long.CallID, d)
	var row *sipdesk.CallLease
	for end := time.Now().Add(2 * time.Second); row == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no lease row 2 s after the call started")
		}
		row = e.rows()["long"]
	}
	var got Dialog
	if err := json.Unmarshal([]byte(row.Dialog), &got); err != nil || len(got.Legs) != 1 || got.Legs[0].CallID != "carrier-1" {
		t.Errorf("row dialog %q", row.Dialog)
	}
	if row.Node != "n1" || row.CustomerID != e.cust || row.SIPAccountID != e.acct.ID || row.Direction != sipdesk.DirOutbound {
		t.Errorf("row %+v", row)
	}
	c.Release(ctx, long)
	for end := time.Now().Add(2 * time.Second); len(e.rows()) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("lease row still there after the release")
		}
	}
}

// byeRecorder records the lost calls the sweep ends.
type byeRecorder struct {
	mu   sync.Mutex
	byes map[string]Dialog
}

func (b *byeRecorder) EndCalls([]string, string) {}
func (b *byeRecorder) ByeLost(_ context.Context, callID string, d Dialog) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byes[callID] = d
}

// TestLocalChannelsCrash: a node dies (no release, no settle) with a call
// older than a window and one younger; started again under its name, it
// ends the old call from its row (BYE from the dialog, record node_lost)
// and frees its row; the young call had no row: nothing ends it.
func TestLocalChannelsCrash(t *testing.T) {
	e := newLocalEnv(t, 10)
	ctx := context.Background()
	life1 := e.admission("n1")
	rctx, crash := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); life1.Run(rctx) }()
	old := e.call("old-call", sipdesk.DirOutbound)
	if err := life1.Acquire(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SaveCallRecord(ctx, &sipdesk.CallRecord{CallID: old.CallID, CustomerID: e.cust, SIPAccountID: e.acct.ID,
		Direction: sipdesk.DirOutbound, StartedAt: time.Now(), Disposition: sipdesk.DispActive, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	life1.SaveDialog(old.CallID, Dialog{Node: "n1", Legs: []DialogLeg{{Side: LegCarrier, CallID: "carrier-old", CSeq: 2}}})
	for end := time.Now().Add(2 * time.Second); e.rows()["old-call"] == nil || e.rows()["old-call"].Dialog == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no lease row with its dialog")
		}
	}
	// The crash: the loops stop, and the young call never gets written
	// (acquired after the last flush).
	crash()
	<-done
	young := e.call("young-call", sipdesk.DirOutbound)
	if err := life1.Acquire(ctx, young); err != nil {
		t.Fatal(err)
	}

	life2 := e.admission("n1")
	br := &byeRecorder{byes: map[string]Dialog{}}
	life2.SetEnder(br)
	rctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan struct{})
	go func() { defer close(done2); life2.Run(rctx2) }()
	defer func() { stop2(); <-done2 }()
	byed := func() bool {
		br.mu.Lock()
		defer br.mu.Unlock()
		return len(br.byes) > 0
	}
	for end := time.Now().Add(5 * time.Second); !byed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the previous life's call not ended; rows %v", e.rows())
		}
	}
	for end := time.Now().Add(5 * time.Second); len(e.rows()) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("rows of the previous life left: %v", e.rows())
		}
	}
	br.mu.Lock()
	d, ok := br.byes["old-call"]
	_, youngBye := br.byes["young-call"]
	n := len(br.byes)
	br.mu.Unlock()
	if !ok || len(d.Legs) != 1 || d.Legs[0].CallID != "carrier-old" || n != 1 {
		t.Errorf("calls ended: %v; want the old call from its dialog", br.byes)
	}
	if youngBye {
		t.Error("the young call had a row")
	}
	rs, err := e.svc.CallRecords(ctx, sipdesk.CallFilter{CustomerID: e.cust})
	if err != nil || len(rs) != 1 || rs[0].Disposition != sipdesk.DispNodeLost {
		t.Errorf("records %v %+v, want the old call's node_lost", err, rs)
	}
}

// TestLocalChannelsStrayRow: a row of this node that no call of this
// process holds (the start could not list it, or its delete was dropped)
// is not renewed for ever: the renewal hands it to the sweep, which ends
// its call from the dialog and frees it.
func TestLocalChannelsStrayRow(t *testing.T) {
	e := newLocalEnv(t, 10)
	ctx := context.Background()
	c := e.admission("n1")
	br := &byeRecorder{byes: map[string]Dialog{}}
	c.SetEnder(br)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(rctx) }()
	defer func() { stop(); <-done }()
	time.Sleep(100 * time.Millisecond) // past the start's look at the rows
	js, _ := json.Marshal(Dialog{Node: "n1", Legs: []DialogLeg{{Side: LegCarrier, CallID: "carrier-stray", CSeq: 2}}})
	now := time.Now()
	if err := e.st.Update(ctx, func(tx sipdesk.Tx) error {
		return tx.InsertLease(&sipdesk.CallLease{CallID: "stray", CustomerID: e.cust, SIPAccountID: e.acct.ID, Direction: sipdesk.DirOutbound,
			Node: "n1", StartedAt: now, ExpiresAt: now.Add(time.Hour), Dialog: string(js)})
	}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		br.mu.Lock()
		d, ok := br.byes["stray"]
		br.mu.Unlock()
		if ok {
			if len(d.Legs) != 1 || d.Legs[0].CallID != "carrier-stray" {
				t.Errorf("dialog %+v", d)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("stray row not ended; rows %v", e.rows())
		}
	}
	for end := time.Now().Add(5 * time.Second); len(e.rows()) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("stray row left: %v", e.rows())
		}
	}
}

// slowEnder holds each BYE of a lost call until released.
type slowEnder struct {
	started chan string
	release chan struct{}
}

func (s *slowEnder) EndCalls([]string, string) {}
func (s *slowEnder) ByeLost(ctx context.Context, callID string, _ Dialog) {
	s.started <- callID
	select {
	case <-s.release:
	case <-ctx.Done():
	}
}

// TestLocalChannelsPreviousLifeCounts: while a restarted edge ends its
// previous life's calls, they still count (the carrier counts them until
// their BYE): under limit 1 a new call is refused until the BYE is done.
func TestLocalChannelsPreviousLifeCounts(t *testing.T) {
	e := newLocalEnv(t, 1)
	ctx := context.Background()
	life1 := e.admission("n1")
	old := e.call("old-call", sipdesk.DirOutbound)
	if err := life1.Acquire(ctx, old); err != nil {
		t.Fatal(err)
	}
	life1.SaveDialog(old.CallID, Dialog{Node: "n1", Legs: []DialogLeg{{Side: LegCarrier, CallID: "carrier-old", CSeq: 2}}})
	if !life1.Settle(ctx, 2*time.Second) || e.rows()["old-call"] == nil {
		t.Fatal("the old call's row was not written")
	}
	// life1 crashes here (no release).
	life2 := e.admission("n1")
	se := &slowEnder{started: make(chan string, 1), release: make(chan struct{})}
	life2.SetEnder(se)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); life2.Run(rctx) }()
	defer func() { stop(); <-done }()
	select {
	case id := <-se.started:
		if id != "old-call" {
			t.Fatalf("BYE for %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the previous life's call is not being ended")
	}
	if err := life2.Acquire(ctx, e.call("new-1", sipdesk.DirOutbound)); sipdesk.ErrorCode(err) != sipdesk.EChannelLimit {
		t.Fatalf("a call while the previous life's BYE is out: %v, want channel_limit_reached", err)
	}
	close(se.release)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := life2.Acquire(ctx, e.call("new-2", sipdesk.DirOutbound))
		if err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after the BYE: %v", err)
		}
	}
}

// gatedViews holds the first read transaction after it is armed until
// released, and counts the read transactions.
type gatedViews struct {
	sipdesk.Store
	armed            atomic.Bool
	views            atomic.Int64
	entered, release chan struct{}
}

func (s *gatedViews) View(ctx context.Context, fn func(sipdesk.Tx) error) error {
	if s.armed.Load() && s.views.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.Store.View(ctx, fn)
}

// TestLocalChannelsLimitReads: the limits of an account missing from the
// cache are read once for a burst of its calls, and a call of another
// account does not wait behind that read.
func TestLocalChannelsLimitReads(t *testing.T) {
	e := newLocalEnv(t, 50)
	other := &sipdesk.SIPAccount{CustomerID: e.cust, Name: "other", AuthType: sipdesk.AuthIP, Status: sipdesk.StatusActive,
		AllowedIPs: []sipdesk.AllowedIP{mustIP(t, "192.0.2.2/32")}}
	if err := e.st.Update(context.Background(), func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(other) }); err != nil {
		t.Fatal(err)
	}
	st := &gatedViews{Store: e.st, entered: make(chan struct{}), release: make(chan struct{})}
	c := NewChannels(st, e.svc, "n1", ChannelOptions{Local: true, Timing: sipdesk.LeaseTimingFor(3 * time.Second),
		Timeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	st.armed.Store(true)
	burst := make(chan []string)
	go func() { ok, _ := acquireAll(c, e, "burst", sipdesk.DirOutbound, 20); burst <- ok }()
	<-st.entered // the burst's read holds
	time.Sleep(50 * time.Millisecond)
	done := make(chan error)
	go func() {
		done <- c.Acquire(context.Background(), CallInfo{CallID: "other-1", Direction: sipdesk.DirOutbound, Account: other, CustomerID: e.cust, Node: "n1"})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the other account's call: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the other account's call waited behind the first account's read")
	}
	close(st.release)
	if ok := <-burst; len(ok) != 20 {
		t.Fatalf("burst: %d admitted, want 20", len(ok))
	}
	if n := st.views.Load(); n != 2 {
		t.Fatalf("%d limit reads for 2 accounts, want 2", n)
	}
}

// TestLocalChannelsDialogWrittenNotKept: a call's dialog state reaches its
// lease row and is not kept in memory after that; a call whose writes were
// left out (queue full) keeps it until its row is written whole, dialog
// included, once the queue has room.
func TestLocalChannelsDialogWrittenNotKept(t *testing.T) {
	e := newLocalEnv(t, 10)
	c := e.admission("n1")
	ctx := context.Background()
	kept := func(id string) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.loc.calls[id].lease.Dialog
	}
	dialog := func(id string) Dialog {
		return Dialog{Node: "n1", Legs: []DialogLeg{{Side: LegCarrier, CallID: "carrier-" + id, CSeq: 2}}}
	}
	rowDialog := func(id string) string {
		r := e.rows()[id]
		if r == nil {
			return ""
		}
		var d Dialog
		if json.Unmarshal([]byte(r.Dialog), &d) != nil || len(d.Legs) != 1 {
			return ""
		}
		return d.Legs[0].CallID
	}
	c.mu.Lock()
	c.loc.maxWrites = 2
	c.mu.Unlock()
	for _, id := range []string{"a", "b", "c"} { // c: left out, the queue holds a and b
		if err := c.Acquire(ctx, e.call(id, sipdesk.DirOutbound)); err != nil {
			t.Fatal(err)
		}
	}
	c.SaveDialog("a", dialog("a")) // rides on a's queued insert
	c.SaveDialog("c", dialog("c")) // left out too
	if kept("a") != "" || kept("c") == "" {
		t.Fatalf("kept dialogs before the flush: a %q, c %q", kept("a"), kept("c"))
	}
	for range 2 { // a and b, then c whole
		if !c.Flush(ctx) {
			t.Fatal("flush")
		}
	}
	if got := rowDialog("a"); got != "carrier-a" {
		t.Errorf("a's row dialog: %q", got)
	}
	if got := rowDialog("c"); got != "carrier-c" {
		t.Errorf("c's row (left out, then written whole) dialog: %q", got)
	}
	c.SaveDialog("b", dialog("b")) // b's row is written: an update
	if !c.Flush(ctx) {
		t.Fatal("flush")
	}
	if got := rowDialog("b"); got != "carrier-b" {
		t.Errorf("b's row dialog: %q", got)
	}
	for _, id := range []string{"a", "b", "c"} {
		if d := kept(id); d != "" {
			t.Errorf("%s's dialog still kept in memory after its row was written: %q", id, d)
		}
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("%d lease writes pending", n)
	}
}
