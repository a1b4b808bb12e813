package ui

// Hostile visitors of the portal: cross-site forms on every state-changing
// route, another customer's ids on every {id} route, session fixation,
// reused and expired reset links, and password guessing. The routes are
// read from the package's source (every "METHOD /path" literal passed to a
// registration call) and checked against the real mux, so a new route is
// covered without editing this file.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

// newHostileEnv is newEnv with the data folder kept, so that tests can dump
// every row of the SQLite file.
func newHostileEnv(t *testing.T) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), store.Options{DataDir: dir, SecretKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, now: time.Now()}
	e.svc = app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://portal.test", Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }})
	e.ui = New(e.svc, Options{DevMailbox: true})
	mux := http.NewServeMux()
	e.ui.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e, filepath.Join(dir, store.SQLiteFile)
}

// dumpDB returns every row of every table of the SQLite file, read through
// a separate read-only connection. api_tokens.last_used_at is left out
// (authentication touches it at most once a minute).
func dumpDB(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tb := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tb + `" ORDER BY rowid`)
		if err != nil {
			rs, err = db.Query(`SELECT * FROM "` + tb + `"`)
		}
		if err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:", tb)
			for i, c := range cols {
				if tb == "api_tokens" && c == "last_used_at" {
					continue
				}
				fmt.Fprintf(&b, " %s=%v", c, vals[i])
			}
			b.WriteByte('\n')
		}
		rs.Close()
	}
	return b.String()
}

var routeLit = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE) /`)

// portalRoutes returns every route pattern of the portal. It reads the
// package's non-test sources for "METHOD /path" literals given to a call,
// fails on a registration whose pattern is not a literal (it could escape),
// and checks that the real mux serves each pattern.
func portalRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		helpers := map[ast.Node]bool{} // the registration helpers pass their own parameter on
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && slices.Contains([]string{"auth", "public", "unverified"}, fd.Name.Name) {
				helpers[fd] = true
			}
		}
		var stack []ast.Node
		ast.Inspect(af, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			isReg := ok && slices.Contains([]string{"Handle", "HandleFunc", "auth", "public", "unverified"}, sel.Sel.Name)
			found := false
			for _, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					if routeLit.MatchString(s) {
						routes = append(routes, s)
						found = true
					}
				}
			}
			if isReg && !found && len(call.Args) >= 2 && !slices.ContainsFunc(stack, func(n ast.Node) bool { return helpers[n] }) {
				t.Fatalf("%s: a route registered without a literal pattern escapes this test", fset.Position(call.Pos()))
			}
			return true
		})
	}
	mux := http.NewServeMux()
	New(nil, Options{}).Register(mux)
	for _, p := range routes {
		method, path, _ := strings.Cut(p, " ")
		path = strings.ReplaceAll(strings.ReplaceAll(path, "{id}", "1"), "{$}", "")
		_, got := mux.Handler(httptest.NewRequest(method, path, nil))
		if got != p {
			t.Fatalf("route %q read from the source is served by %q", p, got)
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d routes found", len(routes))
	}
	return routes
}

// stripNonce removes the per-response CSP nonce, the only part of a page
// that differs between two identical requests.
var nonceRe = regexp.MustCompile(`nonce(=|-)"?[A-Za-z0-9_-]{16,}`)

func stripNonce(s string) string { return nonceRe.ReplaceAllString(s, "nonce") }

// sameOrigin is a form post from the portal's own page.
func (b *browser) form(method, path string, form url.Values, hdr ...string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest(method, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(hdr) == 0 {
		hdr = []string{"Origin", b.e.srv.URL, "Sec-Fetch-Site", "same-origin"}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// TestPortalCrossSiteEveryRoute: every state-changing route of the portal,
// posted cross-site by a logged-in customer's browser with a form that
// would succeed same-site, is refused with 403 and no row of any table
// changes.
func TestPortalCrossSiteEveryRoute(t *testing.T) {
	e, dbPath := newHostileEnv(t)
	c := e.customer("x@acme.example", "+447700900051")
	e.topUp(c)
	e.activate()
	ctx := context.Background()
	rule := &sipdesk.CallerIDRule{Name: "R", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleBlocked}
	if err := e.svc.SaveRule(ctx, c.id, rule, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	num, err := e.svc.AddCallerIDNumber(ctx, c.id, "+447700900052")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAPIToken(ctx, c.id, "t", app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	toks, _ := e.svc.APITokens(ctx, c.id)
	if err := e.svc.SendCredentialReset(ctx, c.id, c.first.Account.ID, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	reset := e.resetToken(c.email)
	sess, _ := e.svc.Sessions(ctx, c.id)
	pk := e.passkey(c.id)
	ids := map[string]int64{"/sip-accounts/": c.first.Account.ID, "/caller-id/rules/": rule.ID, "/caller-id/numbers/": num.ID, "/api-tokens/": toks[0].ID,
		"/account/sessions/": sess[0].ID, "/account/passkeys/": pk.ID}
	// A form that succeeds same-site on most routes.
	form := url.Values{"name": {"Evil"}, "auth_type": {"password"}, "email": {c.email}, "password": {portalPassword},
		"password_confirm": {portalPassword}, "phone": {"+447700900059"}, "token": {reset}, "username": {"evilname1"},
		"portal_password": {portalPassword}, "number": {"+447700900058"}, "code": {"123456"}, "kind": {"channel_limit"},
		"wanted": {"50"}, "reason": {"x"}, "apply_for": {"all"}, "type": {"blocked"}, "enabled": {"on"},
		"default_number": {"+447700900051"}, "display_name": {"Evil"}}
	n := 0
	for _, r := range portalRoutes(t) {
		method, path, _ := strings.Cut(r, " ")
		if method == "GET" || method == "HEAD" {
			continue
		}
		for pre, id := range ids {
			if strings.HasPrefix(path, pre+"{id}") {
				path = strings.Replace(path, "{id}", fmt.Sprint(id), 1)
			}
		}
		if strings.Contains(path, "{") {
			t.Fatalf("%s: no id for it; teach this test the route", r)
		}
		for _, hdr := range [][]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, {"Origin", "null"}} {
			before := dumpDB(t, dbPath)
			p := c.b.form(method, path, form, hdr...)
			if p.status != http.StatusForbidden {
				t.Errorf("%s %s with %v: %d, want 403", method, path, hdr, p.status)
			}
			if dumpDB(t, dbPath) != before {
				t.Errorf("%s %s with %v changed the database", method, path, hdr)
			}
		}
		n++
	}
	// The same form same-site does change things: the dump sees it.
	before := dumpDB(t, dbPath)
	c.b.form("POST", "/caller-id/rules", form)
	if dumpDB(t, dbPath) == before {
		t.Fatal("the dump misses a same-site change")
	}
	if n < 20 {
		t.Fatalf("only %d state-changing routes", n)
	}
	t.Logf("%d state-changing portal routes refused cross-site (4 header variants each)", n)
}

// TestPortalTenantIsolation: customer A's logged-in browser asks every {id}
// route (GET and POST, same-site, with a form that would succeed on A's own
// record) for customer B's records: the answer is 404 and, apart from the
// CSP nonce, byte-for-byte the answer for an id that does not exist; no row
// changes; A's pages never show B's data.
func TestPortalTenantIsolation(t *testing.T) {
	e, dbPath := newHostileEnv(t)
	ctx := context.Background()
	a := e.customer("a@acme.example", "+447700900061")
	b := e.customer("b@acme.example", "+447700900062")
	e.topUp(a)
	e.topUp(b)
	name := "Bee-Secret-Account"
	if _, err := e.svc.UpdateSIPAccount(ctx, b.id, b.first.Account.ID, app.SIPAccountPatch{Name: &name}, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	ipAcct, err := e.svc.CreateSIPAccount(ctx, b.id, app.SIPAccountInput{Name: "Bee-IP", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"8.8.4.4"}}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	e.activate()
	rule := &sipdesk.CallerIDRule{Name: "Bee-Rule", ApplyFor: sipdesk.ScopePrefix, Prefix: "4477", Type: sipdesk.RuleBlocked}
	if err := e.svc.SaveRule(ctx, b.id, rule, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	num, err := e.svc.AddCallerIDNumber(ctx, b.id, "+447700900777")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAPIToken(ctx, b.id, "Bee-Token", app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	toks, _ := e.svc.APITokens(ctx, b.id)
	bSess, _ := e.svc.Sessions(ctx, b.id)
	if _, err := e.svc.OpenTicket(ctx, b.id, sipdesk.TicketChannelLimit, 77, "Bee-Ticket-Reason"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SaveCallRecord(ctx, &sipdesk.CallRecord{CallID: "bee-call-id-1", CustomerID: b.id, SIPAccountID: b.first.Account.ID,
		Direction: sipdesk.DirOutbound, From: "sip:bee@x", To: "sip:+447700900123@edge", CallerID: "+447700900062",
		Disposition: sipdesk.DispAnswered, SIPCode: 200, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "bee-live-call", CustomerID: b.id, SIPAccountID: b.first.Account.ID,
		Direction: sipdesk.DirOutbound, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	markers := []string{name, "Bee-IP", "8.8.4.4", "Bee-Rule", "+447700900777", "Bee-Token", "Bee-Ticket-Reason", "bee-call-id-1",
		"bee-live-call", "+447700900123", "+447700900062", b.first.Account.Username, b.email, "Bee-Passkey"}
	kinds := map[string][]int64{
		"/sip-accounts/{id}":       {b.first.Account.ID, ipAcct.Account.ID},
		"/caller-id/rules/{id}":    {rule.ID},
		"/caller-id/numbers/{id}":  {num.ID},
		"/api-tokens/{id}":         {toks[0].ID},
		"/account/sessions/{id}":   {bSess[0].ID},
		"/account/passkeys/{id}":   {e.passkey(b.id).ID},
		"/softphone?account={id}":  {b.first.Account.ID}, // the id in the query
		"/sip-accounts/{id}/edit?": {b.first.Account.ID},
	}
	form := url.Values{"name": {"Mine now"}, "auth_type": {"password"}, "active": {"on"}, "enabled": {"on"}, "code": {"123456"},
		"default_number": {"+447700900061"}, "apply_for": {"all"}, "type": {"blocked"}, "channel_cap": {"0"}}
	const missing = 987654321
	a.b.get("/sip-accounts") // take any flash
	check := func(method, pattern string, ids []int64) {
		for _, id := range ids {
			before := dumpDB(t, dbPath)
			got := a.b.form(method, strings.Replace(pattern, "{id}", fmt.Sprint(id), 1), form)
			after := dumpDB(t, dbPath)
			want := a.b.form(method, strings.Replace(pattern, "{id}", fmt.Sprint(missing), 1), form)
			if got.status != http.StatusNotFound || got.status != want.status || stripNonce(got.body) != stripNonce(want.body) {
				t.Errorf("%s %s with B's id %d: %d; missing id: %d\n%s", method, pattern, id, got.status, want.status, got.body)
			}
			if after != before {
				t.Errorf("%s %s with B's id %d changed the database", method, pattern, id)
			}
			for _, m := range markers {
				if strings.Contains(got.body, m) {
					t.Errorf("%s %s with B's id shows %q", method, pattern, m)
				}
			}
		}
	}
	var idRoutes, pages int
	for _, r := range portalRoutes(t) {
		method, path, _ := strings.Cut(r, " ")
		switch {
		case strings.Contains(path, "{id}"):
			var ids []int64
			for pre, v := range kinds {
				if strings.HasPrefix(path, pre) {
					ids = v
				}
			}
			if ids == nil {
				t.Fatalf("%s: which of B's records does {id} name? add it to kinds", r)
			}
			check(method, path, ids)
			idRoutes++
		case method == "GET" && !strings.HasPrefix(path, "/static/"):
			p := a.b.get(strings.ReplaceAll(path, "{$}", ""))
			for _, m := range markers {
				if strings.Contains(p.body, m) {
					t.Errorf("GET %s as A shows B's %q", path, m)
				}
			}
			pages++
		}
	}
	check("GET", "/softphone?account={id}", kinds["/softphone?account={id}"])
	check("GET", "/sip-accounts/{id}/edit?tab=callerid&to=%2B447700900123", kinds["/sip-accounts/{id}/edit?"])
	// B's own records are intact.
	if as := e.accounts(b.id); len(as) != 2 || as[0].Name != name {
		t.Fatalf("B's accounts: %+v", as)
	}
	if idRoutes < 15 || pages < 10 {
		t.Fatalf("only %d {id} routes and %d pages", idRoutes, pages)
	}
	t.Logf("%d {id} routes (+2 query ids) tried with B's ids: the same 404 as a missing id; %d pages without B's data", idRoutes, pages)
}

func sessionCookie(b *browser) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == "sipdesk_session" {
			return ck.Value
		}
	}
	return ""
}

// TestSessionFixation: a session cookie planted before login, whether a
// value the attacker made up or the attacker's own live session, is not the
// session after login; the planted one does not open the victim's account.
func TestSessionFixation(t *testing.T) {
	e, _ := newHostileEnv(t)
	ctx := context.Background()
	if _, _, err := e.svc.CreateVerifiedCustomer(ctx, "victim@acme.example", portalPassword, "+447700900071"); err != nil {
		t.Fatal(err)
	}
	attacker := e.customer("mallory@acme.example", "+447700900072")
	u, _ := url.Parse(e.srv.URL)
	for _, planted := range []string{"attacker-chosen-session-value-0123456789", sessionCookie(attacker.b)} {
		v := e.browser()
		v.c.Jar.SetCookies(u, []*http.Cookie{{Name: "sipdesk_session", Value: planted, Path: "/"}})
		v.get("/login")
		p := v.form("POST", "/login", url.Values{"email": {"victim@acme.example"}, "password": {portalPassword}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("login: %d", p.status)
		}
		after := sessionCookie(v)
		if after == "" || after == planted {
			t.Fatalf("session after login %q, planted %q", after, planted)
		}
		v.get("/sip-accounts").must(t, 200, "SIP Accounts")
		// The planted value does not open the victim's pages.
		m := e.browser()
		m.c.Jar.SetCookies(u, []*http.Cookie{{Name: "sipdesk_session", Value: planted, Path: "/"}})
		if p := m.get("/api-tokens"); p.status == 200 && strings.Contains(p.body, "victim@acme.example") {
			t.Fatalf("the planted session %q is logged in as the victim", planted)
		}
	}
	// A logged-in customer who logs in again (as someone else) gets a new
	// session and the old one ends.
	old := sessionCookie(attacker.b)
	attacker.b.form("POST", "/login", url.Values{"email": {"victim@acme.example"}, "password": {portalPassword}})
	if now := sessionCookie(attacker.b); now == old {
		t.Fatal("re-login kept the session")
	}
	if _, err := e.svc.SessionCustomer(ctx, old); err == nil {
		t.Fatal("the session before re-login still works")
	}
}

// TestResetLinkReuseAndExpiry: an Edit Credentials link works once, through
// either surface (portal, API), until 30 minutes and not after; a newer
// link does not revive a used one, and the refusals change nothing.
func TestResetLinkReuseAndExpiry(t *testing.T) {
	e, dbPath := newHostileEnv(t)
	ctx := context.Background()
	c := e.customer("r@acme.example", "+447700900081")
	id := c.first.Account.ID
	send := func() string {
		t.Helper()
		if err := e.svc.SendCredentialReset(ctx, c.id, id, app.ActorOperator); err != nil {
			t.Fatal(err)
		}
		return e.resetToken(c.email)
	}
	post := func(b *browser, tok, user, pass string) page {
		return b.form("POST", "/sip-accounts/edit-credentials", url.Values{"token": {tok}, "username": {user}, "password": {pass}, "portal_password": {portalPassword}})
	}
	tok := send()
	if p := post(c.b, tok, "newuser01", "New-Sip-Pass-99"); p.status != http.StatusSeeOther {
		t.Fatalf("first use: %d %s", p.status, p.body)
	}
	before := dumpDB(t, dbPath)
	// Reuse: from the same browser, from a logged-out one, through the service (the API's path).
	post(c.b, tok, "newuser02", "New-Sip-Pass-98").must(t, 410, "already used")
	post(e.browser(), tok, "newuser02", "New-Sip-Pass-98").must(t, 410, "already used")
	if _, err := e.svc.CompleteCredentialReset(ctx, tok, "newuser02", "New-Sip-Pass-98", app.Reauth{Password: portalPassword}); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatalf("reuse through the service: %v", err)
	}
	if dumpDB(t, dbPath) != before {
		t.Fatal("reusing a link changed the database")
	}
	send() // a newer link does not revive the used one
	post(e.browser(), tok, "newuser02", "New-Sip-Pass-98").must(t, 410, "already used")
	if a := e.accounts(c.id)[0]; a.Username != "newuser01" {
		t.Fatalf("reuse changed the account: %s", a.Username)
	}

	// Expiry: valid at 29 min 59 s, refused at 30 min 01 s.
	tok = send()
	e.advance(30*time.Minute - time.Second)
	e.browser().get("/sip-accounts/edit-credentials?token="+url.QueryEscape(tok)).must(t, 200, "Edit Credentials")
	e.advance(2 * time.Second)
	before = dumpDB(t, dbPath)
	e.browser().get("/sip-accounts/edit-credentials?token="+url.QueryEscape(tok)).must(t, 410, "expired")
	post(e.browser(), tok, "newuser03", "New-Sip-Pass-97").must(t, 410, "expired")
	if dumpDB(t, dbPath) != before {
		t.Fatal("an expired link changed the database")
	}
	// Unknown and mangled tokens.
	for _, bad := range []string{"", "x", tok + "x", strings.ToUpper(tok), tok[:len(tok)-1], "%00", strings.Repeat("A", 5000)} {
		if p := post(e.browser(), bad, "newuser04", "New-Sip-Pass-96"); p.status != 404 && p.status != 410 {
			t.Errorf("token %.20q: %d", bad, p.status)
		}
	}
	if dumpDB(t, dbPath) != before {
		t.Fatal("bad tokens changed the database")
	}
}

// TestLoginGuessing: 5 failures lock an email for 15 minutes whatever its
// case or spacing, even for the right password and from another address;
// 20 failures lock a client address for every email; the locks lift after
// the window; a locked answer says nothing about the password.
func TestLoginGuessing(t *testing.T) {
	e, _ := newHostileEnv(t)
	ctx := context.Background()
	for m, phone := range map[string]string{"v@acme.example": "+447700900101", "w@acme.example": "+447700900102"} {
		if _, _, err := e.svc.CreateVerifiedCustomer(ctx, m, portalPassword, phone); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	e.ui.Register(mux)
	login := func(ip, email, pass string) int {
		r := httptest.NewRequest("POST", "http://portal.test/login", strings.NewReader(url.Values{"email": {email}, "password": {pass}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	for i, variant := range []string{"v@acme.example", "V@ACME.example", " v@acme.example ", "v@Acme.Example", "v@acme.example"} {
		if code := login("203.0.113.1", variant, "Wrong-Guess-"+fmt.Sprint(i)); code != 401 {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := login("203.0.113.1", "v@acme.example", portalPassword); code != 429 {
		t.Fatalf("right password after 5 guesses: %d, want 429", code)
	}
	if code := login("198.51.100.7", "v@acme.example", portalPassword); code != 429 {
		t.Fatalf("right password from another address after 5 guesses: %d, want 429", code)
	}
	if code := login("198.51.100.7", "v@acme.example", "Wrong-Guess-x"); code != 429 {
		t.Fatalf("a locked wrong guess: %d, want the same 429", code)
	}
	if code := login("203.0.113.1", "w@acme.example", portalPassword); code != 303 {
		t.Fatalf("another email from the address: %d", code)
	}
	// One address spraying many emails.
	for i := range 20 {
		if code := login("192.0.2.9", fmt.Sprintf("spray%d@acme.example", i), "Wrong-Guess-1"); code != 401 {
			t.Fatalf("spray %d: %d", i, code)
		}
	}
	if code := login("192.0.2.9", "w@acme.example", portalPassword); code != 429 {
		t.Fatalf("after 20 failures from one address: %d, want 429", code)
	}
	e.advance(15*time.Minute + time.Second)
	if code := login("192.0.2.9", "w@acme.example", portalPassword); code != 303 {
		t.Fatalf("after the window (address): %d", code)
	}
	if code := login("203.0.113.1", "v@acme.example", portalPassword); code != 303 {
		t.Fatalf("after the window (email): %d", code)
	}
}

// TestPortalPasswordReauthLimit: the portal password that confirms an Edit
// Credentials link allows 5 wrong guesses per customer in 15 minutes, across
// links and surfaces; then even the right one is refused until the window
// passes, and nothing changes meanwhile.
func TestPortalPasswordReauthLimit(t *testing.T) {
	e, dbPath := newHostileEnv(t)
	ctx := context.Background()
	c := e.customer("p@acme.example", "+447700900091")
	id := c.first.Account.ID
	send := func() string {
		if err := e.svc.SendCredentialReset(ctx, c.id, id, app.ActorOperator); err != nil {
			t.Fatal(err)
		}
		return e.resetToken(c.email)
	}
	tok := send()
	post := func(tok, portal string) page {
		return e.browser().form("POST", "/sip-accounts/edit-credentials", url.Values{"token": {tok}, "password": {"New-Sip-Pass-99"}, "portal_password": {portal}})
	}
	for i := range 5 {
		post(tok, "Wrong-Portal-"+fmt.Sprint(i)).must(t, 422, "the portal password is not right")
	}
	post(tok, portalPassword).must(t, 429, "too many wrong passwords")
	tok2 := send() // a new link does not reset the count
	before := dumpDB(t, dbPath)
	post(tok2, portalPassword).must(t, 429, "too many wrong passwords")
	if _, err := e.svc.CompleteCredentialReset(ctx, tok2, "", "New-Sip-Pass-99", app.Reauth{Password: portalPassword}); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("through the service (the API's path): %v", err)
	}
	if dumpDB(t, dbPath) != before {
		t.Fatal("refused attempts changed the database")
	}
	if a := e.accounts(c.id)[0]; a.Username != c.first.Account.Username {
		t.Fatal("credentials changed while locked")
	}
	// Another customer is not affected.
	o := e.customer("o@acme.example", "+447700900092")
	if err := e.svc.SendCredentialReset(ctx, o.id, o.first.Account.ID, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	post(e.resetToken(o.email), portalPassword).must(t, 200, "Credentials saved")
	e.advance(15*time.Minute + time.Second)
	post(tok2, portalPassword).must(t, 200, "Credentials saved")
}

// passkey stores a passkey for the customer (its key is not usable: the
// tests that use one go through a software authenticator).
func (e *env) passkey(customerID int64) *sipdesk.Passkey {
	e.t.Helper()
	p := &sipdesk.Passkey{CustomerID: customerID, CredentialID: []byte("cred-" + fmt.Sprint(customerID)), PublicKey: []byte{1}, Name: "Bee-Passkey"}
	if err := e.st.Update(context.Background(), func(tx sipdesk.Tx) error { return tx.InsertPasskey(p) }); err != nil {
		e.t.Fatal(err)
	}
	return p
}
