package ops_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// liveCall stores a lease as an edge does when it admits a call.
func (e *env) liveCall(callID, node string) {
	e.t.Helper()
	err := e.st.Update(e.ctx, func(tx sipdesk.Tx) error {
		return tx.InsertLease(&sipdesk.CallLease{CallID: callID, CustomerID: e.cust.ID, Direction: sipdesk.DirOutbound, Node: node,
			StartedAt: e.now.Add(-90 * time.Second), ExpiresAt: e.now.Add(time.Hour)})
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// node answers the hang-up requests meant for it as the edge's request
// worker does (internal/edge/requests.go: the edge tests run the real one);
// it returns the Call-IDs it was asked to end.
func (e *env) node(name string, result sipdesk.EdgeRequestState) <-chan string {
	got := make(chan string, 4)
	stop := make(chan struct{})
	e.t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var r *sipdesk.EdgeRequest
			err := e.st.Update(e.ctx, func(tx sipdesk.Tx) (err error) {
				r, err = tx.ClaimEdgeRequest(name, []string{sipdesk.EdgeHangUp}, time.Now(), time.Now().Add(time.Minute))
				if err != nil {
					return err
				}
				return tx.FinishEdgeRequest(r.ID, name, result, "ended on node "+name, time.Now())
			})
			if err == nil {
				got <- r.Payload
			}
		}
	}()
	return got
}

// The live calls page lists every node's calls; support hangs one up and
// the request goes to the node holding it; readonly has no button and a
// forged POST is refused without a request.
func TestConsoleHangUp(t *testing.T) {
	e := newEnv(t)
	e.liveCall("call-1@10.0.0.1", "edge-b")
	asked := e.node("edge-b", sipdesk.EdgeDone)
	other := e.node("edge-a", sipdesk.EdgeDone)
	ro, sup := e.signIn(sipdesk.RoleReadonly), e.signIn(sipdesk.RoleSupport)

	st, body := e.get(ro, "/ops/calls")
	if st != 200 || !strings.Contains(body, "call-1@10.0.0.1") || !strings.Contains(body, "edge-b") ||
		!strings.Contains(body, "cust@example.com") || !strings.Contains(body, "1m30s") {
		t.Fatalf("live calls page: %d %s", st, body)
	}
	if strings.Contains(body, ">Hang up<") {
		t.Fatal("readonly sees Hang up")
	}
	if st, body := e.post(ro, "/ops/calls/hangup", url.Values{"call_id": {"call-1@10.0.0.1"}}); st != http.StatusForbidden || !strings.Contains(body, "readonly") {
		t.Fatalf("readonly hang-up: %d", st)
	}
	if _, body := e.get(sup, "/ops/calls"); !strings.Contains(body, ">Hang up<") {
		t.Fatal("support has no Hang up button")
	}
	if st, _ := e.post(sup, "/ops/calls/hangup", url.Values{"call_id": {"call-1@10.0.0.1"}}); st != http.StatusSeeOther {
		t.Fatalf("support hang-up: %d", st)
	}
	select {
	case p := <-asked:
		if !strings.Contains(p, `"call_id":"call-1@10.0.0.1"`) || !strings.Contains(p, sipdesk.EndOperatorHangUp) {
			t.Fatalf("request payload %s", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("edge-b got no request")
	}
	select {
	case p := <-other:
		t.Fatalf("edge-a took the request for edge-b: %s", p)
	default:
	}
	if _, body := e.get(sup, "/ops/calls"); !strings.Contains(body, "Call hung up on node edge-b") {
		t.Fatalf("flash after the hang-up: %s", body)
	}
	v, err := e.svc.OpsCustomer(e.ctx, app.ShellOperator, e.cust.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range v.Audit {
		if a.Action == sipdesk.AuditCallHungUp && strings.Contains(a.Actor, "support@ops.example.com") && strings.Contains(a.Detail, "call-1@10.0.0.1") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry naming the operator and the call: %+v", v.Audit)
	}
}

// DELETE /calls/active/{call_id}: 403 forbidden for readonly, 404 for a
// call that is not live, 200 with the node's result, 404 when the node no
// longer has the call.
func TestOperatorAPIHangUp(t *testing.T) {
	e := newEnv(t)
	tok := func(role sipdesk.OperatorRole) string {
		op, _ := e.operator(role)
		s, err := e.svc.OpsCreateOperatorToken(e.ctx, app.ShellOperator, op.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ro, sup := tok(sipdesk.RoleReadonly), tok(sipdesk.RoleSupport)
	e.liveCall("c2", "edge-b")
	e.liveCall("c3", "edge-c")
	e.node("edge-b", sipdesk.EdgeDone)
	e.node("edge-c", sipdesk.EdgeFailed)

	if st, m := e.api(ro, "GET", "/calls/active", ""); st != 200 || len(m["items"].([]any)) != 2 ||
		m["items"].([]any)[0].(map[string]any)["customer_email"] != "cust@example.com" {
		t.Fatalf("active calls: %d %v", st, m)
	}
	if st, m := e.api(ro, "DELETE", "/calls/active/c2", ""); st != 403 || m["error"].(map[string]any)["code"] != "forbidden" {
		t.Fatalf("readonly hang-up: %d %v", st, m)
	}
	if st, m := e.api(sup, "DELETE", "/calls/active/nope", ""); st != 404 || m["error"].(map[string]any)["code"] != "not_found" {
		t.Fatalf("unknown call: %d %v", st, m)
	}
	if st, m := e.api(sup, "DELETE", "/calls/active/c2", ""); st != 200 || m["state"] != "done" || m["node"] != "edge-b" ||
		m["result"] != "ended on node edge-b" {
		t.Fatalf("support hang-up: %d %v", st, m)
	}
	if st, m := e.api(sup, "DELETE", "/calls/active/c3", ""); st != 404 || m["error"].(map[string]any)["code"] != "not_found" {
		t.Fatalf("hang-up the node refused: %d %v", st, m)
	}
}
