package ui

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCrossOriginPostsRefused: every state-changing route refuses a
// cross-site browser request and changes nothing.
func TestCrossOriginPostsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.customer("x@acme.example", "+447700900051")
	id := itoa64(c.first.Account.ID)
	for _, path := range []string{"/sip-accounts", "/sip-accounts/" + id, "/sip-accounts/" + id + "/delete", "/sip-accounts/" + id + "/reveal",
		"/sip-accounts/" + id + "/reset", "/sip-accounts/" + id + "/jwt", "/sip-accounts/" + id + "/caller-id", "/sip-accounts/edit-credentials",
		"/caller-id/rules", "/caller-id/numbers", "/tickets", "/api-tokens", "/logout", "/login", "/signup", "/verify"} {
		for _, hdr := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
			req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader("name=Evil&auth_type=password"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(hdr[0], hdr[1])
			if p := c.b.do(req); p.status != http.StatusForbidden {
				t.Errorf("POST %s with %s: %d, want 403", path, hdr[0], p.status)
			}
		}
	}
	if as := e.accounts(c.id); len(as) != 1 || as[0].Name != "Main" {
		t.Fatalf("cross-site posts changed the accounts: %+v", as)
	}
	es, _ := e.svc.Audit(context.Background(), c.id, 50)
	for _, en := range es {
		if strings.Contains(en.Action, "revealed") || strings.Contains(en.Action, "reset") {
			t.Fatalf("cross-site post audited: %+v", en)
		}
	}
	c.b.get("/sip-accounts").must(t, 200, "Main") // still logged in
}

// TestLoginRateLimit: five wrong passwords lock the email for a while,
// even for the right password.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	e.customer("l@acme.example", "+447700900061")
	b := e.browser()
	for i := range 5 {
		b.post("/login", url.Values{"email": {"l@acme.example"}, "password": {"Wrong-password-" + strconv.Itoa(i)}}).must(t, 401, "Wrong email or password.")
	}
	b.post("/login", url.Values{"email": {"l@acme.example"}, "password": {portalPassword}}).must(t, 429, "Too many failed attempts")
	// Unknown emails look the same as wrong passwords.
	e.browser().post("/login", url.Values{"email": {"nobody@acme.example"}, "password": {portalPassword}}).must(t, 401, "Wrong email or password.")
}

// TestHeadersAndCookies: CSP with a per-response nonce that the script tag
// carries, no inline handlers or styles; the session cookie HttpOnly,
// SameSite=Lax, and Secure with the __Host- prefix under TLS.
func TestHeadersAndCookies(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p1 := b.get("/login").must(t, 200)
	p2 := b.get("/login").must(t, 200)
	nonceRe := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`)
	m1, m2 := nonceRe.FindStringSubmatch(p1.header.Get("Content-Security-Policy")), nonceRe.FindStringSubmatch(p2.header.Get("Content-Security-Policy"))
	if m1 == nil || m2 == nil || m1[1] == m2[1] {
		t.Fatalf("CSP nonces: %q %q", p1.header.Get("Content-Security-Policy"), p2.header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(p1.body, `<script nonce="`+m1[1]+`" src="/static/app.js`) {
		t.Fatal("script tag without the CSP nonce")
	}
	for _, h := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self'"} {
		if !strings.Contains(p1.header.Get("Content-Security-Policy"), h) {
			t.Errorf("CSP lacks %s", h)
		}
	}
	if p1.header.Get("X-Frame-Options") != "DENY" || p1.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", p1.header)
	}
	for _, page := range []string{"/login", "/signup"} {
		body := b.get(page).body
		if regexp.MustCompile(`\son[a-z]+=|style="`).MatchString(body) {
			t.Errorf("%s has inline handlers or styles (blocked by the CSP)", page)
		}
	}
	e.customer("h@acme.example", "+447700900071")
	req, _ := http.NewRequest("POST", e.srv.URL+"/login", strings.NewReader(url.Values{"email": {"h@acme.example"}, "password": {portalPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := b.do(req)
	ck := res.header.Get("Set-Cookie")
	if !strings.Contains(ck, "sipdesk_session=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") || strings.Contains(ck, "Secure") {
		t.Fatalf("session cookie: %s", ck)
	}

	// Under TLS.
	u := New(e.svc, Options{Secure: true, Log: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	u.Register(mux)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "https://portal.test/login", strings.NewReader(url.Values{"email": {"h@acme.example"}, "password": {portalPassword}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mux.ServeHTTP(rec, r)
	ck = rec.Header().Get("Set-Cookie")
	if !strings.HasPrefix(ck, "__Host-sipdesk_session=") || !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Fatalf("TLS session cookie: %q (%d)", ck, rec.Code)
	}
	// Static files are served with a long cache when versioned.
	s := b.get("/static/app.css?v=" + assetVersion)
	if s.status != 200 || !strings.Contains(s.header.Get("Cache-Control"), "immutable") || !strings.Contains(s.header.Get("Content-Type"), "text/css") {
		t.Fatalf("static: %d %v", s.status, s.header)
	}
	if b.get("/static/").status != 404 {
		t.Fatal("static directory listing")
	}
}

// TestSessionEndsOnLogout: the old cookie value is worthless afterwards.
func TestSessionEndsOnLogout(t *testing.T) {
	e := newEnv(t)
	c := e.customer("s@acme.example", "+447700900081")
	u, _ := url.Parse(e.srv.URL)
	var tok string
	for _, ck := range c.b.c.Jar.Cookies(u) {
		if ck.Name == "sipdesk_session" {
			tok = ck.Value
		}
	}
	c.b.post("/logout", nil).must(t, 200, "You are logged out.")
	o := e.browser()
	o.c.Jar.SetCookies(u, []*http.Cookie{{Name: "sipdesk_session", Value: tok}})
	if p := o.get("/sip-accounts"); p.status != 303 {
		t.Fatalf("old session still works: %d", p.status)
	}
}
