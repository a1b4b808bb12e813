//go:build e2e && cluster

package edge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// httpJSON sends a request with a bearer token to the portal and decodes
// the JSON answer.
func httpJSON(t *testing.T, method, u, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d %s", method, u, res.StatusCode, b)
	}
	return res.StatusCode, m
}

// TestClusterEdgeRequests: a portal node and two edges on PostgreSQL. The
// customer's "Call me instead" on the portal's API is placed by exactly
// one edge (the carrier sees one INVITE for the number), and the API shows
// the code was read out; an operator's DELETE /api/ops/v1/calls/active/{id}
// on the portal ends a call held by edge b: the caller and the carrier get
// BYE from b, and the record says operator_hangup.
func TestClusterEdgeRequests(t *testing.T) {
	c := newCluster(t, clusterOptions{Edges: 2, EdgeArgs: []string{"--voice-calls"},
		// --smtp leaves dev mode (no dev mailbox): codes go through channels.
		PortalArgs: []string{"--voice-calls", "--voice-from", "+15550009999", "--smtp", "smtp://127.0.0.1:1"}})
	ctx := context.Background()
	cust := c.customer(5)
	c.f.ipAccount(cust, "trunk", "", "127.0.0.31/32")
	tok, err := c.svc.CreateAPIToken(ctx, cust, "test", app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	n := &sipdesk.CallerIDNumber{CustomerID: cust, Number: "+15557654321"}
	c.f.update(func(tx sipdesk.Tx) error { return tx.InsertCallerIDNumber(n) })
	time.Sleep(1500 * time.Millisecond) // the edges apply the new account

	// Call me instead: one edge calls the number and reads the code out.
	api := "http://" + c.Portal + "/api/v1"
	st, m := httpJSON(t, "POST", api+"/caller-ids/"+strconv.FormatInt(n.ID, 10)+"/call-me", tok)
	if st != http.StatusAccepted {
		t.Fatalf("call-me: %d %v", st, m)
	}
	inv := c.carrier.waitReq(t, "INVITE", 20*time.Second, func(m *siptest.Msg) bool { return strings.Contains(m.StartLine, "+15557654321") })
	if !strings.Contains(inv.Get("From"), "+15550009999") {
		t.Errorf("voice call From: %s", inv.Get("From"))
	}
	var delivery map[string]any
	c.waitFor(60*time.Second, "the code read out (delivery sent)", func() bool {
		_, m := httpJSON(t, "GET", api+"/caller-ids", tok)
		for _, it := range m["items"].([]any) {
			if it := it.(map[string]any); it["number"] == "+15557654321" {
				delivery, _ = it["delivery"].(map[string]any)
			}
		}
		return delivery != nil && delivery["state"] != "queued"
	})
	if delivery["state"] != "sent" || delivery["channel"] != "voice" {
		t.Fatalf("delivery: %v", delivery)
	}
	invites := 0
	c.carrier.mu.Lock()
	for _, id := range c.carrier.order {
		if strings.Contains(c.carrier.invites[id].StartLine, "+15557654321") {
			invites++
		}
	}
	c.carrier.mu.Unlock()
	if invites != 1 {
		t.Fatalf("the carrier got %d INVITEs for the number, want 1", invites)
	}
	placed := 0
	for _, e := range c.Edges {
		if strings.Contains(e.Logs(), "kind=voice_call state=done") {
			placed++
		}
	}
	if placed != 1 {
		t.Fatalf("%d edges placed the voice call, want 1", placed)
	}

	// A live call on edge b, hung up from the operator API on the portal.
	b := c.Edge("b")
	p := newPhoneAt(t, "127.0.0.31", b.SIP)
	p.dial("+15551230001")
	if r := p.final(8 * time.Second); r.Code != 200 {
		t.Fatalf("call through b: %d %s", r.Code, r.Reason)
	}
	leg := c.carrier.waitReq(t, "INVITE", 5*time.Second, func(m *siptest.Msg) bool { return strings.Contains(m.StartLine, "+15551230001") })
	c.waitFor(5*time.Second, "the lease", func() bool { return c.liveLeases(cust) == 1 })
	op, err := c.svc.OpsCreateOperator(ctx, app.ShellOperator, "support@ops.example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	otok, err := c.svc.OpsCreateOperatorToken(ctx, app.ShellOperator, op.Operator.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, m = httpJSON(t, "DELETE", "http://"+c.Portal+"/api/ops/v1/calls/active/"+url.PathEscape(p.callID), otok)
	if st != http.StatusOK || m["state"] != "done" || m["node"] != "edge-b" {
		t.Fatalf("hang-up: %d %v", st, m)
	}
	t.Logf("hang-up through the portal answered in %v", time.Since(start))
	p.waitReq("BYE", 5*time.Second)
	c.carrier.waitReq(t, "BYE", 5*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == leg.Get("Call-ID") })
	c.waitFor(5*time.Second, "the call's record closed", func() bool {
		for _, r := range c.records(cust) {
			if r.CallID == p.callID && r.Reason == sipdesk.EndOperatorHangUp && r.Node == "edge-b" {
				return true
			}
		}
		return false
	})
}
