package ops_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
	"github.com/sipdesk/sipdesk/internal/web/ops"
)

type env struct {
	t    *testing.T
	ctx  context.Context
	svc  *app.Service
	st   *store.DB
	srv  *httptest.Server
	now  time.Time
	cust *sipdesk.Customer
	tk   *sipdesk.Ticket
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: ctx, now: time.Now(), st: st}
	e.svc = app.New(st, app.Options{Now: func() time.Time { return e.now }, HashSlots: 2})
	mux := http.NewServeMux()
	ops.New(e.svc, ops.Options{}).Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	if e.cust, _, err = e.svc.CreateVerifiedCustomer(ctx, "cust@example.com", "Portal-Pass-123", "+15551230001"); err != nil {
		t.Fatal(err)
	}
	if e.cust, err = e.svc.TopUp(ctx, e.cust.ID, 1000); err != nil {
		t.Fatal(err)
	}
	if e.tk, err = e.svc.OpenTicket(ctx, e.cust.ID, sipdesk.TicketChannelLimit, 25, "growing"); err != nil {
		t.Fatal(err)
	}
	return e
}

// operator creates an operator and returns its email and TOTP secret.
func (e *env) operator(role sipdesk.OperatorRole) (*sipdesk.Operator, string) {
	n, err := e.svc.OpsCreateOperator(e.ctx, app.ShellOperator, string(role)+"@ops.example.com", "Operator-Pass-123", role)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Operator, n.TOTPSecret
}

func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) post(c *http.Client, path string, form url.Values) (int, string) {
	e.t.Helper()
	res, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *env) get(c *http.Client, path string) (int, string) {
	e.t.Helper()
	res, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// signIn signs in with the password and the code of the current step.
func (e *env) signIn(role sipdesk.OperatorRole) *http.Client {
	e.t.Helper()
	op, secret := e.operator(role)
	code, _ := app.TOTPCode(secret, e.now)
	c := e.browser()
	if st, body := e.post(c, "/ops/login", url.Values{"email": {op.Email}, "password": {"Operator-Pass-123"}, "code": {code}}); st != http.StatusSeeOther {
		e.t.Fatalf("sign in as %s: %d %s", role, st, body)
	}
	return c
}

func TestConsoleLoginNeedsTOTP(t *testing.T) {
	e := newEnv(t)
	op, secret := e.operator(sipdesk.RoleSupport)
	c := e.browser()
	if st, _ := e.get(c, "/ops/"); st != http.StatusSeeOther {
		t.Fatalf("dashboard before sign-in: %d", st)
	}
	st, body := e.post(c, "/ops/login", url.Values{"email": {op.Email}, "password": {"Operator-Pass-123"}})
	if st != http.StatusUnauthorized || !strings.Contains(body, "Wrong email, password or code") {
		t.Fatalf("no code: %d", st)
	}
	code, _ := app.TOTPCode(secret, e.now)
	res, err := c.PostForm(e.srv.URL+"/ops/login", url.Values{"email": {op.Email}, "password": {"Operator-Pass-123"}, "code": {code}})
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %v %v", res, err)
	}
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "sipdesk_ops" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v", sess)
	}
	res.Body.Close()
	res, _ = c.Get(e.srv.URL + "/ops/")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "Nodes") {
		t.Fatalf("dashboard: %d", res.StatusCode)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(h) != want {
			t.Errorf("%s = %q", h, res.Header.Get(h))
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q", res.Header.Get("Content-Security-Policy"))
	}
	// The same code again, in another browser: refused (one use).
	if st, _ := e.post(e.browser(), "/ops/login", url.Values{"email": {op.Email}, "password": {"Operator-Pass-123"}, "code": {code}}); st != http.StatusUnauthorized {
		t.Fatalf("replayed code: %d", st)
	}
	// A cross-site form post is refused before anything runs.
	req, _ := http.NewRequest("POST", e.srv.URL+"/ops/tickets/1/approve", strings.NewReader(""))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, _ = c.Do(req)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", res.StatusCode)
	}
}

func TestConsoleRoles(t *testing.T) {
	e := newEnv(t)
	ro, sup, adm := e.signIn(sipdesk.RoleReadonly), e.signIn(sipdesk.RoleSupport), e.signIn(sipdesk.RoleAdmin)
	cpath := "/ops/customers/" + itoa(e.cust.ID)

	// readonly: sees, no buttons, and a forged POST gets 403 changing nothing.
	st, body := e.get(ro, cpath)
	if st != 200 || !strings.Contains(body, "cust@example.com") || strings.Contains(body, "Record top-up") {
		t.Fatalf("readonly customer page: %d", st)
	}
	if _, body := e.get(ro, "/ops/tickets"); strings.Contains(body, ">Approve<") {
		t.Fatal("readonly sees Approve")
	}
	for path, form := range map[string]url.Values{
		cpath + "/topup":                             {"amount": {"50"}},
		cpath + "/channel-limit":                     {"channel_limit": {"99"}},
		"/ops/tickets/" + itoa(e.tk.ID) + "/approve": {},
	} {
		if st, body := e.post(ro, path, form); st != http.StatusForbidden || !strings.Contains(body, "readonly") {
			t.Fatalf("readonly POST %s: %d", path, st)
		}
	}
	// support: may not top up, answers the ticket.
	if st, _ := e.post(sup, cpath+"/topup", url.Values{"amount": {"50"}}); st != http.StatusForbidden {
		t.Fatalf("support top-up: %d", st)
	}
	c, _ := e.svc.Customer(e.ctx, e.cust.ID)
	if c.ChannelLimit != 10 || c.TopUpTotalCents != 1000 {
		t.Fatalf("refused posts changed the customer: %+v", c)
	}
	if st, _ := e.post(sup, "/ops/tickets/"+itoa(e.tk.ID)+"/approve", url.Values{"message": {"Enjoy"}}); st != http.StatusSeeOther {
		t.Fatalf("support approves: %d", st)
	}
	// admin: records a top-up.
	if st, _ := e.post(adm, cpath+"/topup", url.Values{"amount": {"49.90"}}); st != http.StatusSeeOther {
		t.Fatalf("admin top-up: %d", st)
	}
	c, _ = e.svc.Customer(e.ctx, e.cust.ID)
	if c.ChannelLimit != 25 || c.TopUpTotalCents != 5990 {
		t.Fatalf("after support and admin: %+v", c)
	}
	if _, body := e.get(adm, cpath); !strings.Contains(body, "admin@ops.example.com") || !strings.Contains(body, "10 → 25") {
		t.Fatal("the customer page's audit log does not show the operators' actions")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (e *env) api(token, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+ops.APIPrefix+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestOperatorAPI(t *testing.T) {
	e := newEnv(t)
	tok := func(role sipdesk.OperatorRole) string {
		op, _ := e.operator(role)
		s, err := e.svc.OpsCreateOperatorToken(e.ctx, app.ShellOperator, op.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ro, sup, adm := tok(sipdesk.RoleReadonly), tok(sipdesk.RoleSupport), tok(sipdesk.RoleAdmin)
	id := itoa(e.cust.ID)

	if st, m := e.api("", "GET", "/customers", ""); st != 401 || m["error"].(map[string]any)["code"] != "unauthorized" {
		t.Fatalf("no token: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/customers?q=cust@", ""); st != 200 || len(m["items"].([]any)) != 1 || m["next"] != nil {
		t.Fatalf("search: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/customers/"+id, ""); st != 200 || m["customer"].(map[string]any)["email"] != "cust@example.com" {
		t.Fatalf("customer: %d %v", st, m)
	}
	if st, m := e.api(ro, "POST", "/customers/"+id+"/topups", `{"amount": 50}`); st != 403 || m["error"].(map[string]any)["code"] != "forbidden" {
		t.Fatalf("readonly top-up: %d %v", st, m)
	}
	if st, _ := e.api(ro, "PUT", "/customers/"+id+"/channel-limit", `{"channel_limit": 99}`); st != 403 {
		t.Fatalf("readonly channel limit: %d", st)
	}
	if st, m := e.api(ro, "GET", "/tickets?status=open", ""); st != 200 || len(m["items"].([]any)) != 1 {
		t.Fatalf("tickets: %d %v", st, m)
	}
	if st, _ := e.api(ro, "POST", "/tickets/"+itoa(e.tk.ID)+"/approve", ""); st != 403 {
		t.Fatalf("readonly approve: %d", st)
	}
	if st, m := e.api(sup, "POST", "/tickets/"+itoa(e.tk.ID)+"/decline", `{"message": "Not now"}`); st != 200 || m["status"] != "declined" || m["message"] != "Not now" {
		t.Fatalf("support declines: %d %v", st, m)
	}
	if st, m := e.api(adm, "POST", "/customers/"+id+"/topups", `{"amount": 50}`); st != 201 || m["top_up_total"] != "60.00" {
		t.Fatalf("admin top-up: %d %v", st, m)
	}
	if st, m := e.api(adm, "PUT", "/customers/"+id+"/channel-limit", `{"channel_limit": 30}`); st != 200 || m["channel_limit"] != float64(30) {
		t.Fatalf("admin channel limit: %d %v", st, m)
	}
	if st, m := e.api(adm, "PUT", "/customers/"+id+"/channel-limit", `{"channel_limit": -1}`); st != 422 || m["error"].(map[string]any)["field"] != "channel_limit" {
		t.Fatalf("bad channel limit: %d %v", st, m)
	}
	if st, m := e.api(adm, "POST", "/customers/"+id+"/topups", `{"amount": 50, "x": 1}`); st != 400 {
		t.Fatalf("unknown field: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/calls/active", ""); st != 200 || m["items"] == nil {
		t.Fatalf("active calls: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/nodes", ""); st != 200 || m["items"] == nil {
		t.Fatalf("nodes: %d %v", st, m)
	}
	if st, _ := e.api(ro, "GET", "/nope", ""); st != 404 {
		t.Fatalf("unknown route: %d", st)
	}
}
