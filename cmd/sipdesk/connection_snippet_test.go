//go:build e2e

package main

// The Asterisk snippet of the connection page registers against a running
// edge, with exactly its values:
//
//	go test -race -tags e2e -count=1 -run ConnectionSnippet ./cmd/sipdesk/
//
// A customer made with `sipdesk admin`, `sipdesk serve` on free ports; the
// test reads GET /api/v1/connection for the password account, reveals the
// username (POST …/reveal-username), takes the pjsip.conf snippet's
// registration and auth sections (server_uri, client_uri, contact_user,
// transport, expiration, realm), puts the username and password in place
// of the placeholders, and has sipp send the REGISTER Asterisk would: to
// server_uri, From/To client_uri, digest auth. The edge must answer 200,
// and its challenge must name the snippet's realm.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

func TestConnectionSnippetRegisters(t *testing.T) {
	sipp := siptest.Need(t, "sipp")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	admin := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"admin", "--data", data}, args...), &out, &errb); code != 0 {
			t.Fatalf("admin %v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	var c struct {
		CustomerID int64 `json:"customer_id"`
		SIPAccount struct {
			ID                 int64
			Username, Password string
		} `json:"sip_account"`
	}
	if err := json.Unmarshal([]byte(admin("customer", "create", "--email", "snippet@example.com", "--password", "Portal-Pass-123", "--phone", "+15550400001")), &c); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(admin("token", "create", "--customer", fmt.Sprint(c.CustomerID)))
	srv := startAgreeServe(t, bin, data, filepath.Join(dir, "serve.log"))
	api := &agreeAPI{t: t, base: srv.base, token: token, hc: &http.Client{Timeout: 10 * time.Second}}
	acct := &agreeAccount{api: api, id: c.SIPAccount.ID}
	acct.waitActive()

	// What the customer reads: the connection details and the snippet.
	conn := api.do("GET", fmt.Sprintf("/api/v1/connection?sip_account=%d", c.SIPAccount.ID), nil, 200)
	accounts, _ := conn["accounts"].([]any)
	if len(accounts) != 1 {
		t.Fatalf("connection: %v", conn)
	}
	var snippet string
	for _, s := range accounts[0].(map[string]any)["snippets"].([]any) {
		if m := s.(map[string]any); m["id"] == "asterisk" {
			snippet = agreeStr(m, "text")
		}
	}
	if snippet == "" || strings.Contains(snippet, c.SIPAccount.Password) {
		t.Fatalf("the Asterisk snippet is missing or holds the secret:\n%s", snippet)
	}
	user := agreeStr(api.do("POST", fmt.Sprintf("/api/v1/sip-accounts/%d/reveal-username", c.SIPAccount.ID), nil, 200), "username")
	if user != c.SIPAccount.Username {
		t.Fatalf("revealed %q, created %q", user, c.SIPAccount.Username)
	}
	filled := strings.NewReplacer("YOUR_SIP_USERNAME", user, "YOUR_SIP_PASSWORD", c.SIPAccount.Password).Replace(snippet)
	// The first value of each key (the registration and auth sections
	// come first).
	val := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindStringSubmatch(filled)
		if m == nil {
			t.Fatalf("no %s= in the snippet:\n%s", key, snippet)
		}
		return strings.TrimSpace(m[1])
	}
	server := strings.TrimPrefix(val("server_uri"), "sip:")
	clientURI, contactUser, expiration := val("client_uri"), val("contact_user"), val("expiration")
	authUser, authPass, realm := val("username"), val("password"), val("realm")
	transports := map[string]string{"transport-udp": "u1", "transport-tcp": "t1"}
	mode, ok := transports[val("transport")]
	if !ok {
		t.Fatalf("transport %q: not one sipp speaks here", val("transport"))
	}
	if realm != agreeStr(conn, "sip_domain") {
		t.Errorf("the snippet's realm %q is not the connection's SIP domain %q", realm, agreeStr(conn, "sip_domain"))
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		t.Fatalf("server_uri %q: %v", server, err)
	}

	// The REGISTER Asterisk sends with these values.
	reg := func(cseq int, auth string) string {
		return `<send retrans="500"><![CDATA[
REGISTER sip:` + server + ` SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <` + clientURI + `>;tag=[pid]SIPpTag[call_number]
To: <` + clientURI + `>
Call-ID: [call_id]
CSeq: ` + fmt.Sprint(cseq) + ` REGISTER
Contact: <sip:` + contactUser + `@[local_ip]:[local_port]>
Expires: ` + expiration + `
Max-Forwards: 70
` + auth + `Content-Length: 0

]]></send>
`
	}
	scenario := `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="asterisk snippet register">
` + reg(1, "") + `<recv response="401" auth="true"/>
` + reg(2, "[authentication username="+authUser+" password="+authPass+"]\n") + `<recv response="200"/>
</scenario>
`
	sf := filepath.Join(dir, "register.xml")
	if err := os.WriteFile(sf, []byte(scenario), 0o600); err != nil {
		t.Fatal(err)
	}
	msgs := filepath.Join(dir, "messages.log")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sf", sf, "-m", "1", "-t", mode, "-i", "127.0.0.1", "-p", "0", "-timeout", "20s",
		"-timeout_error", "-trace_msg", "-message_file", msgs, host+":"+port)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	trace, _ := os.ReadFile(msgs)
	if err != nil {
		t.Fatalf("sipp REGISTER with the snippet's values failed: %v\n%s\nmessages:\n%s", err, agreeTail(string(out), 2000), agreeTail(string(trace), 4000))
	}
	if !regexp.MustCompile(`SIP/2.0 200 `).Match(trace) {
		t.Fatalf("no 200 in the trace:\n%s", trace)
	}
	if !strings.Contains(string(trace), `realm="`+realm+`"`) {
		t.Errorf("the edge's challenge does not name the snippet's realm %q:\n%s", realm, agreeTail(string(trace), 3000))
	}
}
