package ui

import (
	"context"
	"net/http"
	"net/url"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// sessions is what the portal needs of the service for logins (hashed
// tokens in the store, so they survive restarts and work on every node).
type sessions interface {
	CreateSessionFor(ctx context.Context, customerID int64, userAgent string) (token string, err error)
	SessionCustomer(ctx context.Context, token string) (customerID int64, err error)
	DeleteSession(ctx context.Context, token string) error
}

var _ sessions = (*app.Service)(nil)

func (u *UI) cookieName(base string) string {
	if u.opt.Secure {
		return "__Host-" + base
	}
	return base
}

func (u *UI) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: u.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: u.opt.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// loadSession reads the session cookie; an invalid or expired one is
// dropped and the request goes on logged out.
func (u *UI) loadSession(q *request) error {
	c, err := q.r.Cookie(u.cookieName("sipdesk_session"))
	if err != nil || c.Value == "" || len(c.Value) > 200 {
		return nil //nolint:nilerr // no session cookie: the request goes on logged out
	}
	id, err := u.sess.SessionCustomer(q.ctx(), c.Value)
	switch sipdesk.ErrorCode(err) {
	case "":
	case sipdesk.ENotFound, sipdesk.EUnauthorized:
		u.setCookie(q.w, "sipdesk_session", "", -1)
		return nil
	default:
		return err
	}
	cust, err := u.svc.Customer(q.ctx(), id)
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		u.setCookie(q.w, "sipdesk_session", "", -1)
		return nil
	}
	if err != nil {
		return err
	}
	q.token, q.customer = c.Value, cust
	return nil
}

// startSession logs the customer in on this browser.
func (u *UI) startSession(q *request, customerID int64) error {
	if q.token != "" { // a new session on login: never keep an old one
		_ = u.sess.DeleteSession(q.ctx(), q.token)
	}
	tok, err := u.sess.CreateSessionFor(q.ctx(), customerID, q.r.UserAgent())
	if err != nil {
		return err
	}
	u.setCookie(q.w, "sipdesk_session", tok, 0)
	q.token = tok
	return nil
}

// Flash messages carry a short, non-secret notice across a redirect.
func (u *UI) setFlash(q *request, msg string) {
	u.setCookie(q.w, "sipdesk_flash", url.QueryEscape(msg), 60)
}

func (u *UI) takeFlash(q *request) string {
	c, err := q.r.Cookie(u.cookieName("sipdesk_flash"))
	if err != nil || c.Value == "" {
		return ""
	}
	u.setCookie(q.w, "sipdesk_flash", "", -1)
	msg, err := url.QueryUnescape(c.Value)
	if err != nil || len(msg) > 300 {
		return ""
	}
	return msg
}
