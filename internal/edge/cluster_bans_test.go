//go:build e2e && cluster

package edge

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestClusterBans: two `sipdesk serve --role edge` processes and a portal
// on PostgreSQL. A source that guesses a password at edge a is banned
// there, and edge b, which never saw it fail, drops it within 2 s; the
// operator API of the portal lists the ban and lifts it, and both edges
// answer the source again at once (the lift travels by LISTEN/NOTIFY).
func TestClusterBans(t *testing.T) {
	c := newCluster(t, clusterOptions{Edges: 2})
	cust := c.customer(0)
	c.f.passwordAccount(cust, "clban001", "Clban-Pass-123")
	c.waitFor(20*time.Second, "edges applied the account", func() bool {
		ns, _ := c.svc.NodeList(context.Background())
		v, _ := c.st.ConfigVersion(context.Background())
		n := 0
		for _, x := range ns {
			if x.Role == "edge" && x.AppliedVersion >= v {
				n++
			}
		}
		return n == 2
	})
	op, err := c.svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	token, err := c.svc.OpsCreateOperatorToken(context.Background(), app.ShellOperator, op.Operator.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	opsAPI := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+c.Portal+"/api/ops/v1"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	const attacker = "127.0.0.30"
	device := func(e *clusterEdge) *uac {
		conn, err := siptest.Dial("udp", attacker+":0", e.SIP)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &uac{t: t, c: conn, server: e.SIP, callID: siptest.RandHex(8), tag: siptest.RandHex(4)}
	}
	answered := func(e *clusterEdge) bool { // an unauthenticated REGISTER gets its 401
		u := device(e)
		if err := u.c.Send(u.registerMsg("clban001", "")); err != nil {
			t.Fatal(err)
		}
		_, err := u.c.RecvResponse(300*time.Millisecond, 200)
		return err == nil
	}
	a, b := c.Edge("a"), c.Edge("b")
	if !answered(a) || !answered(b) {
		t.Fatal("the edges do not answer the source before any failure")
	}

	// 5 wrong answers at edge a (one Call-ID each, as a guessing tool sends).
	for i := range 5 {
		u := device(a)
		r := u.register("clban001", "")
		ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
		if err := u.c.Send(u.registerMsg("clban001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "clban001", "Wrong-Pass-1", 1, ""))); err != nil {
			t.Fatal(err)
		}
		if _, err := u.c.RecvResponse(time.Second, 200); err != nil && i < 4 {
			t.Fatalf("wrong answer %d: %v", i+1, err)
		}
	}
	if answered(a) {
		t.Fatal("edge a still answers the source after 5 wrong answers")
	}
	took := c.waitFor(2*time.Second, "edge b drops the source banned at edge a", func() bool { return !answered(b) })
	t.Logf("edge b drops the source %v after edge a banned it", took.Round(10*time.Millisecond))

	st, body := opsAPI("GET", "/bans")
	if st != 200 || !strings.Contains(body, `"source":"`+attacker+`"`) || !strings.Contains(body, `"node":"edge-a"`) {
		t.Fatalf("GET /bans: %d %s", st, body)
	}
	if st, body := opsAPI("DELETE", "/bans/"+attacker); st != http.StatusNoContent {
		t.Fatalf("DELETE /bans/%s: %d %s", attacker, st, body)
	}
	lifted := time.Now()
	for !answered(a) || !answered(b) {
		if time.Since(lifted) > time.Second {
			t.Fatalf("the edges still drop the source %v after the lift", time.Since(lifted))
		}
	}
	t.Logf("both edges answer the source again %v after the lift (each probe waits up to 300 ms for its answer)", time.Since(lifted).Round(time.Millisecond))
	u := device(b)
	r := u.register("clban001", "")
	ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
	if r = u.register("clban001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "clban001", "Clban-Pass-123", 1, "")); r.Code != 200 {
		t.Fatalf("REGISTER with the right password at edge b after the lift: %d %s", r.Code, r.Reason)
	}
}
