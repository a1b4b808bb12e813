// Package ui is the customer portal: server-rendered pages over the app
// service (every rule lives there), one file per action as miniflux does,
// html/template files embedded and parsed at start, one small data-* driven
// JS file and our own CSS. Forms work without JS (POST, then a redirect or the
// page re-rendered with the errors next to the fields); JS only enhances.
package ui

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// Options configure the portal.
type Options struct {
	Log        *slog.Logger
	Secure     bool // served over TLS: cookies get Secure (and the __Host- prefix)
	DevMailbox bool // /dev/mail exists: point the customer to it for codes and emails
	// SoftphoneWS is the edge's SIP over WebSocket URL for the browser
	// softphone ("" when the edge has none).
	SoftphoneWS string
}

// UI is the customer portal.
type UI struct {
	svc  *app.Service
	opt  Options
	log  *slog.Logger
	tmpl *templates
	sess sessions
	csrf *http.CrossOriginProtection
}

// New builds the portal; it panics if the embedded templates do not parse
// (a build error, caught by the tests).
func New(svc *app.Service, o Options) *UI {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	u := &UI{svc: svc, opt: o, log: o.Log, tmpl: mustParseTemplates()}
	u.sess = svc
	u.csrf = http.NewCrossOriginProtection()
	u.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cross-origin request refused: reload the page and try again.", http.StatusForbidden)
	}))
	return u
}

// Register adds the portal's routes to mux.
func (u *UI) Register(mux *http.ServeMux) {
	mux.Handle("GET /static/", u.static())
	u.public(mux, "GET /{$}", u.home)

	// Signup, phone verification, login.
	u.public(mux, "GET /signup", u.signupForm)
	u.public(mux, "POST /signup", u.signupSubmit)
	u.public(mux, "GET /signup/confirm", u.signupConfirmForm)
	u.public(mux, "POST /signup/confirm", u.signupConfirm)
	u.public(mux, "GET /login", u.loginForm)
	u.public(mux, "POST /login", u.loginSubmit)
	u.public(mux, "POST /logout", u.logout)
	u.public(mux, "GET /login/2fa", u.twoFactorForm)
	u.public(mux, "POST /login/2fa", u.twoFactorSubmit)
	u.public(mux, "POST /login/passkey/begin", u.loginPasskeyBegin)
	u.public(mux, "POST /login/passkey", u.loginPasskey)
	u.public(mux, "GET /password/forgot", u.forgotForm)
	u.public(mux, "POST /password/forgot", u.forgotSubmit)
	u.public(mux, "GET /password/reset", u.resetForm)
	u.public(mux, "POST /password/reset", u.resetSubmit)
	u.unverified(mux, "GET /verify", u.verifyForm)
	u.unverified(mux, "POST /verify", u.verifySubmit)
	u.unverified(mux, "POST /verify/resend", u.verifyResend)
	u.unverified(mux, "POST /verify/call", u.verifyCall)

	// VoIP Services › SIP Accounts.
	u.auth(mux, "GET /sip-accounts", u.sipAccounts)
	u.auth(mux, "GET /sip-accounts/new", u.sipAccountNew)
	u.auth(mux, "POST /sip-accounts", u.sipAccountCreate)
	u.auth(mux, "POST /sip-accounts/{id}/reveal", u.sipAccountReveal)
	u.auth(mux, "GET /sip-accounts/{id}/connection", u.sipAccountConnection)
	u.auth(mux, "GET /sip-accounts/{id}/edit", u.sipAccountEdit)
	u.auth(mux, "POST /sip-accounts/{id}", u.sipAccountSave)
	u.auth(mux, "POST /sip-accounts/{id}/jwt", u.sipAccountJWT)
	u.auth(mux, "POST /sip-accounts/{id}/caller-id", u.sipAccountCallerID)
	u.auth(mux, "GET /sip-accounts/{id}/delete", u.sipAccountDeleteConfirm)
	u.auth(mux, "POST /sip-accounts/{id}/delete", u.sipAccountDelete)
	u.auth(mux, "GET /sip-accounts/{id}/reset", u.sipAccountResetDialog)
	u.auth(mux, "POST /sip-accounts/{id}/reset", u.sipAccountResetSend)
	// The email's Edit Credentials link: the token and the portal password
	// authenticate it, so it also works in a browser that is not logged in.
	u.public(mux, "GET /sip-accounts/edit-credentials", u.editCredentialsForm)
	u.public(mux, "POST /sip-accounts/edit-credentials", u.editCredentialsSubmit)
	u.public(mux, "POST /sip-accounts/edit-credentials/passkey", u.credentialsPasskeyBegin)
	u.auth(mux, "GET /softphone", u.softphone)

	// Caller ID.
	u.auth(mux, "GET /caller-id/rules", u.rules)
	u.auth(mux, "GET /caller-id/rules/new", u.ruleNew)
	u.auth(mux, "POST /caller-id/rules", u.ruleCreate)
	u.auth(mux, "GET /caller-id/rules/{id}/edit", u.ruleEdit)
	u.auth(mux, "POST /caller-id/rules/{id}", u.ruleUpdate)
	u.auth(mux, "POST /caller-id/rules/{id}/delete", u.ruleDelete)
	u.auth(mux, "GET /caller-id/numbers", u.numbers)
	u.auth(mux, "POST /caller-id/numbers", u.numberAdd)
	u.auth(mux, "POST /caller-id/numbers/{id}/verify", u.numberVerify)
	u.auth(mux, "POST /caller-id/numbers/{id}/call", u.numberCall)
	u.auth(mux, "POST /caller-id/numbers/{id}/delete", u.numberDelete)

	// Calls, support, account.
	u.auth(mux, "GET /calls", u.calls)
	u.auth(mux, "GET /calls/live", u.callsLive)
	u.auth(mux, "GET /calls/live.json", u.callsLiveJSON)
	u.auth(mux, "GET /calls/export.csv", u.callsExport)
	u.auth(mux, "GET /sip-accounts/status.json", u.sipAccountStatuses)
	u.auth(mux, "GET /tickets", u.tickets)
	u.auth(mux, "GET /tickets/new", u.ticketNew)
	u.auth(mux, "POST /tickets", u.ticketCreate)
	u.auth(mux, "GET /audit", u.audit)
	u.auth(mux, "GET /api-tokens", u.apiTokens)
	u.auth(mux, "POST /api-tokens", u.apiTokenCreate)
	u.auth(mux, "POST /api-tokens/{id}/delete", u.apiTokenDelete)
	u.auth(mux, "GET /account/security", u.security)
	u.auth(mux, "POST /account/password", u.changePassword)
	u.auth(mux, "POST /account/2fa/setup", u.totpSetup)
	u.auth(mux, "POST /account/2fa/confirm", u.totpConfirm)
	u.auth(mux, "POST /account/2fa/disable", u.totpDisable)
	u.auth(mux, "POST /account/sessions/{id}/revoke", u.sessionRevoke)
	u.auth(mux, "POST /account/passkeys/begin", u.passkeyBegin)
	u.auth(mux, "POST /account/passkeys", u.passkeyAdd)
	u.auth(mux, "POST /account/passkeys/{id}/delete", u.passkeyDelete)
}

// request is what a handler knows about the caller.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	nonce    string
	token    string            // session token, "" when logged out
	customer *sipdesk.Customer // nil when logged out
	flash    string
}

func (q *request) actor() app.Actor     { return app.CustomerActor(q.customer.ID, "portal") }
func (q *request) ctx() context.Context { return q.r.Context() }

type handler func(q *request) error

// public serves a page for anyone; the session is loaded when there is one.
func (u *UI) public(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, u.wrap(h, func(q *request) bool { return true }))
}

// unverified serves a page for customers who signed up but have not
// verified their phone yet.
func (u *UI) unverified(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, u.wrap(h, func(q *request) bool {
		switch {
		case q.customer == nil:
			u.redirectLogin(q)
			return false
		case q.customer.BillingState != sipdesk.BillingUnverified:
			http.Redirect(q.w, q.r, "/sip-accounts", http.StatusSeeOther)
			return false
		}
		return true
	}))
}

// auth serves a page for verified customers.
func (u *UI) auth(mux *http.ServeMux, pattern string, h handler) {
	mux.Handle(pattern, u.wrap(h, func(q *request) bool {
		switch {
		case q.customer == nil:
			u.redirectLogin(q)
			return false
		case q.customer.BillingState == sipdesk.BillingUnverified:
			http.Redirect(q.w, q.r, "/verify", http.StatusSeeOther)
			return false
		}
		return true
	}))
}

func (u *UI) redirectLogin(q *request) {
	to := "/login"
	if q.r.Method == http.MethodGet && q.r.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(q.r.URL.RequestURI())
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}

// wrap adds what every page gets: CSRF protection on unsafe methods, the
// security headers with a fresh CSP nonce, the session and the flash.
func (u *UI) wrap(h handler, allow func(*request) bool) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !app.Source(r.Context()).IsValid() { // not behind web.New (tests): the connection's address
			if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				r = r.WithContext(app.WithSource(r.Context(), ap.Addr()))
			}
		}
		q := &request{w: w, r: r, nonce: NewNonce()}
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+q.nonce+"'; style-src 'self'; "+
			"img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if err := u.loadSession(q); err != nil {
			u.fail(q, err)
			return
		}
		q.flash = u.takeFlash(q)
		if !allow(q) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := h(q); err != nil {
			u.fail(q, err)
		}
	})
	return u.csrf.Handler(inner)
}

// NewNonce is a page's CSP nonce (the operator console's too).
func NewNonce() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// fail answers an error no handler dealt with: a page with a fitting status.
func (u *UI) fail(q *request, err error) {
	status := sipdesk.HTTPStatus(sipdesk.ErrorCode(err)) // the code table, shared with the API
	msg := sipdesk.ErrorMessage(err)
	switch status {
	case http.StatusNotFound:
		msg = "We could not find that page or item."
	case http.StatusInternalServerError:
		msg = "Something went wrong on our side. Please try again in a moment."
	case http.StatusServiceUnavailable:
		msg = "The service is briefly unavailable. Please try again in a moment."
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, msg = http.StatusRequestEntityTooLarge, "The form was too large."
	}
	if status == http.StatusInternalServerError {
		u.log.Error("portal request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
	}
	u.render(q, status, "message.html", &messageView{Page: u.page(q, "Error", ""), Heading: http.StatusText(status), Text: msg})
}

func (u *UI) home(q *request) error {
	if q.customer == nil {
		http.Redirect(q.w, q.r, "/login", http.StatusSeeOther)
	} else {
		http.Redirect(q.w, q.r, "/sip-accounts", http.StatusSeeOther)
	}
	return nil
}

// redirect answers a POST with 303 to a page, with a flash message.
func (u *UI) redirect(q *request, to, flash string) error {
	to = sameSitePath(to, "/")
	if flash != "" {
		u.setFlash(q, flash)
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

// pathID reads the {id} path value.
func pathID(q *request) (int64, error) { return PathID(q.r) }

// PathID reads a request's {id} path value: a positive integer, else
// ENotFound (the operator console's pages use it too).
func PathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, sipdesk.Errorf(sipdesk.ENotFound, "not found")
	}
	return id, nil
}

// wantsJSON reports a fetch() from app.js asking for a JSON answer.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// sameSitePath is the one check of every redirect target that comes from a
// request (next, return) or reaches u.redirect: it returns p when p is a path
// on this site, else fallback. A path is accepted only when it parses, has no
// scheme, host or user, starts with a single "/", and neither it nor its
// decoded path holds a backslash or a control character: browsers read
// "/\evil", "/\t/evil" and "//evil" as another host.
func sameSitePath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || unsafeInPath(p) {
		return fallback
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || unsafeInPath(u.Path) {
		return fallback
	}
	return p
}

// unsafeInPath reports a backslash, a control character (C0, DEL, C1) or
// invalid UTF-8 in s.
func unsafeInPath(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r == '\\' || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return true
		}
	}
	return false
}

func isCode(err error, code string) bool { return sipdesk.ErrorCode(err) == code }
