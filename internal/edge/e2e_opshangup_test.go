//go:build e2e

package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/web/ops"
)

// TestSippOperatorHangUp: sipp calls through the edge to a sipp carrier
// that holds the call until it gets a BYE. A readonly operator token may
// not end it (403 forbidden, the call stays up); a support token ends it
// through DELETE /api/ops/v1/calls/active/{call_id}: the answer is 200 with
// the node, both sipps get a BYE saying the operator ended the call and
// answer it, the record's reason is operator_hangup, and the lease is free
// again (channel limit 1: the customer's next call is answered).
func TestSippOperatorHangUp(t *testing.T) {
	siptest.Need(t, "sipp")
	ctx := context.Background()
	e := newLimitEnv(t, openStore(t), 1, func(c *Config) { c.MaxCallDuration = time.Minute })

	mux := http.NewServeMux()
	ops.New(e.svc, ops.Options{Log: testLogger(t)}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token := func(role sipdesk.OperatorRole) string {
		t.Helper()
		n, err := e.svc.OpsCreateOperator(ctx, app.ShellOperator, string(role)+"@ops.example.com", "Operator-Pass-123", role)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := e.svc.OpsCreateOperatorToken(ctx, app.ShellOperator, n.Operator.ID, "e2e")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, "sdo_") {
			t.Fatalf("operator token without the sdo_ prefix")
		}
		return tok
	}
	support, readonly := token(sipdesk.RoleSupport), token(sipdesk.RoleReadonly)
	call := func(tok, method, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+ops.APIPrefix+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	errCode := func(m map[string]any) any {
		e, _ := m["error"].(map[string]any)
		return e["code"]
	}

	// The carrier answers and holds the call until a BYE comes (then 200);
	// the caller waits for the edge's BYE at most 20 s.
	uas := startSippCarrier(t, sippCarrier(t, "hold_any"), "127.0.0.9", e.carrierPort, 1)
	callerLog := filepath.Join(t.TempDir(), "caller_msg.log")
	type result struct {
		out string
		err error
	}
	callerDone := make(chan result, 1)
	go func() {
		out, err := runSipp(t, "-sf", sippUAC(t, "wait_bye"), "-inf", limitCSV(t, 1), "-key", "domain", testRealm,
			"-i", "127.0.0.4", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.4")), "-bind_local", "-m", "1", "-l", "1",
			"-timeout", "40s", "-recv_timeout", "20000", "-mp", "23400",
			"-trace_msg", "-message_file", callerLog, e.s.UDPAddr().String())
		callerDone <- result{out, err}
	}()
	e.waitLive(t, 1, 5*time.Second)

	// The call as the operator API lists it.
	code, list := call(readonly, "GET", "/calls/active")
	items, _ := list["items"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("live calls: %d %v", code, list)
	}
	live := items[0].(map[string]any)
	callID := fmt.Sprint(live["call_id"])
	if live["node"] != "e2e" || live["customer_id"] != float64(e.cust) || callID == "" {
		t.Fatalf("live call: %v", live)
	}
	path := "/calls/active/" + url.PathEscape(callID)

	// Readonly may not; an unknown Call-ID is not found; the call stays up.
	if code, m := call(readonly, "DELETE", path); code != 403 || errCode(m) != "forbidden" {
		t.Fatalf("readonly hang-up: %d %v", code, m)
	}
	if code, m := call(support, "DELETE", "/calls/active/"+url.PathEscape("nope@127.0.0.4")); code != 404 || errCode(m) != "not_found" {
		t.Fatalf("hang-up of an unknown call: %d %v", code, m)
	}
	time.Sleep(500 * time.Millisecond)
	if a, b := e.live(t); a != 1 || b != 1 {
		t.Fatalf("live calls after the refused hang-ups: service %d, database %d", a, b)
	}
	select {
	case r := <-callerDone:
		t.Fatalf("the call ended before the hang-up: %v\n%s", r.err, tail(r.out, 2000))
	case err := <-uas.done:
		t.Fatalf("the carrier ended before the hang-up: %v\n%s", err, tail(uas.out.String(), 2000))
	default:
	}

	// Support ends it.
	start := time.Now()
	code, m := call(support, "DELETE", path)
	took := time.Since(start)
	if code != 200 || m["call_id"] != callID || m["node"] != "e2e" || m["state"] != "done" || !strings.Contains(fmt.Sprint(m["result"]), "BYE sent") {
		t.Fatalf("hang-up: %d %v", code, m)
	}
	t.Logf("hang-up answered 200 in %v: %v", took.Round(time.Millisecond), m["result"])

	// Both sipps got a BYE from the edge and answered it.
	var r result
	select {
	case r = <-callerDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the caller's sipp did not finish")
	}
	if r.err != nil {
		t.Fatalf("caller sipp (expects a BYE): %v\n%s", r.err, tail(r.out, 3000))
	}
	carrierLog := uas.wait(t) // fails unless its scenario got the BYE
	b, _ := os.ReadFile(callerLog)
	for leg, log := range map[string]string{"caller": string(b), "carrier": carrierLog} {
		bye := receivedBYE(log)
		if bye == "" {
			t.Fatalf("%s got no BYE:\n%s", leg, tail(log, 3000))
		}
		if !strings.Contains(bye, "Ended by the operator") {
			t.Errorf("%s's BYE has no operator Reason:\n%s", leg, bye)
		}
	}

	// The record and the lease.
	e.waitLive(t, 0, 5*time.Second)
	if got, _ := e.outcomes(t, 0); fmt.Sprint(got) != fmt.Sprint(map[string]int{"answered 200 " + sipdesk.EndOperatorHangUp: 1}) {
		t.Fatalf("call records: %v", got)
	}
	if code, m := call(support, "DELETE", path); code != 404 || errCode(m) != "not_found" {
		t.Fatalf("second hang-up of the ended call: %d %v", code, m)
	}
	uas = startSippCarrier(t, sippCarrier(t, "hold_any"), "127.0.0.9", e.carrierPort, 1)
	if out, err := uacMedia(t, e, 1, 300, 23400); err != nil {
		t.Fatalf("the next call (channel limit 1): %v\n%s", err, tail(out, 3000))
	}
	uas.wait(t)
	if got, _ := e.outcomes(t, 0); got["answered 200 bye_caller"] != 1 {
		t.Fatalf("call records after the next call: %v", got)
	}
}

// receivedBYE is the first BYE in a sipp message trace that sipp received
// (not one it sent), or "".
func receivedBYE(log string) string {
	for _, block := range strings.Split(log, "----------------------------------------------- ") {
		_, msg, ok := strings.Cut(block, "message received")
		if !ok {
			continue
		}
		if _, msg, ok = strings.Cut(msg, "\n"); ok && strings.HasPrefix(strings.TrimSpace(msg), "BYE ") {
			return msg
		}
	}
	return ""
}
