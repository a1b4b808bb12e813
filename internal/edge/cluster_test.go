//go:build e2e && cluster

package edge

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// The cluster harness (`make test-cluster`): real `sipdesk serve`
// processes on one PostgreSQL database, three edges on their own
// 127.0.0.x addresses (each behind its own TCP proxy to PostgreSQL, which
// a test can kill or freeze), a portal, and a carrier. Scenarios live in
// cluster_<topic>_test.go, one TestCluster… per must-show line.

// Addresses: edges on 127.0.0.21-23, the portal on 127.0.0.20, the
// carrier on 127.0.0.9, devices and trunks from 127.0.0.30 up.
const clusterCarrierIP = "127.0.0.9"

type cluster struct {
	t           *testing.T
	st          sipdesk.Store
	dsn         string
	svc         *app.Service
	f           fixture
	bin         string
	env         []string
	carrier     *fakeCarrier // a Go UAS that counts live dialogs
	carrierAddr string
	portal      *proc
	Portal      string // the portal's HTTP address
	Edges       []*clusterEdge
}

// clusterEdge is one `sipdesk serve --role edge` process and its proxy.
type clusterEdge struct {
	c     *cluster
	Name  string
	IP    string
	SIP   string // ip:port, UDP and TCP
	HTTP  string // ip:port of its HTTP listener (health, metrics)
	Proxy *socatProxy
	P     *proc
	args  []string
}

// clusterOptions tune a cluster; zero values take the defaults.
type clusterOptions struct {
	Edges      int      // default 3
	EdgeArgs   []string // extra `serve` flags for every edge
	PortalArgs []string // extra `serve` flags for the portal
	NoPortal   bool
}

// newCluster starts the database, the carrier, the portal and the edges,
// and waits until every edge answers OPTIONS.
func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	siptest.Need(t, "socat")
	if o.Edges == 0 {
		o.Edges = 3
	}
	st, dsn := openPG(t)
	c := &cluster{t: t, st: st, dsn: dsn, f: fixture{t, st}, bin: buildSipdesk(t),
		env: []string{"SIPDESK_SECRET_KEY=" + hex.EncodeToString(testKey)}}
	c.svc = app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	c.carrierAddr = fmt.Sprintf("%s:%d", clusterCarrierIP, siptest.FreePort(t, clusterCarrierIP))
	if !o.NoPortal {
		c.Portal = fmt.Sprintf("127.0.0.20:%d", siptest.FreeTCPPort(t, "127.0.0.20"))
		c.portal = startProc(t, c.env, c.bin, append([]string{"serve", "--role", "portal", "--node", "portal", "--database", dsn,
			"--data", t.TempDir(), "--http", c.Portal, "--allow-private-ips", "--sip-domain", testRealm}, o.PortalArgs...)...)
	}
	for i := range o.Edges {
		ip := fmt.Sprintf("127.0.0.%d", 21+i)
		e := &clusterEdge{c: c, Name: string(rune('a' + i)), IP: ip,
			SIP:  fmt.Sprintf("%s:%d", ip, siptest.FreePort(t, ip)),
			HTTP: fmt.Sprintf("%s:%d", ip, siptest.FreeTCPPort(t, ip))}
		e.Proxy = startSocatProxy(t, ip, dsn)
		e.args = append([]string{"serve", "--role", "edge", "--node", "edge-" + e.Name, "--database", e.Proxy.DSN,
			"--data", t.TempDir(), "--sip", e.SIP, "--http", e.HTTP, "--sip-domain", testRealm, "--allow-private-ips",
			"--carrier", "sip:" + c.carrierAddr, "--max-call-duration", "10m"}, o.EdgeArgs...)
		e.Start()
		c.Edges = append(c.Edges, e)
	}
	for _, e := range c.Edges {
		waitSIP(t, e.SIP, e.P)
	}
	if c.portal != nil {
		waitHTTP(t, "http://"+c.Portal+"/healthz", c.portal)
	}
	// The carrier answers from its own address; every edge may send to it.
	c.carrier = newCarrierAt(t, c.carrierAddr, c.Edges[0].SIP)
	return c
}

// Start (re)starts the edge process with its arguments.
func (e *clusterEdge) Start() { e.P = startProc(e.c.t, e.c.env, e.c.bin, e.args...) }

// Signal sends sig to the edge and waits for it to exit (SIGKILL, SIGTERM).
func (e *clusterEdge) Signal(sig syscall.Signal) { e.P.kill(sig) }

// Logs are the edge's output so far.
func (e *clusterEdge) Logs() string { return e.P.out.String() }

// A is the edge by letter ('a', 'b', 'c').
func (c *cluster) Edge(name string) *clusterEdge {
	for _, e := range c.Edges {
		if e.Name == name {
			return e
		}
	}
	c.t.Fatalf("no edge %q", name)
	return nil
}

// customer makes a customer with a channel limit (0: the default).
func (c *cluster) customer(limit int) int64 {
	c.t.Helper()
	id := c.f.customer()
	if limit > 0 {
		if _, err := c.svc.SetChannelLimit(context.Background(), id, limit); err != nil {
			c.t.Fatal(err)
		}
	}
	return id
}

// liveLeases is the number of live leases in the store (every node).
func (c *cluster) liveLeases(cust int64) int {
	c.t.Helper()
	ls, err := c.svc.ActiveCalls(context.Background(), cust)
	if err != nil {
		c.t.Fatal(err)
	}
	return len(ls)
}

// records are the customer's call records, newest first.
func (c *cluster) records(cust int64) []*sipdesk.CallRecord {
	c.t.Helper()
	rs, err := c.svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: cust, Limit: 1000})
	if err != nil {
		c.t.Fatal(err)
	}
	return rs
}

// waitFor polls cond every 50 ms until it holds or d passes, and returns
// how long it took (the test fails with what when it never holds).
func (c *cluster) waitFor(d time.Duration, what string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			c.t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// socatProxy is a TCP proxy (socat, in its own process group) between one
// edge and PostgreSQL: Kill cuts every connection, Freeze makes packets
// hang (SIGSTOP), Thaw resumes, Restart listens again after a Kill.
type socatProxy struct {
	t    *testing.T
	Addr string // ip:port it listens on
	DSN  string // the database DSN through the proxy
	cmd  *exec.Cmd
	to   string
}

func startSocatProxy(t *testing.T, ip, dsn string) *socatProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &socatProxy{t: t, Addr: fmt.Sprintf("%s:%d", ip, siptest.FreeTCPPort(t, ip)), to: u.Host}
	u.Host = p.Addr
	p.DSN = u.String()
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

// Restart starts the proxy (after a Kill).
func (p *socatProxy) Restart() {
	p.t.Helper()
	host, port, _ := net.SplitHostPort(p.Addr)
	p.cmd = exec.Command("socat", fmt.Sprintf("TCP-LISTEN:%s,bind=%s,fork,reuseaddr", port, host), "TCP:"+p.to)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	for range 100 {
		if c, err := net.DialTimeout("tcp", p.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("proxy %s does not listen", p.Addr)
}

// group signals the proxy and every connection it forked.
func (p *socatProxy) group(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Kill cuts the edge off: the listener and every connection close.
func (p *socatProxy) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.group(syscall.SIGCONT)
	p.group(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

// Freeze stops the proxy and its connections: packets hang, nothing closes.
func (p *socatProxy) Freeze() { p.group(syscall.SIGSTOP) }

// Thaw resumes a frozen proxy.
func (p *socatProxy) Thaw() { p.group(syscall.SIGCONT) }

// waitHTTP waits until url answers 200; it fails at once if p exits.
func waitHTTP(t *testing.T, url string, p *proc) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("process exited: %v\n%s", err, tail(p.out.String(), 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not answer 200\n%s", url, tail(p.out.String(), 3000))
}

// TestClusterLimit (must-show c): 200 simultaneous INVITEs spread over the
// three edges against a channel limit of 10: exactly 10 reach the carrier,
// the others are refused, in 20 runs out of 20.
func TestClusterLimit(t *testing.T) {
	sipp := siptest.Need(t, "sipp")
	c := newCluster(t, clusterOptions{})
	cust := c.customer(10)
	for _, p := range []string{"1111", "2222", "3333"} {
		c.f.ipAccount(cust, "trunk "+p, p, "127.0.0.4/32")
	}
	// Each edge gets its share from its own sipp UAC.
	uac := func(e *clusterEdge, calls, holdMS, mport int) *proc {
		return startProc(t, nil, sipp, "-sf", sippUAC(t, "hangup"), "-inf", limitCSV(t, calls), "-key", "domain", testRealm,
			"-i", "127.0.0.4", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.4")), "-bind_local", "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls),
			"-r", "1000", "-d", fmt.Sprint(holdMS), "-timeout", "60s", "-recv_timeout", "10000", "-nostdin", "-mp", fmt.Sprint(mport), e.SIP)
	}
	const runs, limit = 20, 10
	shares := []int{67, 67, 66}
	for run := 1; run <= runs; run++ {
		c.carrier.resetCounts()
		var us []*proc
		for i, e := range c.Edges {
			us = append(us, uac(e, shares[i], 1500, 24000+i*200))
		}
		for _, u := range us {
			<-u.done
			u.done <- nil
		}
		c.waitFor(10*time.Second, "leases freed", func() bool { return c.liveLeases(cust) == 0 })
		invites, maxLive := c.carrier.count(), c.carrier.maxLive()
		t.Logf("run %d: carrier INVITEs %d, most live at once %d", run, invites, maxLive)
		if invites != limit || maxLive > limit {
			t.Fatalf("run %d: %d INVITEs reached the carrier (most live at once %d), want exactly %d", run, invites, maxLive, limit)
		}
	}
}
