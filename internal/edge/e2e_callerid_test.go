//go:build e2e

package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// carrierInvites parses the INVITEs out of a sipp message log, by the
// Request-URI user (the dialed number).
func carrierInvites(t *testing.T, log string) map[string]*siptest.Msg {
	t.Helper()
	out := map[string]*siptest.Msg{}
	for _, chunk := range strings.Split(log, "\n-----") {
		i := strings.Index(chunk, "\nINVITE sip:")
		if i < 0 {
			continue
		}
		m, err := siptest.Parse([]byte(strings.ReplaceAll(chunk[i+1:], "\n", "\r\n")))
		if err != nil {
			t.Fatalf("parse carrier INVITE: %v\n%s", err, chunk)
		}
		user := strings.TrimPrefix(strings.Fields(m.StartLine)[1], "sip:")
		user, _, _ = strings.Cut(user, "@")
		out[user] = m
	}
	return out
}

type cidCall struct {
	acct    *sipdesk.SIPAccount
	prefix  string // tech prefix
	to      string // "+digits"
	devFrom string // the device's From user
	label   string
}

// TestSippCallerID: for 14 destinations over the rule kinds (prefix,
// country, all, pool, blocked, set_by_caller, default, trial) the From and
// P-Asserted-Identity the carrier receives are what svc.SimulateCallerID
// answers; the device's P-Asserted-Identity, P-Preferred-Identity and
// Remote-Party-ID never reach the carrier. A trial customer's calls carry
// the verified phone whatever the device sends, until the top-up.
func TestSippCallerID(t *testing.T) {
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	ctx := context.Background()
	cust := f.customer()

	rules := []*sipdesk.CallerIDRule{
		{Name: "london sales", ApplyFor: sipdesk.ScopePrefix, Prefix: "44203", Type: sipdesk.RuleSpecific, Numbers: []string{"+442030000001"}, DisplayName: "Sales"},
		{Name: "uk pool", ApplyFor: sipdesk.ScopePrefix, Prefix: "44", Type: sipdesk.RuleSpecific, Numbers: []string{"+441110000001", "+441110000002", "+441110000003"}},
		{Name: "france", ApplyFor: sipdesk.ScopeCountry, Country: "FR", Type: sipdesk.RuleSpecific, Numbers: []string{"+33100000001"}},
		{Name: "germany hidden", ApplyFor: sipdesk.ScopePrefix, Prefix: "49", Type: sipdesk.RuleBlocked},
		{Name: "nyc keeps", ApplyFor: sipdesk.ScopePrefix, Prefix: "1212", Type: sipdesk.RuleSetByCaller},
		{Name: "everything", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleSpecific, Numbers: []string{"+15550000777"}, DisplayName: "Main"},
	}
	f.update(func(tx sipdesk.Tx) error {
		for _, r := range rules {
			r.CustomerID = cust
			if err := tx.InsertRule(r); err != nil {
				return err
			}
		}
		return nil
	})
	a := f.ipAccount(cust, "rules", "1111", "127.0.0.5/32")
	b := f.ipAccount(cust, "all calls", "2222", "127.0.0.5/32")
	c := f.ipAccount(cust, "default", "3333", "127.0.0.5/32")
	f.modify(a, func(a *sipdesk.SIPAccount) {
		a.CallerID = sipdesk.CallerIDSetting{DefaultNumber: "+15550000111", DisplayName: "Acme",
			RuleIDs: []int64{rules[0].ID, rules[1].ID, rules[2].ID, rules[3].ID, rules[4].ID}}
	})
	f.modify(b, func(a *sipdesk.SIPAccount) { a.CallerID.RuleIDs = []int64{rules[5].ID} })
	f.modify(c, func(a *sipdesk.SIPAccount) {
		a.CallerID = sipdesk.CallerIDSetting{DefaultNumber: "+15550000333", DisplayName: "Desk"}
	})

	// A trial customer whose account selects rules it may not use yet.
	trial := &sipdesk.Customer{Email: "trial@example.com", PasswordHash: "x", VerifiedPhone: "+15550000444",
		BillingState: sipdesk.BillingTrial, ChannelLimit: 5, ChannelScope: sipdesk.ScopeOutbound, SIPAccountQuota: 10}
	f.update(func(tx sipdesk.Tx) error { return tx.InsertCustomer(trial) })
	trialRule := &sipdesk.CallerIDRule{CustomerID: trial.ID, Name: "uk", ApplyFor: sipdesk.ScopePrefix, Prefix: "44",
		Type: sipdesk.RuleSpecific, Numbers: []string{"+442070000009"}}
	f.update(func(tx sipdesk.Tx) error { return tx.InsertRule(trialRule) })
	d := f.ipAccount(trial.ID, "trial trunk", "4444", "127.0.0.5/32")
	f.modify(d, func(a *sipdesk.SIPAccount) {
		a.CallerID = sipdesk.CallerIDSetting{DefaultNumber: "+15550000444", DisplayName: "Trial Co", RuleIDs: []int64{trialRule.ID}}
	})

	carrierPort := siptest.FreePort(t, "127.0.0.9")
	s := startEdge(t, st, func(cfg *Config) { cfg.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", carrierPort) })
	waitApplied(t, s, st)

	run := func(t *testing.T, calls []cidCall) map[string]*siptest.Msg {
		t.Helper()
		var csv strings.Builder
		csv.WriteString("SEQUENTIAL\n")
		for i, c := range calls {
			fmt.Fprintf(&csv, "%s%s;%s;Device %d\n", c.prefix, strings.TrimPrefix(c.to, "+"), c.devFrom, i)
		}
		inf := filepath.Join(t.TempDir(), "cid.csv")
		os.WriteFile(inf, []byte(csv.String()), 0o600)
		uas := startSippCarrier(t, sippCarrier(t, "hold_any"), "127.0.0.9", carrierPort, len(calls))
		out, err := runSipp(t, "-sf", sippUAC(t, "hangup"), "-inf", inf, "-key", "domain", testRealm,
			"-i", "127.0.0.5", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.5")), "-bind_local", "-m", fmt.Sprint(len(calls)), "-l", "20",
			"-r", "20", "-d", "100", "-timeout", "30s", "-recv_timeout", "5000", "-mp", "25000", s.UDPAddr().String())
		if err != nil {
			t.Fatalf("sipp uac: %v\n%s", err, tail(out, 3000))
		}
		got := carrierInvites(t, uas.wait(t))
		if len(got) != len(calls) {
			t.Fatalf("carrier got %d INVITEs, want %d", len(got), len(calls))
		}
		return got
	}
	check := func(t *testing.T, calls []cidCall, got map[string]*siptest.Msg) {
		t.Helper()
		for i, c := range calls {
			inv := got[c.to]
			if inv == nil {
				t.Fatalf("%s: no INVITE for %s at the carrier", c.label, c.to)
			}
			want, err := svc.SimulateCallerID(ctx, c.acct.CustomerID, c.acct.ID, c.to, c.devFrom)
			if err != nil {
				t.Fatal(err)
			}
			from, pai := inv.Get("From"), inv.All("P-Asserted-Identity")
			for _, h := range []string{"P-Preferred-Identity", "Remote-Party-ID"} {
				if v := inv.All(h); len(v) > 0 {
					t.Errorf("%s: the device's %s reached the carrier: %q", c.label, h, v)
				}
			}
			if len(pai) != 1 || strings.Contains(pai[0], "evil") {
				t.Errorf("%s: P-Asserted-Identity %q", c.label, pai)
				continue
			}
			fromURI := siptest.URIOf(from)
			display := ""
			if j := strings.IndexByte(from, '<'); j > 0 {
				display = strings.Trim(strings.TrimSpace(from[:j]), `"`)
			}
			wantDisplay := want.DisplayName
			if want.Reason == sipdesk.ReasonRuleCountry || want.Reason == sipdesk.ReasonRulePrefix || want.Reason == sipdesk.ReasonRuleAll {
				if r := ruleByID(rules, want.RuleID); r != nil && r.Type == sipdesk.RuleSetByCaller {
					wantDisplay = fmt.Sprintf("Device %d", i) // the simulator does not get the device's display name
				}
			}
			switch {
			case want.Anonymous:
				if from != `"Anonymous" <sip:anonymous@anonymous.invalid>;tag=`+siptest.Param(from, "tag") || inv.Get("Privacy") != "id" ||
					!strings.Contains(pai[0], "sip:"+c.acct.CallerID.DefaultNumber+"@") {
					t.Errorf("%s: blocked: From %q, Privacy %q, PAI %q", c.label, from, inv.Get("Privacy"), pai[0])
				}
			case len(poolOf(rules, want.RuleID)) > 1:
				// A pool: the simulator's pick is random; the edge's must be a member.
				user := strings.TrimPrefix(fromURI, "sip:")
				user, _, _ = strings.Cut(user, "@")
				if !slices.Contains(poolOf(rules, want.RuleID), user) || !strings.Contains(pai[0], "sip:"+user+"@") {
					t.Errorf("%s: pool: From %q PAI %q, want a number of %v", c.label, from, pai[0], poolOf(rules, want.RuleID))
				}
			default:
				if !strings.HasPrefix(fromURI, "sip:"+want.Number+"@") || display != wantDisplay || !strings.Contains(pai[0], "sip:"+want.Number+"@") ||
					inv.Get("Privacy") != "" {
					t.Errorf("%s: From %q (display %q) PAI %q; simulator: %+v", c.label, from, display, pai[0], want)
				}
			}
			t.Logf("%-28s to %-15s → From %-58s PAI %s (simulator: %s %q rule %d)", c.label, c.to, from[:strings.Index(from, ";tag")], pai[0], want.Reason, want.Number, want.RuleID)
		}
	}

	t.Run("rules", func(t *testing.T) {
		calls := []cidCall{
			{a, "1111", "+442031234567", "+15550009001", "prefix 44203 (named)"},
			{a, "1111", "+441612345678", "+15550009002", "pool 44"},
			{a, "1111", "+447700900123", "+15550009003", "pool 44 (mobile)"},
			{a, "1111", "+33612345678", "+15550009004", "country FR (mobile)"},
			{a, "1111", "+33123456789", "+15550009005", "country FR"},
			{a, "1111", "+4930123456", "+15550009006", "blocked 49"},
			{a, "1111", "+12125551234", "+15550009007", "set_by_caller 1212"},
			{a, "1111", "+34912345678", "+15550009008", "no rule: default"},
			{b, "2222", "+81312345678", "+15550009009", "all calls (JP)"},
			{b, "2222", "+61212345678", "+15550009010", "all calls (AU)"},
			{c, "3333", "+5511987654321", "+15550009011", "default with display"},
			{c, "3333", "+16135550100", "+15550009012", "default (CA)"},
			{d, "4444", "+442079460000", "+15550009013", "trial (rule 44 ignored)"},
			{d, "4444", "+4915112345678", "+15550009014", "trial"},
		}
		check(t, calls, run(t, calls))
	})
	t.Run("trial until top-up", func(t *testing.T) {
		calls := []cidCall{
			{d, "4444", "+442079460001", "+15550009101", "trial"},
			{d, "4444", "+4915112345679", "+19998887777", "trial (device sends another)"},
		}
		got := run(t, calls)
		for _, c := range calls {
			if from := got[c.to].Get("From"); !strings.Contains(from, "sip:+15550000444@") {
				t.Fatalf("trial call to %s: From %q, want the verified phone", c.to, from)
			}
		}
		check(t, calls, got)
		if _, err := svc.TopUp(ctx, trial.ID, 2000); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, s, st)
		calls = []cidCall{
			{d, "4444", "+442079460002", "+15550009103", "after top-up: rule 44"},
			{d, "4444", "+4915112345670", "+15550009104", "after top-up: default"},
		}
		got = run(t, calls)
		if from := got[calls[0].to].Get("From"); !strings.Contains(from, "sip:+442070000009@") {
			t.Fatalf("after top-up: From %q, want the rule's number", from)
		}
		check(t, calls, got)
	})
}

func poolOf(rs []*sipdesk.CallerIDRule, id int64) []string {
	if r := ruleByID(rs, id); r != nil {
		return r.Numbers
	}
	return nil
}

func ruleByID(rs []*sipdesk.CallerIDRule, id int64) *sipdesk.CallerIDRule {
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	return nil
}
