//go:build hostile

package web

// The outside attacks of issue 14 against the composed server (web.New on a
// real SQLite store, over real TCP), each as the attacker ran it: parallel
// password guesses, lockouts aimed at a customer, forged X-Forwarded-For,
// open redirects, verification brute force and SMS pumping, leaks in
// conflict messages, /metrics and the outbox, hostile JSON and names.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/mail"
)

const attackPass = "Portal-Secret-Pass-7"

// attackServer is web.New on a real store and TCP port, with a settable
// clock.
type attackServer struct {
	t    *testing.T
	base string
	svc  *app.Service
	st   sipdesk.Store
	reg  *prometheus.Registry

	mu  sync.Mutex
	now time.Time
}

func (s *attackServer) clock() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
func (s *attackServer) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

func startAttackServer(t *testing.T, o Options, ao app.Options) *attackServer {
	t.Helper()
	s := &attackServer{t: t, now: time.Now(), reg: prometheus.NewRegistry()}
	ao.Now, ao.AllowPrivateIPs = s.clock, true
	o.Registry = s.reg
	s.base, s.svc, s.st = serveWeb(t, slog.New(slog.DiscardHandler), o, ao)
	return s
}

// customer creates a verified, paid customer with the attack password.
func (s *attackServer) customer(email, phone string) int64 {
	s.t.Helper()
	c, _, err := s.svc.CreateVerifiedCustomer(context.Background(), email, attackPass, phone)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.svc.TopUp(context.Background(), c.ID, 50); err != nil {
		s.t.Fatal(err)
	}
	return c.ID
}

// client is a browser (own cookies) that may claim an X-Forwarded-For.
type client struct {
	s   *attackServer
	c   *http.Client
	xff string
}

func (s *attackServer) browser() *client {
	jar, _ := cookiejar.New(nil)
	return &client{s: s, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request (newRequest), from c.xff when set.
func (c *client) do(method, path, bearer string, body any) answer {
	req := newRequest(c.s.base, method, path, bearer, body)
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.s.t.Errorf("%s %s: %v", method, path, err)
		return answer{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

func (c *client) login(email, pass string, extra ...string) answer {
	v := url.Values{"email": {email}, "password": {pass}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return c.do("POST", "/login", "", v)
}

// TestHostileParallelGuesses: 30 guesses for one email sent at once, the
// right password as number 25. Before, the limit was read before the
// password check and counted after it: all 30 were checked and number 25
// logged in. Now each attempt is reserved first: at most 5 are checked (the
// rest get 429 without a check), and the right one gets in only if it was
// among those 5.
func TestHostileParallelGuesses(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	s.customer("victim@acme.example", "+447700900201")
	var wg sync.WaitGroup
	codes := make([]int, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pass := fmt.Sprintf("Wrong-Guess-%02d", i)
			if i == 24 {
				pass = attackPass
			}
			codes[i] = s.browser().login("victim@acme.example", pass).status
		}()
	}
	wg.Wait()
	checked := 0
	for _, c := range codes {
		if c != http.StatusTooManyRequests {
			checked++
		}
	}
	t.Logf("answers: %v (right password: %d)", codes, codes[24])
	if checked > app.LoginMaxAccount {
		t.Fatalf("%d of 30 parallel guesses were checked, limit %d", checked, app.LoginMaxAccount)
	}
	if codes[24] == http.StatusSeeOther && checked > app.LoginMaxAccount {
		t.Fatal("the right password got in beyond the limit")
	}
	// The account is locked now for anyone without a device cookie, even
	// with the right password.
	if c := s.browser().login("victim@acme.example", attackPass).status; codes[24] != http.StatusSeeOther && c != http.StatusTooManyRequests {
		t.Fatalf("after the burst: %d, want 429", c)
	}
}

// TestHostileLockoutSparesKnownBrowser: an attacker behind a load balancer
// (a trusted proxy, distinct X-Forwarded-For per guess) fails 30 times on a
// customer's email. Before, 5 failures locked the customer out of the portal
// for 15 minutes. Now the customer's own browser (it logged in before: a
// signed device cookie) still logs in; a new browser is locked; the
// attacker's sources are counted one by one (not the balancer's address);
// a client that is not a trusted proxy cannot pick its source with a
// forged X-Forwarded-For.
func TestHostileLockoutSparesKnownBrowser(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, app.Options{})
	s.customer("owner@acme.example", "+447700900202")
	own := s.browser()
	own.xff = "198.51.100.10"
	if a := own.login("owner@acme.example", attackPass); a.status != http.StatusSeeOther {
		t.Fatalf("first login: %d", a.status)
	}
	own.do("POST", "/logout", "", url.Values{})
	refused := 0
	for i := range 30 {
		b := s.browser()
		b.xff = fmt.Sprintf("203.0.113.%d", 10+i)
		if b.login("owner@acme.example", "Wrong-Guess-1").status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != 30-app.LoginMaxAccount {
		t.Fatalf("%d of 30 guesses refused, want %d", refused, 30-app.LoginMaxAccount)
	}
	if a := own.login("owner@acme.example", attackPass); a.status != http.StatusSeeOther {
		t.Fatalf("the customer's own browser after 30 failures from elsewhere: %d, want 303", a.status)
	}
	fresh := s.browser()
	fresh.xff = "198.51.100.11"
	if a := fresh.login("owner@acme.example", attackPass); a.status != http.StatusTooManyRequests {
		t.Fatalf("a browser that never logged in: %d, want 429", a.status)
	}
	// The balancer's address itself was never counted: another customer
	// behind it logs in.
	s.customer("other@acme.example", "+447700900203")
	other := s.browser()
	other.xff = "198.51.100.12"
	if a := other.login("other@acme.example", attackPass); a.status != http.StatusSeeOther {
		t.Fatalf("another customer behind the balancer: %d", a.status)
	}

	// Without a trusted proxy, X-Forwarded-For is the client's own text: a
	// sprayer that changes it on every guess is still one source.
	d := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	sprayed := 0
	for i := range app.LoginMaxSource + 3 {
		b := d.browser()
		b.xff = fmt.Sprintf("192.0.2.%d", i+1)
		if b.login(fmt.Sprintf("spray%d@acme.example", i), "Wrong-Guess-1").status == http.StatusTooManyRequests {
			sprayed++
		}
	}
	if sprayed != 3 {
		t.Fatalf("forged X-Forwarded-For from an untrusted peer: %d refused, want 3 (one source)", sprayed)
	}
}

// TestHostileRedirectTargets: every bypass of the old check (it let
// "/\t/evil" and "/.\evil" through, which browsers read as //evil) lands on
// a same-site page, for the login's next (logged out: the POST; logged in:
// the GET) and the rule form's return.
func TestHostileRedirectTargets(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	s.customer("r@acme.example", "+447700900204")
	bypasses := []string{"/%09/evil", "/.%5Cevil", "https:evil", `/\evil`, "//evil", "/\t/evil", `/.\evil`, "/%2F/evil", "https://evil.example/", "/\x00/evil", "\\\\evil", "/%0d%0aSet-Cookie:x=1", "http:/evil"}
	sameSite := func(where, next, loc string) {
		t.Helper()
		u, err := url.Parse(loc)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n\x00") {
			t.Errorf("%s next=%q: Location %q leaves the site", where, next, loc)
		}
	}
	for _, next := range bypasses {
		raw := next
		if dec, err := url.QueryUnescape(next); err == nil {
			raw = dec // what the form field carries once decoded
		}
		b := s.browser()
		a := b.login("r@acme.example", attackPass, "next", raw)
		if a.status != http.StatusSeeOther {
			t.Fatalf("login with next=%q: %d", next, a.status)
		}
		sameSite("POST /login", next, a.header.Get("Location"))
		// Logged in, the GET /login?next= redirect.
		g := b.do("GET", "/login?next="+url.QueryEscape(raw), "", nil)
		sameSite("GET /login", next, g.header.Get("Location"))
		// The rule form's return field.
		r := b.do("POST", "/caller-id/rules", "", url.Values{"name": {"R"}, "apply_for": {"all"}, "type": {"anonymous"}, "return": {raw}})
		if r.status == http.StatusSeeOther {
			sameSite("POST /caller-id/rules", next, r.header.Get("Location"))
		}
	}
	// A same-site path still works.
	a := s.browser().login("r@acme.example", attackPass, "next", "/audit?x=1")
	if loc := a.header.Get("Location"); loc != "/audit?x=1" {
		t.Fatalf("a same-site next: %q", loc)
	}
}

var codeRe = regexp.MustCompile(`code is (\d{6})`)

// TestHostileVerificationBruteForce: re-adding a pending Caller ID number
// used to issue a fresh code and reset its attempt counter at once: 20
// cycles of 6 guesses in 10 s, a message to the victim each time. Now a
// code goes out at most once a minute and 5 times a day per number, tries
// are counted per number for the day across resends (10), at most 3 numbers
// wait for a code, and verification messages are capped per customer.
func TestHostileVerificationBruteForce(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	spID := s.customer("sp@acme.example", "+447700900205")
	tok, err := s.svc.CreateAPIToken(context.Background(), spID, "t", app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	victim := "+447700900999"
	add := func() answer { return b.do("POST", "/api/v1/caller-ids", tok, `{"number":"`+victim+`"}`) }
	first := add()
	if first.status != http.StatusCreated && first.status != http.StatusOK && first.status != http.StatusAccepted {
		t.Fatalf("add: %d %s", first.status, first.body)
	}
	id := regexp.MustCompile(`"id":(\d+)`).FindStringSubmatch(first.body)[1]
	guess := func(code string) answer {
		return b.do("POST", "/api/v1/caller-ids/"+id+"/verify", tok, `{"code":"`+code+`"}`)
	}
	// The attack: re-add, 6 guesses, again, as fast as possible.
	sent, tried := 1, 0
	for cycle := range 20 {
		if cycle > 0 {
			if a := add(); a.status < 300 {
				sent++
			}
		}
		for g := range 6 {
			if a := guess(fmt.Sprintf("%06d", cycle*6+g)); a.status != http.StatusTooManyRequests && !strings.Contains(a.body, "expired") {
				tried++
			}
		}
	}
	t.Logf("20 re-add cycles at once: %d codes sent, %d guesses checked", sent, tried)
	if sent != 1 || tried > 5 {
		t.Fatalf("re-adding within a minute: %d codes sent (want 1), %d guesses checked (want ≤ 5)", sent, tried)
	}
	// Slowly, a minute apart: 5 codes a day, 10 tries a day in all.
	for range 10 {
		s.advance(61 * time.Second)
		if a := add(); a.status < 300 {
			sent++
		}
		for g := range 6 {
			if a := guess(fmt.Sprintf("9%05d", g)); a.status != http.StatusTooManyRequests && !strings.Contains(a.body, "expired") {
				tried++
			}
		}
	}
	t.Logf("a minute apart for 10 minutes: %d codes sent, %d guesses checked", sent, tried)
	if sent > app.CodeMaxPerNumberDay || tried > app.CodeMaxTriesDay {
		t.Fatalf("per day: %d codes sent (max %d), %d guesses checked (max %d)", sent, app.CodeMaxPerNumberDay, tried, app.CodeMaxTriesDay)
	}
	// Pending numbers: at most 3 wait for their code.
	added := 0
	for i := range 10 {
		if a := b.do("POST", "/api/v1/caller-ids", tok, fmt.Sprintf(`{"number":"+4477009011%02d"}`, i)); a.status < 300 {
			added++
		}
	}
	if added != app.MaxPendingNumbers-1 { // the victim's number is still pending
		t.Fatalf("10 international numbers in a row: %d accepted, want %d", added, app.MaxPendingNumbers-1)
	}
}

// TestHostileSignupPumpingAndProbing: 12 signups from one address were all
// accepted, each sending a message, and a signup for a taken email said so.
// Now signups are limited per source (5 an hour), and the answer for a
// taken email is the same page as for a new one (the address gets a note).
func TestHostileSignupPumpingAndProbing(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	s.customer("taken@acme.example", "+447700900206")
	b := s.browser()
	signup := func(email string) answer {
		return b.do("POST", "/signup", "", url.Values{"email": {email}, "password": {attackPass}, "password_confirm": {attackPass}, "phone": {"+447700900207"}})
	}
	taken, fresh := signup("taken@acme.example"), signup("fresh@acme.example")
	norm := func(a answer) string {
		return strings.ReplaceAll(regexp.MustCompile(`nonce-[^']+'|nonce="[^"]+"`).ReplaceAllString(a.body, ""), "fresh@acme.example", "taken@acme.example")
	}
	if taken.status != fresh.status || norm(taken) != norm(fresh) {
		t.Fatalf("a taken email answers %d, a new one %d; bodies differ: %v", taken.status, fresh.status, norm(taken) != norm(fresh))
	}
	accepted := 2
	for i := range 10 {
		if signup(fmt.Sprintf("pump%d@acme.example", i)).status == http.StatusOK {
			accepted++
		}
	}
	if accepted != app.SignupMaxSource {
		t.Fatalf("12 signups from one address: %d accepted, want %d", accepted, app.SignupMaxSource)
	}
}

// TestHostileLeaks: a conflict told customer A whose address and prefix were
// there ("tech prefix 1111 is already used on address 8.8.8.8/32"), A could
// fence off a /16, /metrics listed customer ids without a token, reset links
// stayed in the outbox in clear, and the dev mailbox had no CSP nor no-store.
func TestHostileLeaks(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true, Metrics: MetricsOptions{Token: "metrics-secret-1"}}, app.Options{})
	ctx := context.Background()
	a := s.customer("a@acme.example", "+447700900208")
	bID := s.customer("b@acme.example", "+447700900209")
	if _, err := s.svc.CreateSIPAccount(ctx, bID, app.SIPAccountInput{Name: "PBX", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"8.8.8.8"}, TechPrefix: "1111"}, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	_, err := s.svc.CreateSIPAccount(ctx, a, app.SIPAccountInput{Name: "Probe", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"8.8.8.8"}, TechPrefix: "1111"}, app.ActorOperator)
	if msg := fmt.Sprint(err); !strings.HasSuffix(msg, "address 8.8.8.8/32 is in use by another account") || strings.Contains(msg, "1111") {
		t.Fatalf("conflict message: %q", msg)
	}
	// A /16 waits for an operator and fences nobody off meanwhile.
	wide, err := s.svc.CreateSIPAccount(ctx, a, app.SIPAccountInput{Name: "Fence", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"9.9.0.0/16"}}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !wide.Account.HeldForReview || wide.Account.Status != sipdesk.StatusInProcess {
		t.Fatalf("a /16: held %v, status %s", wide.Account.HeldForReview, wide.Account.Status)
	}
	if _, err := s.svc.CreateSIPAccount(ctx, bID, app.SIPAccountInput{Name: "Inside", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"9.9.9.9"}}, app.ActorOperator); err != nil {
		t.Fatalf("an address inside a held range: %v", err)
	}
	if _, err := s.svc.ApproveSIPAccount(ctx, wide.Account.ID); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatalf("approving a range over another account: %v", err)
	}

	// /metrics: a token, and no customer label by default.
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sipdesk_channels", Help: "t"}, []string{"customer"})
	s.reg.MustRegister(g)
	g.WithLabelValues("41").Set(2)
	g.WithLabelValues("42").Set(3)
	b := s.browser()
	if m := b.do("GET", "/metrics", "", nil); m.status != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", m.status)
	}
	m := b.do("GET", "/metrics", "metrics-secret-1", nil)
	if m.status != 200 || strings.Contains(m.body, `customer="`) || !strings.Contains(m.body, "sipdesk_channels 5") {
		t.Fatalf("/metrics: %d, customer labels %v, sum %v", m.status, strings.Contains(m.body, `customer="`), strings.Contains(m.body, "sipdesk_channels 5"))
	}

	// The outbox: a reset link, delivered, is redacted; old rows pruned.
	accts, _ := s.svc.SIPAccounts(ctx, a)
	if err := s.svc.SendCredentialReset(ctx, a, accts[0].ID, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	sender := &sentMail{}
	dctx, cancel := context.WithCancel(ctx)
	go mail.Deliver(dctx, s.st, sender, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	deadline := time.Now().Add(5 * time.Second)
	for !sender.has("edit-credentials?token=") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if !sender.has("edit-credentials?token=") {
		t.Fatal("the reset mail was not delivered")
	}
	var ms []*sipdesk.Mail
	s.st.View(ctx, func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(0); return err })
	for _, m := range ms {
		if !m.SentAt.IsZero() && (strings.Contains(m.Text+m.HTML, "token=") || codeRe.MatchString(m.Text)) {
			t.Fatalf("a delivered mail keeps its link or code in the outbox: %q", m.Text)
		}
	}
	s.advance(app.OutboxKeep + time.Hour)
	if err := s.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	s.st.View(ctx, func(tx sipdesk.Tx) (err error) { ms, err = tx.Mails(0); return err })
	if len(ms) != 0 {
		t.Fatalf("%d outbox rows after 30 days", len(ms))
	}

	// The dev mailbox: no-store and a CSP.
	dm := b.do("GET", "/dev/mail", "", nil)
	if dm.header.Get("Cache-Control") != "no-store" || !strings.Contains(dm.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("dev mailbox headers: %v", dm.header)
	}
	if dm.header.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS over plain HTTP")
	}
	h := startAttackServer(t, Options{Secure: true}, app.Options{})
	if hs := h.browser().do("GET", "/login", "", nil); !strings.Contains(hs.header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("no HSTS with an https base URL: %v", hs.header)
	}
}

type sentMail struct {
	mu   sync.Mutex
	text []string
}

func (s *sentMail) Send(_ context.Context, m *sipdesk.Mail) error {
	s.mu.Lock()
	s.text = append(s.text, m.Text)
	s.mu.Unlock()
	return nil
}

func (s *sentMail) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.text {
		if strings.Contains(t, sub) {
			return true
		}
	}
	return false
}

// TestHostileJSONAndNames: invalid UTF-8 and lone surrogates were stored as
// U+FFFD, duplicate keys were accepted (the last won), and names took
// U+202E (right-to-left override) and zero-width characters. Now each is a
// 400 (JSON) or 422 (names) naming the field, and nothing is stored.
func TestHostileJSONAndNames(t *testing.T) {
	s := startAttackServer(t, Options{DevMailbox: true}, app.Options{})
	id := s.customer("j@acme.example", "+447700900210")
	tok, err := s.svc.CreateAPIToken(context.Background(), id, "t", app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser()
	for _, c := range []struct{ name, body, field string }{
		{"invalid UTF-8", "{\"name\":\"Bad\xff\xfeName\"}", "name"},
		{"lone surrogate", `{"name":"Bad\ud800Name"}`, "name"},
		{"duplicate key", `{"name":"Shown","name":"Stored"}`, "name"},
		{"nested duplicate key", `{"name":"X","caller_id":{"mode":"a","mode":"b"}}`, "caller_id.mode"},
	} {
		a := b.do("POST", "/api/v1/sip-accounts", tok, c.body)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, a.status, a.body, c.field)
		}
	}
	for _, name := range []string{"Evil\u202Egnp.exe", "Zero\u200Bwidth", "Bidi\u2066iso", "BOM\uFEFF", "Ctl\u0085x"} {
		a := b.do("POST", "/api/v1/sip-accounts", tok, fmt.Sprintf(`{"name":%q}`, name))
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `"field":"name"`) {
			t.Errorf("name %+q: %d %s", name, a.status, a.body)
		}
	}
	as, _ := s.svc.SIPAccounts(context.Background(), id)
	if len(as) != 1 {
		t.Fatalf("%d SIP accounts after refused bodies, want the first one only", len(as))
	}
}
