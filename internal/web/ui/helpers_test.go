package ui

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

const portalPassword = "Portal-Password-1"

// env is a portal on a real SQLite store, served by httptest.
type env struct {
	t   *testing.T
	svc *app.Service
	st  sipdesk.Store
	srv *httptest.Server
	ui  *UI

	mu  sync.Mutex
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, now: time.Now()}
	e.svc = app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://portal.test", Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }})
	e.ui = New(e.svc, Options{DevMailbox: true, SoftphoneWS: "ws://127.0.0.1:5066"})
	mux := http.NewServeMux()
	e.ui.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post submits a form; a 303 answer is followed with a GET, as browsers do.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	p := b.do(req)
	if p.status == http.StatusSeeOther {
		return b.get(p.location)
	}
	return p
}

func (p page) must(t *testing.T, status int, wants ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.status, status, p.body)
	}
	text := html.UnescapeString(p.body)
	for _, w := range wants {
		if !strings.Contains(p.body, w) && !strings.Contains(text, w) {
			t.Fatalf("page lacks %q; body:\n%s", w, p.body)
		}
	}
	return p
}

func (p page) mustNot(t *testing.T, unwanted ...string) {
	t.Helper()
	text := html.UnescapeString(p.body)
	for _, w := range unwanted {
		if strings.Contains(p.body, w) || strings.Contains(text, w) {
			t.Fatalf("page has %q; body:\n%s", w, p.body)
		}
	}
}

// errorNextTo asserts the message is shown right after the field's input,
// before the next field starts.
func (p page) errorNextTo(t *testing.T, field, msg string) {
	t.Helper()
	body := html.UnescapeString(p.body)
	i := strings.LastIndex(body, `name="`+field+`"`)
	if i < 0 {
		t.Fatalf("no input %q on the page:\n%s", field, p.body)
	}
	rest := body[i:]
	j := strings.Index(rest, msg)
	if j < 0 {
		t.Fatalf("no error %q after the %q input:\n%s", msg, field, p.body)
	}
	if k := strings.Index(rest[1:], `class="field`); k >= 0 && k+1 < j && !strings.HasPrefix(rest[k+1:], `class="field-error`) {
		t.Fatalf("error %q is not next to %q (another field comes first)", msg, field)
	}
	if !strings.Contains(rest[:j], `field-error`) && !strings.Contains(rest[:j+len(msg)+200], `field-error`) {
		t.Fatalf("error %q is not in a field-error element", msg)
	}
}

// customer is a verified customer logged in on its own browser.
type customer struct {
	id    int64
	email string
	first *app.NewSIPAccount
	b     *browser
}

func (e *env) customer(email, phone string) *customer {
	e.t.Helper()
	c, first, err := e.svc.CreateVerifiedCustomer(context.Background(), email, portalPassword, phone)
	if err != nil {
		e.t.Fatalf("create customer: %v", err)
	}
	cu := &customer{id: c.ID, email: email, first: first, b: e.browser()}
	cu.b.post("/login", url.Values{"email": {email}, "password": {portalPassword}}).must(e.t, 200, "SIP Accounts")
	return cu
}

func (e *env) topUp(c *customer) {
	e.t.Helper()
	if _, err := e.svc.TopUp(context.Background(), c.id, 5000); err != nil {
		e.t.Fatalf("topup: %v", err)
	}
}

// activate plays an edge node that applied the current config.
func (e *env) activate() {
	e.t.Helper()
	ctx := context.Background()
	v, err := e.st.ConfigVersion(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Heartbeat(ctx, "test-node", "all", v); err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.svc.ActivateApplied(ctx, 0); err != nil {
		e.t.Fatal(err)
	}
}

// lastMail returns the newest message of the outbox to an address.
func (e *env) lastMail(to string) *sipdesk.Mail {
	e.t.Helper()
	var ms []*sipdesk.Mail
	if err := e.st.View(context.Background(), func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(100); return err }); err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if m.To == to {
			return m
		}
	}
	e.t.Fatalf("no mail to %s", to)
	return nil
}

var (
	codeRe  = regexp.MustCompile(`code is (\d{6})`)
	tokenRe = regexp.MustCompile(`/sip-accounts/edit-credentials\?token=([A-Za-z0-9%_-]+)`)
)

func (e *env) resetToken(to string) string {
	e.t.Helper()
	m := tokenRe.FindStringSubmatch(e.lastMail(to).Text)
	if m == nil {
		e.t.Fatalf("no Edit Credentials link in the mail")
	}
	tok, _ := url.QueryUnescape(m[1])
	return tok
}

func (e *env) accounts(customerID int64) []*sipdesk.SIPAccount {
	e.t.Helper()
	as, err := e.svc.SIPAccounts(context.Background(), customerID)
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

func itoa64(n int64) string { return strconv.Itoa(int(n)) }

// signup signs up in browser b through the email link and answers the page
// the link's button leads to (the phone verification).
func (e *env) signup(b *browser, email, phone string) page {
	e.t.Helper()
	b.post("/signup", url.Values{"email": {email}, "password": {portalPassword}, "password_confirm": {portalPassword}, "phone": {phone}}).
		must(e.t, 200, "Check your email")
	m := signupLinkRe.FindStringSubmatch(e.lastMail(strings.ToLower(strings.TrimSpace(email))).Text)
	if m == nil {
		e.t.Fatal("no signup link in the mail")
	}
	tok, _ := url.QueryUnescape(m[1])
	b.get("/signup/confirm?token="+url.QueryEscape(tok)).must(e.t, 200, "Finish your signup")
	return b.post("/signup/confirm", url.Values{"token": {tok}})
}

var signupLinkRe = regexp.MustCompile(`/signup/confirm\?token=([A-Za-z0-9%_-]+)`)
