// Package api is the JSON API under /api/v1: personal bearer tokens, one
// error envelope, and thin handlers over the app service layer (every rule
// lives in the domain and the service; handlers only decode, call, encode).
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Route is one registered method and path pattern, as in the OpenAPI document.
type Route struct {
	Method  string
	Pattern string // e.g. /api/v1/sip-accounts/{id}
}

// API serves every route under /api/v1/.
type API struct {
	svc    *app.Service
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
}

// New returns the API on a service.
func New(svc *app.Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{svc: svc, log: log, mux: http.NewServeMux()}
	a.register()
	return a
}

// Routes lists the registered routes.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// authHandler is a handler of an authenticated customer.
type authHandler func(w http.ResponseWriter, r *http.Request, c caller) error

// caller is the customer behind the request's API token.
type caller struct {
	id    int64
	actor app.Actor
}

func (a *API) register() {
	// Account and tokens.
	a.auth("GET", "/account", a.getAccount)
	a.auth("GET", "/tokens", a.listTokens)
	a.auth("POST", "/tokens", a.createToken)
	a.auth("DELETE", "/tokens/{id}", a.deleteToken)
	a.auth("GET", "/audit", a.listAudit)

	// SIP accounts.
	a.auth("GET", "/sip-accounts", a.listSIPAccounts)
	a.auth("POST", "/sip-accounts", a.createSIPAccount)
	a.auth("GET", "/sip-accounts/{id}", a.getSIPAccount)
	a.auth("PATCH", "/sip-accounts/{id}", a.patchSIPAccount)
	a.auth("DELETE", "/sip-accounts/{id}", a.deleteSIPAccount)
	a.auth("POST", "/sip-accounts/{id}/reveal-username", a.revealUsername)
	a.auth("POST", "/sip-accounts/{id}/credential-reset", a.sendCredentialReset)
	a.auth("PUT", "/sip-accounts/{id}/jwt", a.putJWT)
	a.auth("POST", "/sip-accounts/{id}/softphone-token", a.softphoneToken)
	a.auth("PUT", "/sip-accounts/{id}/caller-id", a.putCallerID)
	a.auth("GET", "/connection", a.getConnection)
	// The reset link's token and the portal password authenticate this one.
	a.public("POST", "/credential-resets/{token}", a.completeCredentialReset)

	// Caller ID.
	a.auth("GET", "/caller-id-rules", a.listRules)
	a.auth("POST", "/caller-id-rules", a.createRule)
	a.auth("GET", "/caller-id-rules/{id}", a.getRule)
	a.auth("PATCH", "/caller-id-rules/{id}", a.patchRule)
	a.auth("DELETE", "/caller-id-rules/{id}", a.deleteRule)
	a.auth("GET", "/caller-ids", a.listCallerIDs)
	a.auth("POST", "/caller-ids", a.addCallerID)
	a.auth("POST", "/caller-ids/{id}/verify", a.verifyCallerID)
	a.auth("POST", "/caller-ids/{id}/call-me", a.callMe)
	a.auth("DELETE", "/caller-ids/{id}", a.deleteCallerID)
	a.auth("GET", "/caller-id/simulate", a.simulateCallerID)

	// Tickets and calls.
	a.auth("GET", "/tickets", a.listTickets)
	a.auth("POST", "/tickets", a.openTicket)
	a.auth("GET", "/calls", a.listCalls)
	a.auth("GET", "/calls/active", a.listActiveCalls)

	a.public("GET", "/openapi.json", a.openAPI)
}

func (a *API) handle(method, path string, h http.HandlerFunc) {
	pattern := Prefix + path
	a.mux.HandleFunc(method+" "+pattern, h)
	a.routes = append(a.routes, Route{Method: method, Pattern: pattern})
}

// public registers a route that needs no API token.
func (a *API) public(method, path string, h func(http.ResponseWriter, *http.Request) error) {
	a.handle(method, path, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// auth registers a route for customers with a valid API token.
func (a *API) auth(method, path string, h authHandler) {
	a.handle(method, path, func(w http.ResponseWriter, r *http.Request) {
		c, err := a.authenticate(r.Context(), r)
		if err != nil {
			if sipdesk.ErrorCode(err) == sipdesk.EUnauthorized {
				challenge := `Bearer realm="sipdesk"`
				if r.Header.Get("Authorization") != "" {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			a.writeError(w, r, err)
			return
		}
		if err := h(w, r, c); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *API) authenticate(ctx context.Context, r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" {
		return caller{}, sipdesk.Errorf(sipdesk.EUnauthorized, "missing API token: send Authorization: Bearer <token>")
	}
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, sipdesk.Errorf(sipdesk.EUnauthorized, "the Authorization header must be Bearer <token>")
	}
	t, err := a.svc.AuthenticateAPIToken(ctx, token)
	if err != nil {
		return caller{}, err
	}
	return caller{id: t.CustomerID, actor: app.TokenActor(t)}, nil
}

// ServeHTTP serves the API. Unknown paths and methods get the error envelope
// (404, or 405 with Allow) rather than the mux's plain text.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if _, pattern := a.mux.Handler(r); pattern == "" {
		rec := &recorder{h: http.Header{}}
		handler, _ := a.mux.Handler(r)
		handler.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			h.Set("Allow", rec.h.Get("Allow"))
			a.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method " + r.Method + " is not allowed here"})
		case http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusTemporaryRedirect:
			a.writeError(w, r, sipdesk.Errorf(sipdesk.ENotFound, "no such route: %s", r.URL.Path))
		default:
			a.writeError(w, r, sipdesk.Errorf(sipdesk.ENotFound, "no such route"))
		}
		return
	}
	a.mux.ServeHTTP(w, r)
}

// recorder captures what the mux's own 404/405 handlers would answer.
type recorder struct {
	h      http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIDoc)
	return err
}
