package ui

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

// TestErrorPageStatusFromCodeTable: an error no handler dealt with gets the
// status of sipdesk's code table (the API's): no code but internal gives 500.
func TestErrorPageStatusFromCodeTable(t *testing.T) {
	u := New(nil, Options{Log: slog.New(slog.DiscardHandler)})
	for _, r := range sipdesk.CodeTable() {
		if r.HTTP == 0 { // a SIP-only key: never a domain error
			continue
		}
		t.Run(r.Code, func(t *testing.T) {
			rec := httptest.NewRecorder()
			q := &request{w: rec, r: httptest.NewRequest("POST", "/x", nil)}
			u.fail(q, sipdesk.Errorf(r.Code, "the message of %s", r.Code))
			if rec.Code != r.HTTP || rec.Code != sipdesk.HTTPStatus(r.Code) {
				t.Fatalf("status %d, want the table's %d", rec.Code, r.HTTP)
			}
			hidden := r.Code == sipdesk.EInternal || r.Code == sipdesk.ENotFound || r.Code == sipdesk.EUnavailable
			if shown := strings.Contains(rec.Body.String(), "the message of"); shown == hidden {
				t.Fatalf("message shown %v, want %v", shown, !hidden)
			}
		})
	}
	rec := httptest.NewRecorder()
	u.fail(&request{w: rec, r: httptest.NewRequest("GET", "/x", nil)}, errors.New("disk on fire"))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "disk on fire") {
		t.Fatalf("a plain error: %d", rec.Code)
	}
}

// TestFormStatusFromCodeTable: a form shown again with a customer's error
// answers the table's form status; the portal has no list of its own.
func TestFormStatusFromCodeTable(t *testing.T) {
	for _, r := range sipdesk.CodeTable() {
		err := sipdesk.Errorf(r.Code, "x")
		if userError(err) != (r.Form != 0) {
			t.Errorf("%s: userError %v with form status %d", r.Code, userError(err), r.Form)
		}
		if r.Form != 0 && formStatus(err) != r.Form {
			t.Errorf("%s: form status %d, want %d", r.Code, formStatus(err), r.Form)
		}
	}
	if formStatus(nil) != http.StatusUnprocessableEntity {
		t.Errorf("the form's own checks: %d", formStatus(nil))
	}
	if formStatus(sipdesk.Errorf(sipdesk.EConflict, "x")) != http.StatusConflict {
		t.Error("a conflict in a form is not 409 as in the API")
	}
}
