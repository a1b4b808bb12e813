package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sipdesk/sipdesk"
)

// httpError is an error of the HTTP layer itself (malformed or oversized
// bodies, wrong methods) whose status is not the code's usual one.
type httpError struct {
	status int
	code   string
	field  string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// badRequest is a 400 "invalid": the request cannot be read at all (as
// opposed to 422, a readable request that breaks a rule).
func badRequest(field, msg string) error {
	return &httpError{status: http.StatusBadRequest, code: sipdesk.EInvalid, field: field, msg: msg}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers err with the envelope. Internal errors are logged with
// the request line (never the body) and answered with a generic message.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeJSON(w, he.status, errorBody{errorDetail{Code: he.code, Message: he.msg, Field: he.field}})
		return
	}
	code := sipdesk.ErrorCode(err)
	status := sipdesk.HTTPStatus(code) // the one table, shared with the portal and the edge
	d := errorDetail{Code: code, Field: sipdesk.ErrorField(err)}
	var de *sipdesk.Error
	if errors.As(err, &de) {
		d.Message = de.Message
	}
	if status == http.StatusInternalServerError {
		a.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		d = errorDetail{Code: sipdesk.EInternal, Message: "internal error"}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if d.Message == "" {
		d.Message = http.StatusText(status)
	}
	writeJSON(w, status, errorBody{d})
}

// writeJSON answers v as JSON with the status. A failed write means the
// client went away: there is nobody left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// reply writes v and returns nil, for handlers' last line.
func reply(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}
