package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// APIPrefix is where the operator API lives. It answers with the customer
// API's error envelope ({"error": {"code", "message", "field"}}) and list
// shape ({"items": [...], "next": null}); tokens are operator tokens (sdo_).
const APIPrefix = "/api/ops/v1"

type api struct {
	svc *app.Service
	log *slog.Logger
	mux *http.ServeMux
}

type apiHandler func(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error

func newAPI(svc *app.Service, log *slog.Logger) *api {
	a := &api{svc: svc, log: log, mux: http.NewServeMux()}
	a.route("GET /customers", a.listCustomers)
	a.route("GET /customers/{id}", a.getCustomer)
	a.route("POST /customers/{id}/topups", a.topUp)
	a.route("PUT /customers/{id}/channel-limit", a.putChannelLimit)
	a.route("GET /tickets", a.listTickets)
	a.route("POST /tickets/{id}/approve", a.decide(true))
	a.route("POST /tickets/{id}/decline", a.decide(false))
	a.route("GET /calls/active", a.activeCalls)
	a.route("DELETE /calls/active/{call_id}", a.hangUp)
	a.route("GET /nodes", a.nodes)
	a.routeDIDs()
	a.routeSuspend()
	a.routeBans()
	return a
}

func (a *api) route(pattern string, h apiHandler) {
	method, path, _ := strings.Cut(pattern, " ")
	a.mux.HandleFunc(method+" "+APIPrefix+path, func(w http.ResponseWriter, r *http.Request) {
		op, err := a.authenticate(r)
		if err != nil {
			challenge := `Bearer realm="sipdesk-ops"`
			if r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			a.writeError(w, r, err)
			return
		}
		if err := h(w, r, op); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *api) authenticate(r *http.Request) (*sipdesk.Operator, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, sipdesk.Errorf(sipdesk.EUnauthorized, "send Authorization: Bearer <operator token>")
	}
	return a.svc.AuthenticateOperatorToken(r.Context(), strings.TrimSpace(token))
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if _, pattern := a.mux.Handler(r); pattern == "" {
		a.writeError(w, r, sipdesk.Errorf(sipdesk.ENotFound, "no such route"))
		return
	}
	a.mux.ServeHTTP(w, r)
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := sipdesk.ErrorCode(err)
	status := sipdesk.HTTPStatus(code)
	d := errorDetail{Code: code, Field: sipdesk.ErrorField(err), Message: sipdesk.ErrorMessage(err)}
	var he *httpError
	if errors.As(err, &he) {
		status, d = he.status, errorDetail{Code: sipdesk.EInvalid, Message: he.msg}
	}
	if status == http.StatusInternalServerError {
		a.log.Error("operator api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		d = errorDetail{Code: sipdesk.EInternal, Message: "internal error"}
	}
	writeJSON(w, status, map[string]any{"error": d})
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads one JSON object of at most 16 KiB, no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &httpError{http.StatusUnsupportedMediaType, "the request body must be JSON (Content-Type: application/json)"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		return &httpError{http.StatusRequestEntityTooLarge, "the request body must be at most 16 KiB"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &httpError{http.StatusBadRequest, "the request body must be a JSON object with the documented fields"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &httpError{http.StatusBadRequest, "the request body must hold one JSON object and nothing after it"}
	}
	return nil
}

func idOf(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, sipdesk.Errorf(sipdesk.ENotFound, "not found")
	}
	return id, nil
}

// list is the customer API's list shape; the operator lists are single
// pages (bounded by the service), so next is always null.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func listOf[S, T any](items []S, view func(S) T) list[T] {
	out := list[T]{Items: make([]T, 0, len(items))}
	for _, it := range items {
		out.Items = append(out.Items, view(it))
	}
	return out
}

type customerJSON struct {
	ID              int64     `json:"id"`
	Email           string    `json:"email"`
	Phone           string    `json:"phone"`
	BillingState    string    `json:"billing_state"`
	ChannelLimit    int       `json:"channel_limit"`
	ChannelScope    string    `json:"channel_scope"`
	SIPAccountQuota int       `json:"sip_account_quota"`
	TopUpTotal      string    `json:"top_up_total"`
	CreatedAt       time.Time `json:"created_at"`
	// Suspended by an operator (suspended_at null when not).
	Suspended       bool       `json:"suspended"`
	SuspendedAt     *time.Time `json:"suspended_at"`
	SuspendedReason string     `json:"suspended_reason"`
}

func customerView(c *sipdesk.Customer) customerJSON {
	j := customerJSON{ID: c.ID, Email: c.Email, Phone: c.VerifiedPhone, BillingState: string(c.BillingState),
		ChannelLimit: c.ChannelLimit, ChannelScope: c.ChannelScope, SIPAccountQuota: c.SIPAccountQuota,
		TopUpTotal: strconv.FormatFloat(float64(c.TopUpTotalCents)/100, 'f', 2, 64), CreatedAt: c.CreatedAt,
		Suspended: c.Suspended(), SuspendedReason: c.SuspendedReason}
	if c.Suspended() {
		j.SuspendedAt = &c.SuspendedAt
	}
	return j
}

func (a *api) listCustomers(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	cs, err := a.svc.OpsSearchCustomers(r.Context(), op, r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(cs, customerView))
	return nil
}

type registrationJSON struct {
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	Node      string    `json:"node"`
	UserAgent string    `json:"user_agent"`
	ExpiresAt time.Time `json:"expires_at"`
}

type sipAccountJSON struct {
	ID            int64              `json:"id"`
	Name          string             `json:"name"`
	AuthType      string             `json:"auth_type"`
	Username      string             `json:"username,omitempty"`
	AllowedIPs    []string           `json:"allowed_ips"`
	Status        string             `json:"status"`
	HeldForReview bool               `json:"held_for_review"`
	Registrations []registrationJSON `json:"registrations"`
}

func (a *api) getCustomer(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	id, err := idOf(r)
	if err != nil {
		return err
	}
	v, err := a.svc.OpsCustomer(r.Context(), op, id)
	if err != nil {
		return err
	}
	accts := []sipAccountJSON{}
	for _, s := range v.SIPAccounts {
		j := sipAccountJSON{ID: s.ID, Name: s.Name, AuthType: string(s.AuthType), Username: s.Username, Status: string(s.Status),
			HeldForReview: s.HeldForReview, AllowedIPs: []string{}, Registrations: []registrationJSON{}}
		for _, p := range s.AllowedIPs {
			j.AllowedIPs = append(j.AllowedIPs, p.String())
		}
		for _, g := range v.Registrations[s.ID] {
			j.Registrations = append(j.Registrations, registrationJSON{g.Received, g.Transport, g.Node, g.UserAgent, g.ExpiresAt})
		}
		accts = append(accts, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"customer": customerView(v.Customer), "sip_accounts": accts,
		"live_calls": len(v.LiveCalls), "tickets": listOf(v.Tickets, ticketView).Items, "audit": listOf(v.Audit, auditView).Items})
	return nil
}

func (a *api) topUp(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	id, err := idOf(r)
	if err != nil {
		return err
	}
	var body struct {
		Amount json.Number `json:"amount"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	cents, err := app.ParseAmount(body.Amount.String())
	if err != nil {
		return err
	}
	c, err := a.svc.OpsTopUp(r.Context(), op, id, cents)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, customerView(c))
	return nil
}

func (a *api) putChannelLimit(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	id, err := idOf(r)
	if err != nil {
		return err
	}
	var body struct {
		ChannelLimit *int `json:"channel_limit"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.ChannelLimit == nil {
		return sipdesk.FieldError("channel_limit", "is required")
	}
	c, err := a.svc.OpsSetChannelLimit(r.Context(), op, id, *body.ChannelLimit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, customerView(c))
	return nil
}

type ticketJSON struct {
	ID         int64      `json:"id"`
	CustomerID int64      `json:"customer_id"`
	Kind       string     `json:"kind"`
	Wanted     int        `json:"wanted"`
	Reason     string     `json:"reason"`
	Status     string     `json:"status"`
	Message    string     `json:"message"`
	CreatedAt  time.Time  `json:"created_at"`
	DecidedAt  *time.Time `json:"decided_at"`
}

func ticketView(t *sipdesk.Ticket) ticketJSON {
	j := ticketJSON{ID: t.ID, CustomerID: t.CustomerID, Kind: string(t.Kind), Wanted: t.Wanted, Reason: t.Reason,
		Status: string(t.Status), Message: t.Message, CreatedAt: t.CreatedAt}
	if !t.DecidedAt.IsZero() {
		j.DecidedAt = &t.DecidedAt
	}
	return j
}

type auditJSON struct {
	ID           int64     `json:"id"`
	SIPAccountID int64     `json:"sip_account_id,omitempty"`
	Actor        string    `json:"actor"`
	Action       string    `json:"action"`
	Detail       string    `json:"detail"`
	At           time.Time `json:"at"`
}

func auditView(e *sipdesk.AuditEntry) auditJSON {
	return auditJSON{e.ID, e.SIPAccountID, e.Actor, e.Action, e.Detail, e.At}
}

func (a *api) listTickets(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	ts, err := a.svc.OpsTickets(r.Context(), op, sipdesk.TicketStatus(r.URL.Query().Get("status")))
	if err != nil {
		return err
	}
	// open first, then newest first
	sort.SliceStable(ts, func(i, j int) bool {
		if (ts[i].Status == sipdesk.TicketOpen) != (ts[j].Status == sipdesk.TicketOpen) {
			return ts[i].Status == sipdesk.TicketOpen
		}
		return ts[i].ID > ts[j].ID
	})
	writeJSON(w, http.StatusOK, listOf(ts, ticketView))
	return nil
}

func (a *api) decide(approve bool) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
		id, err := idOf(r)
		if err != nil {
			return err
		}
		var body struct {
			Message string `json:"message"`
		}
		if r.ContentLength != 0 || !approve {
			if err := decode(w, r, &body); err != nil {
				return err
			}
		}
		t, err := a.svc.OpsDecideTicket(r.Context(), op, id, approve, body.Message)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ticketView(t))
		return nil
	}
}

type callJSON struct {
	CallID         string    `json:"call_id"`
	CustomerID     int64     `json:"customer_id"`
	SIPAccountID   int64     `json:"sip_account_id"`
	Direction      string    `json:"direction"`
	Node           string    `json:"node"`
	StartedAt      time.Time `json:"started_at"`
	CustomerEmail  string    `json:"customer_email"`
	SIPAccountName string    `json:"sip_account_name"`
	Destination    string    `json:"destination"`
}

func (a *api) activeCalls(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	ls, _, err := a.svc.OpsLiveCalls(r.Context(), op)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(ls, func(l app.OpsLiveCall) callJSON {
		return callJSON{l.CallID, l.CustomerID, l.SIPAccountID, l.Direction, l.Node, l.StartedAt, l.CustomerEmail, l.SIPAccountName, l.Destination}
	}))
	return nil
}

// hangUp ends a live call on the node holding it: 200 once the node sent
// BYE on both legs, 202 while it has not answered yet, 404 when the call
// is not live (any more), 503 when its node did not take the request.
func (a *api) hangUp(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	req, err := a.svc.OpsHangUp(r.Context(), op, r.PathValue("call_id"))
	if err != nil {
		return err
	}
	if err := hangUpError(req); err != nil {
		return err
	}
	status := http.StatusOK
	if req.State != sipdesk.EdgeDone {
		status = http.StatusAccepted
	}
	writeJSON(w, status, map[string]any{"call_id": r.PathValue("call_id"), "node": req.Node, "state": string(req.State), "result": req.Result})
	return nil
}

// hangUpError is a hang-up that did not happen as an error of the table:
// the node no longer had the call (not found) or no node took the request.
func hangUpError(r *sipdesk.EdgeRequest) error {
	switch r.State {
	case sipdesk.EdgeFailed:
		return sipdesk.Errorf(sipdesk.ENotFound, "%s", r.Result)
	case sipdesk.EdgeExpired:
		return sipdesk.Errorf(sipdesk.EUnavailable, "node %s did not end the call: %s", r.Node, r.Result)
	}
	return nil
}

type nodeJSON struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	State     string    `json:"state"`
	SIPAddr   string    `json:"sip_addr"`
	HTTPAddr  string    `json:"http_addr"`
	Version   string    `json:"version"`
	Heartbeat time.Time `json:"heartbeat"`
	LiveCalls int       `json:"live_calls"`
	Bindings  int       `json:"bindings"`
}

func (a *api) nodes(w http.ResponseWriter, r *http.Request, op *sipdesk.Operator) error {
	ns, err := a.svc.OpsNodes(r.Context(), op)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(ns, func(n app.NodeStatus) nodeJSON {
		return nodeJSON{n.Name, n.Role, n.State, n.SIPAddr, n.HTTPAddr, n.Version, n.Heartbeat, n.LiveCalls, n.Bindings}
	}))
	return nil
}
