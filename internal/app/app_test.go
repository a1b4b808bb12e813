package app_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/app/apptest"
	"github.com/sipdesk/sipdesk/internal/store"
)

type fixture struct {
	ctx context.Context
	st  *store.DB
	svc *app.Service
	now time.Time
}

func newFixture(t *testing.T, o app.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{ctx: ctx, st: st, now: time.Now()}
	o.Now = func() time.Time { return f.now }
	o.BaseURL = "http://portal.test"
	f.svc = app.New(st, o)
	return f
}

func lastMail(t *testing.T, f *fixture) *sipdesk.Mail {
	t.Helper()
	var ms []*sipdesk.Mail
	if err := f.st.View(f.ctx, func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(1); return err }); err != nil || len(ms) == 0 {
		t.Fatalf("no mail: %v", err)
	}
	return ms[0]
}

// signup signs up through the email link, as a customer does.
func signup(f *fixture, email, password, phone string) (*sipdesk.Customer, error) {
	return apptest.Signup(f.ctx, f.svc, f.st, email, password, phone)
}

func TestSignupVerifyCreatesFirstAccount(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, err := signup(f, "New@Example.com", "Portal-Pass-123", "+1 555 123 0001")
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "new@example.com" || c.BillingState != sipdesk.BillingUnverified || c.VerifiedPhone != "+15551230001" {
		t.Fatalf("customer: %+v", c)
	}
	if _, err := f.svc.CreateAPIToken(f.ctx, c.ID, "x", app.ActorOperator); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatal("unverified customer got a token")
	}
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(lastMail(t, f).Text)
	if _, err := f.svc.VerifyPhone(f.ctx, c.ID, "000000"); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("wrong code: %v", err)
	}
	first, err := f.svc.VerifyPhone(f.ctx, c.ID, code)
	if err != nil {
		t.Fatal(err)
	}
	a := first.Account
	if len(a.Username) < 8 || sipdesk.ValidatePassword(first.Password) != nil || a.AuthType != sipdesk.AuthPassword {
		t.Fatalf("first account: %+v", a)
	}
	if a.CallerID.DefaultNumber != "+15551230001" {
		t.Fatalf("default Caller ID %q, want the verified phone", a.CallerID.DefaultNumber)
	}
	if a.Digest.HA1("MD5") != sipdesk.NewDigestHashes(a.Username, "sipdesk.local", first.Password).MD5 {
		t.Fatal("HA1 not for the realm")
	}
	c, _ = f.svc.Customer(f.ctx, c.ID)
	if c.BillingState != sipdesk.BillingTrial || c.ChannelLimit != 1 || c.SIPAccountQuota != 10 {
		t.Fatalf("after verification: %+v", c)
	}
	if _, err := f.svc.VerifyPhone(f.ctx, c.ID, code); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatal("verified twice")
	}
}

func TestVerificationAttemptsAreLimited(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, err := signup(f, "b@example.com", "Portal-Pass-123", "+15551230002")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(lastMail(t, f).Text)
	for range 5 {
		f.svc.VerifyPhone(f.ctx, c.ID, "999999")
	}
	if _, err := f.svc.VerifyPhone(f.ctx, c.ID, code); err == nil {
		t.Fatal("the right code worked after 5 wrong ones")
	}
	if err := f.svc.ResendSignupCode(f.ctx, c.ID); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("resend within a minute: %v", err)
	}
	f.now = f.now.Add(2 * time.Minute)
	if err := f.svc.ResendSignupCode(f.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	fresh := regexp.MustCompile(`\b\d{6}\b`).FindString(lastMail(t, f).Text)
	if _, err := f.svc.VerifyPhone(f.ctx, c.ID, fresh); err != nil {
		t.Fatalf("the resent code: %v", err)
	}
}

func TestAccountsActivateOnceApplied(t *testing.T) {
	f := newFixture(t, app.Options{AllowPrivateIPs: true, HoldIPAccounts: true})
	c, first, err := f.svc.CreateVerifiedCustomer(f.ctx, "c@example.com", "Portal-Pass-123", "+15551230003")
	if err != nil {
		t.Fatal(err)
	}
	if first.Account.Status != sipdesk.StatusInProcess {
		t.Fatalf("new account is %s, want in_process", first.Account.Status)
	}
	// No edge node is alive: nothing activates.
	if _, n, _ := f.svc.ActivateApplied(f.ctx, -1); n != 0 {
		t.Fatal("activated without any edge")
	}
	v, _ := f.st.ConfigVersion(f.ctx)
	if err := f.svc.Heartbeat(f.ctx, "edge-a", "edge", v); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Heartbeat(f.ctx, "edge-b", "edge", v-1); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := f.svc.ActivateApplied(f.ctx, -1); n != 0 {
		t.Fatal("activated before every edge applied it")
	}
	f.svc.Heartbeat(f.ctx, "edge-b", "edge", v)
	if _, n, err := f.svc.ActivateApplied(f.ctx, -1); n != 1 || err != nil {
		t.Fatalf("activated %d, %v", n, err)
	}
	a, _ := f.svc.SIPAccount(f.ctx, c.ID, first.Account.ID)
	if a.Status != sipdesk.StatusActive {
		t.Fatalf("status %s", a.Status)
	}
	// A held IP account waits for the operator.
	ipa, err := f.svc.CreateSIPAccount(f.ctx, c.ID, app.SIPAccountInput{Name: "pbx", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"127.0.0.2"}}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	v, _ = f.st.ConfigVersion(f.ctx)
	f.svc.Heartbeat(f.ctx, "edge-a", "edge", v)
	f.svc.Heartbeat(f.ctx, "edge-b", "edge", v)
	f.svc.ActivateApplied(f.ctx, -1)
	if a, _ := f.svc.SIPAccount(f.ctx, c.ID, ipa.Account.ID); a.Status != sipdesk.StatusInProcess {
		t.Fatal("held account activated")
	}
	if _, err := f.svc.ApproveSIPAccount(f.ctx, ipa.Account.ID); err != nil {
		t.Fatal(err)
	}
	v, _ = f.st.ConfigVersion(f.ctx)
	f.svc.Heartbeat(f.ctx, "edge-a", "edge", v)
	f.svc.Heartbeat(f.ctx, "edge-b", "edge", v)
	f.svc.ActivateApplied(f.ctx, -1)
	if a, _ := f.svc.SIPAccount(f.ctx, c.ID, ipa.Account.ID); a.Status != sipdesk.StatusActive {
		t.Fatalf("approved account is %s", a.Status)
	}
	// A dead node is not waited for.
	f.now = f.now.Add(time.Minute)
	f.svc.Heartbeat(f.ctx, "edge-a", "edge", v+100)
	if _, err := f.svc.UpdateSIPAccount(f.ctx, c.ID, ipa.Account.ID, app.SIPAccountPatch{AllowedIPs: &[]string{"127.0.0.3"}}, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	f.svc.ActivateApplied(f.ctx, -1)
	if a, _ := f.svc.SIPAccount(f.ctx, c.ID, ipa.Account.ID); a.Status != sipdesk.StatusActive {
		t.Fatalf("after an IP change applied by the only live edge: %s", a.Status)
	}
}

func TestCredentialResetFlow(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, first, err := f.svc.CreateVerifiedCustomer(f.ctx, "d@example.com", "Portal-Pass-123", "+15551230004")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SendCredentialReset(f.ctx, c.ID, first.Account.ID, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	m := lastMail(t, f)
	link := regexp.MustCompile(`http://portal\.test/sip-accounts/edit-credentials\?token=(\S+)`).FindStringSubmatch(m.Text)
	if m.To != "d@example.com" || link == nil || !strings.Contains(m.HTML, "Edit Credentials") {
		t.Fatalf("mail: %+v", m)
	}
	token := link[1]
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "newuser01", "New-Sip-Pass-99", app.Reauth{Password: "wrong"}); sipdesk.ErrorField(err) != "portal_password" {
		t.Fatalf("wrong portal password: %v", err)
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "newuser01", "weak", app.Reauth{Password: "Portal-Pass-123"}); sipdesk.ErrorField(err) != "password" {
		t.Fatalf("weak password: %v", err)
	}
	a, err := f.svc.CompleteCredentialReset(f.ctx, token, "newuser01", "New-Sip-Pass-99", app.Reauth{Password: "Portal-Pass-123"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != "newuser01" || a.Digest != sipdesk.NewDigestHashes("newuser01", "sipdesk.local", "New-Sip-Pass-99") {
		t.Fatal("credentials not changed")
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "newuser02", "New-Sip-Pass-99", app.Reauth{Password: "Portal-Pass-123"}); err == nil {
		t.Fatal("token reused")
	}
	// Expiry.
	f.svc.SendCredentialReset(f.ctx, c.ID, first.Account.ID, app.ActorOperator)
	token2 := regexp.MustCompile(`token=(\S+)`).FindStringSubmatch(lastMail(t, f).Text)[1]
	f.now = f.now.Add(31 * time.Minute)
	if _, err := f.svc.CredentialReset(f.ctx, token2); err == nil {
		t.Fatal("expired token accepted")
	}
	// Rate limit on wrong portal passwords.
	f.svc.SendCredentialReset(f.ctx, c.ID, first.Account.ID, app.ActorOperator)
	token3 := regexp.MustCompile(`token=(\S+)`).FindStringSubmatch(lastMail(t, f).Text)[1]
	for range 5 {
		f.svc.CompleteCredentialReset(f.ctx, token3, "", "New-Sip-Pass-98", app.Reauth{Password: "wrong"})
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token3, "", "New-Sip-Pass-98", app.Reauth{Password: "Portal-Pass-123"}); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("after 5 wrong portal passwords: %v", err)
	}
	es, _ := f.svc.Audit(f.ctx, c.ID, 50)
	found := false
	for _, e := range es {
		found = found || e.Action == sipdesk.AuditCredentialsChange
		if strings.Contains(e.Detail, "New-Sip-Pass-99") {
			t.Fatal("password in the audit log")
		}
	}
	if !found {
		t.Fatal("credential change not audited")
	}
}

func TestAuthTypeSwitch(t *testing.T) {
	f := newFixture(t, app.Options{AllowPrivateIPs: true})
	c, first, _ := f.svc.CreateVerifiedCustomer(f.ctx, "e@example.com", "Portal-Pass-123", "+15551230005")
	id := first.Account.ID
	ip := sipdesk.AuthIP
	if _, err := f.svc.UpdateSIPAccount(f.ctx, c.ID, id, app.SIPAccountPatch{AuthType: &ip}, app.ActorOperator); sipdesk.ErrorField(err) != "allowed_ips" {
		t.Fatalf("switch to IP without addresses: %v", err)
	}
	a, err := f.svc.UpdateSIPAccount(f.ctx, c.ID, id, app.SIPAccountPatch{AuthType: &ip, AllowedIPs: &[]string{"127.0.0.2"}}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != "" || a.Digest.MD5 != "" || a.JWTEnabled || a.Status != sipdesk.StatusInProcess {
		t.Fatalf("after switch to IP: %+v", a)
	}
	pw := sipdesk.AuthPassword
	a, err = f.svc.UpdateSIPAccount(f.ctx, c.ID, id, app.SIPAccountPatch{AuthType: &pw}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	if a.Username == "" || len(a.AllowedIPs) != 0 || !strings.Contains(lastMail(t, f).Subject, "Edit the credentials") {
		t.Fatalf("after switch to password: %+v", a)
	}
}

func TestTrialCallerIDAndSimulation(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, first, _ := f.svc.CreateVerifiedCustomer(f.ctx, "f@example.com", "Portal-Pass-123", "+15551230006")
	id := first.Account.ID
	if _, err := f.svc.SetCallerID(f.ctx, c.ID, id, sipdesk.CallerIDSetting{DisplayName: "Sales"}, app.ActorOperator); sipdesk.ErrorCode(err) != sipdesk.ETrialLocked {
		t.Fatalf("trial Caller ID change: %v", err)
	}
	ch, err := f.svc.SimulateCallerID(f.ctx, c.ID, id, "+442030001111", "+19999999999")
	if err != nil || ch.Number != "+15551230006" || ch.Reason != sipdesk.ReasonTrial {
		t.Fatalf("trial simulation: %+v %v", ch, err)
	}
	f.svc.TopUp(f.ctx, c.ID, 5000)
	r := &sipdesk.CallerIDRule{Name: "UK", ApplyFor: sipdesk.ScopePrefix, Prefix: "44", Type: sipdesk.RuleBlocked}
	if err := f.svc.SaveRule(f.ctx, c.ID, r, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetCallerID(f.ctx, c.ID, id, sipdesk.CallerIDSetting{DefaultNumber: "+15550000000"}, app.ActorOperator); sipdesk.ErrorField(err) != "default_number" {
		t.Fatalf("unverified default: %v", err)
	}
	if _, err := f.svc.SetCallerID(f.ctx, c.ID, id, sipdesk.CallerIDSetting{DefaultNumber: "+15551230006", RuleIDs: []int64{r.ID}}, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	ch, err = f.svc.SimulateCallerID(f.ctx, c.ID, id, "0044 20 3000 1111", "")
	if err != nil || !ch.Anonymous || ch.RuleID != r.ID {
		t.Fatalf("paid simulation: %+v %v", ch, err)
	}
	if _, err := f.svc.SimulateCallerID(f.ctx, c.ID, id, "12", ""); sipdesk.ErrorCode(err) != sipdesk.EInvalidNumber {
		t.Fatalf("bad number: %v", err)
	}
}

func TestSessions(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "s@example.com", "Portal-Pass-123", "+15551230009")
	tok, err := f.svc.CreateSession(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := f.svc.SessionCustomer(f.ctx, tok); err != nil || id != c.ID {
		t.Fatalf("session: %d %v", id, err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, tok+"x"); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatal("forged session accepted")
	}
	f.now = f.now.Add(app.SessionTTL)
	if _, err := f.svc.SessionCustomer(f.ctx, tok); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatal("expired session accepted")
	}
	f.now = f.now.Add(-time.Hour)
	f.svc.DeleteSession(f.ctx, tok)
	if _, err := f.svc.SessionCustomer(f.ctx, tok); err == nil {
		t.Fatal("session alive after logout")
	}
}

// TestNodeList: a node's state follows its heartbeat and what it reports,
// and nodes silent for a day are pruned.
func TestNodeList(t *testing.T) {
	f := newFixture(t, app.Options{})
	beat := func(n sipdesk.Node) {
		t.Helper()
		if err := f.svc.Beat(f.ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	beat(sipdesk.Node{Name: "old", Role: "edge"})
	f.now = f.now.Add(app.NodePrune)
	beat(sipdesk.Node{Name: "gone", Role: "edge", SIPAddr: "127.0.0.3:5060"})
	f.now = f.now.Add(app.NodeTTL + time.Second)
	beat(sipdesk.Node{Name: "a", Role: "edge", SIPAddr: "127.0.0.2:5060", HTTPAddr: "127.0.0.2:8080", Version: "v9", LiveCalls: 3, Bindings: 5})
	beat(sipdesk.Node{Name: "b", Role: "all", Draining: true})
	if n, err := f.svc.PruneNodes(f.ctx); n != 1 || err != nil {
		t.Fatalf("pruned %d, %v; want the node silent for a day", n, err)
	}
	ns, err := f.svc.NodeList(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range ns {
		got[n.Name] = n.State
	}
	want := map[string]string{"a": app.NodeAlive, "b": app.NodeDraining, "gone": app.NodeDead}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	if a := ns[0]; a.Name != "a" || a.LiveCalls != 3 || a.Bindings != 5 || a.Version != "v9" || a.HTTPAddr != "127.0.0.2:8080" {
		t.Fatalf("node a listed as %+v", a)
	}
}

// TestLoginOfficeBehindOneAddress: successful logins do not use up the
// source's budget (only failures count there), so 25 colleagues behind one
// address all log in; a sprayer's failures still lock the address.
func TestLoginOfficeBehindOneAddress(t *testing.T) {
	f := newFixture(t, app.Options{})
	if _, _, err := f.svc.CreateVerifiedCustomer(f.ctx, "office@example.com", "Portal-Pass-123", "+15551230009"); err != nil {
		t.Fatal(err)
	}
	ctx := app.WithSource(f.ctx, netip.MustParseAddr("198.51.100.20"))
	for i := range 25 {
		if _, err := f.svc.Login(ctx, "office@example.com", "Portal-Pass-123"); err != nil {
			t.Fatalf("login %d from the office: %v", i+1, err)
		}
	}
	f.now = f.now.Add(time.Minute) // past the per-minute request rate
	for i := range app.LoginMaxSource {
		if _, err := f.svc.Login(ctx, fmt.Sprintf("spray%d@example.com", i), "Wrong-Pass-123"); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := f.svc.Login(ctx, "office@example.com", "Portal-Pass-123"); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("after %d failures from the address: %v, want rate limited", app.LoginMaxSource, err)
	}
}
