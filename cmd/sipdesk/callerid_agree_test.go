//go:build e2e

package main

// The Caller ID simulator and a real call agree, row by row of SPEC.md's
// Caller ID table:
//
//	go test -race -tags e2e -count=1 -run CallerIDAgree ./cmd/sipdesk/
//
// Black-box: the real binary is built and run (`sipdesk serve` on a temp
// data folder, SQLite), customers are made with `sipdesk admin`, everything
// else goes through the JSON API (numbers verified with the codes from the
// dev mailbox, rules, SIP accounts, their Caller ID). For every row the test
// asks GET /api/v1/caller-id/simulate, places a real call with sipp (digest
// auth) through the edge to a sipp carrier that logs what it receives, and
// checks that the carrier's From user, display name and host,
// P-Asserted-Identity and Privacy are the simulator's final values, and that
// the edge's call record names the same rule and reason. Each row also has
// the value SPEC.md asks for, so that both cannot agree on a wrong answer.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
	_ "modernc.org/sqlite"
)

const agreeRealm = "sipdesk.local" // serve's default --sip-domain

// agreeAPI is a customer's view of the running portal.
type agreeAPI struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

// do sends a JSON request and fails the test unless the status is want.
func (c *agreeAPI) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, raw)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

func agreeID(m map[string]any) int64 {
	f, _ := m["id"].(float64)
	return int64(f)
}

func agreeStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// verify adds numbers to the customer's Caller ID list and verifies each
// with the code the dev mailbox shows.
func (c *agreeAPI) verify(numbers ...string) {
	c.t.Helper()
	for _, n := range numbers {
		id := agreeID(c.do("POST", "/api/v1/caller-ids", map[string]any{"number": n}, 202))
		code := agreeCode(c.t, c.base, n)
		if v := c.do("POST", fmt.Sprintf("/api/v1/caller-ids/%d/verify", id), map[string]any{"code": code}, 200); v["verified"] != true {
			c.t.Fatalf("verify %s: %v", n, v)
		}
	}
}

var (
	agreeMailRow  = regexp.MustCompile(`<td>sms:(?:\+|&#43;)([0-9]+)</td><td><a href="/dev/mail/([0-9]+)">`)
	agreeMailCode = regexp.MustCompile(`\b[0-9]{6}\b`)
)

// agreeCode is the newest verification code sent to a number (dev mailbox).
func agreeCode(t *testing.T, base, number string) string {
	t.Helper()
	get := func(path string) string {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	for _, m := range agreeMailRow.FindAllStringSubmatch(get("/dev/mail"), -1) { // newest first
		if "+"+m[1] == number {
			if code := agreeMailCode.FindString(get("/dev/mail/" + m[2])); code != "" {
				return code
			}
		}
	}
	t.Fatalf("no verification code for %s in the dev mailbox", number)
	return ""
}

// agreeAccount is a SIP account the test calls from.
type agreeAccount struct {
	api        *agreeAPI
	id         int64
	user, pass string
}

// newAccount creates a password account with generated credentials.
func (c *agreeAPI) newAccount(name string) *agreeAccount {
	c.t.Helper()
	m := c.do("POST", "/api/v1/sip-accounts", map[string]any{"name": name, "auth_type": "password"}, 201)
	return &agreeAccount{api: c, id: agreeID(m), user: agreeStr(m, "username"), pass: agreeStr(m, "password")}
}

func (a *agreeAccount) setCallerID(def, display string, rules ...int64) {
	a.api.t.Helper()
	a.api.do("PUT", fmt.Sprintf("/api/v1/sip-accounts/%d/caller-id", a.id),
		map[string]any{"default_number": def, "display_name": display, "rule_ids": append([]int64{}, rules...)}, 200)
}

// waitActive waits until the edge has applied the account (in_process → active).
func (a *agreeAccount) waitActive() {
	a.api.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := a.api.do("GET", fmt.Sprintf("/api/v1/sip-accounts/%d", a.id), nil, 200)
		if agreeStr(m, "status") == "active" {
			return
		}
		if time.Now().After(deadline) {
			a.api.t.Fatalf("SIP account %d still %q after 30 s", a.id, agreeStr(m, "status"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agreeRow is one call of the Caller ID table.
type agreeRow struct {
	name        string
	acct        *agreeAccount
	to          string // dialed, "+digits"; unique per row
	devUser     string // the device's From user
	devDisplay  string // the device's From display name
	wantReason  string // what SPEC.md asks for
	wantFrom    string // From user SPEC.md asks for ("" for a pool)
	wantPool    []string
	wantDisplay string
	wantPAI     string
	wantPrivacy string
}

func TestCallerIDAgree(t *testing.T) {
	siptest.Need(t, "sipp")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")

	// Customers through the admin CLI: paid, trial, and a trial customer
	// whose verified phone is missing.
	admin := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"admin", "--data", data}, args...), &out, &errb); code != 0 {
			t.Fatalf("admin %v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	type created struct {
		CustomerID int64 `json:"customer_id"`
		SIPAccount struct {
			ID                 int64
			Username, Password string
		} `json:"sip_account"`
	}
	customer := func(email, phone string) (created, string) {
		t.Helper()
		var c created
		if err := json.Unmarshal([]byte(admin("customer", "create", "--email", email, "--password", "Portal-Pass-123", "--phone", phone)), &c); err != nil {
			t.Fatal(err)
		}
		return c, strings.TrimSpace(admin("token", "create", "--customer", fmt.Sprint(c.CustomerID)))
	}
	const paidPhone, trialPhone, noPhoneWas = "+15550100001", "+15550200001", "+15550300001"
	paid, paidToken := customer("paid@example.com", paidPhone)
	admin("topup", "--customer", fmt.Sprint(paid.CustomerID), "--amount", "50")
	trial, trialToken := customer("trial@example.com", trialPhone)
	noPhone, noPhoneToken := customer("nophone@example.com", noPhoneWas)
	// No surface lets a customer lose its verified phone (signup needs one,
	// the signup phone cannot be deleted), so the no-decision row is made
	// the only way it can arise, in the data: an imported or repaired row.
	// The edge reads it at start.
	blankVerifiedPhone(t, data, noPhone.CustomerID)

	srv := startAgreeServe(t, bin, data, filepath.Join(dir, "serve.log"))
	hc := &http.Client{Timeout: 10 * time.Second}
	p := &agreeAPI{t: t, base: srv.base, token: paidToken, hc: hc}
	tr := &agreeAPI{t: t, base: srv.base, token: trialToken, hc: hc}
	np := &agreeAPI{t: t, base: srv.base, token: noPhoneToken, hc: hc}

	// The paid customer's numbers, rules and accounts.
	const def = "+15550100099"
	pool := []string{"+441110000001", "+441110000002", "+441110000003"}
	p.verify(append([]string{def, "+442030000001", "+33100000001", "+15550000777"}, pool...)...)
	rule := func(body map[string]any) int64 { return agreeID(p.do("POST", "/api/v1/caller-id-rules", body, 201)) }
	london := rule(map[string]any{"name": "london sales", "apply_for": "prefix", "prefix": "44203", "type": "specific", "numbers": []string{"+442030000001"}, "display_name": "Sales"})
	ukPool := rule(map[string]any{"name": "uk pool", "apply_for": "prefix", "prefix": "44", "type": "specific", "numbers": pool})
	france := rule(map[string]any{"name": "france", "apply_for": "country", "country": "FR", "type": "specific", "numbers": []string{"+33100000001"}})
	hidden := rule(map[string]any{"name": "germany hidden", "apply_for": "prefix", "prefix": "49", "type": "blocked"})
	keeps := rule(map[string]any{"name": "nyc keeps", "apply_for": "prefix", "prefix": "1212", "type": "set_by_caller"})
	everything := rule(map[string]any{"name": "everything", "apply_for": "all", "type": "specific", "numbers": []string{"+15550000777"}, "display_name": "Main"})

	rules := &agreeAccount{api: p, id: paid.SIPAccount.ID, user: paid.SIPAccount.Username, pass: paid.SIPAccount.Password}
	rules.setCallerID(def, "Acme", london, ukPool, france, hidden, keeps)
	all := p.newAccount("all calls")
	all.setCallerID("", "", everything)
	desk := p.newAccount("default")
	desk.setCallerID(def, "Desk")
	hiddenNoDef := p.newAccount("hidden without default")
	hiddenNoDef.setCallerID("", "", hidden)
	noDef := p.newAccount("no default")
	noDef.setCallerID("", "")
	trialAcct := &agreeAccount{api: tr, id: trial.SIPAccount.ID, user: trial.SIPAccount.Username, pass: trial.SIPAccount.Password}
	noPhoneAcct := &agreeAccount{api: np, id: noPhone.SIPAccount.ID, user: noPhone.SIPAccount.Username, pass: noPhone.SIPAccount.Password}
	for _, a := range []*agreeAccount{rules, all, desk, hiddenNoDef, noDef, trialAcct, noPhoneAcct} {
		a.waitActive()
	}

	rows := []agreeRow{
		{name: "trial: the verified phone", acct: trialAcct, to: "+442079460000", devUser: "+19998887777", devDisplay: "Device 1",
			wantReason: "trial", wantFrom: trialPhone, wantPAI: trialPhone},
		{name: "longest prefix (44203 over 44), rule display", acct: rules, to: "+442031234567", devUser: "+15550009001", devDisplay: "Device 2",
			wantReason: "rule_prefix", wantFrom: "+442030000001", wantDisplay: "Sales", wantPAI: "+442030000001"},
		{name: "number pool (prefix 44)", acct: rules, to: "+441612345678", devUser: "+15550009002", devDisplay: "Device 3",
			wantReason: "rule_prefix", wantPool: pool, wantDisplay: "Acme"},
		{name: "country FR", acct: rules, to: "+33612345678", devUser: "+15550009003", devDisplay: "Device 4",
			wantReason: "rule_country", wantFrom: "+33100000001", wantDisplay: "Acme", wantPAI: "+33100000001"},
		{name: "blocked: anonymous, PAI the default", acct: rules, to: "+4930123456", devUser: "+15550009004", devDisplay: "Device 5",
			wantReason: "rule_prefix", wantFrom: "anonymous", wantDisplay: "Anonymous", wantPAI: def, wantPrivacy: "id"},
		{name: "set_by_caller: the device's number and name", acct: rules, to: "+12125551234", devUser: "+15550009005", devDisplay: "Device 6",
			wantReason: "rule_prefix", wantFrom: "+15550009005", wantDisplay: "Device 6", wantPAI: "+15550009005"},
		{name: "set_by_caller with no number: the default", acct: rules, to: "+12125551235", devUser: "alice", devDisplay: "Alice",
			wantReason: "set_by_caller_invalid", wantFrom: def, wantDisplay: "Acme", wantPAI: def},
		{name: "no rule matches: the default number and name", acct: rules, to: "+34912345678", devUser: "+15550009007", devDisplay: "Device 8",
			wantReason: "default", wantFrom: def, wantDisplay: "Acme", wantPAI: def},
		{name: "all calls", acct: all, to: "+81312345678", devUser: "+15550009008", devDisplay: "Device 9",
			wantReason: "rule_all", wantFrom: "+15550000777", wantDisplay: "Main", wantPAI: "+15550000777"},
		{name: "default number with a display name", acct: desk, to: "+5511987654321", devUser: "+15550009009", devDisplay: "Device 10",
			wantReason: "default", wantFrom: def, wantDisplay: "Desk", wantPAI: def},
		{name: "blocked without a default: PAI the verified phone", acct: hiddenNoDef, to: "+4915112345678", devUser: "+15550009010", devDisplay: "Device 11",
			wantReason: "rule_prefix", wantFrom: "anonymous", wantDisplay: "Anonymous", wantPAI: paidPhone, wantPrivacy: "id"},
		{name: "no default number: the verified phone", acct: noDef, to: "+16135550100", devUser: "+15550009011", devDisplay: "Device 12",
			wantReason: "default", wantFrom: paidPhone, wantPAI: paidPhone},
		{name: "no decision: the device's From passes", acct: noPhoneAcct, to: "+442079460001", devUser: "+15550009012", devDisplay: "Device 13",
			wantReason: "no_decision", wantFrom: "+15550009012", wantDisplay: "Device 13", wantPAI: noPhoneWas},
	}

	// The simulator first: what every call should carry.
	sims := make([]map[string]any, len(rows))
	for i, r := range rows {
		q := url.Values{"sip_account": {fmt.Sprint(r.acct.id)}, "to": {r.to}, "from": {r.devUser}, "from_display": {r.devDisplay}}
		sims[i] = r.acct.api.do("GET", "/api/v1/caller-id/simulate?"+q.Encode(), nil, 200)
	}

	// The calls, one at a time, through the edge to the sipp carrier.
	invites := placeAgreeCalls(t, srv, rows)

	// The edge's call records (written asynchronously).
	records := map[string]map[string]any{} // by dialed number
	deadline := time.Now().Add(15 * time.Second)
	for len(records) < len(rows) && time.Now().Before(deadline) {
		for _, api := range []*agreeAPI{p, tr, np} {
			items, _ := api.do("GET", "/api/v1/calls?limit=100", nil, 200)["items"].([]any)
			for _, it := range items {
				m := it.(map[string]any)
				if agreeStr(m, "disposition") == "in_progress" {
					continue
				}
				for _, r := range rows {
					if strings.Contains(agreeStr(m, "to"), "sip:"+r.to+"@") {
						records[r.to] = m
					}
				}
			}
		}
		if len(records) < len(rows) {
			time.Sleep(200 * time.Millisecond)
		}
	}

	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			sim, inv, rec := sims[i], invites[r.to], records[r.to]
			if inv == nil {
				t.Fatalf("the carrier got no INVITE for %s", r.to)
			}
			got := carrierCallerID(t, inv)
			simRule, _ := sim["rule_id"].(float64)
			t.Logf("to %-15s carrier: From %q <%s@%s> PAI %q Privacy %q | simulator: %s", r.to, got.display, got.user, got.host, got.pai, got.privacy, agreeJSON(sim))

			// The simulator and the call agree.
			if r.wantPool != nil {
				if !slices.Contains(r.wantPool, got.user) || !slices.Contains(r.wantPool, agreeStr(sim, "from_user")) {
					t.Errorf("pool: carrier From user %q, simulator %q, want members of %v", got.user, agreeStr(sim, "from_user"), r.wantPool)
				}
				if got.pai != got.user || agreeStr(sim, "p_asserted_identity") != agreeStr(sim, "from_user") {
					t.Errorf("pool: PAI must be the From number: carrier %q/%q, simulator %q/%q", got.pai, got.user, agreeStr(sim, "p_asserted_identity"), agreeStr(sim, "from_user"))
				}
			} else {
				if got.user != agreeStr(sim, "from_user") {
					t.Errorf("From user: carrier %q, simulator %q", got.user, agreeStr(sim, "from_user"))
				}
				if got.pai != agreeStr(sim, "p_asserted_identity") {
					t.Errorf("P-Asserted-Identity: carrier %q, simulator %q", got.pai, agreeStr(sim, "p_asserted_identity"))
				}
			}
			if got.display != agreeStr(sim, "display_name") {
				t.Errorf("From display name: carrier %q, simulator %q", got.display, agreeStr(sim, "display_name"))
			}
			if (got.host == "anonymous.invalid") != (sim["anonymous"] == true) {
				t.Errorf("From host: carrier %q, simulator anonymous=%v", got.host, sim["anonymous"])
			}
			if got.privacy != agreeStr(sim, "privacy") {
				t.Errorf("Privacy: carrier %q, simulator %q", got.privacy, agreeStr(sim, "privacy"))
			}
			if rec == nil {
				t.Errorf("no call record for %s", r.to)
			} else {
				recRule, _ := rec["caller_id_rule_id"].(float64)
				if agreeStr(rec, "caller_id_reason") != agreeStr(sim, "reason") || recRule != simRule {
					t.Errorf("call record: reason %q rule %v; simulator: reason %q rule %v", agreeStr(rec, "caller_id_reason"), rec["caller_id_rule_id"], agreeStr(sim, "reason"), sim["rule_id"])
				}
				if r.wantPool == nil && agreeStr(rec, "caller_id") != agreeStr(sim, "caller_id") {
					t.Errorf("call record Caller ID %q, simulator %q", agreeStr(rec, "caller_id"), agreeStr(sim, "caller_id"))
				}
			}

			// And both are what SPEC.md asks for.
			if agreeStr(sim, "reason") != r.wantReason || (r.wantFrom != "" && agreeStr(sim, "from_user") != r.wantFrom) ||
				agreeStr(sim, "display_name") != r.wantDisplay || (r.wantPool == nil && agreeStr(sim, "p_asserted_identity") != r.wantPAI) ||
				agreeStr(sim, "privacy") != r.wantPrivacy {
				t.Errorf("simulator %s; SPEC.md: reason %q From %q %q PAI %q Privacy %q", agreeJSON(sim), r.wantReason, r.wantFrom, r.wantDisplay, r.wantPAI, r.wantPrivacy)
			}
		})
	}
}

func agreeJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// blankVerifiedPhone empties a customer's verified phone in the SQLite file
// (serve is not running yet).
func blankVerifiedPhone(t *testing.T, data string, customerID int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "sipdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec("UPDATE customers SET verified_phone = '' WHERE id = ?", customerID); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("blank verified phone: %d rows", n)
	}
}

// agreeServe is the running binary.
type agreeServe struct {
	cmd         *exec.Cmd
	base        string
	sip         string // 127.0.0.1:port (UDP)
	carrierPort int    // the carrier listens on 127.0.0.9
	log         string
}

func startAgreeServe(t *testing.T, bin, data, logPath string) *agreeServe {
	t.Helper()
	s := &agreeServe{base: "http://" + freePort(t), sip: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")),
		carrierPort: siptest.FreePort(t, "127.0.0.9"), log: logPath}
	rtp := 30000 + rand.IntN(90)*100
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--data", data, "--http", strings.TrimPrefix(s.base, "http://"), "--sip", s.sip, "--node", "agree",
		"--carrier", fmt.Sprintf("sip:127.0.0.9:%d", s.carrierPort), "--rtp-ports", fmt.Sprintf("%d-%d", rtp, rtp+99), "--log-level", "info")
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("serve log (tail):\n%s", agreeTail(string(b), 6000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no /healthz within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func agreeTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// The device: INVITE, 407, INVITE with digest credentials (the
// [authentication] keyword comes whole from the CSV: sipp cannot nest
// [fieldN] in it), answer, short hold, BYE. field0 = dialed number, field1 =
// From user, field2 = From display name, field3 = the keyword.
const agreeUAC = `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callerid_agree_uac">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[field0]@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field1]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[

      ACK sip:[field0]@[domain] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      INVITE sip:[field0]@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:[field1]@[local_ip]:[local_port]>
      [field3]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
`

// The carrier: answers whatever Caller ID it gets and waits for the BYE;
// sipp's message log (-trace_msg) keeps the INVITEs it received.
const agreeCarrier = `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callerid_agree_carrier">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="500"/>
</scenario>
`

// placeAgreeCalls places the rows' calls one at a time and returns the
// INVITEs the carrier received, by Request-URI user (the dialed number).
func placeAgreeCalls(t *testing.T, srv *agreeServe, rows []agreeRow) map[string]*siptest.Msg {
	t.Helper()
	sipp := siptest.Need(t, "sipp")
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var csv strings.Builder
	csv.WriteString("SEQUENTIAL\n")
	for _, r := range rows {
		fmt.Fprintf(&csv, "%s;%s;%s;[authentication username=%s password=%s]\n", r.to, r.devUser, r.devDisplay, r.acct.user, r.acct.pass)
	}
	inf := write("calls.csv", csv.String())
	n := fmt.Sprint(len(rows))
	mp := 40000 + rand.IntN(100)*100

	msgLog := filepath.Join(dir, "carrier_msg.log")
	carrier := exec.Command(sipp, "-sf", write("carrier.xml", agreeCarrier), "-i", "127.0.0.9", "-p", fmt.Sprint(srv.carrierPort), "-bind_local",
		"-m", n, "-timeout", "90s", "-nostdin", "-trace_msg", "-message_file", msgLog, "-mp", fmt.Sprint(mp))
	carrier.Dir = dir
	var carrierOut bytes.Buffer
	carrier.Stdout, carrier.Stderr = &carrierOut, &carrierOut
	if err := carrier.Start(); err != nil {
		t.Fatal(err)
	}
	carrierDone := make(chan error, 1)
	go func() { carrierDone <- carrier.Wait() }()
	t.Cleanup(func() {
		if carrier.ProcessState == nil {
			carrier.Process.Kill()
			<-carrierDone
		}
	})
	time.Sleep(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	uac := exec.CommandContext(ctx, sipp, "-sf", write("uac.xml", agreeUAC), "-inf", inf, "-key", "domain", agreeRealm,
		"-i", "127.0.0.1", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.1")), "-m", n, "-l", "1", "-r", "10", "-d", "100",
		"-timeout", "60s", "-recv_timeout", "10000", "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "uac_err.log"),
		"-mp", fmt.Sprint(mp+50), srv.sip)
	uac.Dir = dir
	out, err := uac.CombinedOutput()
	if err != nil {
		e, _ := os.ReadFile(filepath.Join(dir, "uac_err.log"))
		t.Fatalf("sipp device: %v\n%s\n%s", err, agreeTail(string(out), 3000), agreeTail(string(e), 3000))
	}
	select {
	case err := <-carrierDone:
		if err != nil {
			t.Fatalf("sipp carrier: %v\n%s", err, agreeTail(carrierOut.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sipp carrier did not finish\n%s", agreeTail(carrierOut.String(), 3000))
	}
	b, err := os.ReadFile(msgLog)
	if err != nil {
		t.Fatal(err)
	}
	invites := map[string]*siptest.Msg{}
	for _, chunk := range strings.Split(string(b), "\n-----") {
		i := strings.Index(chunk, "\nINVITE sip:")
		if i < 0 {
			continue
		}
		m, err := siptest.Parse([]byte(strings.ReplaceAll(chunk[i+1:], "\n", "\r\n")))
		if err != nil {
			t.Fatalf("parse carrier INVITE: %v\n%s", err, chunk)
		}
		user, _, _ := strings.Cut(strings.TrimPrefix(strings.Fields(m.StartLine)[1], "sip:"), "@")
		invites[user] = m
	}
	if len(invites) != len(rows) {
		t.Fatalf("the carrier logged %d INVITEs, want %d", len(invites), len(rows))
	}
	return invites
}

// agreeHeaders are the Caller ID headers a carrier INVITE carries.
type agreeHeaders struct {
	display, user, host, pai, privacy string
}

var agreeNameAddr = regexp.MustCompile(`^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<sips?:(?:([^@>;]*)@)?([^>;:]+)[^>]*>`)

func carrierCallerID(t *testing.T, inv *siptest.Msg) agreeHeaders {
	t.Helper()
	var h agreeHeaders
	m := agreeNameAddr.FindStringSubmatch(inv.Get("From"))
	if m == nil {
		t.Fatalf("From %q is not a name-addr", inv.Get("From"))
	}
	h.display, h.user, h.host = m[1]+strings.TrimSpace(m[2]), m[3], m[4]
	switch pai := inv.All("P-Asserted-Identity"); len(pai) {
	case 0:
	case 1:
		pm := agreeNameAddr.FindStringSubmatch(pai[0])
		if pm == nil {
			t.Fatalf("P-Asserted-Identity %q is not a name-addr", pai[0])
		}
		h.pai = pm[3]
	default:
		t.Fatalf("%d P-Asserted-Identity headers: %q", len(pai), pai)
	}
	h.privacy = inv.Get("Privacy")
	return h
}
