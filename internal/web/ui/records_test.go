package ui

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

var (
	callRowRe  = regexp.MustCompile(`data-call="(\d+)"`)
	nextPageRe = regexp.MustCompile(`href="(/(?:calls|audit)\?[^"]+)" rel="next"`)
)

// walkPages follows the "Older" links from path and returns the ids of
// every row (re) on every page, failing on a duplicate.
func walkPages(t *testing.T, b *browser, path string, re *regexp.Regexp, wants ...string) (ids []string, pages int) {
	t.Helper()
	seen := map[string]bool{}
	for path != "" {
		if pages++; pages > 50 {
			t.Fatal("paging does not end")
		}
		p := b.get(path).must(t, 200, wants...)
		for _, m := range re.FindAllStringSubmatch(p.body, -1) {
			if seen[m[1]] {
				t.Fatalf("row %s on two pages", m[1])
			}
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
		path = ""
		if m := nextPageRe.FindStringSubmatch(p.body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	return ids, pages
}

// seedCalls stores 300 call records for c's first SIP account, three per
// second (shared timestamps), with a mix of directions and results.
func seedCalls(t *testing.T, e *env, c *customer) (recs []*sipdesk.CallRecord) {
	t.Helper()
	ctx := context.Background()
	a := c.first.Account
	base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := range 300 {
		r := &sipdesk.CallRecord{CallID: fmt.Sprintf("seed-%d", i), CustomerID: c.id, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
			From: `"` + a.Username + `" <sip:` + a.Username + `@sipdesk.local>`, To: fmt.Sprintf("sip:+44203000%04d@sipdesk.local", i),
			CallerID: "+15551234321", StartedAt: base.Add(time.Duration(i/3) * time.Second), Disposition: sipdesk.DispAnswered, SIPCode: 200}
		r.AnsweredAt, r.EndedAt = r.StartedAt.Add(time.Second), r.StartedAt.Add(61*time.Second)
		switch {
		case i%7 == 0:
			r.Direction, r.From, r.To = sipdesk.DirInbound, "sip:+15550000999@carrier", "sip:+15551234321@sipdesk.local"
			r.Disposition, r.SIPCode, r.AnsweredAt, r.EndedAt = sipdesk.DispNoAnswer, 480, time.Time{}, time.Time{}
		case i%5 == 0:
			r.Disposition, r.SIPCode, r.Reason, r.AnsweredAt = sipdesk.DispRefused, 403, sipdesk.EChannelLimit, time.Time{}
		case i%11 == 0:
			r.Disposition, r.SIPCode, r.AnsweredAt = sipdesk.DispBusy, 486, time.Time{}
		}
		if i == 1 {
			r.CallerID = "=HYPERLINK(\"http://evil.example\")" // a formula a spreadsheet must not run
		}
		if err := e.svc.SaveCallRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func count(rs []*sipdesk.CallRecord, keep func(*sipdesk.CallRecord) bool) (n int) {
	for _, r := range rs {
		if keep(r) {
			n++
		}
	}
	return n
}

func TestCallRecordsPagesFiltersExportAndMasking(t *testing.T) {
	e := newEnv(t)
	c := e.customer("records@acme.example", "+15551234321")
	user := c.first.Account.Username
	recs := seedCalls(t, e, c)
	refused := count(recs, func(r *sipdesk.CallRecord) bool {
		return r.Direction == sipdesk.DirOutbound && r.Disposition == sipdesk.DispRefused
	})

	ids, pages := walkPages(t, c.b, "/calls", callRowRe, "Call Records")
	if len(ids) != 300 || pages != 6 {
		t.Fatalf("walked %d records on %d pages, want 300 on 6", len(ids), pages)
	}
	first := c.b.get("/calls").must(t, 200, "Answered", "No answer", "Busy", "Refused: channel limit reached", sipdesk.MaskUsername(user))
	first.mustNot(t, user)

	// Filters: the form's GET parameters, every page.
	ids, _ = walkPages(t, c.b, "/calls?direction=outbound&disposition=refused", callRowRe, "Refused: channel limit reached")
	if len(ids) != refused {
		t.Fatalf("refused outbound: %d rows, want %d", len(ids), refused)
	}
	ids, _ = walkPages(t, c.b, "/calls?number=4420300002", callRowRe)
	if want := count(recs, func(r *sipdesk.CallRecord) bool { return strings.Contains(r.To, "4420300002") }); len(ids) != want || want < 50 {
		t.Fatalf("number search: %d rows, want %d", len(ids), want)
	}
	ids, _ = walkPages(t, c.b, "/calls?since=2026-11-20&until=2026-11-20", callRowRe)
	if len(ids) != 300 {
		t.Fatalf("one day: %d rows, want 300", len(ids))
	}
	ids, _ = walkPages(t, c.b, "/calls?since=2026-11-21", callRowRe)
	if len(ids) != 0 {
		t.Fatalf("a later day: %d rows, want none", len(ids))
	}
	c.b.get("/calls?number=abc").must(t, 422, "Number: must be up to 32 digits")
	c.b.get("/calls?cursor=nonsense").must(t, 422, "Page: must be")
	c.b.get("/calls?disposition=refused&sip_account="+itoa64(c.first.Account.ID)).must(t, 200, `href="/calls/export.csv?disposition=refused&amp;sip_account=`)

	// The export: the filtered set, every page, masked, formulas defused.
	p := c.b.get("/calls/export.csv?disposition=refused&direction=outbound").must(t, 200)
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q", ct)
	}
	if strings.Contains(p.body, user) {
		t.Fatal("the CSV has the full SIP username")
	}
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(app.CallsCSVHeader, ",") || len(rows) != refused+1 {
		t.Fatalf("CSV: header %v and %d rows, want %d", rows[0], len(rows)-1, refused)
	}
	for _, r := range rows[1:] {
		if r[4] != "outbound" || r[9] != "refused" || r[11] != "Refused: channel limit reached" || !strings.Contains(r[5], sipdesk.MaskUsername(user)) {
			t.Fatalf("CSV row outside the filter or unmasked: %q", r)
		}
	}
	all := c.b.get("/calls/export.csv").must(t, 200, `'=HYPERLINK`)
	if rows, _ := csv.NewReader(strings.NewReader(all.body)).ReadAll(); len(rows) != 301 {
		t.Fatalf("full export: %d rows, want 300", len(rows)-1)
	}
	if strings.Contains(all.body, ",=HYPERLINK") {
		t.Fatal("a formula cell is not defused")
	}
	// Another customer sees none of it.
	other := e.customer("other@acme.example", "+15551234322")
	other.b.get("/calls").must(t, 200, "No calls yet")
	if rows, _ := csv.NewReader(strings.NewReader(other.b.get("/calls/export.csv").body)).ReadAll(); len(rows) != 1 {
		t.Fatalf("the other customer's export has %d rows", len(rows)-1)
	}
}

func TestLiveCallsJSONShowsDestinationAndDuration(t *testing.T) {
	e := newEnv(t)
	c := e.customer("live@acme.example", "+15551234321")
	ctx := context.Background()
	c.b.get("/calls/live.json").must(t, 200, `{"calls":[]}`)
	a := c.first.Account
	rec := &sipdesk.CallRecord{CallID: "live-1", CustomerID: c.id, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
		From: "sip:" + a.Username + "@edge", To: "sip:+442030001111@edge", Disposition: sipdesk.DispActive}
	if err := e.svc.SaveCallRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "live-1", CustomerID: c.id, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound, Node: "edge-7"}); err != nil {
		t.Fatal(err)
	}
	c.b.get("/calls/live.json").must(t, 200, `"destination":"+442030001111"`, `"node":"edge-7"`, `"duration":"`).mustNot(t, a.Username)
	c.b.get("/calls/live").must(t, 200, `data-live="/calls/live.json"`, "+442030001111")
	c.b.get("/sip-accounts/status.json").must(t, 200, `"id":`+itoa64(a.ID), `"label":"`)
	e.browser().get("/calls/live.json").must(t, 303) // logged out: to the login page
}

func TestAuditPagesFiltersAndByInWords(t *testing.T) {
	e := newEnv(t)
	c := e.customer("audit@acme.example", "+15551234321")
	ctx := context.Background()
	a := c.first.Account
	for range 120 {
		if _, err := e.svc.RevealUsername(ctx, c.id, a.ID, app.CustomerActor(c.id, "portal")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateAPIToken(ctx, c.id, "billing-sync", app.CustomerActor(c.id, "portal")); err != nil {
		t.Fatal(err)
	}
	ts, err := e.svc.APITokens(ctx, c.id)
	if err != nil || len(ts) != 1 {
		t.Fatalf("tokens %v, %v", ts, err)
	}
	if _, err := e.svc.CreateAPIToken(ctx, c.id, "second", app.TokenActor(ts[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetChannelLimit(ctx, c.id, 7); err != nil {
		t.Fatal(err)
	}
	e.browser().post("/login", map[string][]string{"email": {c.email}, "password": {"wrong-password-1"}})

	rowRe := regexp.MustCompile(`<td data-label="What">([^<]+)</td>`)
	revealed, pages := 0, 0
	for path := "/audit"; path != ""; pages++ {
		p := c.b.get(path).must(t, 200)
		for _, m := range rowRe.FindAllStringSubmatch(p.body, -1) {
			if m[1] == "Username revealed" {
				revealed++
			}
		}
		path = ""
		if m := nextPageRe.FindStringSubmatch(p.body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	if revealed != 120 || pages < 3 {
		t.Fatalf("%d reveals over %d pages, want 120 over 3 or more (50 a page)", revealed, pages)
	}
	c.b.get("/audit").must(t, 200, "API token 'billing-sync'", "Support", "You, in the portal", "Failed sign-in").
		mustNot(t, "customer:"+itoa64(c.id), "operator:")
	signIn := c.b.get("/audit?kind=sign_in").must(t, 200, "Signed in", "Failed sign-in")
	signIn.mustNot(t, "Username revealed", "API token created")
	c.b.get("/audit?kind=api_tokens").must(t, 200, "API token 'billing-sync'").mustNot(t, "Signed in")
	c.b.get("/audit?kind=nonsense").must(t, 422, "What: must be one of")
	c.b.get("/audit?since=2000-01-01&until=2000-01-02").must(t, 200, "Nothing matches these filters")
}
