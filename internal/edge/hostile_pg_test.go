//go:build hostile

package edge

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// pgProxy is a TCP proxy in front of PostgreSQL that the test can cut
// (every connection closed, new ones refused: the listener is closed) and
// restore (listening again on the same address).
type pgProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	p := &pgProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.listen(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *pgProxy) listen(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			p.wg.Add(2)
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
}

// cut closes the listener and every connection; returns how many were open.
func (p *pgProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	return n / 2
}

func (p *pgProxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.listen(ln)
}

// TestPostgresOutageDuringCalls: a `sipdesk serve --role edge` process on
// a fresh PostgreSQL database reached through a TCP proxy; a call is up
// through the edge to a Go carrier. The proxy is cut (connections closed,
// new ones refused): new calls get 503 with Retry-After within 2 s and
// nothing reaches the carrier; the call in progress goes on, and its BYE
// goes end to end and gets 200. The proxy is restored: new calls are
// admitted again within 10 s without any help, and the lease of the call
// that ended during the outage is released.
func TestPostgresOutageDuringCalls(t *testing.T) {
	st, dsn := openPG(t)
	bin := buildSipdesk(t)
	const phoneIP, edgeIP, carrierIP = "127.0.0.120", "127.0.0.121", "127.0.0.122"
	f := fixture{t, st}
	cust := f.customer()
	f.ipAccount(cust, "trunk", "", phoneIP+"/32")
	svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	live := func() int {
		ls, err := svc.ActiveCalls(context.Background(), cust)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	u.Host = proxy.addr
	edgeAddr := fmt.Sprintf("%s:%d", edgeIP, siptest.FreePort(t, edgeIP))
	carrierAddr := fmt.Sprintf("%s:%d", carrierIP, siptest.FreePort(t, carrierIP))
	p := startProc(t, []string{"SIPDESK_SECRET_KEY=" + hex.EncodeToString(testKey)}, bin, "serve", "--role", "edge", "--node", "pg1", "--database", u.String(), "--data", t.TempDir(),
		"--sip", edgeAddr, "--http", fmt.Sprintf("%s:%d", edgeIP, siptest.FreePort(t, edgeIP)), "--carrier", "sip:"+carrierAddr, "--max-call-duration", "5m")
	waitSIP(t, edgeAddr, p)
	carrier := newCarrierAt(t, carrierAddr, edgeAddr)

	// dial places a call and returns its final answer and how long it took.
	dial := func(d time.Duration) (*phone, *siptest.Msg, time.Duration) {
		ph := newPhoneAt(t, phoneIP, edgeAddr)
		t0 := time.Now()
		ph.dial("+15551234567")
		m := ph.final(d)
		return ph, m, time.Since(t0)
	}
	// The config reaches the edge through the store: wait for the account.
	var call *phone
	deadline := time.Now().Add(20 * time.Second)
	for {
		ph, m, _ := dial(5 * time.Second)
		if m.Code == 200 {
			call = ph
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first call: %d %s\n%s", m.Code, m.Reason, tail(p.out.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := live(); n != 1 {
		t.Fatalf("live leases with one call up: %d", n)
	}
	invites := carrier.count()

	// PostgreSQL goes away.
	cut := time.Now()
	conns := proxy.cut()
	var worst time.Duration
	var first time.Duration
	refused := 0
	for i := range 10 { // about 4 s of outage
		_, m, took := dial(5 * time.Second)
		if m.Code != 503 || m.Get("Retry-After") == "" {
			t.Fatalf("call %d during the outage: %d %s (Retry-After %q), want 503 with Retry-After\n%s", i, m.Code, m.Reason, m.Get("Retry-After"), tail(p.out.String(), 3000))
		}
		if i == 0 {
			first = time.Since(cut)
		}
		worst = max(worst, took)
		refused++
		time.Sleep(400 * time.Millisecond)
	}
	if carrier.count() != invites {
		t.Fatalf("%d INVITEs reached the carrier during the outage", carrier.count()-invites)
	}
	// The call in progress still works, in-dialog and to its end.
	if r := call.inDialog("UPDATE"); r.Code != 200 {
		t.Fatalf("UPDATE of the call in progress during the outage: %d %s", r.Code, r.Reason)
	}
	byeSent := time.Now()
	if r := call.inDialog("BYE"); r.Code != 200 {
		t.Fatalf("BYE of the call in progress during the outage: %d %s", r.Code, r.Reason)
	}
	carrier.waitReq(t, "BYE", 2*time.Second, nil)
	byeTook := time.Since(byeSent)
	outage := time.Since(cut)
	if first > 2*time.Second || worst > 2*time.Second {
		t.Errorf("refusals during the outage: first answered %v after the cut, slowest took %v; want <= 2 s", first, worst)
	}

	// PostgreSQL is back.
	proxy.restore()
	back := time.Now()
	var again time.Duration
	attempts := 0
	for {
		attempts++
		ph, m, _ := dial(5 * time.Second)
		if m.Code == 200 {
			again = time.Since(back)
			if r := ph.inDialog("BYE"); r.Code != 200 {
				t.Fatalf("BYE after recovery: %d", r.Code)
			}
			break
		}
		if m.Code != 503 {
			t.Fatalf("call after the store came back: %d %s", m.Code, m.Reason)
		}
		if time.Since(back) > 10*time.Second {
			t.Fatalf("calls still refused %v after the store came back (%d attempts)\n%s", time.Since(back).Round(time.Millisecond), attempts, tail(p.out.String(), 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The lease of the call that ended during the outage is released too.
	var freed time.Duration
	for {
		if live() == 0 {
			freed = time.Since(back)
			break
		}
		if time.Since(back) > 15*time.Second {
			t.Fatalf("%d leases still held %v after the store came back", live(), time.Since(back).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("proxy cut (%d PostgreSQL connections closed): first new call refused 503 %v after the cut, %d refusals, slowest %v, none reached the carrier; call in progress: UPDATE and BYE 200 end to end during the outage (BYE %v, %v into the outage)",
		conns, first.Round(time.Millisecond), refused, worst.Round(time.Millisecond), byeTook.Round(time.Millisecond), outage.Round(time.Millisecond))
	out := p.out.String()
	t.Logf("proxy restored: new call admitted %v later (%d attempts); the lease of the call ended during the outage released %v after (edge log: %d \"release channel failed\", %d \"released after retry\")",
		again.Round(time.Millisecond), attempts, freed.Round(time.Millisecond), logCount(out, "release channel failed"), logCount(out, "channel released after retry"))
}
