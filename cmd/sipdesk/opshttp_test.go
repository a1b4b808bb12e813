package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeOpsHTTP: with --ops-http the console and the operator API are
// served on that address only; the portal's listener answers 404 for
// them, and the console's listener serves no portal.
func TestServeOpsHTTP(t *testing.T) {
	data := t.TempDir()
	adm := func(args ...string) string {
		code, out, errs := runCmd(t, append([]string{"admin", "--data", data}, args...)...)
		if code != 0 {
			t.Fatalf("admin %v: %d %s", args, code, errs)
		}
		return strings.TrimSpace(out)
	}
	var created struct {
		OperatorID int64 `json:"operator_id"`
	}
	if err := json.Unmarshal([]byte(adm("operator", "create", "--email", "ro@example.com", "--password", "Operator-Pass-123", "--role", "readonly")), &created); err != nil {
		t.Fatal(err)
	}
	token := adm("operator", "token", "create", "--operator", fmt.Sprint(created.OperatorID))

	httpAddr, opsAddr := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--http", httpAddr, "--ops-http", opsAddr, "--sip", freePort(t), "--node", "o1"}, &bytes.Buffer{}, &errb)
	}()
	portal, console := "http://"+httpAddr, "http://"+opsAddr
	waitReady(t, portal, &errb)

	get := func(url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// The console's own address serves the console and the API.
	if st, body := get(console + "/ops/login"); st != 200 || !strings.Contains(body, "Operator sign-in") {
		t.Fatalf("console /ops/login: %d", st)
	}
	if st, _ := get(console + "/ops/"); st != http.StatusSeeOther {
		t.Fatalf("console /ops/ signed out: %d (want the redirect to the login)", st)
	}
	if st, body := get(console + "/api/ops/v1/customers"); st != 200 || !strings.Contains(body, `"items"`) {
		t.Fatalf("console API: %d %s", st, body)
	}
	// The portal's listener knows neither, with a valid token or not.
	for _, p := range []string{"/ops/", "/ops/login", "/ops/dids", "/api/ops/v1/customers", "/api/ops/v1/dids", "/ops/static/app.css"} {
		if st, _ := get(portal + p); st != http.StatusNotFound {
			t.Errorf("portal %s: %d, want 404", p, st)
		}
	}
	// And the console's listener serves no portal.
	if st, _ := get(console + "/login"); st != http.StatusNotFound {
		t.Errorf("console listener /login: %d, want 404", st)
	}
	if st, _ := get(portal + "/login"); st != 200 {
		t.Errorf("portal /login: %d", st)
	}
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
