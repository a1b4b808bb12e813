package ui

import (
	"context"
	"html"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TestGuessingNotice: a guard an edge started on a SIP account (an audit
// entry) shows as a notice on the customer's SIP Accounts page for a day,
// and never on another customer's.
func TestGuessingNotice(t *testing.T) {
	e := newEnv(t)
	c := e.customer("guard@example.com", "+15551230021")
	other := e.customer("other@example.com", "+15551230022")
	const detail = "20 wrong passwords within 10 minutes, from any addresses. Until 12:30 UTC (longer while it goes on), only devices that logged in from their address in the last 24 hours are accepted."
	entry := &sipdesk.AuditEntry{CustomerID: c.id, SIPAccountID: c.first.Account.ID, Actor: "edge:edge-a",
		Action: sipdesk.AuditPasswordGuessing, Detail: detail, At: e.now}
	if err := e.st.Update(context.Background(), func(tx sipdesk.Tx) error { return tx.InsertAudit(entry) }); err != nil {
		t.Fatal(err)
	}
	c.b.get("/sip-accounts").must(t, 200, "Password guessing stopped on "+html.EscapeString(c.first.Account.Name), html.EscapeString(detail))
	c.b.get("/audit").must(t, 200, "Password guessing stopped")
	other.b.get("/sip-accounts").must(t, 200).mustNot(t, "Password guessing")
	// A day later the notice is gone (the audit log keeps the entry).
	old := &sipdesk.AuditEntry{CustomerID: other.id, SIPAccountID: other.first.Account.ID, Actor: "edge:edge-a",
		Action: sipdesk.AuditPasswordGuessing, Detail: detail, At: e.now.Add(-25 * time.Hour)}
	if err := e.st.Update(context.Background(), func(tx sipdesk.Tx) error { return tx.InsertAudit(old) }); err != nil {
		t.Fatal(err)
	}
	other.b.get("/sip-accounts").must(t, 200).mustNot(t, "Password guessing")
	other.b.get("/audit").must(t, 200, "Password guessing stopped")
}
