package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// sipdesk runs the command in-process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAdminCommands(t *testing.T) {
	data := t.TempDir()
	adm := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"admin", "--data", data}, args...)...)
	}
	code, out, errs := adm("customer", "create", "--email", "a@example.com", "--password", "Portal-Pass-123", "--phone", "+15551230001")
	if code != 0 {
		t.Fatalf("customer create: %d %s", code, errs)
	}
	var created struct {
		CustomerID int64 `json:"customer_id"`
		SIPAccount struct {
			ID                 int64
			Username, Password string
		} `json:"sip_account"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.CustomerID == 0 || len(created.SIPAccount.Username) < 8 || len(created.SIPAccount.Password) < 12 {
		t.Fatalf("customer create printed %q (%v)", out, err)
	}
	cid := fmt.Sprint(created.CustomerID)

	if code, _, errs := adm("customer", "create", "--email", "a@example.com", "--password", "Portal-Pass-123", "--phone", "+15551230002"); code != 1 || !strings.Contains(errs, "email") {
		t.Fatalf("duplicate email: %d %q", code, errs)
	}
	if code, _, _ := adm("customer", "create", "--email", "b@example.com"); code != 2 {
		t.Fatal("missing flags must be a usage error")
	}
	if code, out, _ := adm("token", "create", "--customer", cid); code != 0 || !strings.HasPrefix(out, "sdk_") {
		t.Fatalf("token create: %q", out)
	}
	if code, out, _ := adm("topup", "--customer", cid, "--amount", "50"); code != 0 || !strings.Contains(out, `"paid"`) || !strings.Contains(out, `"channel_limit": 10`) {
		t.Fatalf("topup: %s", out)
	}
	if code, _, errs := adm("topup", "--customer", cid, "--amount", "-3"); code != 1 || !strings.Contains(errs, "amount") {
		t.Fatalf("negative topup: %d %s", code, errs)
	}
	if code, out, _ := adm("channel-limit", "--customer", cid, "--set", "25"); code != 0 || !strings.Contains(out, `"channel_limit": 25`) {
		t.Fatalf("channel-limit: %s", out)
	}
	if code, _, _ := adm("channel-limit", "--customer", "999", "--set", "2"); code != 1 {
		t.Fatal("unknown customer accepted")
	}
	if code, out, _ := adm("ticket", "list"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("ticket list: %q", out)
	}
	if code, _, _ := adm("ticket", "approve", "7"); code != 1 {
		t.Fatal("unknown ticket approved")
	}
	if code, _, _ := adm("ticket", "decline", "7"); code != 2 {
		t.Fatal("decline without --message must be a usage error")
	}
	if code, out, errs := adm("did", "assign", "--number", "+15557770001", "--sip-account", fmt.Sprint(created.SIPAccount.ID)); code != 0 || !strings.Contains(out, "+15557770001") {
		t.Fatalf("did assign: %s %s", out, errs)
	}
	if code, _, _ := adm("sip-account", "approve", fmt.Sprint(created.SIPAccount.ID)); code != 0 {
		// a fresh account is in process until an edge applies it: approving works
		t.Fatal("sip-account approve of an in-process account failed")
	}
	if code, _, _ := adm("frobnicate"); code != 2 {
		t.Fatal("unknown command accepted")
	}
}

// freePort is a 127.0.0.1 address free for UDP and TCP (HTTP or SIP).
func freePort(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1"))
}

func TestServeStartsAndStops(t *testing.T) {
	data := t.TempDir()
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--http", httpAddr, "--sip", freePort(t), "--node", "t1"}, &bytes.Buffer{}, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz in 10 s: %s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The portal's /metrics has the edge's series on --role all.
	if code, body := httpGet(t, "http://"+httpAddr+"/metrics"); code != 200 || !strings.Contains(body, "sipdesk_sip_ready 1") || !strings.Contains(body, "sipdesk_sip_active_calls 0") {
		t.Fatalf("/metrics: %d without sipdesk_sip_ready 1 / sipdesk_sip_active_calls 0:\n%.2000s", code, body)
	}
	waitReady(t, "http://"+httpAddr, &errb)
	// The node lists itself with what it reported at its heartbeat.
	waitNode(t, data, "t1", func(n adminNode) bool {
		return n.Role == "all" && n.State == "alive" && n.HTTPAddr == httpAddr && n.SIPAddr != "" && n.Version == version
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	if code, _, _ := runCmd(t, "serve", "--role", "proxy"); code != 2 {
		t.Fatal("bad role accepted")
	}
}

// TestServeEdgeRoleHTTP: an edge alone serves /healthz, /readyz and
// /metrics with the sipdesk_sip_* series on --http, and no portal.
func TestServeEdgeRoleHTTP(t *testing.T) {
	data := t.TempDir()
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--role", "edge", "--data", data, "--http", httpAddr, "--sip", freePort(t), "--node", "e1"}, &bytes.Buffer{}, &errb)
	}()
	base := "http://" + httpAddr
	waitReady(t, base, &errb)
	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/metrics"); code != 200 || !strings.Contains(body, "sipdesk_sip_ready 1") || !strings.Contains(body, "sipdesk_sip_bindings 0") {
		t.Fatalf("/metrics: %d:\n%.2000s", code, body)
	}
	if code, _ := httpGet(t, base+"/api/v1/me"); code != 404 {
		t.Fatalf("an edge serves the API: %d", code)
	}
	waitNode(t, data, "e1", func(n adminNode) bool { return n.Role == "edge" && n.State == "alive" && n.HTTPAddr == httpAddr })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady waits until /readyz answers 200 {"ready":true}.
func waitReady(t *testing.T, base string, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), `"ready":true`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready /readyz in 10 s (%v): %s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type adminNode struct {
	Name      string
	Role      string
	State     string
	SIPAddr   string `json:"sip_addr"`
	HTTPAddr  string `json:"http_addr"`
	Version   string
	LiveCalls int `json:"live_calls"`
	Bindings  int
}

// waitNode waits until `admin node list` shows node as ok says.
func waitNode(t *testing.T, data, node string, ok func(adminNode) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errs := runCmd(t, "admin", "--data", data, "node", "list")
		var ns []adminNode
		if code != 0 || json.Unmarshal([]byte(out), &ns) != nil {
			t.Fatalf("admin node list: %d %s %s", code, out, errs)
		}
		for _, n := range ns {
			if n.Name == node && ok(n) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not as expected in 10 s: %s", node, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a running serve writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
