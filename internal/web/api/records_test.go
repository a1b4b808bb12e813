package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TestCallsCursorFiltersAndCSV: 300 records (two per millisecond-exact
// second) walked with the opaque cursor, filters, the CSV export of the
// filtered set, usernames masked, results in words.
func TestCallsCursorFiltersAndCSV(t *testing.T) {
	e := newEnv(t)
	c := e.customer("records@example.com", "+15551239101")
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	busy := 0
	for i := range 300 {
		r := &sipdesk.CallRecord{CallID: fmt.Sprintf("c%d", i), CustomerID: c.id, SIPAccountID: c.first, Direction: sipdesk.DirOutbound,
			From: "sip:" + c.user + "@sipdesk.local", To: fmt.Sprintf("sip:+4420%06d@x", i), StartedAt: base.Add(time.Duration(i/2) * time.Second),
			Disposition: sipdesk.DispAnswered, SIPCode: 200}
		if i%4 == 0 {
			r.Disposition, r.SIPCode = sipdesk.DispBusy, 486
			busy++
		}
		if err := e.svc.SaveCallRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	seen, pages := map[float64]bool{}, 0
	for path := "/api/v1/calls?limit=40"; path != ""; pages++ {
		r := e.do("GET", path, c.token, nil).must(t, 200)
		if strings.Contains(r.raw, c.user) {
			t.Fatal("the API answers the full SIP username")
		}
		for _, it := range r.items() {
			id := it["id"].(float64)
			if seen[id] {
				t.Fatalf("record %v on two pages", id)
			}
			seen[id] = true
			if want := map[string]string{"answered": "Answered", "busy": "Busy"}[it["disposition"].(string)]; it["result"] != want {
				t.Fatalf("result %v for %v", it["result"], it["disposition"])
			}
		}
		path = ""
		if next, _ := r.body["next"].(string); next != "" {
			path = "/api/v1/calls?limit=40&after=" + url.QueryEscape(next)
		}
	}
	if len(seen) != 300 || pages != 8 {
		t.Fatalf("%d records on %d pages, want 300 on 8", len(seen), pages)
	}
	if r := e.do("GET", "/api/v1/calls?disposition=busy&direction=outbound&limit=500", c.token, nil).must(t, 200); len(r.items()) != busy {
		t.Fatalf("busy: %d, want %d", len(r.items()), busy)
	}
	// The numeric cursor of earlier versions still pages (records before that id).
	if r := e.do("GET", "/api/v1/calls?after=11", c.token, nil).must(t, 200); len(r.items()) != 10 {
		t.Fatalf("after=11: %d records, want 10", len(r.items()))
	}
	for _, q := range []string{"after=abc", "direction=sideways", "number=12ab", "format=xml", "since=2026-11-21&until=2026-11-20"} {
		if r := e.do("GET", "/api/v1/calls?"+q, c.token, nil); r.status != 422 || r.errField() == "" {
			t.Fatalf("%s: %d %s, want 422 naming the field", q, r.status, r.raw)
		}
	}
	r := e.doRaw("GET", "/api/v1/calls?format=csv&disposition=busy", c.token, "", nil).must(t, 200)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || strings.Contains(r.raw, c.user) {
		t.Fatalf("CSV: %s, or the full username in it", r.header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(r.raw)).ReadAll()
	if err != nil || len(rows) != busy+1 {
		t.Fatalf("CSV: %d rows (%v), want %d", len(rows)-1, err, busy)
	}
	for _, row := range rows[1:] {
		if row[9] != "busy" || row[11] != "Busy" || row[10] != "486" {
			t.Fatalf("CSV row outside the filter: %q", row)
		}
	}
}

// TestAuditByNamesTheToken: a change made with an API token says which.
func TestAuditByNamesTheToken(t *testing.T) {
	e := newEnv(t)
	c := e.customer("auditby@example.com", "+15551239102")
	e.do("POST", "/api/v1/sip-accounts/"+fmt.Sprint(c.first)+"/reveal", c.token, nil)
	e.do("PATCH", "/api/v1/sip-accounts/"+fmt.Sprint(c.first), c.token, map[string]any{"name": "Renamed"})
	r := e.do("GET", "/api/v1/audit?limit=1", c.token, nil).must(t, 200)
	if items := r.items(); len(items) != 1 || items[0]["by"] != "API token 'test'" {
		t.Fatalf("audit: %s", r.raw)
	}
	next, _ := r.body["next"].(string)
	if next == "" {
		t.Fatal("no next cursor")
	}
	if r := e.do("GET", "/api/v1/audit?limit=1&after="+url.QueryEscape(next), c.token, nil).must(t, 200); len(r.items()) != 1 || r.items()[0]["id"] == r.body["id"] {
		t.Fatalf("second page: %s", r.raw)
	}
	if r := e.do("GET", "/api/v1/audit?kind=sign_in", c.token, nil).must(t, 200); len(r.items()) != 0 {
		t.Fatalf("sign-in entries: %s", r.raw)
	}
	if r := e.do("GET", "/api/v1/audit?kind=nope", c.token, nil); r.status != 422 || r.errField() != "kind" {
		t.Fatalf("kind=nope: %d %s", r.status, r.raw)
	}
}

// TestActiveCallsShowTheDestination: a live call lists its destination.
func TestActiveCallsShowTheDestination(t *testing.T) {
	e := newEnv(t)
	c := e.customer("live@example.com", "+15551239103")
	ctx := context.Background()
	if err := e.svc.SaveCallRecord(ctx, &sipdesk.CallRecord{CallID: "l1", CustomerID: c.id, SIPAccountID: c.first, Direction: sipdesk.DirOutbound,
		From: "sip:" + c.user + "@edge", To: "sip:+442071234567@edge", Disposition: sipdesk.DispActive}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "l1", CustomerID: c.id, SIPAccountID: c.first, Direction: sipdesk.DirOutbound, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/api/v1/calls/active", c.token, nil).must(t, 200)
	if items := r.items(); len(items) != 1 || items[0]["to"] != "sip:+442071234567@edge" {
		t.Fatalf("active calls: %s", r.raw)
	}
}
