//go:build e2e && cluster

package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestClusterNodesDatabaseCut (must-show h): three edges and a portal on
// PostgreSQL; edge a's proxy is frozen (SIGSTOP), then killed: each time
// /readyz and OPTIONS answer 503 within 2 s, new calls get 503 with
// Retry-After within 2 s and none reaches the carrier, REGISTERs get 503
// with Retry-After; the warnings of the outage are logged at most once per
// 10 s per kind. The database comes
// back (SIGCONT, proxy restarted): /readyz, OPTIONS and new calls are
// served again within 10 s. The other edges stay ready throughout.
func TestClusterNodesDatabaseCut(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	const phoneIP = "127.0.0.40"
	cust := c.customer(0)
	c.f.ipAccount(cust, "trunk", "", phoneIP+"/32")
	cut := c.Edge("a")
	edgeAddr, httpBase, carrier, p := cut.SIP, "http://"+cut.HTTP, c.carrier, cut.P

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
	if code, body := nodesReadyz(httpBase); code != 200 || !strings.Contains(body, `"ready":true`) {
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
				if c, body := nodesReadyz(httpBase); c == 503 && strings.Contains(body, `"database"`) {
					readyAt = time.Since(cut)
				}
			}
			if optionsAt == 0 {
				if c, ra := nodesRequest(t, "OPTIONS", edgeAddr); c == 503 && ra != "" {
					optionsAt = time.Since(cut)
				}
			}
			if time.Since(cut) > 5*time.Second {
				t.Fatalf("%s: /readyz or OPTIONS still not 503 after 5 s (readyz at %v, OPTIONS at %v)\n%s", what, readyAt, optionsAt, tail(p.out.String(), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, o := range c.Edges[1:] {
			if code, body := nodesReadyz("http://" + o.HTTP); code != 200 {
				t.Errorf("%s: edge %s, whose database is there, not ready: %d %s", what, o.Name, code, body)
			}
			if code, _ := nodesRequest(t, "OPTIONS", o.SIP); code != 200 {
				t.Errorf("%s: edge %s, whose database is there, answers OPTIONS %d", what, o.Name, code)
			}
		}
		if c, ra := nodesRequest(t, "REGISTER", edgeAddr); c != 503 || ra == "" {
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
		warns, kinds := nodesWarnLines(p.out.String()[logBefore:])
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
				if c, _ := nodesReadyz(httpBase); c == 200 {
					readyAt = time.Since(back)
				}
			}
			if optionsAt == 0 {
				if c, _ := nodesRequest(t, "OPTIONS", edgeAddr); c == 200 {
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
		if c, _ := nodesRequest(t, "REGISTER", edgeAddr); c != 401 {
			t.Errorf("%s: REGISTER without credentials after recovery: %d, want the 401 challenge", what, c)
		}
		t.Logf("%s: /readyz 200 after %v, OPTIONS 200 after %v, a new call answered after %v",
			what, readyAt.Round(time.Millisecond), optionsAt.Round(time.Millisecond), callAt.Round(time.Millisecond))
	}

	cut.Proxy.Freeze()
	outage("database frozen (proxy SIGSTOP)")
	cut.Proxy.Thaw()
	recovery("database thawed (SIGCONT)")

	cut.Proxy.Kill()
	outage("database cut (proxy killed)")
	cut.Proxy.Restart()
	recovery("database back (proxy restarted)")
}

// nodesReadyz GETs /readyz with a short timeout (0: no answer).
func nodesReadyz(base string) (int, string) {
	c := &http.Client{Timeout: 1500 * time.Millisecond}
	res, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// nodesRequest sends an out-of-dialog OPTIONS (a health check) or REGISTER
// (without credentials) and returns the final status and Retry-After (0: no
// answer within 500 ms).
func nodesRequest(t *testing.T, method, addr string) (int, string) {
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

// nodesWarnLines counts the WARN lines of a slog text log, in all and by message.
func nodesWarnLines(log string) (int, map[string]int) {
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

// TestClusterNodesList: `sipdesk admin node list` shows the portal and the
// three edges alive with their addresses and build version, every edge's
// /metrics has the sipdesk_sip_* series, and an edge killed with -9 is
// listed dead once its heartbeat is older than 10 s.
func TestClusterNodesList(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	type node struct {
		Name, Role, State, Version string
		SIPAddr                    string `json:"sip_addr"`
		HTTPAddr                   string `json:"http_addr"`
	}
	list := func() map[string]node {
		t.Helper()
		cmd := exec.Command(c.bin, "admin", "--database", c.dsn, "--data", t.TempDir(), "node", "list")
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("admin node list: %v %s", err, out)
		}
		var ns []node
		if err := json.Unmarshal(out, &ns); err != nil {
			t.Fatalf("admin node list printed %s: %v", out, err)
		}
		m := map[string]node{}
		for _, n := range ns {
			m[n.Name] = n
		}
		return m
	}
	c.waitFor(10*time.Second, "every node listed alive", func() bool {
		ns := list()
		if n := ns["portal"]; n.Role != "portal" || n.State != "alive" || n.HTTPAddr != c.Portal {
			return false
		}
		for _, e := range c.Edges {
			if n := ns["edge-"+e.Name]; n.Role != "edge" || n.State != "alive" || n.SIPAddr != e.SIP || n.HTTPAddr != e.HTTP || n.Version == "" {
				return false
			}
		}
		return true
	})
	for _, e := range c.Edges {
		res, err := http.Get("http://" + e.HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), "sipdesk_sip_ready 1") {
			t.Fatalf("edge %s /metrics: %d without sipdesk_sip_ready 1", e.Name, res.StatusCode)
		}
	}
	c.Edge("c").Signal(syscall.SIGKILL)
	dead := c.waitFor(20*time.Second, "killed edge listed dead", func() bool { return list()["edge-c"].State == "dead" })
	if n := list()["edge-a"]; n.State != "alive" {
		t.Fatalf("edge a listed %s after edge c died", n.State)
	}
	t.Logf("4 nodes listed alive with their addresses; edge c killed -9: listed dead %v later", dead.Round(100*time.Millisecond))
}
