//go:build cluster

package edge

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// Calls when a node fails or stops, with real `sipdesk serve --role edge`
// processes on PostgreSQL (go test -tags cluster -run TestClusterFence
// ./internal/edge/): (d) an edge cut off from the database, (e) kill -9 of
// an edge, (f) SIGTERM. The carrier is a Go UAS that counts the dialogs it
// has up; an edge's database connection goes through a socat TCP proxy the
// test kills or freezes (SIGSTOP). FENCE_RUNS sets the repetitions of (d)
// (default 20 per way of cutting).

// countingCarrier answers every INVITE (180, 200; mode "ring": 180 only,
// 487 on CANCEL) and counts the dialogs up: from its 200 to the BYE.
type countingCarrier struct {
	t    *testing.T
	pc   *net.UDPConn
	Addr string

	mu      sync.Mutex
	mode    string
	invites map[string]*siptest.Msg
	src     map[string]*net.UDPAddr
	live    map[string]bool
	byes    map[string]time.Time // Call-ID → first BYE
	cancels int
	max     int
}

func newCountingCarrier(t *testing.T, ip string) *countingCarrier {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: freePort(t, ip)})
	if err != nil {
		t.Fatal(err)
	}
	c := &countingCarrier{t: t, pc: pc, Addr: pc.LocalAddr().String(), mode: "answer", invites: map[string]*siptest.Msg{},
		src: map[string]*net.UDPAddr{}, live: map[string]bool{}, byes: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, src, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if m, err := siptest.Parse(buf[:n]); err == nil && m.Method != "" {
				c.handle(m, src)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return c
}

func (c *countingCarrier) send(msg string, to *net.UDPAddr) {
	c.pc.WriteToUDP([]byte(siptest.Fix(msg)), to)
}

func (c *countingCarrier) handle(m *siptest.Msg, src *net.UDPAddr) {
	id := m.Get("Call-ID")
	tag := "carrier" + id[:min(8, len(id))]
	contact := "Contact: <sip:carrier@" + c.Addr + ">"
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Method {
	case "INVITE":
		if strings.Contains(m.Get("To"), "tag=") {
			c.send(siptest.ReplyBody(m, 200, "OK", "", testSDP, contact), src)
			return
		}
		if _, dup := c.invites[id]; !dup {
			c.invites[id], c.src[id] = m, src
			c.send(siptest.Reply(m, 180, "Ringing", tag, contact), src)
			if c.mode == "ring" {
				return
			}
			c.live[id] = true
			c.max = max(c.max, len(c.live))
		}
		if c.live[id] {
			c.send(siptest.ReplyBody(m, 200, "OK", tag, testSDP, contact), src)
		}
	case "CANCEL":
		c.send(siptest.Reply(m, 200, "OK", tag), src)
		if inv := c.invites[id]; inv != nil && !c.live[id] {
			c.cancels++
			c.send(siptest.Reply(inv, 487, "Request Terminated", tag), c.src[id])
		}
	case "BYE":
		if _, seen := c.byes[id]; !seen {
			c.byes[id] = time.Now()
		}
		if c.live[id] {
			delete(c.live, id)
			c.send(siptest.Reply(m, 200, "OK", ""), src)
		} else {
			c.send(siptest.Reply(m, 481, "Call/Transaction Does Not Exist", ""), src)
		}
	case "ACK":
	default:
		c.send(siptest.Reply(m, 200, "OK", "", contact), src)
	}
}

func (c *countingCarrier) setMode(m string) { c.mu.Lock(); c.mode = m; c.mu.Unlock() }

// up is the number of dialogs up; peak the most there ever were.
func (c *countingCarrier) up() int   { c.mu.Lock(); defer c.mu.Unlock(); return len(c.live) }
func (c *countingCarrier) peak() int { c.mu.Lock(); defer c.mu.Unlock(); return c.max }

// resetPeak starts a new count from the dialogs up now.
func (c *countingCarrier) resetPeak() { c.mu.Lock(); c.max = len(c.live); c.mu.Unlock() }

// byeTimes are the first BYEs received for the Call-IDs of these INVITEs.
func (c *countingCarrier) byeOf(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.byes[id]
	return at, ok
}

// liveIDs are the carrier-leg Call-IDs of the dialogs up.
func (c *countingCarrier) liveIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.live {
		ids = append(ids, id)
	}
	return ids
}

// pgProxy is a socat TCP proxy in front of PostgreSQL, in its own process
// group so that kill and SIGSTOP reach its per-connection children.
type pgProxy struct {
	t            *testing.T
	listen, dest string
	cmd          *exec.Cmd
}

func startPGProxy(t *testing.T, ip, dest string) *pgProxy {
	t.Helper()
	siptest.Need(t, "socat")
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := &pgProxy{t: t, listen: addr, dest: dest}
	p.start()
	t.Cleanup(func() { p.signal(syscall.SIGCONT); p.kill() })
	return p
}

func (p *pgProxy) start() {
	host, port, _ := net.SplitHostPort(p.listen)
	p.cmd = exec.Command("socat", fmt.Sprintf("TCP-LISTEN:%s,bind=%s,fork,reuseaddr", port, host), "TCP:"+p.dest)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", p.listen); err == nil {
			c.Close()
			return
		}
	}
	p.t.Fatal("socat did not listen")
}

func (p *pgProxy) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// kill ends the proxy and every connection through it.
func (p *pgProxy) kill() {
	if p.cmd == nil {
		return
	}
	p.signal(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

// dsn is dsn with the proxy as its host.
func (p *pgProxy) dsn(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		p.t.Fatal(err)
	}
	u.Host = p.listen
	return u.String()
}

// fenceCluster is PostgreSQL, a customer with an IP account on 127.0.0.2,
// the counting carrier and edges started on demand.
type fenceCluster struct {
	t       *testing.T
	st      sipdesk.Store
	dsn     string
	svc     *app.Service
	cust    int64
	bin     string
	carrier *countingCarrier
	env     []string
}

func newFenceCluster(t *testing.T, limit int, env ...string) *fenceCluster {
	t.Helper()
	st, dsn := openPG(t)
	c := &fenceCluster{t: t, st: st, dsn: dsn, bin: buildSipdesk(t),
		env: append([]string{"SIPDESK_SECRET_KEY=" + hex.EncodeToString(testKey)}, env...)}
	c.svc = app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	f := fixture{t, st}
	c.cust = f.customer()
	f.ipAccount(c.cust, "trunk", "", "127.0.0.2/32")
	if _, err := c.svc.SetChannelLimit(context.Background(), c.cust, limit); err != nil {
		t.Fatal(err)
	}
	c.carrier = newCountingCarrier(t, "127.0.0.9")
	return c
}

// edge starts an edge process named name on ip with the DSN given.
func (c *fenceCluster) edge(name, ip, dsn string, args ...string) (*proc, string) {
	c.t.Helper()
	addr := fmt.Sprintf("%s:%d", ip, freePort(c.t, ip))
	p := startProc(c.t, c.env, c.bin, append([]string{"serve", "--role", "edge", "--node", name, "--database", dsn,
		"--data", c.t.TempDir(), "--sip", addr, "--carrier", "sip:" + c.carrier.Addr, "--max-call-duration", "10m"}, args...)...)
	waitSIP(c.t, addr, p)
	return p, addr
}

func (c *fenceCluster) leases() int {
	c.t.Helper()
	ls, err := c.svc.ActiveCalls(context.Background(), 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return len(ls)
}

func (c *fenceCluster) waitUp(n int, d time.Duration) {
	c.t.Helper()
	for end := time.Now().Add(d); c.carrier.up() != n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			c.t.Fatalf("carrier has %d dialogs up, want %d", c.carrier.up(), n)
		}
	}
}

func (c *fenceCluster) records() []*sipdesk.CallRecord {
	c.t.Helper()
	rs, err := c.svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: c.cust, Limit: 500})
	if err != nil {
		c.t.Fatal(err)
	}
	return rs
}

// call places a call through the edge at addr; it reports the final code.
func call(t *testing.T, addr string) (*phone, int) {
	t.Helper()
	p := newPhoneAt(t, "127.0.0.2", addr)
	p.dial("+15551230001")
	r := p.final(8 * time.Second)
	return p, r.Code
}

func options503(t *testing.T, addr string) (int, string) {
	c, err := siptest.Dial("udp", "127.0.0.3:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\nFrom: <sip:probe@127.0.0.3>;tag=1\nTo: <sip:%s>\nCall-ID: %s\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
		addr, c.LocalAddr(), siptest.RandHex(4), addr, siptest.RandHex(6)))
	m, err := c.RecvResponse(time.Second, 200)
	if err != nil {
		return 0, ""
	}
	return m.Code, m.Get("Retry-After")
}

// TestClusterFenceCutOff (d): limit 4; edge B holds 2 calls and loses the
// database (proxy killed, or frozen with SIGSTOP) for twice the lease life
// while edge A keeps admitting new calls. B ends its calls before its
// leases can expire for A; the carrier never has more than 4 dialogs up;
// after the cut heals the leases agree with the dialogs up.
func TestClusterFenceCutOff(t *testing.T) {
	const limit, ttl = 4, 6 * time.Second
	runs := 20
	if v, err := strconv.Atoi(os.Getenv("FENCE_RUNS")); err == nil && v > 0 {
		runs = v
	}
	c := newFenceCluster(t, limit, "SIPDESK_LEASE_TTL="+ttl.String())
	timing := sipdesk.LeaseTimingFor(ttl)
	_, addrA := c.edge("A", "127.0.0.10", c.dsn)
	u, err := url.Parse(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, "127.0.0.11", u.Host)
	_, addrB := c.edge("B", "127.0.0.11", proxy.dsn(c.dsn))

	for _, way := range []string{"kill", "sigstop"} {
		for run := 1; run <= runs; run++ {
			c.carrier.resetPeak()
			var held []*phone
			for range 2 {
				p, code := call(t, addrB)
				if code != 200 {
					t.Fatalf("%s run %d: call through B: %d", way, run, code)
				}
				held = append(held, p)
			}
			c.waitUp(2, 3*time.Second)
			legsB := c.carrier.liveIDs()
			cut := time.Now()
			if way == "kill" {
				proxy.kill()
			} else {
				proxy.signal(syscall.SIGSTOP)
			}
			admitted, refused := 0, 0
			var firstExtra time.Duration
			for time.Since(cut) < 2*ttl {
				p, code := call(t, addrA)
				switch code {
				case 200:
					admitted++
					held = append(held, p)
					if admitted == limit-1 {
						firstExtra = time.Since(cut)
					}
				case 403:
					refused++
				default:
					t.Fatalf("%s run %d: call through A: %d", way, run, code)
				}
				if c.carrier.peak() > limit {
					t.Fatalf("%s run %d: the carrier has %d dialogs up, limit %d", way, run, c.carrier.peak(), limit)
				}
				time.Sleep(250 * time.Millisecond)
			}
			if way == "kill" {
				proxy.start()
			} else {
				proxy.signal(syscall.SIGCONT)
			}
			// B ended its own calls (BYE from B with its Reason, to the
			// caller and the carrier) before its leases could expire:
			// their expiry is at least TTL − Renew after the cut.
			var fencedAfter time.Duration
			for _, id := range legsB {
				at, ok := c.carrier.byeOf(id)
				if !ok || at.Sub(cut) >= ttl-timing.Renew {
					t.Fatalf("%s run %d: B's carrier leg %s: BYE %v after the cut (%v), want before %v", way, run, id, at.Sub(cut), ok, ttl-timing.Renew)
				}
				fencedAfter = max(fencedAfter, at.Sub(cut))
			}
			for _, p := range held[:2] {
				if b := p.waitReq("BYE", time.Second); !strings.Contains(b.Get("Reason"), "Channel lease not renewed") {
					t.Fatalf("%s run %d: caller's BYE Reason %q", way, run, b.Get("Reason"))
				}
			}
			// After the heal the counters agree with the dialogs up.
			time.Sleep(timing.Renew + 2*time.Second)
			up, leases := c.carrier.up(), c.leases()
			t.Logf("%s run %d: B fenced its calls %v after the cut; A admitted %d (the 3rd after %v) and refused %d during %v; carrier peak %d of %d; after the heal %d dialogs up, %d leases",
				way, run, fencedAfter.Round(100*time.Millisecond), admitted, firstExtra.Round(100*time.Millisecond), refused, 2*ttl, c.carrier.peak(), limit, up, leases)
			if c.carrier.peak() > limit || up != leases || admitted != limit {
				t.Fatalf("%s run %d: peak %d, up %d, leases %d, admitted by A %d (want %d)", way, run, c.carrier.peak(), up, leases, admitted, limit)
			}
			for _, p := range held {
				if strings.Contains(p.edge, addrA) {
					p.inDialog("BYE")
				}
			}
			c.waitUp(0, 5*time.Second)
			for end := time.Now().Add(5 * time.Second); c.leases() != 0; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatalf("%s run %d: %d leases left", way, run, c.leases())
				}
			}
			if code, _ := options503(t, addrB); code != 200 {
				t.Fatalf("%s run %d: B answers OPTIONS %d after the heal", way, run, code)
			}
		}
	}
}

// TestClusterFenceKill (e): kill -9 of an edge with 10 calls up, default
// lease timing. The other edge sends BYE on all 10 carrier legs within
// 60 s (and to the callers, reachable over UDP), the records show
// node_lost, and the 10 channels are free.
func TestClusterFenceKill(t *testing.T) {
	const n = 10
	c := newFenceCluster(t, n)
	_, addrA := c.edge("A", "127.0.0.10", c.dsn)
	procB, addrB := c.edge("B", "127.0.0.11", c.dsn)
	var phones []*phone
	for range n {
		p, code := call(t, addrB)
		if code != 200 {
			t.Fatalf("call through B: %d", code)
		}
		phones = append(phones, p)
	}
	c.waitUp(n, 5*time.Second)
	ids := c.carrier.liveIDs()
	time.Sleep(time.Second) // the dialog states reach the store
	procB.kill(syscall.SIGKILL)
	killed := time.Now()
	var last time.Duration
	for _, id := range ids {
		for {
			if at, ok := c.carrier.byeOf(id); ok {
				last = max(last, at.Sub(killed))
				break
			}
			if time.Since(killed) > 60*time.Second {
				t.Fatalf("no BYE for carrier leg %s within 60 s of the kill", id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	callers := 0
	for _, p := range phones {
		end := time.After(3 * time.Second)
	wait:
		for {
			select {
			case m := <-p.reqs:
				if m.Method == "BYE" {
					callers++
					break wait
				}
			case <-end:
				break wait
			}
		}
	}
	t.Logf("kill -9 of B with %d calls up: the carrier had BYE for all %d within %v (limit 60 s; lease TTL %v, sweep %v); callers reached: %d of %d",
		n, n, last.Round(100*time.Millisecond), sipdesk.LeaseTTL, sipdesk.LeaseSweep, callers, n)
	if callers != n {
		t.Errorf("%d of %d callers got a BYE", callers, n)
	}
	for end := time.Now().Add(5 * time.Second); c.leases() != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d leases left", c.leases())
		}
	}
	lost := 0
	for _, r := range c.records() {
		if r.Node == "B" && r.Disposition == sipdesk.DispNodeLost {
			lost++
		} else if r.Node == "B" {
			t.Errorf("B's record %s: %s", r.CallID, r.Disposition)
		}
	}
	if lost != n {
		t.Fatalf("%d records node_lost, want %d", lost, n)
	}
	// The channels are free: A admits n calls.
	for range n {
		p, code := call(t, addrA)
		if code != 200 {
			t.Fatalf("call through A after the sweep: %d", code)
		}
		defer p.inDialog("BYE")
	}
}

// TestClusterFenceDrain (f): SIGTERM to an edge with 3 answered calls and
// one ringing, --drain-timeout 5s. OPTIONS answers 503 at once, new calls
// get 503 with Retry-After, the calls go on until the timeout and are then
// ended; every record is closed, every lease released, exit status 0.
func TestClusterFenceDrain(t *testing.T) {
	const drain = 5 * time.Second
	c := newFenceCluster(t, 10)
	procA, addrA := c.edge("A", "127.0.0.10", c.dsn, "--drain-timeout", drain.String())
	for range 3 {
		if _, code := call(t, addrA); code != 200 {
			t.Fatalf("call: %d", code)
		}
	}
	c.setRing()
	ring := newPhoneAt(t, "127.0.0.2", addrA)
	ring.dial("+15551230001")
	for end := time.Now().Add(3 * time.Second); c.leases() != 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d leases, want 4", c.leases())
		}
	}
	procA.cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	var code int
	var retry string
	for code != 503 && time.Since(term) < 2*time.Second {
		code, retry = options503(t, addrA)
	}
	at503 := time.Since(term)
	if code != 503 || retry == "" {
		t.Fatalf("OPTIONS after SIGTERM: %d Retry-After %q", code, retry)
	}
	p := newPhoneAt(t, "127.0.0.2", addrA)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("new call while draining: %d Retry-After %q", r.Code, r.Get("Retry-After"))
	}
	for time.Since(term) < drain-500*time.Millisecond {
		if c.carrier.up() != 3 {
			t.Fatalf("%d calls up %v into the drain, want 3", c.carrier.up(), time.Since(term))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.waitUp(0, drain)
	ended := time.Since(term)
	if r := ring.final(3 * time.Second); r.Code != 503 {
		t.Fatalf("ringing call: %d, want 503", r.Code)
	}
	err := <-procA.done
	procA.done <- err
	exited := time.Since(term)
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, tail(procA.out.String(), 3000))
	}
	t.Logf("SIGTERM: OPTIONS 503 after %v; 3 calls up until %v (drain timeout %v), exit 0 after %v",
		at503.Round(time.Millisecond), ended.Round(time.Millisecond), drain, exited.Round(time.Millisecond))
	if n := c.leases(); n != 0 {
		t.Fatalf("%d leases left", n)
	}
	for _, r := range c.records() {
		if r.Disposition == sipdesk.DispActive {
			t.Errorf("record left in progress: %+v", r)
		}
	}
}

func (c *fenceCluster) setRing() { c.carrier.setMode("ring") }
