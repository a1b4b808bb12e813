package api

// Hostile clients of the JSON API: fuzzed bodies through the real handlers
// on a real SQLite store, cross-site requests, and a customer probing another
// customer's ids on every route. Routes come from API.Routes(), so a new
// route is covered (or the test says what it needs) without editing here.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fuzzRoutes are the routes whose JSON bodies FuzzAPIBodies sends; {id} is
// the fuzz customer's own SIP account, {rule} its own rule.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/sip-accounts"},
	{"PATCH", "/api/v1/sip-accounts/{id}"},
	{"POST", "/api/v1/caller-id-rules"},
	{"PUT", "/api/v1/sip-accounts/{id}/caller-id"},
	{"POST", "/api/v1/tickets"},
	{"PATCH", "/api/v1/caller-id-rules/{rule}"},
	{"PUT", "/api/v1/sip-accounts/{id}/jwt"},
	{"POST", "/api/v1/caller-ids"},
	{"POST", "/api/v1/caller-ids/{number}/verify"},
}

// knownCodes are the error codes an answer may carry.
func knownCodes() map[string]bool {
	m := map[string]bool{"method_not_allowed": true}
	for _, r := range sipdesk.CodeTable() {
		if r.HTTP != 0 { // an API code, not one of the edge's SIP-only keys
			m[r.Code] = true
		}
	}
	return m
}

// checkEnvelope fails unless a 4xx answer is exactly the error envelope with
// a known code and a message, and a 2xx one is a JSON object (or empty 204).
func checkEnvelope(t *testing.T, what string, status int, hdr http.Header, body []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("%s: %d: %s", what, status, body)
	}
	if status == http.StatusNoContent {
		if len(body) != 0 {
			t.Fatalf("%s: 204 with a body", what)
		}
		return
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("%s: %d answer is not a JSON object: %v: %s", what, status, err, body)
	}
	if status < 400 {
		return
	}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || len(top) != 1 || !knownCodes()[env.Error.Code] || env.Error.Message == "" {
		t.Fatalf("%s: %d is not the error envelope (%v): %s", what, status, err, body)
	}
}

// FuzzAPIBodies sends any bytes as the JSON body of the write routes, as a
// paid customer with an API token, through API.ServeHTTP on a real SQLite
// store: never a 5xx, never an internal error logged, every 4xx the error
// envelope.
func FuzzAPIBodies(f *testing.F) {
	seeds := []string{
		`{"name":"Office","auth_type":"password"}`,
		`{"name":"Trunk","auth_type":"ip","allowed_ips":["8.8.8.8","2a00:1450::/32"],"tech_prefix":"1234","channel_cap":2}`,
		`{"name":"Fuzz","username":"fuzzuser01","password":"Good-Pass-1234"}`,
		`{"name":null,"status":"inactive","allowed_ips":null,"tech_prefix":null,"channel_cap":null}`,
		`{"auth_type":"ip","allowed_ips":["9.9.9.9"]}`,
		`{"status":"active","channel_cap":99999999999999999999}`,
		`{"name":"UK","apply_for":"prefix","prefix":"+44 20","type":"specific","numbers":["+15551230001"],"display_name":"Sales"}`,
		`{"name":"DE","apply_for":"country","country":"de","type":"blocked"}`,
		`{"apply_for":"all","type":"set_by_caller","numbers":null}`,
		`{"default_number":"+15551230001","display_name":"Me","rule_ids":[1,2,3,-1,9223372036854775807]}`,
		`{"kind":"channel_limit","wanted":50,"reason":"growth"}`,
		`{"kind":"sip_accounts","wanted":-1,"reason":""}`,
		`{"enabled":true}`, `{"enabled":true,"secret":"Abcdefghijklmnopqrstuvwxyz012345"}`, `{"enabled":false,"secret":""}`,
		`{"number":"+442030001111"}`, `{"code":"000000"}`,
		`{}`, `[]`, `null`, `""`, `{"name":"a"}{"name":"b"}`, `{"name":"\u0000"}`, `{"name":"\ud800"}`, "{\"name\":\"\xff\"}",
		`{"name":1e999}`, `{"channel_cap":1.5}`, `{"allowed_ips":[[]]}`, `{"numbers":{"a":1}}`, `{"rule_ids":"1"}`,
		`{"name":"x","name":"y"}`, `{"NAME":"x"}`, `{"__proto__":{}}`, strings.Repeat(`[`, 10000), `{"a":` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat(`}`, 601),
	}
	for i, s := range seeds {
		f.Add(uint8(i%len(fuzzRoutes)), []byte(s))
		f.Add(uint8((i+1)%len(fuzzRoutes)), []byte(s))
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: f.TempDir(), SecretKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	svc := app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://127.0.0.1", Log: log})
	a := New(svc, log)
	c, first, err := svc.CreateVerifiedCustomer(ctx, "fuzz@example.com", portalPassword, "+15551230001")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.TopUp(ctx, c.ID, 5000); err != nil {
		f.Fatal(err)
	}
	tok, err := svc.CreateAPIToken(ctx, c.ID, "fuzz", app.ActorOperator)
	if err != nil {
		f.Fatal(err)
	}
	rule := &sipdesk.CallerIDRule{Name: "All", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleBlocked}
	if err := svc.SaveRule(ctx, c.ID, rule, app.ActorOperator); err != nil {
		f.Fatal(err)
	}
	num, err := svc.AddCallerIDNumber(ctx, c.ID, "+442030009999")
	if err != nil {
		f.Fatal(err)
	}
	repl := strings.NewReplacer("{id}", fmt.Sprint(first.Account.ID), "{rule}", fmt.Sprint(rule.ID), "{number}", fmt.Sprint(num.ID))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := repl.Replace(rt.path)
		req := httptest.NewRequest(rt.method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		checkEnvelope(t, rt.method+" "+rt.path, rec.Code, rec.Header(), rec.Body.Bytes())
		if l := logs.String(); strings.Contains(l, "level=ERROR") {
			t.Fatalf("%s %s logged an error for %q:\n%s", rt.method, rt.path, body, l)
		}
	})
}

// unsafeMethod reports a state-changing method.
func unsafeMethod(m string) bool {
	return m != "GET" && m != "HEAD" && m != "OPTIONS"
}

// TestAPICrossSiteRequests: a cross-site page can only make the browser send
// ambient credentials (cookies), never an Authorization header without a
// CORS preflight. Every state-changing route answers such a request (a valid
// portal session cookie, Origin and Sec-Fetch-Site of another site, no
// bearer token) with 401 or, for the public reset route, a refusal, and
// changes nothing; no route answers a preflight with CORS permissions.
func TestAPICrossSiteRequests(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	e.topUp(c)
	rule := e.do("POST", "/api/v1/caller-id-rules", c.token, map[string]any{"name": "R", "apply_for": "all", "type": "blocked"}).must(t, 201).id()
	num := e.do("GET", "/api/v1/caller-ids", c.token, nil).must(t, 200).items()[0]["id"].(float64)
	tokID := e.do("GET", "/api/v1/tokens", c.token, nil).must(t, 200).items()[0]["id"].(float64)
	e.do("POST", idPath(sa, c.first, "/credential-reset"), c.token, nil).must(t, 202)
	reset := e.resetToken("a@example.com")
	session, err := e.svc.CreateSession(context.Background(), c.id)
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.NewReplacer("{token}", reset)
	idFor := map[string]int64{"/tokens/": int64(tokID), "/sip-accounts/": c.first, "/caller-id-rules/": rule, "/caller-ids/": int64(num)}
	n := 0
	for _, rt := range e.api.Routes() {
		if !unsafeMethod(rt.Method) {
			continue
		}
		path := ids.Replace(rt.Pattern)
		for pre, id := range idFor {
			if strings.Contains(path, pre+"{id}") {
				path = strings.Replace(path, "{id}", fmt.Sprint(id), 1)
			}
		}
		if strings.Contains(path, "{") {
			t.Fatalf("%s %s: no id to put in; teach this test the route", rt.Method, rt.Pattern)
		}
		body := `{"name":"Evil","enabled":true,"password":"Evil-Pass-12345","portal_password":"x","number":"+442030001111","kind":"channel_limit","wanted":50,"code":"123456","default_number":"+15551230001"}`
		for _, hdr := range [][2]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}} {
			before := e.snapshot()
			req := httptest.NewRequest(rt.Method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "text/plain") // a "simple" request: no preflight
			req.Header.Set(hdr[0], hdr[1])
			req.AddCookie(&http.Cookie{Name: "sipdesk_session", Value: session})
			req.AddCookie(&http.Cookie{Name: "__Host-sipdesk_session", Value: session})
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			public := strings.Contains(rt.Pattern, "{token}")
			switch {
			case !public && rec.Code != http.StatusUnauthorized:
				t.Errorf("%s %s cross-site with a session cookie: %d, want 401: %s", rt.Method, path, rec.Code, rec.Body)
			case public && rec.Code < 400:
				t.Errorf("%s %s cross-site: %d, want a refusal", rt.Method, path, rec.Code)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s %s answers with CORS permissions: %v", rt.Method, path, rec.Header())
			}
			if e.snapshot() != before {
				t.Errorf("%s %s cross-site changed the database", rt.Method, path)
			}
			n++
		}
		// The preflight a page needs before sending Authorization.
		req := httptest.NewRequest("OPTIONS", path, nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", rt.Method)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("OPTIONS %s grants %s: %v", path, k, rec.Header())
			}
		}
		if rec.Code < 400 {
			t.Errorf("OPTIONS %s: %d, want a refusal", path, rec.Code)
		}
	}
	if n < 2*15 {
		t.Fatalf("only %d cross-site requests: the route list shrank?", n/2)
	}
	t.Logf("%d state-changing routes refused cross-site (2 header variants each)", n/2)
}

// bResources are customer B's records whose ids A tries.
type bResources struct {
	account, ipAccount, rule, number, token int64
	markers                                 []string // strings only B's data contains
}

// TestAPITenantIsolation: customer A, with its own valid token, tries every
// route of API.Routes() on customer B's real ids (and B's account as a
// query filter): each {id} answer is 404 and byte-for-byte the answer for an
// id that does not exist, nothing changes in the database, and no list or
// read of A shows any of B's data.
func TestAPITenantIsolation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.customer("a@example.com", "+15551230001")
	b := e.customer("b@example.com", "+15551230002")
	e.topUp(a)
	e.topUp(b)
	var br bResources
	br.account = b.first
	e.do("PATCH", idPath(sa, b.first, ""), b.token, map[string]any{"name": "Bee-Secret-Account"}).must(t, 200)
	br.ipAccount = e.do("POST", sa, b.token, map[string]any{"name": "Bee-IP", "auth_type": "ip", "allowed_ips": []string{"8.8.4.4"}}).must(t, 201).id()
	br.rule = e.do("POST", "/api/v1/caller-id-rules", b.token, map[string]any{"name": "Bee-Rule", "apply_for": "prefix", "prefix": "4477", "type": "blocked"}).must(t, 201).id()
	br.number = e.do("POST", "/api/v1/caller-ids", b.token, map[string]any{"number": "+447700900777"}).must(t, 202).id()
	br.token = int64(e.do("GET", "/api/v1/tokens", b.token, nil).must(t, 200).items()[0]["id"].(float64))
	e.do("POST", "/api/v1/tickets", b.token, map[string]any{"kind": "channel_limit", "wanted": 77, "reason": "Bee-Ticket-Reason"}).must(t, 201)
	e.activate()
	e.do("PUT", idPath(sa, b.first, "/jwt"), b.token, map[string]any{"enabled": true}).must(t, 200)
	rec := &sipdesk.CallRecord{CallID: "bee-call-id-1", CustomerID: b.id, SIPAccountID: b.first, Direction: sipdesk.DirOutbound,
		From: "sip:bee@x", To: "sip:+447700900123@edge", CallerID: "+15551230002", Disposition: sipdesk.DispAnswered, SIPCode: 200, Node: "n1"}
	if err := e.svc.SaveCallRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "bee-live-call", CustomerID: b.id, SIPAccountID: b.first, Direction: sipdesk.DirOutbound, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	br.markers = []string{"Bee-Secret-Account", "Bee-IP", "8.8.4.4", "Bee-Rule", "4477", "+447700900777", "Bee-Ticket-Reason",
		"bee-call-id-1", "bee-live-call", "+15551230002", b.user, "b@example.com"}
	// A has its own records of every kind, so lists are not empty.
	e.do("POST", "/api/v1/caller-id-rules", a.token, map[string]any{"name": "A rule", "apply_for": "all", "type": "blocked"}).must(t, 201)
	e.do("POST", "/api/v1/tickets", a.token, map[string]any{"kind": "channel_limit", "wanted": 20, "reason": "more"}).must(t, 201)

	const missing = 987654321
	kinds := []struct {
		prefix string
		ids    []int64
	}{
		{"/api/v1/sip-accounts/{id}", []int64{br.account, br.ipAccount}},
		{"/api/v1/caller-id-rules/{id}", []int64{br.rule}},
		{"/api/v1/caller-ids/{id}", []int64{br.number}},
		{"/api/v1/tokens/{id}", []int64{br.token}},
	}
	// Bodies that are valid for A's own records, so that a handler which
	// validates before looking the record up would still reach the lookup.
	bodies := map[string]any{
		"PATCH /api/v1/sip-accounts/{id}":         map[string]any{"name": "Mine now"},
		"PUT /api/v1/sip-accounts/{id}/jwt":       map[string]any{"enabled": true},
		"PUT /api/v1/sip-accounts/{id}/caller-id": map[string]any{"default_number": a.phone},
		"PATCH /api/v1/caller-id-rules/{id}":      map[string]any{"name": "Mine now"},
		"POST /api/v1/caller-ids/{id}/verify":     map[string]any{"code": "123456"},
	}
	var idRoutes, listRoutes int
	for _, rt := range e.api.Routes() {
		key := rt.Method + " " + rt.Pattern
		switch {
		case strings.Contains(rt.Pattern, "{token}"):
			continue // a capability link, tested in TestAPIResetLinkIsNotAnotherCustomers
		case strings.Contains(rt.Pattern, "{id}"):
			var ids []int64
			for _, k := range kinds {
				if strings.HasPrefix(rt.Pattern, k.prefix) {
					ids = k.ids
				}
			}
			if ids == nil {
				t.Fatalf("%s: which of B's records does {id} name? add it to kinds", key)
			}
			for _, id := range ids {
				body := bodies[key]
				if body == nil && unsafeMethod(rt.Method) {
					body = map[string]any{}
				}
				before := e.snapshot()
				got := e.do(rt.Method, strings.Replace(rt.Pattern, "{id}", fmt.Sprint(id), 1), a.token, body)
				after := e.snapshot()
				want := e.do(rt.Method, strings.Replace(rt.Pattern, "{id}", fmt.Sprint(missing), 1), a.token, body)
				if got.status != http.StatusNotFound || got.raw != want.raw || got.status != want.status ||
					got.header.Get("Content-Type") != want.header.Get("Content-Type") {
					t.Errorf("%s with B's id %d: %d %q; for a missing id: %d %q", key, id, got.status, got.raw, want.status, want.raw)
				}
				if after != before {
					t.Errorf("%s with B's id %d changed the database", key, id)
				}
				for _, m := range br.markers {
					if strings.Contains(got.raw, m) {
						t.Errorf("%s with B's id %d shows %q", key, id, m)
					}
				}
			}
			idRoutes++
		case rt.Method == "GET":
			path := rt.Pattern
			switch path {
			case "/api/v1/caller-id/simulate":
				// B's SIP account as the query: the same 404 as a missing one.
				got := e.do("GET", path+"?to=%2B447700900123&sip_account="+fmt.Sprint(br.account), a.token, nil)
				want := e.do("GET", path+"?to=%2B447700900123&sip_account="+fmt.Sprint(missing), a.token, nil)
				if got.status != 404 || got.raw != want.raw {
					t.Errorf("simulate on B's account: %d %q, missing: %q", got.status, got.raw, want.raw)
				}
				path += "?to=%2B447700900123&sip_account=" + fmt.Sprint(a.first)
			case "/api/v1/calls":
				got := e.do("GET", path+"?sip_account="+fmt.Sprint(br.account), a.token, nil).must(t, 200)
				if len(got.items()) != 0 {
					t.Errorf("calls filtered by B's account: %s", got.raw)
				}
			}
			got := e.do("GET", path, a.token, nil)
			if got.status != 200 {
				t.Errorf("GET %s as A: %d %s", path, got.status, got.raw)
			}
			for _, m := range br.markers {
				if strings.Contains(got.raw, m) {
					t.Errorf("GET %s as A shows B's %q: %s", path, m, got.raw)
				}
			}
			listRoutes++
		}
	}
	// B's records are all still there, untouched.
	if r := e.do("GET", idPath(sa, br.account, ""), b.token, nil).must(t, 200); r.str("name") != "Bee-Secret-Account" {
		t.Fatalf("B's account changed: %s", r.raw)
	}
	if r := e.do("GET", "/api/v1/calls/active", b.token, nil).must(t, 200); len(r.items()) != 1 {
		t.Fatalf("B's live call: %s", r.raw)
	}
	if idRoutes < 14 || listRoutes < 11 {
		t.Fatalf("only %d {id} routes and %d reads: the route list shrank?", idRoutes, listRoutes)
	}
	t.Logf("%d {id} routes tried with B's ids (same 404 as a missing id), %d reads without B's data", idRoutes, listRoutes)
}

// TestAPIResetLinkIsNotAnotherCustomers: B's Edit Credentials link does not
// work with A's portal password, and its refusal does not reveal B's account.
func TestAPIResetLinkIsNotAnotherCustomers(t *testing.T) {
	e := newEnv(t)
	const aPassword = "Other-Portal-Pass-9"
	if _, _, err := e.svc.CreateVerifiedCustomer(context.Background(), "a@example.com", aPassword, "+15551230001"); err != nil {
		t.Fatal(err)
	}
	b := e.customer("b@example.com", "+15551230002")
	e.do("POST", idPath(sa, b.first, "/credential-reset"), b.token, nil).must(t, 202)
	tok := e.resetToken("b@example.com")
	before := e.snapshot()
	r := e.do("POST", "/api/v1/credential-resets/"+tok, "", map[string]any{"password": "Taken-Over-12345", "portal_password": aPassword})
	if r.status != 401 || r.errField() != "portal_password" || strings.Contains(r.raw, b.user) {
		t.Fatalf("B's link with A's portal password: %d %s", r.status, r.raw)
	}
	if e.snapshot() != before {
		t.Fatal("a refused reset changed the database")
	}
}
