package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeStartsAndStops(t *testing.T) {
	data := t.TempDir()
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
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
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v", err)
	}
	resp.Body.Close()
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
