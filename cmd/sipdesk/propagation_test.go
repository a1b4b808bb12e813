//go:build e2e

package main

// How long a configuration change takes to reach the SIP edge, measured from
// outside: run with
//
//	go test -race -tags e2e -count=1 -run Propagation ./cmd/sipdesk/
//
// The real binary is built and started (`sipdesk serve`, SQLite in a temp
// data folder, or PostgreSQL on a fresh database of SIPDESK_TEST_POSTGRES).
// A UAC keeps a SIP account registered; each round sets the account inactive
// through the JSON API and sends REGISTERs (digest, nonce reused with a
// rising nc) until the edge answers 403 Account inactive, then sets it active
// again and waits for a 200. The time from the API's 2xx to the first refusal
// is logged as p50/p99. p99 is bounded (propBound) below the edge's 1 s
// fallback poll, so the test fails when changes stop announcing themselves,
// with room for a loaded machine (measured: p99 3.6 ms on SQLite, 6.4 ms on
// PostgreSQL, 2 cores, 2026-12-06).

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

const (
	propRounds = 30
	propBound  = 400 * time.Millisecond // p99 must stay under it
	propGap    = time.Millisecond
	propRealm  = "sipdesk.local"
)

func TestPropagationSQLite(t *testing.T) {
	bin := buildSipdesk(t)
	testPropagation(t, bin, nil)
}

func TestPropagationPostgres(t *testing.T) {
	admin := os.Getenv("SIPDESK_TEST_POSTGRES")
	if admin != "" {
		// Unreachable: a clear skip (a failure on CI).
		db, err := sql.Open("pgx", admin)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err != nil {
			siptest.Unavailable(t, "PostgreSQL at SIPDESK_TEST_POSTGRES is unreachable: skipping the PostgreSQL measurement (%v)", err)
		}
	}
	dsn := storetest.PostgresDSN(t) // skips when unset (fails on CI)
	bin := buildSipdesk(t)
	testPropagation(t, bin, []string{"--database", dsn})
}

func buildSipdesk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sipdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// propAdmin runs `sipdesk admin` in-process on the same store.
func propAdmin(t *testing.T, store []string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(append([]string{"admin"}, store...), args...), &out, &errb); code != 0 {
		t.Fatalf("admin %v: %s", args, errb.String())
	}
	return out.String()
}

func testPropagation(t *testing.T, bin string, db []string) {
	dir := t.TempDir()
	store := append([]string{"--data", filepath.Join(dir, "data")}, db...)

	var created struct {
		CustomerID int64 `json:"customer_id"`
		SIPAccount struct {
			ID       int64  `json:"id"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"sip_account"`
	}
	out := propAdmin(t, store, "customer", "create", "--email", "prop@example.com", "--password", "Portal-Pass-123", "--phone", "+15551230001")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("customer create: %v: %s", err, out)
	}
	token := strings.TrimSpace(propAdmin(t, store, "token", "create", "--customer", fmt.Sprint(created.CustomerID)))

	// Start the real binary.
	httpAddr, sipAddr := freePort(t), freePort(t)
	rtp := 30000 + rand.IntN(90)*100
	logPath := filepath.Join(dir, "serve.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve"}, store...)
	args = append(args, "--http", httpAddr, "--sip", sipAddr, "--node", "prop", "--rtp-ports", fmt.Sprintf("%d-%d", rtp, rtp+99),
		"--ban-failures", "0", "--challenge-rate", "0", "--log-level", "warn")
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("serve log:\n%s", b)
		}
	})
	base := "http://" + httpAddr
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no /healthz within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	u := newPropUAC(t, sipAddr, created.SIPAccount.Username, created.SIPAccount.Password)
	// The first SIP account is in process until the edge applied it.
	if code, reason, _ := u.until(200, 20*time.Second); code != 200 {
		t.Fatalf("first REGISTER: %d %s, want 200", code, reason)
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	setStatus := func(status string) {
		t.Helper()
		req, _ := http.NewRequest("PATCH", fmt.Sprintf("%s/api/v1/sip-accounts/%d", base, created.SIPAccount.ID),
			strings.NewReader(`{"status":"`+status+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("PATCH status %s: %d %s", status, res.StatusCode, b)
		}
	}

	var refuse, admit []time.Duration
	probes := 0
	for round := range propRounds {
		setStatus("inactive")
		t0 := time.Now()
		code, reason, n := u.until(403, 10*time.Second)
		d := time.Since(t0)
		probes += n
		if code != 403 || reason != "Account inactive" {
			t.Fatalf("round %d: the edge still answers %d %s %v after the account was set inactive", round, code, reason, d)
		}
		refuse = append(refuse, d)

		setStatus("active")
		t0 = time.Now()
		code, reason, n = u.until(200, 10*time.Second)
		d = time.Since(t0)
		probes += n
		if code != 200 {
			t.Fatalf("round %d: the edge still answers %d %s %v after the account was set active", round, code, reason, d)
		}
		admit = append(admit, d)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond) // not in step with a poll
	}
	p50, p99 := percentile(refuse, 50), percentile(refuse, 99)
	engine := "SQLite"
	if len(db) > 0 {
		engine = "PostgreSQL"
	}
	t.Logf("%s, %d rounds, %d REGISTERs (%d retransmitted): API 2xx → 403 Account inactive: p50 %v, p99 %v, max %v; back to 200 after reactivation: p50 %v, p99 %v",
		engine, propRounds, probes, u.retransmits, p50, p99, percentile(refuse, 100), percentile(admit, 50), percentile(admit, 99))
	if p99 > propBound {
		t.Errorf("%s: p99 %v from an API change to the edge's refusal, want under %v", engine, p99, propBound)
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(100 * time.Microsecond)
}

// propUAC registers one account over UDP, answering the digest challenge
// once and then reusing its nonce with a rising nonce count.
type propUAC struct {
	t           *testing.T
	c           *siptest.Conn
	user, pass  string
	callID      string
	tag         string
	cseq        int
	ch          *siptest.Challenge
	nc          uint32
	retransmits int
}

func newPropUAC(t *testing.T, server, user, pass string) *propUAC {
	t.Helper()
	c, err := siptest.Dial("udp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &propUAC{t: t, c: c, user: user, pass: pass, callID: siptest.RandHex(8), tag: siptest.RandHex(4)}
}

// register sends one REGISTER (with credentials once challenged) and
// returns the final response, answering a 401 challenge on the way.
func (u *propUAC) register() *siptest.Msg {
	u.t.Helper()
	for range 3 {
		auth := ""
		if u.ch != nil {
			u.nc++
			auth = "Authorization: " + siptest.Answer(*u.ch, "REGISTER", "sip:"+propRealm, u.user, u.pass, u.nc, "") + "\n"
		}
		u.cseq++
		msg := fmt.Sprintf(`REGISTER sip:%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport
From: <sip:%s@%s>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: %d REGISTER
Contact: <sip:%s@%s>
Expires: 300
%sMax-Forwards: 70
Content-Length: 0

`, propRealm, u.c.LocalAddr(), siptest.RandHex(6), u.user, propRealm, u.tag, u.user, propRealm, u.callID, u.cseq, u.user, u.c.LocalAddr(), auth)
		want := fmt.Sprintf("%d REGISTER", u.cseq)
		var r *siptest.Msg
		// UDP: retransmit (same branch) when no answer comes, as a UAC does.
		for try := 0; r == nil; try++ {
			if try == 5 {
				u.t.Fatalf("REGISTER %s: no answer to %d transmissions", want, try)
			}
			if try > 0 {
				u.retransmits++
			}
			if err := u.c.Send(msg); err != nil {
				u.t.Fatal(err)
			}
			for r == nil {
				m, err := u.c.RecvResponse(500*time.Millisecond, 200)
				if err != nil {
					break
				}
				if m.Get("CSeq") == want {
					r = m
				}
			}
		}
		if r.Code != 401 {
			return r
		}
		u.ch = nil
		for _, v := range r.All("WWW-Authenticate") {
			if c, err := siptest.ParseChallenge(v); err == nil && (c.Algorithm == "" || strings.EqualFold(c.Algorithm, "MD5")) {
				u.ch, u.nc = &c, 0
				break
			}
		}
		if u.ch == nil {
			u.t.Fatalf("401 without an MD5 challenge: %v", r.All("WWW-Authenticate"))
		}
	}
	u.t.Fatal("REGISTER: challenged three times in a row")
	return nil
}

// until sends REGISTERs propGap apart until the answer is code or d passed;
// it returns the last answer and how many REGISTERs it sent.
func (u *propUAC) until(code int, d time.Duration) (int, string, int) {
	end := time.Now().Add(d)
	for n := 1; ; n++ {
		r := u.register()
		if r.Code == code || time.Now().After(end) {
			return r.Code, r.Reason, n
		}
		time.Sleep(propGap)
	}
}
