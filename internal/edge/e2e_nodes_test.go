//go:build e2e

package edge

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestTwoEdgesShareLimit: two `sipdesk serve --role edge` processes on
// 127.0.0.10 and 127.0.0.11 share PostgreSQL; limit 5; 40 simultaneous
// calls split between them → exactly 5 admitted, 10 times. Then `kill -9`
// of a node holding calls: its channels are free again within LeaseTTL +
// 20 s, and calls through the other node are admitted.
func TestTwoEdgesShareLimit(t *testing.T) {
	siptest.Need(t, "sipp")
	st, dsn := openPG(t)
	bin := buildSipdesk(t)
	f := fixture{t, st}
	svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	cust := f.customer()
	for _, p := range []string{"1111", "2222", "3333"} {
		f.ipAccount(cust, "trunk "+p, p, "127.0.0.4/32")
	}
	if _, err := svc.SetChannelLimit(context.Background(), cust, 5); err != nil {
		t.Fatal(err)
	}
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	env := []string{"SIPDESK_SECRET_KEY=" + hex.EncodeToString(testKey)}
	nodes := map[string]string{"e1": "127.0.0.10", "e2": "127.0.0.11"}
	addrs, procs := map[string]string{}, map[string]*proc{}
	for name, ip := range nodes {
		addrs[name] = fmt.Sprintf("%s:%d", ip, siptest.FreePort(t, ip))
		procs[name] = startProc(t, env, bin, "serve", "--role", "edge", "--node", name, "--database", dsn, "--data", t.TempDir(),
			"--sip", addrs[name], "--http", fmt.Sprintf("%s:%d", ip, siptest.FreePort(t, ip)), "--carrier", fmt.Sprintf("sip:127.0.0.9:%d", carrierPort), "--max-call-duration", "5m")
	}
	for name := range nodes {
		waitSIP(t, addrs[name], procs[name])
	}
	live := func() int {
		ls, err := svc.ActiveCalls(context.Background(), cust)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}
	uac := func(node string, calls, holdMS int) *proc {
		return startProc(t, nil, siptest.Need(t, "sipp"), "-sf", sippUAC(t, "hangup"), "-inf", limitCSV(t, calls), "-key", "domain", testRealm,
			"-i", "127.0.0.4", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.4")), "-bind_local", "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls),
			"-r", "1000", "-d", fmt.Sprint(holdMS), "-timeout", "150s", "-recv_timeout", "10000", "-nostdin", "-mp", map[string]string{"e1": "24000", "e2": "24100"}[node], addrs[node])
	}
	var last int64
	outcomes := func() map[string]int {
		time.Sleep(300 * time.Millisecond) // the nodes write records asynchronously
		rs, err := svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: cust, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, r := range rs {
			if r.ID > last {
				m[r.Node+" "+r.Disposition]++
			}
		}
		for _, r := range rs {
			last = max(last, r.ID)
		}
		return m
	}

	for rep := 1; rep <= 10; rep++ {
		uas := startSippUASScenario(t, scenario("uas_b2bua.xml"), "127.0.0.9", carrierPort, 5)
		u1, u2 := uac("e1", 20, 1500), uac("e2", 20, 1500)
		time.Sleep(800 * time.Millisecond)
		held := live()
		<-u1.done
		<-u2.done
		u1.done <- nil
		u2.done <- nil
		invites := strings.Count(uas.wait(t), "\nINVITE sip:")
		deadline := time.Now().Add(5 * time.Second)
		for live() != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		got := outcomes()
		admitted := got["e1 answered"] + got["e2 answered"]
		refused := got["e1 refused"] + got["e2 refused"]
		t.Logf("repetition %d: %d admitted (e1 %d, e2 %d), %d refused, carrier INVITEs %d, live while holding %d",
			rep, admitted, got["e1 answered"], got["e2 answered"], refused, invites, held)
		if admitted != 5 || refused != 35 || invites != 5 || held != 5 || live() != 0 {
			t.Fatalf("repetition %d: outcomes %v, carrier INVITEs %d, live while holding %d, live after %d", rep, got, invites, held, live())
		}
	}

	// kill -9 of a node holding calls.
	uas := startSippUASScenario(t, scenario("uas_b2bua.xml"), "127.0.0.9", carrierPort, 5)
	u := uac("e1", 5, 300000)
	deadline := time.Now().Add(5 * time.Second)
	for live() != 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := live(); n != 5 {
		t.Fatalf("e1 holds %d calls, want 5", n)
	}
	procs["e1"].kill(syscall.SIGKILL)
	killed := time.Now()
	u.kill(syscall.SIGKILL)
	// Meanwhile e2 refuses: the dead node's leases still count, expired
	// or not, until e2's sweep has sent the carrier a BYE for each of them
	// (the sipp UAS answers them and finishes its 5 calls) and freed them.
	held := func() int {
		var n int
		if err := st.View(context.Background(), func(tx sipdesk.Tx) error {
			ls, err := tx.Leases(cust, time.Time{})
			n = len(ls)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for held() != 0 {
		if time.Since(killed) > sipdesk.LeaseTTL+20*time.Second {
			t.Fatalf("the killed node's channels are still held after %v", time.Since(killed).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
	freed := time.Since(killed)
	t.Logf("kill -9 of e1 holding 5 calls: channels free again after %v (lease TTL %v)", freed.Round(100*time.Millisecond), sipdesk.LeaseTTL)
	if byes := strings.Count(uas.wait(t), "\nBYE sip:"); byes < 5 {
		t.Fatalf("the carrier got %d BYEs for the dead node's 5 calls", byes)
	}
	// Calls through e2 now fit. The carrier is a Go UAS here: a sipp UAS
	// would abort on the sweep's late BYE retransmissions for dialogs it
	// no longer knows.
	fc := newCarrierAt(t, fmt.Sprintf("127.0.0.9:%d", carrierPort), addrs["e2"])
	u = uac("e2", 5, 200)
	if err := <-u.done; err != nil {
		t.Fatalf("calls through e2 after the kill: %v\n%s", err, tail(u.out.String(), 2000))
	}
	u.done <- nil
	if n := fc.count(); n != 5 {
		t.Fatalf("the carrier got %d INVITEs through e2 after the kill, want 5; outcomes %v", n, outcomes())
	}
}
