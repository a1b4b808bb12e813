// Package ops is the operator console under /ops/ and the operator API
// under /api/ops/v1: the provider's staff sign in with a password and a
// TOTP code, and every action goes through the service's operator use
// cases (app.Service.Ops…), which check the operator's role. The console
// shares the portal's stylesheet.
package ops

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/web/ui"
)

// Options configure the console.
type Options struct {
	Log    *slog.Logger
	Secure bool // served over TLS: cookies get Secure and the __Host- prefix
}

// Console is the operator console and API.
type Console struct {
	svc   *app.Service
	opt   Options
	log   *slog.Logger
	pages map[string]*template.Template
	csrf  *http.CrossOriginProtection
}

//go:embed templates
var templatesFS embed.FS

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"may": func(op *sipdesk.Operator, power string) bool {
		switch power {
		case "admin":
			return op.Role.May(sipdesk.PowerAdmin)
		case "support":
			return op.Role.May(sipdesk.PowerSupport)
		}
		return true
	},
	"regs": func(m map[int64][]*sipdesk.Registration, id int64) []*sipdesk.Registration { return m[id] },
}

// New builds the console; it panics if the embedded templates do not parse.
func New(svc *app.Service, o Options) *Console {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{svc: svc, opt: o, log: o.Log, pages: map[string]*template.Template{}}
	for _, p := range []string{"login", "dashboard", "customers", "customer", "tickets", "approvals", "message", "calls"} {
		c.pages[p] = template.Must(template.New("").Funcs(funcs).ParseFS(templatesFS, "templates/layout.html", "templates/"+p+".html"))
	}
	c.csrf = http.NewCrossOriginProtection()
	c.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cross-origin request refused: reload the page and try again.", http.StatusForbidden)
	}))
	return c
}

// Register adds the console's and the operator API's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle("GET /ops/static/", http.StripPrefix("/ops", ui.Static()))
	c.public(mux, "GET /ops/login", c.loginForm)
	c.public(mux, "POST /ops/login", c.loginSubmit)
	c.public(mux, "POST /ops/logout", c.logout)
	c.auth(mux, "GET /ops/{$}", c.dashboard)
	c.auth(mux, "GET /ops/customers", c.customers)
	c.auth(mux, "GET /ops/customers/{id}", c.customer)
	c.auth(mux, "POST /ops/customers/{id}/topup", c.topUp)
	c.auth(mux, "POST /ops/customers/{id}/channel-limit", c.channelLimit)
	c.auth(mux, "GET /ops/tickets", c.tickets)
	c.auth(mux, "POST /ops/tickets/{id}/approve", c.decide(true))
	c.auth(mux, "POST /ops/tickets/{id}/decline", c.decide(false))
	c.auth(mux, "GET /ops/approvals", c.approvals)
	c.auth(mux, "POST /ops/sip-accounts/{id}/approve", c.approve)
	c.registerDIDs(mux)
	c.auth(mux, "GET /ops/calls", c.liveCalls)
	c.auth(mux, "POST /ops/calls/hangup", c.hangUp)
	c.registerSuspend(mux)
	c.registerBans(mux)
	mux.Handle(APIPrefix+"/", newAPI(c.svc, c.log))
}

// request is what a console handler knows about the caller.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	nonce string
	token string
	op    *sipdesk.Operator // nil when logged out
	flash string
}

func (q *request) ctx() context.Context { return q.r.Context() }

type handler func(q *request) error

func (c *Console) public(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, c.wrap(h, false))
}

// auth serves a page for signed-in operators; others go to the login.
func (c *Console) auth(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, c.wrap(h, true))
}

// wrap adds what every console answer gets: CSRF protection (plus
// SameSite=Strict cookies), strict headers with no script at all, the
// session, the flash, a bounded body.
func (c *Console) wrap(h handler, needOp bool) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !app.Source(r.Context()).IsValid() { // not behind web.New (tests): the connection's address
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				r = r.WithContext(app.WithSource(r.Context(), ap.Addr()))
			}
		}
		q := &request{w: w, r: r, nonce: ui.NewNonce()}
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Robots-Tag", "noindex, nofollow")
		if err := c.loadSession(q); err != nil {
			c.fail(q, err)
			return
		}
		if needOp && q.op == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ops/login", http.StatusSeeOther)
			} else {
				c.fail(q, sipdesk.Errorf(sipdesk.EUnauthorized, "log in first"))
			}
			return
		}
		q.flash = c.takeFlash(q)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := h(q); err != nil {
			c.fail(q, err)
		}
	})
	return c.csrf.Handler(inner)
}

// Cookies: the session (SameSite=Strict, HttpOnly, Secure and __Host-
// over TLS) and a one-shot flash.
const (
	sessionCookie = "sipdesk_ops"
	flashCookie   = "sipdesk_ops_flash"
)

func (c *Console) cookieName(base string) string {
	if c.opt.Secure {
		return "__Host-" + base
	}
	return base
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.opt.Secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) loadSession(q *request) error {
	ck, err := q.r.Cookie(c.cookieName(sessionCookie))
	if err != nil || ck.Value == "" || len(ck.Value) > 200 {
		return nil //nolint:nilerr // no session cookie: logged out
	}
	op, err := c.svc.OperatorSession(q.ctx(), ck.Value)
	switch sipdesk.ErrorCode(err) {
	case "":
		q.token, q.op = ck.Value, op
		return nil
	case sipdesk.EUnauthorized:
		c.setCookie(q.w, sessionCookie, "", -1)
		return nil
	}
	return err
}

func (c *Console) setFlash(q *request, msg string) {
	c.setCookie(q.w, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(msg)), 60)
}

func (c *Console) takeFlash(q *request) string {
	ck, err := q.r.Cookie(c.cookieName(flashCookie))
	if err != nil || ck.Value == "" || len(ck.Value) > 400 {
		return ""
	}
	c.setCookie(q.w, flashCookie, "", -1)
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return ""
	}
	return string(b)
}

// page is what every template gets.
type page struct {
	Title, Nav, Flash, Nonce string
	Op                       *sipdesk.Operator
	Data                     any
}

func (c *Console) render(q *request, status int, name, title, nav string, data any) {
	var buf bytes.Buffer
	p := &page{Title: title, Nav: nav, Flash: q.flash, Nonce: q.nonce, Op: q.op, Data: data}
	if err := c.pages[name].ExecuteTemplate(&buf, "page", p); err != nil {
		c.log.Error("console template failed", "page", name, "err", err)
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}

// fail answers an error no handler dealt with: the code table's status
// (403 for a role that may not act) and its message.
func (c *Console) fail(q *request, err error) {
	status := sipdesk.HTTPStatus(sipdesk.ErrorCode(err))
	msg := sipdesk.ErrorMessage(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, msg = http.StatusRequestEntityTooLarge, "The form was too large."
	}
	switch status {
	case http.StatusNotFound:
		msg = "We could not find that page or item."
	case http.StatusInternalServerError:
		c.log.Error("console request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
		msg = "Something went wrong on our side."
	}
	c.render(q, status, "message", http.StatusText(status), "", map[string]string{"Heading": http.StatusText(status), "Text": msg})
}

// redirect answers a POST with 303 to a console page, with a flash.
func (c *Console) redirect(q *request, to, flash string) error {
	if flash != "" {
		c.setFlash(q, flash)
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

func pathID(q *request) (int64, error) { return ui.PathID(q.r) }

func (c *Console) loginForm(q *request) error {
	if q.op != nil {
		return c.redirect(q, "/ops/", "")
	}
	c.render(q, http.StatusOK, "login", "Operator sign-in", "", map[string]string{})
	return nil
}

// loginSubmit checks password and TOTP code (the service counts the
// attempt first, with the portal's limits) and starts a new session.
func (c *Console) loginSubmit(q *request) error {
	email := strings.TrimSpace(q.r.PostFormValue("email"))
	op, tok, err := c.svc.OperatorLogin(q.ctx(), email, q.r.PostFormValue("password"), q.r.PostFormValue("code"))
	status, msg := http.StatusUnauthorized, "Wrong email, password or code."
	switch sipdesk.ErrorCode(err) {
	case "":
		if q.token != "" {
			_ = c.svc.DeleteOperatorSession(q.ctx(), q.token)
		}
		c.setCookie(q.w, sessionCookie, tok, 0)
		c.log.Info("operator signed in", "operator", op.ID, "role", op.Role)
		return c.redirect(q, "/ops/", "")
	case sipdesk.EUnauthorized:
	case sipdesk.ERateLimited:
		status, msg = http.StatusTooManyRequests, sipdesk.ErrorMessage(err)
	case sipdesk.EUnavailable:
		status, msg = http.StatusServiceUnavailable, "Too many sign-ins at this moment. Try again in a few seconds."
		q.w.Header().Set("Retry-After", "5")
	default:
		return err
	}
	c.render(q, status, "login", "Operator sign-in", "", map[string]string{"Error": msg, "Email": email})
	return nil
}

func (c *Console) logout(q *request) error {
	if q.token != "" {
		if err := c.svc.DeleteOperatorSession(q.ctx(), q.token); err != nil {
			return err
		}
	}
	c.setCookie(q.w, sessionCookie, "", -1)
	return c.redirect(q, "/ops/login", "You are signed out.")
}

func (c *Console) dashboard(q *request) error {
	d, err := c.svc.OpsDashboard(q.ctx(), q.op)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "dashboard", "Dashboard", "dashboard", d)
	return nil
}

func (c *Console) customers(q *request) error {
	query := q.r.URL.Query().Get("q")
	cs, err := c.svc.OpsSearchCustomers(q.ctx(), q.op, query)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "customers", "Customers", "customers", map[string]any{"Q": query, "Customers": cs})
	return nil
}

func (c *Console) customer(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	v, err := c.svc.OpsCustomer(q.ctx(), q.op, id)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "customer", v.Customer.Email, "customers", v)
	return nil
}

func (c *Console) topUp(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	cents, err := app.ParseAmount(q.r.PostFormValue("amount"))
	if err != nil {
		return err
	}
	if _, err := c.svc.OpsTopUp(q.ctx(), q.op, id, cents); err != nil {
		return err
	}
	return c.redirect(q, "/ops/customers/"+strconv.FormatInt(id, 10), "Top-up recorded.")
}

func (c *Console) channelLimit(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(q.r.PostFormValue("channel_limit")))
	if err != nil {
		return sipdesk.FieldError("channel_limit", "must be a whole number")
	}
	if _, err := c.svc.OpsSetChannelLimit(q.ctx(), q.op, id, n); err != nil {
		return err
	}
	return c.redirect(q, "/ops/customers/"+strconv.FormatInt(id, 10), "Channel limit set to "+strconv.Itoa(n)+".")
}

func (c *Console) tickets(q *request) error {
	status := sipdesk.TicketStatus(q.r.URL.Query().Get("status"))
	if status == "" {
		status = sipdesk.TicketOpen
	}
	if status == "all" {
		status = ""
	}
	ts, err := c.svc.OpsTickets(q.ctx(), q.op, status)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "tickets", "Tickets", "tickets", map[string]any{"Status": string(status), "Tickets": ts})
	return nil
}

func (c *Console) decide(approve bool) handler {
	return func(q *request) error {
		id, err := pathID(q)
		if err != nil {
			return err
		}
		t, err := c.svc.OpsDecideTicket(q.ctx(), q.op, id, approve, q.r.PostFormValue("message"))
		if err != nil {
			return err
		}
		return c.redirect(q, "/ops/tickets", "Ticket "+strconv.FormatInt(t.ID, 10)+" "+string(t.Status)+".")
	}
}

func (c *Console) approvals(q *request) error {
	as, err := c.svc.OpsHeldAccounts(q.ctx(), q.op)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "approvals", "In Process approvals", "approvals", as)
	return nil
}

func (c *Console) approve(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if _, err := c.svc.OpsApproveSIPAccount(q.ctx(), q.op, id); err != nil {
		return err
	}
	return c.redirect(q, "/ops/approvals", "SIP account "+strconv.FormatInt(id, 10)+" approved.")
}

func (c *Console) liveCalls(q *request) error {
	calls, total, err := c.svc.OpsLiveCalls(q.ctx(), q.op)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "calls", "Live calls", "calls", map[string]any{"Calls": calls, "Total": total})
	return nil
}

// hangUp ends a live call through the node holding it and says how it went.
func (c *Console) hangUp(q *request) error {
	id := q.r.PostFormValue("call_id")
	r, err := c.svc.OpsHangUp(q.ctx(), q.op, id)
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		return c.redirect(q, "/ops/calls", "That call is not live any more.")
	}
	if err != nil {
		return err
	}
	msg := "Call hung up on node " + r.Node + ": BYE sent to the caller and the carrier."
	switch r.State {
	case sipdesk.EdgeDone:
	case sipdesk.EdgeFailed:
		msg = "Not hung up: " + r.Result + "."
	case sipdesk.EdgeExpired:
		msg = "Not hung up: node " + r.Node + " did not answer (" + r.Result + ")."
	default:
		msg = "Hang-up sent to node " + r.Node + "; it has not answered yet. Reload to see whether the call ended."
	}
	return c.redirect(q, "/ops/calls", msg)
}
