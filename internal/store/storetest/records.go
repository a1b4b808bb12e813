package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Keyset pages and filters of call records and the audit log (store:
// call.go CallRecords, audit.go AuditPage).

// testCallRecordPages: 300 records, many sharing a start time, walked in
// pages of 7 by (started_at, id) with no duplicate and no gap, in order;
// the filters select exactly what they name.
func testCallRecordPages(t *testing.T, su *suite) {
	s := su.open(t)
	c, other := newCustomer(t, s), newCustomer(t, s)
	a, b := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
	var all []*sipdesk.CallRecord
	update(t, s, func(tx sipdesk.Tx) error {
		for i := range 300 {
			r := &sipdesk.CallRecord{CallID: uniq(), CustomerID: c.ID, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
				From: "sip:dev@x", To: fmt.Sprintf("sip:+4420%04d@y", i), CallerID: "+15550001",
				StartedAt: at(time.Duration(i/4) * time.Second), Disposition: sipdesk.DispAnswered, Node: "n1"} // 4 per second
			if i%3 == 0 {
				r.SIPAccountID, r.Direction, r.Disposition = b.ID, sipdesk.DirInbound, sipdesk.DispBusy
			}
			if i == 299 {
				r.StartedAt = at(10 * time.Second) // inserted last, older than most: order is by time, not id
			}
			if err := tx.InsertCallRecord(r); err != nil {
				return err
			}
			all = append(all, r)
		}
		return tx.InsertCallRecord(&sipdesk.CallRecord{CallID: uniq(), CustomerID: other.ID, StartedAt: at(0), To: "sip:+44200001@y"})
	})
	before := func(x, y *sipdesk.CallRecord) bool { // x is listed before y
		return x.StartedAt.After(y.StartedAt) || x.StartedAt.Equal(y.StartedAt) && x.ID > y.ID
	}
	walk := func(f sipdesk.CallFilter) []*sipdesk.CallRecord {
		var got []*sipdesk.CallRecord
		f.CustomerID, f.Limit = c.ID, 7
		for pages := 0; pages < 100; pages++ {
			var page []*sipdesk.CallRecord
			view(t, s, func(tx sipdesk.Tx) (err error) {
				page, err = tx.CallRecords(f)
				return err
			})
			got = append(got, page...)
			if len(page) < f.Limit {
				return got
			}
			last := page[len(page)-1]
			f.After = &sipdesk.CallKey{StartedAt: last.StartedAt, ID: last.ID}
		}
		t.Fatal("paging does not end")
		return nil
	}
	check := func(name string, got []*sipdesk.CallRecord, keep func(*sipdesk.CallRecord) bool) {
		t.Helper()
		want := map[int64]bool{}
		for _, r := range all {
			if keep(r) {
				want[r.ID] = true
			}
		}
		seen := map[int64]bool{}
		for i, r := range got {
			if seen[r.ID] {
				t.Errorf("%s: record %d listed twice", name, r.ID)
			}
			seen[r.ID] = true
			if !want[r.ID] {
				t.Errorf("%s: record %d should not be listed", name, r.ID)
			}
			if i > 0 && !before(got[i-1], r) {
				t.Errorf("%s: record %d listed before %d out of order", name, got[i-1].ID, r.ID)
			}
		}
		if len(seen) != len(want) {
			t.Errorf("%s: %d records listed, want %d", name, len(seen), len(want))
		}
	}
	check("all pages", walk(sipdesk.CallFilter{}), func(*sipdesk.CallRecord) bool { return true })
	check("SIP account", walk(sipdesk.CallFilter{SIPAccountID: b.ID}), func(r *sipdesk.CallRecord) bool { return r.SIPAccountID == b.ID })
	check("direction", walk(sipdesk.CallFilter{Direction: sipdesk.DirOutbound}), func(r *sipdesk.CallRecord) bool { return r.Direction == sipdesk.DirOutbound })
	check("disposition", walk(sipdesk.CallFilter{Disposition: sipdesk.DispBusy}), func(r *sipdesk.CallRecord) bool { return r.Disposition == sipdesk.DispBusy })
	check("number", walk(sipdesk.CallFilter{Number: "4420012"}), func(r *sipdesk.CallRecord) bool {
		var n int
		fmt.Sscanf(r.To, "sip:+4420%04d@y", &n)
		return n >= 120 && n <= 129
	})
	check("time range", walk(sipdesk.CallFilter{Since: at(20 * time.Second), Until: at(30 * time.Second)}), func(r *sipdesk.CallRecord) bool {
		return !r.StartedAt.Before(at(20*time.Second)) && r.StartedAt.Before(at(30*time.Second))
	})
	check("wildcards match themselves only", walk(sipdesk.CallFilter{Number: "%"}), func(*sipdesk.CallRecord) bool { return false })
}

// testAuditPages: entries sharing a time walked in pages without
// duplicates or gaps; action and time filters.
func testAuditPages(t *testing.T, su *suite) {
	s := su.open(t)
	c, other := newCustomer(t, s), newCustomer(t, s)
	var want []*sipdesk.AuditEntry
	update(t, s, func(tx sipdesk.Tx) error {
		for i := range 60 {
			e := &sipdesk.AuditEntry{CustomerID: c.ID, Actor: "customer", Action: sipdesk.AuditSIPAccountUpdated, At: at(time.Duration(i/5) * time.Second)}
			if i%4 == 0 {
				e.Action = sipdesk.AuditLogin
			}
			if err := tx.InsertAudit(e); err != nil {
				return err
			}
			want = append(want, e)
		}
		return tx.InsertAudit(&sipdesk.AuditEntry{CustomerID: other.ID, Actor: "operator", Action: sipdesk.AuditLogin})
	})
	walk := func(f sipdesk.AuditFilter) []*sipdesk.AuditEntry {
		var got []*sipdesk.AuditEntry
		f.CustomerID, f.Limit = c.ID, 6
		for range 100 {
			var page []*sipdesk.AuditEntry
			view(t, s, func(tx sipdesk.Tx) (err error) {
				page, err = tx.AuditPage(f)
				return err
			})
			got = append(got, page...)
			if len(page) < f.Limit {
				return got
			}
			last := page[len(page)-1]
			f.After = &sipdesk.AuditKey{At: last.At, ID: last.ID}
		}
		t.Fatal("paging does not end")
		return nil
	}
	count := func(name string, got []*sipdesk.AuditEntry, keep func(*sipdesk.AuditEntry) bool) {
		t.Helper()
		seen, n := map[int64]bool{}, 0
		for i, e := range got {
			if seen[e.ID] || e.CustomerID != c.ID || !keep(e) {
				t.Errorf("%s: entry %d listed twice, or not selected", name, e.ID)
			}
			seen[e.ID] = true
			if i > 0 && (got[i-1].At.Before(e.At) || got[i-1].At.Equal(e.At) && got[i-1].ID < e.ID) {
				t.Errorf("%s: out of order at %d", name, i)
			}
		}
		for _, e := range want {
			if keep(e) {
				n++
			}
		}
		if len(got) != n {
			t.Errorf("%s: %d entries, want %d", name, len(got), n)
		}
	}
	count("all", walk(sipdesk.AuditFilter{}), func(*sipdesk.AuditEntry) bool { return true })
	count("logins", walk(sipdesk.AuditFilter{Actions: []string{sipdesk.AuditLogin, sipdesk.AuditLoginFailed}}), func(e *sipdesk.AuditEntry) bool { return e.Action == sipdesk.AuditLogin })
	count("time", walk(sipdesk.AuditFilter{Since: at(3 * time.Second), Until: at(5 * time.Second)}), func(e *sipdesk.AuditEntry) bool {
		return !e.At.Before(at(3*time.Second)) && e.At.Before(at(5*time.Second))
	})
}
