package api

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk/internal/app"
)

// TestConnectionRoute: GET /api/v1/connection answers the configured
// endpoints and the accounts with masked usernames; ?sip_account narrows
// it, a bad or foreign id is refused.
func TestConnectionRoute(t *testing.T) {
	e := newEnv(t)
	e.svc = app.New(e.st, app.Options{Realm: "sipdesk.local", BaseURL: "http://127.0.0.1", Log: slog.New(slog.DiscardHandler),
		SIP: app.Endpoints{Host: "sip.example.net", UDPPort: 5060}})
	e.api = New(e.svc, slog.New(slog.DiscardHandler))
	a := e.customer("conn-a@example.com", "+15551230051")
	b := e.customer("conn-b@example.com", "+15551230052")
	r := e.do("GET", "/api/v1/connection", a.token, nil).must(t, 200)
	if r.str("host") != "sip.example.net" || r.str("sip_domain") != "sipdesk.local" {
		t.Fatalf("connection: %s", r.raw)
	}
	if strings.Contains(r.raw, a.user) || strings.Contains(r.raw, a.pass) {
		t.Fatalf("the answer holds the username or password: %s", r.raw)
	}
	if !strings.Contains(r.raw, `"username_masked":"`+a.user[:2]) || !strings.Contains(r.raw, "YOUR_SIP_PASSWORD") {
		t.Fatalf("no masked username or placeholder: %s", r.raw)
	}
	e.do("GET", "/api/v1/connection?sip_account="+strconv.FormatInt(a.first, 10), a.token, nil).must(t, 200)
	e.do("GET", "/api/v1/connection?sip_account="+strconv.FormatInt(b.first, 10), a.token, nil).must(t, 404)
	if r := e.do("GET", "/api/v1/connection?sip_account=x", a.token, nil).must(t, 422); r.errField() != "sip_account" {
		t.Fatalf("bad id: %s", r.raw)
	}
	e.do("GET", "/api/v1/connection", "", nil).must(t, 401)
}
