//go:build e2e && cluster

package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// Calls when a node fails or stops (must-show d, e, f) on the cluster
// harness (cluster_test.go): (d) an edge cut off from the database, (e)
// kill -9 of an edge, (f) SIGTERM. FENCE_RUNS sets the repetitions of (d)
// (default 20 per way of cutting: proxy killed, proxy frozen).

// fenceDevice is where the test's calls come from (an IP account).
const fenceDevice = "127.0.0.30"

// liveIDs are the carrier-leg Call-IDs of the dialogs up at the carrier.
func liveIDs(fc *fakeCarrier) []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var ids []string
	for id := range fc.live {
		ids = append(ids, id)
	}
	return ids
}

// call places a call through the edge at addr; it reports the final code.
func call(t *testing.T, addr string) (*phone, int) {
	t.Helper()
	p := newPhoneAt(t, fenceDevice, addr)
	p.dial("+15551230001")
	r := p.final(8 * time.Second)
	return p, r.Code
}

// optionsTo sends OPTIONS to addr: the status and Retry-After (0: none).
func optionsTo(t *testing.T, addr string) (int, string) {
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

// leasesFree waits until the customer holds no lease.
func (c *cluster) leasesFree(cust int64, d time.Duration) {
	c.t.Helper()
	c.waitFor(d, "leases freed", func() bool { return c.liveLeases(cust) == 0 })
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
	t.Setenv("SIPDESK_LEASE_TTL", ttl.String()) // the edges inherit it
	timing := sipdesk.LeaseTimingFor(ttl)
	c := newCluster(t, clusterOptions{})
	cust := c.customer(limit)
	c.f.ipAccount(cust, "trunk", "", fenceDevice+"/32")
	time.Sleep(1500 * time.Millisecond) // every edge applies the change (NOTIFY; 1 s poll at worst)
	b := c.Edge("b")
	addrB := b.SIP
	others := []string{c.Edge("a").SIP, c.Edge("c").SIP}

	for _, way := range []string{"kill", "sigstop"} {
		for run := 1; run <= runs; run++ {
			c.carrier.resetCounts()
			var held []*phone
			for range 2 {
				p, code := call(t, addrB)
				if code != 200 {
					t.Fatalf("%s run %d: call through B: %d", way, run, code)
				}
				held = append(held, p)
			}
			c.waitFor(3*time.Second, "B's calls up", func() bool { return c.carrier.liveCalls() == 2 })
			legsB := liveIDs(c.carrier)
			cut := time.Now()
			if way == "kill" {
				b.Proxy.Kill()
			} else {
				b.Proxy.Freeze()
			}
			admitted, refused := 0, 0
			var firstExtra time.Duration
			healed := false
			var lastAdmit time.Duration
			// The other edges keep placing calls during the cut, and after
			// it until the limit is reached (at most 10 s more).
			for i := 0; admitted < limit && time.Since(cut) < 2*ttl+10*time.Second || time.Since(cut) < 2*ttl; i++ {
				if !healed && time.Since(cut) >= 2*ttl {
					healed = true
					if way == "kill" {
						b.Proxy.Restart()
					} else {
						b.Proxy.Thaw()
					}
				}
				p, code := call(t, others[i%2])
				switch code {
				case 200:
					admitted++
					held = append(held, p)
					lastAdmit = time.Since(cut)
					if admitted == limit-1 {
						firstExtra = time.Since(cut)
					}
				case 403:
					refused++
				default:
					t.Fatalf("%s run %d: call through another edge: %d", way, run, code)
				}
				if c.carrier.maxLive() > limit {
					t.Fatalf("%s run %d: the carrier has had %d dialogs up, limit %d", way, run, c.carrier.maxLive(), limit)
				}
				time.Sleep(250 * time.Millisecond)
			}
			if !healed {
				if way == "kill" {
					b.Proxy.Restart()
				} else {
					b.Proxy.Thaw()
				}
			}
			// B ended its own calls (BYE from B with its Reason, to the
			// caller and the carrier) before its leases could expire:
			// their expiry is at least TTL − Renew after the cut.
			var fencedAfter time.Duration
			for _, id := range legsB {
				at := c.carrier.byeAt(id)
				if ok := !at.IsZero(); !ok || at.Sub(cut) >= ttl-timing.Renew {
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
			up, leases := c.carrier.liveCalls(), c.liveLeases(cust)
			t.Logf("%s run %d: B fenced its calls %v after the cut (cut for %v); the others admitted %d (the 3rd after %v, the 4th after %v) and refused %d; carrier peak %d of %d; after the heal %d dialogs up, %d leases",
				way, run, fencedAfter.Round(100*time.Millisecond), 2*ttl, admitted, firstExtra.Round(100*time.Millisecond), lastAdmit.Round(100*time.Millisecond), refused, c.carrier.maxLive(), limit, up, leases)
			if c.carrier.maxLive() > limit || up != leases || admitted != limit {
				t.Fatalf("%s run %d: peak %d, up %d, leases %d, admitted by the others %d (want %d)", way, run, c.carrier.maxLive(), up, leases, admitted, limit)
			}
			for _, p := range held[2:] {
				p.inDialog("BYE")
			}
			c.waitFor(5*time.Second, "calls down", func() bool { return c.carrier.liveCalls() == 0 })
			c.leasesFree(cust, 5*time.Second)
			if code, _ := optionsTo(t, addrB); code != 200 {
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
	c := newCluster(t, clusterOptions{})
	cust := c.customer(n)
	c.f.ipAccount(cust, "trunk", "", fenceDevice+"/32")
	time.Sleep(1500 * time.Millisecond) // every edge applies the change (NOTIFY; 1 s poll at worst)
	b := c.Edge("b")
	addrA, addrB := c.Edge("a").SIP, b.SIP
	var phones []*phone
	for range n {
		p, code := call(t, addrB)
		if code != 200 {
			t.Fatalf("call through B: %d", code)
		}
		phones = append(phones, p)
	}
	c.waitFor(5*time.Second, "calls up", func() bool { return c.carrier.liveCalls() == n })
	ids := liveIDs(c.carrier)
	time.Sleep(time.Second) // the dialog states reach the store
	b.Signal(syscall.SIGKILL)
	killed := time.Now()
	var last time.Duration
	for _, id := range ids {
		for {
			if at := c.carrier.byeAt(id); !at.IsZero() {
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
	c.leasesFree(cust, 10*time.Second)
	lost := 0
	for _, r := range c.records(cust) {
		if r.Node == "edge-b" && r.Disposition == sipdesk.DispNodeLost {
			lost++
		} else if r.Node == "edge-b" {
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
	c := newCluster(t, clusterOptions{Edges: 2, EdgeArgs: []string{"--drain-timeout", drain.String()}})
	cust := c.customer(10)
	c.f.ipAccount(cust, "trunk", "", fenceDevice+"/32")
	time.Sleep(1500 * time.Millisecond) // every edge applies the change (NOTIFY; 1 s poll at worst)
	a := c.Edge("a")
	procA, addrA := a.P, a.SIP
	for range 3 {
		if _, code := call(t, addrA); code != 200 {
			t.Fatalf("call: %d", code)
		}
	}
	c.carrier.mode.Store("ring")
	ring := newPhoneAt(t, fenceDevice, addrA)
	ring.dial("+15551230001")
	c.waitFor(3*time.Second, "the ringing call's lease", func() bool { return c.liveLeases(cust) == 4 })
	procA.cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	var code int
	var retry string
	for code != 503 && time.Since(term) < 2*time.Second {
		code, retry = optionsTo(t, addrA)
	}
	at503 := time.Since(term)
	if code != 503 || retry == "" {
		t.Fatalf("OPTIONS after SIGTERM: %d Retry-After %q", code, retry)
	}
	p := newPhoneAt(t, fenceDevice, addrA)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("new call while draining: %d Retry-After %q", r.Code, r.Get("Retry-After"))
	}
	// The node stays visible while it drains: /readyz says why, the node
	// list says draining (its heartbeat goes on until the drain ends).
	res, err := http.Get("http://" + a.HTTP + "/readyz")
	if err != nil {
		t.Fatalf("/readyz while draining: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(body), "draining") {
		t.Fatalf("/readyz while draining: %d %s", res.StatusCode, body)
	}
	c.waitFor(3*time.Second, "edge-a listed draining", func() bool {
		ns, err := c.svc.NodeList(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Name == "edge-a" {
				return n.State == app.NodeDraining
			}
		}
		return false
	})
	for time.Since(term) < drain-500*time.Millisecond {
		if c.carrier.liveCalls() != 3 {
			t.Fatalf("%d calls up %v into the drain, want 3", c.carrier.liveCalls(), time.Since(term))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.waitFor(drain, "calls ended at the drain timeout", func() bool { return c.carrier.liveCalls() == 0 })
	ended := time.Since(term)
	if r := ring.final(3 * time.Second); r.Code != 503 {
		t.Fatalf("ringing call: %d, want 503", r.Code)
	}
	err = <-procA.done
	procA.done <- err
	exited := time.Since(term)
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, tail(procA.out.String(), 3000))
	}
	t.Logf("SIGTERM: OPTIONS 503 after %v; 3 calls up until %v (drain timeout %v), exit 0 after %v",
		at503.Round(time.Millisecond), ended.Round(time.Millisecond), drain, exited.Round(time.Millisecond))
	if n := c.liveLeases(cust); n != 0 {
		t.Fatalf("%d leases left", n)
	}
	for _, r := range c.records(cust) {
		if r.Disposition == sipdesk.DispActive {
			t.Errorf("record left in progress: %+v", r)
		}
	}
}
