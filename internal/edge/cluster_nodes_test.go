//go:build cluster

package edge

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// socatProxy is a TCP proxy process (socat, one child per connection) in
// front of PostgreSQL, in its own process group so that the test can
// freeze it (SIGSTOP: connections stay open, packets hang), thaw it, or
// kill it (connections closed, new ones refused) and start it again on
// the same address.
type socatProxy struct {
	t      *testing.T
	bin    string
	addr   string
	target string
	cmd    *exec.Cmd
}

func startSocatProxy(t *testing.T, target string) *socatProxy {
	t.Helper()
	p := &socatProxy{t: t, bin: siptest.Need(t, "socat"), target: target,
		addr: fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))}
	p.start()
	t.Cleanup(func() { p.signal(syscall.SIGCONT); p.kill() })
	return p
}

func (p *socatProxy) start() {
	p.t.Helper()
	_, port, _ := strings.Cut(p.addr, ":")
	p.cmd = exec.Command(p.bin, "TCP-LISTEN:"+port+",bind=127.0.0.1,reuseaddr,fork", "TCP:"+p.target)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go p.cmd.Wait()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
	}
	p.t.Fatalf("socat did not listen on %s", p.addr)
}

// signal sends sig to the proxy and every connection it forked.
func (p *socatProxy) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

func (p *socatProxy) kill() {
	p.signal(syscall.SIGKILL)
	p.cmd = nil
}

// TestClusterNodesDatabaseCut (must-show h): an edge process on PostgreSQL
// through a proxy. The proxy is frozen (SIGSTOP), then killed: each time
// /readyz and OPTIONS answer 503 within 2 s, new calls get 503 with
// Retry-After within 2 s and none reaches the carrier, REGISTERs get 503
// with Retry-After; the warnings of the
// outage are logged at most once per 10 s per kind. The database comes
// back (SIGCONT, proxy restarted): /readyz, OPTIONS and new calls are
// served again within 10 s.
func TestClusterNodesDatabaseCut(t *testing.T) {
	st, dsn := openPG(t)
	bin := buildSipdesk(t)
	const phoneIP, edgeIP, carrierIP = "127.0.0.140", "127.0.0.141", "127.0.0.142"
	f := fixture{t, st}
	cust := f.customer()
	f.ipAccount(cust, "trunk", "", phoneIP+"/32")

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startSocatProxy(t, u.Host)
	u.Host = proxy.addr
	edgeAddr := fmt.Sprintf("%s:%d", edgeIP, freePort(t, edgeIP))
	httpBase := fmt.Sprintf("http://%s:%d", edgeIP, freePort(t, edgeIP))
	carrierAddr := fmt.Sprintf("%s:%d", carrierIP, freePort(t, carrierIP))
	p := startProc(t, []string{"SIPDESK_SECRET_KEY=" + hex.EncodeToString(testKey)}, bin, "serve", "--role", "edge", "--node", "cut1",
		"--database", u.String(), "--data", t.TempDir(), "--sip", edgeAddr, "--http", strings.TrimPrefix(httpBase, "http://"),
		"--carrier", "sip:"+carrierAddr, "--max-call-duration", "5m")
	waitSIP(t, edgeAddr, p)
	carrier := newCarrierAt(t, carrierAddr, edgeAddr)

	// call places a call and returns its final answer and how long it took;
	// an answered call is hung up at once.
	call := func() (int, string, time.Duration) {
		ph := newPhoneAt(t, phoneIP, edgeAddr)
		t0 := time.Now()
		ph.dial("+15551234567")
		m := ph.final(5 * time.Second)
		took := time.Since(t0)
		if m.Code == 200 {
			ph.inDialog("BYE")
		}
		return m.Code, m.Get("Retry-After"), took
	}
	// The config reaches the edge through the store: wait for the account.
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ := call(); code == 200 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no call through the edge\n%s", tail(p.out.String(), 3000))
		}
	}
	if code, body := readyz(httpBase); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz of a serving edge: %d %s", code, body)
	}

	// outage measures, from the moment the database went away, when /readyz
	// and OPTIONS turned 503 and how long new calls took to get their 503.
	outage := func(what string) {
		t.Helper()
		cut := time.Now()
		logBefore := len(p.out.String())
		invites := carrier.count()
		code, ra, took := call() // at once: before the probe noticed
		if code != 503 || ra == "" || took > 2*time.Second {
			t.Errorf("%s: call placed as the database went: %d (Retry-After %q) after %v, want 503 with Retry-After within 2 s", what, code, ra, took)
		}
		var readyAt, optionsAt time.Duration
		for readyAt == 0 || optionsAt == 0 {
			if readyAt == 0 {
				if c, body := readyz(httpBase); c == 503 && strings.Contains(body, `"database"`) {
					readyAt = time.Since(cut)
				}
			}
			if optionsAt == 0 {
				if c, ra := request(t, "OPTIONS", edgeAddr); c == 503 && ra != "" {
					optionsAt = time.Since(cut)
				}
			}
			if time.Since(cut) > 5*time.Second {
				t.Fatalf("%s: /readyz or OPTIONS still not 503 after 5 s (readyz at %v, OPTIONS at %v)\n%s", what, readyAt, optionsAt, tail(p.out.String(), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if c, ra := request(t, "REGISTER", edgeAddr); c != 503 || ra == "" {
			t.Errorf("%s: REGISTER during the outage: %d (Retry-After %q), want 503 with Retry-After", what, c, ra)
		}
		var worst time.Duration
		for range 10 {
			code, ra, took := call()
			if code != 503 || ra == "" {
				t.Fatalf("%s: call during the outage: %d (Retry-After %q), want 503 with Retry-After", what, code, ra)
			}
			worst = max(worst, took)
			time.Sleep(300 * time.Millisecond)
		}
		if n := carrier.count() - invites; n != 0 {
			t.Errorf("%s: %d INVITEs reached the carrier during the outage", what, n)
		}
		if readyAt > 2*time.Second || optionsAt > 2*time.Second || worst > 2*time.Second {
			t.Errorf("%s: /readyz 503 after %v, OPTIONS 503 after %v, slowest refusal %v; want all within 2 s", what, readyAt, optionsAt, worst)
		}
		time.Sleep(3 * time.Second) // some more outage for the log to show its rate
		long := time.Since(cut)
		warns, kinds := warnLines(p.out.String()[logBefore:])
		for k, n := range kinds {
			if limit := int(long/(10*time.Second)) + 1; n > limit {
				t.Errorf("%s: %d %q warnings in %v, want at most %d (once per 10 s)", what, n, k, long.Round(time.Second), limit)
			}
		}
		t.Logf("%s: first call refused 503 in %v; /readyz 503 after %v, OPTIONS 503 after %v; 10 more calls refused, slowest %v; none reached the carrier; %d WARN lines in %v: %v",
			what, took.Round(time.Millisecond), readyAt.Round(time.Millisecond), optionsAt.Round(time.Millisecond), worst.Round(time.Millisecond), warns, long.Round(100*time.Millisecond), kinds)
	}
	// recovery measures, from the moment the database is back, when
	// /readyz, OPTIONS and a new call succeed again.
	recovery := func(what string) {
		t.Helper()
		back := time.Now()
		var readyAt, optionsAt, callAt time.Duration
		for readyAt == 0 || optionsAt == 0 || callAt == 0 {
			if readyAt == 0 {
				if c, _ := readyz(httpBase); c == 200 {
					readyAt = time.Since(back)
				}
			}
			if optionsAt == 0 {
				if c, _ := request(t, "OPTIONS", edgeAddr); c == 200 {
					optionsAt = time.Since(back)
				}
			}
			if callAt == 0 && optionsAt != 0 {
				if code, _, _ := call(); code == 200 {
					callAt = time.Since(back)
				}
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("%s: not recovered 10 s after the database came back (readyz %v, OPTIONS %v, call %v)\n%s", what, readyAt, optionsAt, callAt, tail(p.out.String(), 3000))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if c, _ := request(t, "REGISTER", edgeAddr); c != 401 {
			t.Errorf("%s: REGISTER without credentials after recovery: %d, want the 401 challenge", what, c)
		}
		t.Logf("%s: /readyz 200 after %v, OPTIONS 200 after %v, a new call answered after %v",
			what, readyAt.Round(time.Millisecond), optionsAt.Round(time.Millisecond), callAt.Round(time.Millisecond))
	}

	proxy.signal(syscall.SIGSTOP)
	outage("database frozen (proxy SIGSTOP)")
	proxy.signal(syscall.SIGCONT)
	recovery("database thawed (SIGCONT)")

	proxy.kill()
	outage("database cut (proxy killed)")
	proxy.start()
	recovery("database back (proxy restarted)")
}

// readyz GETs /readyz with a short timeout (0: no answer).
func readyz(base string) (int, string) {
	c := &http.Client{Timeout: 1500 * time.Millisecond}
	res, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// request sends an out-of-dialog OPTIONS (a health check) or REGISTER
// (without credentials) and returns the final status and Retry-After (0: no
// answer within 500 ms).
func request(t *testing.T, method, addr string) (int, string) {
	c, err := siptest.Dial("udp", "127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(fmt.Sprintf("%s sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\nFrom: <sip:probe@%s>;tag=1\nTo: <sip:probe@%s>\nCall-ID: %s\nCSeq: 1 %s\nContact: <sip:probe@%s>\nMax-Forwards: 70\nContent-Length: 0\n\n",
		method, testRealm, c.LocalAddr(), siptest.RandHex(4), testRealm, testRealm, siptest.RandHex(6), method, c.LocalAddr()))
	m, err := c.RecvResponse(500*time.Millisecond, 200)
	if err != nil {
		return 0, ""
	}
	return m.Code, m.Get("Retry-After")
}

// warnLines counts the WARN lines of a slog text log, in all and by message.
func warnLines(log string) (int, map[string]int) {
	n, kinds := 0, map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "level=WARN") {
			continue
		}
		n++
		msg := l
		if i := strings.Index(l, "msg="); i >= 0 {
			msg = l[i+4:]
			if strings.HasPrefix(msg, `"`) {
				if j := strings.Index(msg[1:], `"`); j >= 0 {
					msg = msg[1 : j+1]
				}
			} else if j := strings.IndexByte(msg, ' '); j >= 0 {
				msg = msg[:j]
			}
		}
		kinds[msg]++
	}
	return n, kinds
}
