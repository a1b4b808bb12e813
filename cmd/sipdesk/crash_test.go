//go:build hostile

package main

// kill -9 during a stream of API writes, 20 times: run with
//
//	go test -race -tags hostile -count=1 ./cmd/sipdesk/
//
// The real binary is built, started on a temp data folder (SQLite) and free
// 127.0.0.1 ports, and killed with SIGKILL at a random moment while two
// clients write through the API; it is restarted each time. Every write that
// got a 2xx must be there at the end (checked through the API after a last
// restart), no refused or unanswered write may have half-happened, and after
// the last kill the SQLite file passes PRAGMA integrity_check (opened
// read-only with modernc.org/sqlite).

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

const crashRounds = 20

// acked is what the server acknowledged, by kind.
type acked struct {
	mu       sync.Mutex
	tickets  map[string]bool  // reason
	rules    map[int64]string // id → last acknowledged name
	pending  map[int64]string // id → a rename sent but not answered (may or may not have happened)
	tokens   map[string]bool  // name
	accounts map[int64]string // id → name, created and not deleted
	deleted  map[int64]bool
	n        int
}

type crashClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

// call returns the status (0 when the server did not answer) and the body.
func (c *crashClient) call(method, path, body string) (int, map[string]any) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil // cut off mid-answer: not an acknowledgement
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if res.StatusCode >= 500 {
		c.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode, m
}

func idOf(m map[string]any) int64 {
	f, _ := m["id"].(float64)
	return int64(f)
}

// writer streams writes until stop is closed or the server stops answering.
func (c *crashClient) writer(round, w int, a *acked, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		tag := fmt.Sprintf("r%d-w%d-%d", round, w, i)
		var status int
		switch (i + w) % 5 {
		case 0:
			status, _ = c.call("POST", "/api/v1/tickets", `{"kind":"sip_accounts","wanted":20,"reason":"`+tag+`"}`)
			if status == 201 {
				a.mu.Lock()
				a.tickets[tag] = true
				a.mu.Unlock()
			}
		case 1:
			status, _ = c.call("POST", "/api/v1/tokens", `{"name":"`+tag+`"}`)
			if status == 201 {
				a.mu.Lock()
				a.tokens[tag] = true
				a.mu.Unlock()
			}
		case 2:
			var m map[string]any
			status, m = c.call("POST", "/api/v1/caller-id-rules", `{"name":"`+tag+`","apply_for":"all","type":"blocked"}`)
			if status == 201 {
				a.mu.Lock()
				a.rules[idOf(m)] = tag
				a.mu.Unlock()
			}
		case 3:
			// Rename one of this writer's acknowledged rules.
			a.mu.Lock()
			var id int64
			for rid, name := range a.rules {
				if strings.Contains(name, fmt.Sprintf("-w%d-", w)) && a.pending[rid] == "" {
					id = rid
					break
				}
			}
			if id != 0 {
				a.pending[id] = tag + "-renamed"
			}
			a.mu.Unlock()
			if id == 0 {
				continue
			}
			status, _ = c.call("PATCH", fmt.Sprintf("/api/v1/caller-id-rules/%d", id), `{"name":"`+tag+`-renamed"}`)
			a.mu.Lock()
			if status == 200 {
				a.rules[id] = tag + "-renamed"
			}
			if status != 0 {
				delete(a.pending, id) // answered: applied (200) or refused, either way settled
			}
			a.mu.Unlock()
		case 4:
			// Writer 0 creates SIP accounts up to 6 and deletes the oldest.
			if w != 0 {
				continue
			}
			a.mu.Lock()
			var oldest int64
			for id := range a.accounts {
				if oldest == 0 || id < oldest {
					oldest = id
				}
			}
			full := len(a.accounts) >= 6
			a.mu.Unlock()
			if full {
				status, _ = c.call("DELETE", fmt.Sprintf("/api/v1/sip-accounts/%d", oldest), "")
				a.mu.Lock()
				switch status {
				case 204:
					delete(a.accounts, oldest)
					a.deleted[oldest] = true
				case 0: // unanswered: it may or may not be gone
					delete(a.accounts, oldest)
				}
				a.mu.Unlock()
			} else {
				var m map[string]any
				status, m = c.call("POST", "/api/v1/sip-accounts", `{"name":"`+tag+`"}`)
				if status == 201 {
					a.mu.Lock()
					a.accounts[idOf(m)] = tag
					a.mu.Unlock()
				}
			}
		}
		if status == 0 {
			return // the server is gone
		}
		if status >= 200 && status < 300 {
			a.mu.Lock()
			a.n++
			a.mu.Unlock()
		}
	}
}

type server struct {
	cmd  *exec.Cmd
	base string
}

func startServe(t *testing.T, bin, data, logPath string) *server {
	t.Helper()
	httpAddr := freePort(t)
	rtp := 30000 + rand.IntN(90)*100
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--data", data, "--http", httpAddr, "--sip", freePort(t), "--node", "crash",
		"--rtp-ports", fmt.Sprintf("%d-%d", rtp, rtp+99), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	s := &server{cmd: cmd, base: "http://" + httpAddr}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			log, _ := os.ReadFile(logPath)
			t.Fatalf("no /healthz within 15 s of a restart:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

// listAll pages through an API list.
func (c *crashClient) listAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := ""
	for {
		p := path + "?limit=500"
		if after != "" {
			p += "&after=" + after
		}
		status, m := c.call("GET", p, "")
		if status != 200 {
			t.Fatalf("GET %s: %d", p, status)
		}
		items, _ := m["items"].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any))
		}
		next, _ := m["next"].(string)
		if next == "" {
			return out
		}
		after = next
	}
}

func TestKill9DuringWrites(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipdesk")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "serve.log")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SIPDESK_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d (SIPDESK_CRASH_SEED to replay the kill moments)", seed)

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"admin", "--data", data, "customer", "create", "--email", "crash@example.com",
		"--password", "Portal-Pass-123", "--phone", "+15551230001"}, &out, &errb); code != 0 {
		t.Fatalf("customer create: %s", errb.String())
	}
	var created struct {
		CustomerID int64 `json:"customer_id"`
	}
	json.Unmarshal(out.Bytes(), &created)
	cid := fmt.Sprint(created.CustomerID)
	if code := run(context.Background(), []string{"admin", "--data", data, "topup", "--customer", cid, "--amount", "50"}, io.Discard, &errb); code != 0 {
		t.Fatalf("topup: %s", errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"admin", "--data", data, "token", "create", "--customer", cid}, &out, &errb); code != 0 {
		t.Fatalf("token create: %s", errb.String())
	}
	token := strings.TrimSpace(out.String())

	a := &acked{tickets: map[string]bool{}, rules: map[int64]string{}, pending: map[int64]string{}, tokens: map[string]bool{},
		accounts: map[int64]string{}, deleted: map[int64]bool{}}
	var downtimes []time.Duration
	for round := range crashRounds {
		t0 := time.Now()
		s := startServe(t, bin, data, logPath)
		if round > 0 {
			downtimes = append(downtimes, time.Since(t0))
		}
		c := &crashClient{t: t, base: s.base, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); c.writer(round, w, a, stop) }()
		}
		time.Sleep(time.Duration(100+rnd.IntN(900)) * time.Millisecond)
		s.kill()
		close(stop)
		wg.Wait()
	}

	// A last start: everything acknowledged is there.
	s := startServe(t, bin, data, logPath)
	c := &crashClient{t: t, base: s.base, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
	a.mu.Lock()
	defer a.mu.Unlock()
	tickets := map[string]bool{}
	for _, it := range c.listAll(t, "/api/v1/tickets") {
		tickets[it["reason"].(string)] = true
	}
	for r := range a.tickets {
		if !tickets[r] {
			t.Errorf("acknowledged ticket %q lost", r)
		}
	}
	tokens := map[string]bool{}
	for _, it := range c.listAll(t, "/api/v1/tokens") {
		tokens[it["name"].(string)] = true
	}
	for n := range a.tokens {
		if !tokens[n] {
			t.Errorf("acknowledged token %q lost", n)
		}
	}
	rules := map[int64]string{}
	for _, it := range c.listAll(t, "/api/v1/caller-id-rules") {
		rules[idOf(it)] = it["name"].(string)
	}
	for id, name := range a.rules {
		if got := rules[id]; got != name && got != a.pending[id] {
			t.Errorf("rule %d is %q, acknowledged as %q (unanswered rename: %q)", id, got, name, a.pending[id])
		}
	}
	accounts := map[int64]string{}
	for _, it := range c.listAll(t, "/api/v1/sip-accounts") {
		accounts[idOf(it)] = it["name"].(string)
	}
	for id, name := range a.accounts {
		if accounts[id] != name {
			t.Errorf("acknowledged SIP account %d %q: found %q", id, name, accounts[id])
		}
	}
	for id := range a.deleted {
		if _, ok := accounts[id]; ok {
			t.Errorf("acknowledged deletion of SIP account %d lost", id)
		}
	}
	s.kill()

	// After the last kill: the file itself is sound.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "sipdesk.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
	var fk int
	if err := db.QueryRow("SELECT count(*) FROM pragma_foreign_key_check").Scan(&fk); err != nil || fk != 0 {
		t.Fatalf("foreign_key_check: %d rows, %v", fk, err)
	}
	var maxDown time.Duration
	for _, d := range downtimes {
		maxDown = max(maxDown, d)
	}
	if a.n < crashRounds*5 {
		t.Fatalf("only %d acknowledged writes in %d rounds: the stream did not run", a.n, crashRounds)
	}
	t.Logf("%d kills; %d acknowledged writes (%d tickets, %d tokens, %d rules, %d accounts live, %d deleted) all present; "+
		"integrity_check ok; slowest restart to /healthz %v", crashRounds+1, a.n, len(a.tickets), len(a.tokens), len(a.rules),
		len(a.accounts), len(a.deleted), maxDown.Round(time.Millisecond))
}
