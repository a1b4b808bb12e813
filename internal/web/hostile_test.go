package web

// The composed HTTP server (web.New: API, portal, health, metrics, dev
// mailbox) on a real SQLite store, over real TCP: no answer names the
// software or its version, and no secret a full customer flow creates shows
// up in a log line or in an answer other than the one that displays it once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
	"github.com/sipdesk/sipdesk/internal/web/api"
)

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

// exchange is one request and its answer as the client saw them.
type exchange struct {
	n            int
	method, path string // path with query
	status       int
	header       http.Header
	body         string
}

// recorder is a RoundTripper that keeps every exchange.
type recorder struct {
	mu sync.Mutex
	ex []*exchange
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	rt.mu.Lock()
	rt.ex = append(rt.ex, &exchange{n: len(rt.ex), method: r.Method, path: r.URL.RequestURI(), status: res.StatusCode, header: res.Header.Clone(), body: string(b)})
	rt.mu.Unlock()
	return res, nil
}

func (rt *recorder) last() *exchange {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.ex[len(rt.ex)-1]
}

// hostileServer runs web.New on a real store and TCP port.
type hostileServer struct {
	t    *testing.T
	base string
	svc  *app.Service
	st   sipdesk.Store
	log  *syncBuffer
	rec  *recorder
	c    *http.Client
}

func startServer(t *testing.T) *hostileServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base, svc, st := serveWeb(t, log, Options{DevMailbox: true, Registry: prometheus.NewRegistry()}, app.Options{})
	rec := &recorder{}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: rec, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &hostileServer{t: t, base: base, svc: svc, st: st, log: logs, rec: rec, c: c}
}

// serveWeb runs web.New (o) on app.New (ao) on a fresh SQLite store, on a
// free port of 127.0.0.1, until the test ends; it returns the base URL.
// The service's realm, base URL and logger are set here.
func serveWeb(t *testing.T, log *slog.Logger, o Options, ao app.Options) (string, *app.Service, sipdesk.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: bytes.Repeat([]byte{9}, 32), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	ao.Realm, ao.BaseURL, ao.Log = "sipdesk.local", base, log
	svc := app.New(st, ao)
	o.Addr, o.Log = addr, log
	s := New(svc, o)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return base, svc, st
}

// newRequest builds a request to base+path as a browser of the site sends
// it: body is a url.Values (a portal form, same-origin), a string (JSON)
// or nil; bearer, when set, is an API token.
func newRequest(base, method, path, bearer string, body any) *http.Request {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if _, ok := body.(url.Values); ok {
		req.Header.Set("Origin", base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return req
}

// do sends a request (newRequest) and returns the exchange.
func (h *hostileServer) do(method, path, bearer string, body any) *exchange {
	h.t.Helper()
	req := newRequest(h.base, method, path, bearer, body)
	res, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	res.Body.Close()
	return h.rec.last()
}

func (h *hostileServer) must(x *exchange, status int) *exchange {
	h.t.Helper()
	if x.status != status {
		h.t.Fatalf("%s %s: %d, want %d: %.2000s", x.method, x.path, x.status, status, x.body)
	}
	return x
}

func (x *exchange) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(x.body), &m); err != nil {
		t.Fatalf("%s %s: %v: %s", x.method, x.path, err, x.body)
	}
	return m
}

// find returns the first submatch of re in the answer.
func (x *exchange) find(t *testing.T, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(x.body)
	if m == nil {
		t.Fatalf("%s %s: no %s in:\n%.3000s", x.method, x.path, re, x.body)
	}
	return m[1]
}

func (h *hostileServer) outbox(to, re string) string {
	h.t.Helper()
	var ms []*sipdesk.Mail
	h.st.View(context.Background(), func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(1000); return err })
	for _, m := range ms {
		if m.To == to {
			if sm := regexp.MustCompile(re).FindStringSubmatch(m.Text); sm != nil {
				return sm[1]
			}
		}
	}
	h.t.Fatalf("no mail to %s matching %s", to, re)
	return ""
}

func (h *hostileServer) activate() {
	h.t.Helper()
	ctx := context.Background()
	v, err := h.st.ConfigVersion(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Heartbeat(ctx, "n1", "all", v); err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := h.svc.ActivateApplied(ctx, 0); err != nil {
		h.t.Fatal(err)
	}
}

// secret is one secret the flow created and where it may be shown.
type secret struct {
	kind, value string
	shownIn     []int // exchanges allowed to display it (its one-time display)
}

// TestSecretsNeverLeak runs a customer's life through the real server, from
// signup to credential resets, and then searches the whole log and every
// answer (bodies and headers) for every SIP password (generated and typed,
// from creation and resets), HA1 (computed from each username and password),
// JWT secret (generated and typed), softphone token, reset token, API token,
// portal password (right and wrong guesses) and session cookie. Each may
// appear only in the answers listed as its one-time display:
//   - SIP password: the answer to the POST that created the account
//     (portal POST /verify welcome page, portal POST /sip-accounts, API POST
//     /api/v1/sip-accounts);
//   - generated JWT secret: the answer to the PUT/POST that generated it;
//   - softphone token: the answer to POST …/softphone-token;
//   - API token: the answer to the POST that created it;
//   - reset token: the Edit Credentials pages opened with it and the dev
//     mailbox page of its email (the outbox, served only without SMTP);
//   - signup link token: the page its link opens (a hidden form field);
//   - session: the Set-Cookie of the answer that started it.
//
// Typed JWT secrets, portal passwords, passwords set through a reset link
// and HA1s have no display at all. The log may contain none of them.
func TestSecretsNeverLeak(t *testing.T) {
	h := startServer(t)
	var secrets []*secret
	add := func(kind, v string, shown ...*exchange) {
		if v == "" {
			t.Fatalf("empty %s", kind)
		}
		s := &secret{kind: kind, value: v}
		for _, x := range shown {
			s.shownIn = append(s.shownIn, x.n)
		}
		secrets = append(secrets, s)
	}
	type creds struct{ user, pass string }
	var sipCreds []creds

	// Portal: signup, phone verification (the first account's password).
	const portalPass = "Portal-Secret-Pass-7"
	h.must(h.do("POST", "/signup", "", url.Values{"email": {"s@acme.example"}, "phone": {"+447700900123"}, "password": {portalPass}, "password_confirm": {portalPass}}), 200)
	add("portal password", portalPass)
	signupTok := h.outbox("s@acme.example", `token=([A-Za-z0-9_-]+)`)
	add("signup link token", signupTok, h.must(h.do("GET", "/signup/confirm?token="+signupTok, "", nil), 200))
	h.must(h.do("POST", "/signup/confirm", "", url.Values{"token": {signupTok}}), 303)
	code := h.outbox("sms:+447700900123", `code is (\d{6})`)
	welcome := h.must(h.do("POST", "/verify", "", url.Values{"code": {code}}), 200)
	first := creds{welcome.find(t, `id="new-username">([^<]+)<`), welcome.find(t, `id="new-password">([^<]+)<`)}
	add("SIP password (first account)", first.pass, welcome)
	sipCreds = append(sipCreds, first)

	// Portal: an API token.
	tokPage := h.must(h.do("POST", "/api-tokens", "", url.Values{"name": {"ci"}}), 200)
	apiTok := tokPage.find(t, `id="new-token">([^<]+)<`)
	add("API token (portal)", apiTok, tokPage)

	// API: typed and generated SIP passwords, JWT secrets, softphone token, a second token.
	const typedPass = "Typed-Sip-Pass-4711"
	x := h.must(h.do("POST", "/api/v1/sip-accounts", apiTok, `{"name":"Typed","username":"typeduser1","password":"`+typedPass+`"}`), 201)
	typedID := int64(x.json(t)["id"].(float64))
	add("SIP password (typed, API)", typedPass, x)
	sipCreds = append(sipCreds, creds{"typeduser1", typedPass})
	x = h.must(h.do("POST", "/api/v1/sip-accounts", apiTok, `{"name":"Generated"}`), 201)
	gen := x.json(t)
	genID := int64(gen["id"].(float64))
	add("SIP password (generated, API)", gen["password"].(string), x)
	sipCreds = append(sipCreds, creds{gen["username"].(string), gen["password"].(string)})
	h.activate()
	x = h.must(h.do("PUT", fmt.Sprintf("/api/v1/sip-accounts/%d/jwt", genID), apiTok, `{"enabled":true}`), 200)
	add("JWT secret (generated, API)", x.json(t)["secret"].(string), x)
	soft := h.must(h.do("POST", fmt.Sprintf("/api/v1/sip-accounts/%d/softphone-token", genID), apiTok, nil), 200)
	add("softphone JWT (old secret)", soft.json(t)["token"].(string), soft)
	const typedJWT = "TypedJwtSecretAbcdefghijk0123456"
	h.must(h.do("PUT", fmt.Sprintf("/api/v1/sip-accounts/%d/jwt", genID), apiTok, `{"enabled":true,"secret":"`+typedJWT+`"}`), 200)
	add("JWT secret (typed)", typedJWT)
	soft = h.must(h.do("POST", fmt.Sprintf("/api/v1/sip-accounts/%d/softphone-token", genID), apiTok, nil), 200)
	add("softphone JWT", soft.json(t)["token"].(string), soft)
	x = h.must(h.do("POST", "/api/v1/tokens", apiTok, `{"name":"second"}`), 201)
	add("API token (API)", x.json(t)["token"].(string), x)

	// API: a credential reset, with a wrong portal password first.
	h.must(h.do("POST", fmt.Sprintf("/api/v1/sip-accounts/%d/credential-reset", typedID), apiTok, nil), 202)
	reset1 := h.outbox("s@acme.example", `token=([A-Za-z0-9]+)`)
	add("reset token (API)", reset1)
	const wrongPortal = "Wrong-Portal-Guess-99"
	add("portal password (wrong guess)", wrongPortal)
	h.must(h.do("POST", "/api/v1/credential-resets/"+reset1, "", `{"password":"Reset-Sip-Pass-0815","portal_password":"`+wrongPortal+`"}`), 401)
	h.must(h.do("POST", "/api/v1/credential-resets/"+reset1, "", `{"password":"Reset-Sip-Pass-0815","portal_password":"`+portalPass+`"}`), 200)
	add("SIP password (reset, API)", "Reset-Sip-Pass-0815")
	sipCreds = append(sipCreds, creds{"typeduser1", "Reset-Sip-Pass-0815"})

	// Portal: a generated password, a generated JWT secret, a reset by the link.
	created := h.must(h.do("POST", "/sip-accounts", "", url.Values{"name": {"Portal made"}, "auth_type": {"password"}}), 200)
	pm := creds{created.find(t, `id="new-username">([^<]+)<`), created.find(t, `id="new-password">([^<]+)<`)}
	add("SIP password (generated, portal)", pm.pass, created)
	sipCreds = append(sipCreds, pm)
	h.activate()
	var pmID int64
	as, _ := h.svc.SIPAccounts(context.Background(), 1)
	for _, a := range as {
		if a.Username == pm.user {
			pmID = a.ID
		}
	}
	x = h.must(h.do("POST", fmt.Sprintf("/sip-accounts/%d/jwt", pmID), "", url.Values{"enabled": {"on"}}), 200)
	add("JWT secret (generated, portal)", x.find(t, `id="jwt-new-secret">([^<]+)<`), x)
	h.must(h.do("POST", fmt.Sprintf("/sip-accounts/%d/reset", pmID), "", url.Values{}), 200)
	var reset2 string
	{
		var ms []*sipdesk.Mail
		h.st.View(context.Background(), func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(1); return err })
		reset2 = regexp.MustCompile(`token=([A-Za-z0-9]+)`).FindStringSubmatch(ms[0].Text)[1]
		page := h.must(h.do("GET", fmt.Sprintf("/dev/mail/%d", ms[0].ID), "", nil), 200)
		add("reset token (portal)", reset2, page,
			h.must(h.do("GET", "/sip-accounts/edit-credentials?token="+reset2, "", nil), 200),
			h.must(h.do("POST", "/sip-accounts/edit-credentials", "", url.Values{"token": {reset2}, "password": {"Short1a"}, "portal_password": {portalPass}}), 422))
	}
	h.must(h.do("POST", "/sip-accounts/edit-credentials", "", url.Values{"token": {reset2}, "password": {"Portal-Reset-Pass-42"}, "portal_password": {portalPass}}), 303)
	add("SIP password (reset, portal)", "Portal-Reset-Pass-42")
	sipCreds = append(sipCreds, creds{pm.user, "Portal-Reset-Pass-42"})

	// Reads of everything, on both surfaces.
	for _, p := range []string{"/sip-accounts", fmt.Sprintf("/sip-accounts/%d/edit?tab=jwt", genID), fmt.Sprintf("/sip-accounts/%d/edit?tab=jwt", pmID),
		"/api-tokens", "/audit", "/calls", "/calls/live", "/caller-id/rules", "/caller-id/numbers", "/tickets", "/dev/mail", "/healthz", "/metrics"} {
		h.must(h.do("GET", p, "", nil), 200)
	}
	for _, rt := range api.New(h.svc, nil).Routes() {
		if rt.Method == "GET" && !strings.Contains(rt.Pattern, "simulate") {
			h.do("GET", strings.Replace(rt.Pattern, "{id}", fmt.Sprint(genID), 1), apiTok, nil)
		}
	}

	// Log out, a wrong guess, log in again.
	h.must(h.do("POST", "/logout", "", url.Values{}), 303)
	h.must(h.do("POST", "/login", "", url.Values{"email": {"s@acme.example"}, "password": {"Wrong-Login-Guess-3"}}), 401)
	add("portal password (wrong login)", "Wrong-Login-Guess-3")
	h.must(h.do("POST", "/login", "", url.Values{"email": {"s@acme.example"}, "password": {portalPass}}), 303)
	h.must(h.do("GET", "/sip-accounts", "", nil), 200)

	// Sessions: every cookie value the server set.
	for _, x := range h.rec.ex {
		for _, ck := range (&http.Response{Header: x.header}).Cookies() {
			if ck.Name == "sipdesk_session" && ck.Value != "" {
				add("session cookie", ck.Value, x)
			}
		}
	}
	for _, c := range sipCreds {
		d := sipdesk.NewDigestHashes(c.user, "sipdesk.local", c.pass)
		add("HA1 MD5 of "+c.user, d.MD5)
		add("HA1 SHA-256 of "+c.user, d.SHA256)
		add("HA1 SHA-512-256 of "+c.user, d.SHA512256)
	}

	logs := h.log.String()
	if !strings.Contains(logs, "http listening") {
		t.Fatalf("the log was not captured:\n%s", logs)
	}
	kinds := map[string]bool{}
	for _, s := range secrets {
		kinds[strings.Fields(s.kind)[0]] = true
		if strings.Contains(logs, s.value) {
			t.Errorf("%s %q is in the log", s.kind, s.value)
		}
		for _, x := range h.rec.ex {
			allowed := false
			for _, n := range s.shownIn {
				allowed = allowed || n == x.n
			}
			text := x.body
			for k, vs := range x.header {
				for _, v := range vs {
					if !(allowed && k == "Set-Cookie") {
						text += "\n" + k + ": " + v
					}
				}
			}
			switch {
			case allowed && !strings.Contains(x.body, s.value) && s.kind != "session cookie":
				t.Errorf("%s is not in its one-time display %s %s (the search would miss it)", s.kind, x.method, x.path)
			case !allowed && strings.Contains(text, s.value):
				t.Errorf("%s %q is in the answer to %s %s (%d)", s.kind, s.value, x.method, x.path, x.status)
			}
		}
	}
	for _, k := range []string{"SIP", "HA1", "JWT", "softphone", "API", "reset", "portal", "session"} {
		if !kinds[k] {
			t.Errorf("no %s secret was created", k)
		}
	}
	t.Logf("%d secrets searched in %d answers and %d bytes of log", len(secrets), len(h.rec.ex), len(logs))
}

// versionRe matches what would name the software or its version.
var versionRe = regexp.MustCompile(`(?i)go1\.|go-http|golang|sipdesk/|\bdev\b|v\d+\.\d+`)

// TestNoVersionHeaders: no answer of the composed server, on any route of
// the API and the portal, the health, metrics and dev-mailbox routes, unknown
// paths, wrong methods and malformed requests, carries a Server or
// X-Powered-By header, or any header value naming the software or version.
func TestNoVersionHeaders(t *testing.T) {
	h := startServer(t)
	ctx := context.Background()
	c, first, err := h.svc.CreateVerifiedCustomer(ctx, "v@acme.example", "Portal-Secret-Pass-7", "+447700900124")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := h.svc.CreateAPIToken(ctx, c.ID, "t", app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	h.must(h.do("POST", "/login", "", url.Values{"email": {"v@acme.example"}, "password": {"Portal-Secret-Pass-7"}}), 303)
	id := fmt.Sprint(first.Account.ID)
	var paths [][2]string
	for _, rt := range api.New(h.svc, nil).Routes() {
		p := strings.NewReplacer("{id}", id, "{token}", "nope").Replace(rt.Pattern)
		paths = append(paths, [2]string{rt.Method, p}, [2]string{"DELETE", p})
	}
	for _, p := range []string{"/", "/login", "/signup", "/verify", "/sip-accounts", "/sip-accounts/new", "/sip-accounts/" + id + "/edit",
		"/sip-accounts/" + id + "/delete", "/sip-accounts/" + id + "/reset", "/sip-accounts/edit-credentials?token=x", "/softphone?account=" + id,
		"/caller-id/rules", "/caller-id/rules/new", "/caller-id/numbers", "/calls", "/calls/live", "/tickets", "/tickets/new", "/audit",
		"/api-tokens", "/static/app.css", "/static/app.js", "/static/", "/healthz", "/metrics", "/dev/mail", "/dev/mail/1", "/dev/mail/x",
		"/nope", "/api/v1/nope", "/../../etc/passwd", "/sip-accounts/999/edit"} {
		paths = append(paths, [2]string{"GET", p}, [2]string{"POST", p}, [2]string{"PUT", p})
	}
	n := 0
	check := func(what string, hdr http.Header) {
		t.Helper()
		n++
		for _, k := range []string{"Server", "X-Powered-By", "X-AspNet-Version", "Via"} {
			if v := hdr.Get(k); v != "" {
				t.Errorf("%s: %s: %s", what, k, v)
			}
		}
		for k, vs := range hdr {
			if k == "Set-Cookie" || k == "Content-Security-Policy" || k == "Location" || k == "Date" || k == "Last-Modified" || k == "Etag" {
				continue
			}
			for _, v := range vs {
				if versionRe.MatchString(v) {
					t.Errorf("%s: %s: %s names a version", what, k, v)
				}
			}
		}
	}
	for _, p := range paths {
		for _, bearer := range []string{tok, ""} {
			x := h.do(p[0], p[1], bearer, "{}")
			check(p[0]+" "+p[1], x.header)
		}
	}
	// Malformed requests answered by net/http itself.
	addr := strings.TrimPrefix(h.base, "http://")
	for _, raw := range []string{"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "GET /" + strings.Repeat("a", 100000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", 70<<10) + "\r\n\r\n"} {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte(raw))
		b, _ := io.ReadAll(io.LimitReader(conn, 1<<16))
		conn.Close()
		head, _, _ := strings.Cut(string(b), "\r\n\r\n")
		if head == "" {
			continue // closed without an answer
		}
		hdr := http.Header{}
		for _, l := range strings.Split(head, "\r\n")[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok {
				hdr.Add(k, strings.TrimSpace(v))
			}
		}
		check(fmt.Sprintf("raw %.20q", raw), hdr)
	}
	if n < 200 {
		t.Fatalf("only %d answers checked", n)
	}
	t.Logf("%d answers without a Server/X-Powered-By header or a version", n)
}
