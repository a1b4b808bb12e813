//go:build e2e

package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/web/api"
	"github.com/sipdesk/sipdesk/internal/web/ops"
)

// TestSippTicketRaisesChannelLimit: a customer with channel limit 1 has a
// call up; a second concurrent call (sipp) is refused with 403 Channel
// limit reached. The customer opens a channel limit ticket through the
// customer API, support approves it through the operator API, and within
// 2 s the edge admits a second concurrent call, the first still up.
func TestSippTicketRaisesChannelLimit(t *testing.T) {
	siptest.Need(t, "sipp")
	ctx := context.Background()
	e := newLimitEnv(t, openStore(t), 1, func(c *Config) { c.MaxCallDuration = time.Minute })

	// The customer API and the operator API over HTTP, on the same service.
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(e.svc, testLogger(t)))
	ops.New(e.svc, ops.Options{Log: testLogger(t)}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	custToken, err := e.svc.CreateAPIToken(ctx, e.cust, "e2e", app.ActorSystem)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := e.svc.OpsCreateOperator(ctx, app.ShellOperator, "support@example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	opToken, err := e.svc.OpsCreateOperatorToken(ctx, app.ShellOperator, sup.Operator.ID, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	call := func(token, method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, m)
		}
		return m
	}

	// One call up (held 8 s); the carrier takes two.
	uas := startSippCarrier(t, scenario("uas_b2bua.xml"), "127.0.0.9", e.carrierPort, 2)
	firstDone := make(chan string, 1)
	go func() { out, _ := uacMedia(t, e, 1, 8000, 23000); firstDone <- out }()
	e.waitLive(t, 1, 5*time.Second)

	// A second concurrent call: refused with the limit's refusal.
	_, last := e.outcomes(t, 0)
	out, _ := uacMedia(t, e, 1, 500, 23100)
	got, last := e.outcomes(t, last)
	if want := map[string]int{"refused 403 " + sipdesk.EChannelLimit: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second call: %v, want %v\n%s", got, want, tail(out, 2000))
	}

	// The ticket, through the customer API; the approval, through the operator API.
	tk := call(custToken, "POST", "/api/v1/tickets", `{"kind": "channel_limit", "wanted": 2, "reason": "second line"}`)
	id := fmt.Sprint(tk["id"])
	approved := call(opToken, "POST", ops.APIPrefix+"/tickets/"+id+"/approve", `{"message": "Enjoy"}`)
	at := time.Now()
	if approved["status"] != "approved" {
		t.Fatalf("approve: %v", approved)
	}

	// Within 2 s a second concurrent call is admitted and answered.
	for tries := 1; ; tries++ {
		out, err := uacMedia(t, e, 1, 500, 23200)
		got, last = e.outcomes(t, last)
		if err == nil && got["answered 200 bye_caller"] == 1 && len(got) == 1 {
			rs, _ := e.svc.CallRecords(ctx, sipdesk.CallFilter{CustomerID: e.cust, Limit: 1})
			t.Logf("second concurrent call admitted on try %d; its INVITE came %v after the approval answered",
				tries, rs[0].StartedAt.Sub(at).Round(time.Millisecond))
			break
		}
		if time.Since(at) > 2*time.Second {
			t.Fatalf("no second call admitted 2 s after the approval: %v\n%s", got, tail(out, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * policy.LeaseWriteWindow) // the store's live calls lag the edge by a write window
	if a, _ := e.live(t); a != 1 {
		t.Errorf("the first call should still be up: %d live", a)
	}
	<-firstDone
	uas.wait(t)
	e.waitLive(t, 0, 5*time.Second)
	got, _ = e.outcomes(t, 0) // every record: the first call's was written before the others
	want := map[string]int{"answered 200 bye_caller": 2, "refused 403 " + sipdesk.EChannelLimit: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("all calls: %v, want %v", got, want)
	}
}

// uacMedia is limitEnv.uac ("hangup") with its own RTP port, for a sipp
// running beside another.
func uacMedia(t *testing.T, e *limitEnv, calls, holdMS, mediaPort int) (string, error) {
	return runSipp(t, "-sf", sippUAC(t, "hangup"), "-inf", limitCSV(t, calls), "-key", "domain", testRealm,
		"-i", "127.0.0.4", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.4")), "-bind_local", "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls),
		"-r", "1000", "-d", fmt.Sprint(holdMS), "-timeout", "40s", "-recv_timeout", "10000", "-mp", fmt.Sprint(mediaPort), e.s.UDPAddr().String())
}
