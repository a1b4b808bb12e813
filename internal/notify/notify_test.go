package notify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/app/apptest"
	"github.com/sipdesk/sipdesk/internal/notify"
	"github.com/sipdesk/sipdesk/internal/store"
)

const secret = "webhook-secret-for-tests-0123456789"

type fixture struct {
	st     *store.DB
	svc    *app.Service
	d      *notify.Dispatcher
	logs   *bytes.Buffer
	offset atomic.Int64 // added to the wall clock of service and dispatcher
}

func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }

// newFixture runs a service on a fresh SQLite store whose codes go through
// ch, retrying fast.
func newFixture(t *testing.T, ch notify.Channel, o notify.Options) *fixture {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))
	f := &fixture{st: st, logs: logs}
	o.SMS, o.Log, o.Now = ch, log, f.now
	if o.Backoff == 0 {
		o.Backoff = 20 * time.Millisecond
	}
	f.d = notify.New(st, o)
	f.svc = app.New(st, app.Options{Messages: f.d, Log: log, Now: f.now})
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) signup(t *testing.T) *sipdesk.Customer {
	t.Helper()
	c, err := apptest.Signup(context.Background(), f.svc, f.st, "c"+sipdesk.GenerateToken("")[:8]+"@example.com", "Portal-Pass-123", "+447700900123")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// message is the customer's latest verification message, as stored.
func (f *fixture) message(t *testing.T, customerID int64) *sipdesk.VerificationMessage {
	t.Helper()
	var m *sipdesk.VerificationMessage
	err := f.st.View(context.Background(), func(tx sipdesk.Tx) error {
		ns, err := tx.CallerIDNumbers(customerID)
		if err != nil {
			return err
		}
		m, err = tx.LatestVerificationMessage(ns[0].ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// until runs the dispatcher's queue until cond holds, for at most 5 s.
func (f *fixture) until(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached in 5 s")
}

var codeRE = regexp.MustCompile(`code is (\d{6})\.`)

// receiver is a webhook receiver as the docs describe it: it verifies the
// signature and the timestamp with VerifyWebhook, drops repeated message
// ids, and answers the scripted statuses first.
type receiver struct {
	mu        sync.Mutex
	script    []int
	requests  int
	delivered map[string]string // message id → text
	rejected  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if err := notify.VerifyWebhook([]byte(secret), r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.rejected = append(rc.rejected, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if len(rc.script) > 0 {
		status := rc.script[0]
		rc.script = rc.script[1:]
		w.WriteHeader(status)
		return
	}
	var m struct{ To, Text, MessageID, Purpose string }
	var raw map[string]string
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	m.To, m.Text, m.MessageID, m.Purpose = raw["to"], raw["text"], raw["message_id"], raw["purpose"]
	if m.MessageID == "" || m.To != "+447700900123" || m.Purpose != sipdesk.PurposeSignup {
		http.Error(w, "bad message", 400)
		return
	}
	if rc.delivered == nil {
		rc.delivered = map[string]string{}
	}
	rc.delivered[m.MessageID] = m.Text // a repeat overwrites: dedup by id
	w.WriteHeader(http.StatusAccepted)
}

func TestWebhookRetriesUntilDeliveredOnce(t *testing.T) {
	rc := &receiver{script: []int{500, 500}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	wh, err := notify.NewWebhook(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, wh, notify.Options{})
	c := f.signup(t)

	// The portal's first look tries at once: 500, the customer is told.
	ms, err := f.svc.CodeDeliveries(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("CodeDeliveries = %v", ms)
	}
	for _, m := range ms {
		if !m.Failing() || m.Code != "" {
			t.Fatalf("after a 500: failing %v, code %q (state %s)", m.Failing(), m.Code, m.State)
		}
	}
	f.until(t, func() bool { return f.message(t, c.ID).State == sipdesk.MessageSent })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 3 || len(rc.delivered) != 1 || len(rc.rejected) != 0 {
		t.Fatalf("receiver: %d requests, %d delivered, rejected %v; want 3 requests (500, 500, 200), 1 delivered", rc.requests, len(rc.delivered), rc.rejected)
	}
	var code string
	for _, text := range rc.delivered {
		m := codeRE.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("delivered text %q has no code", text)
		}
		code = m[1]
	}
	m := f.message(t, c.ID)
	if m.Code != "" || m.Attempts != 3 || m.Failing() {
		t.Errorf("stored message after delivery: code %q, attempts %d, failing %v", m.Code, m.Attempts, m.Failing())
	}
	checkCount(t, f.d, "webhook", notify.ResultError, 2)
	checkCount(t, f.d, "webhook", notify.ResultSent, 1)
	if strings.Contains(f.logs.String(), code) || strings.Contains(f.logs.String(), secret) {
		t.Error("the log holds the code or the webhook secret")
	}
	// The code delivered is the one that verifies the phone.
	if _, err := f.svc.VerifyPhone(context.Background(), c.ID, code); err != nil {
		t.Fatalf("VerifyPhone with the delivered code: %v", err)
	}
}

func checkCount(t *testing.T, d *notify.Dispatcher, channel, result string, want float64) {
	t.Helper()
	var m dto.Metric
	if err := d.Collector().(*prometheus.CounterVec).WithLabelValues(channel, result).Write(&m); err != nil {
		t.Fatal(err)
	}
	got := m.GetCounter().GetValue()
	if got != want {
		t.Errorf("sipdesk_verification_messages_total{channel=%q,result=%q} = %v, want %v", channel, result, got, want)
	}
}

func TestWebhookRecipeRejectsTamperingAndReplays(t *testing.T) {
	body := []byte(`{"to":"+447700900123","text":"Your sipdesk verification code is 123456.","message_id":"vm_1","purpose":"signup"}`)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := notify.Sign([]byte(secret), ts, body)
	if err := notify.VerifyWebhook([]byte(secret), ts, sig, body, now, 5*time.Minute); err != nil {
		t.Fatalf("a good request is refused: %v", err)
	}
	tampered := bytes.Replace(body, []byte("123456"), []byte("654321"), 1)
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	for name, err := range map[string]error{
		"tampered body":      notify.VerifyWebhook([]byte(secret), ts, sig, tampered, now, 5*time.Minute),
		"replayed timestamp": notify.VerifyWebhook([]byte(secret), old, notify.Sign([]byte(secret), old, body), body, now, 5*time.Minute),
		"timestamp swapped":  notify.VerifyWebhook([]byte(secret), old, sig, body, now, 5*time.Minute),
		"other secret":       notify.VerifyWebhook([]byte("another-secret-0123456789"), ts, sig, body, now, 5*time.Minute),
		"no signature":       notify.VerifyWebhook([]byte(secret), ts, "", body, now, 5*time.Minute),
		"bad timestamp":      notify.VerifyWebhook([]byte(secret), "soon", sig, body, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The docs quote the Go recipe and give a shell one: both must agree with
// what the sender signs.
func TestRecipeInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("verify.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	recipe := strings.TrimSpace(s[strings.Index(s, "// recipe:start")+len("// recipe:start") : strings.Index(s, "// recipe:end")])
	if !strings.Contains(string(doc), recipe) {
		t.Fatalf("docs/OPERATIONS.md does not quote VerifyWebhook as in internal/notify/verify.go:\n%s", recipe)
	}
	m := regexp.MustCompile("(?s)<!-- webhook-verify-sh -->\\s*```sh\\n(.*?)```").FindStringSubmatch(string(doc))
	if m == nil {
		t.Fatal("docs/OPERATIONS.md has no shell recipe after <!-- webhook-verify-sh -->")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: the shell recipe is not run")
	}
	body := []byte(`{"to":"+447700900123","text":"code 123456","message_id":"vm_2","purpose":"signup"}`)
	run := func(ts, sig string, body []byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/body.json", body, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", m[1])
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SECRET="+secret, "TS="+ts, "SIG="+sig)
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := notify.Sign([]byte(secret), ts, body)
	if got := run(ts, sig, body); got != "valid" {
		t.Errorf("shell recipe on a good request: %q", got)
	}
	if got := run(ts, sig, append(body, ' ')); got == "valid" {
		t.Error("shell recipe accepts a tampered body")
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	if got := run(old, notify.Sign([]byte(secret), old, body), body); got == "valid" {
		t.Error("shell recipe accepts an hour-old timestamp")
	}
}

// A refusal (4xx) is not retried: the message is given up at once and the
// customer is told.
func TestKannelRefusalGivesUp(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Error(w, "Authorization failed for sendsms", http.StatusForbidden)
	}))
	defer srv.Close()
	k, err := notify.NewKannel(srv.URL, "sipdesk", "kannel-pass-xyz", "sipdesk")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, k, notify.Options{ReportBase: "http://portal.test"})
	c := f.signup(t)
	f.d.DeliverNow(context.Background(), c.ID)
	f.d.DeliverNow(context.Background(), c.ID)
	m := f.message(t, c.ID)
	if m.State != sipdesk.MessageFailed || m.Code != "" || !m.Failing() || hits != 1 {
		t.Fatalf("after a 403: state %s, code %q, %d requests; want failed, no code, 1 request", m.State, m.Code, hits)
	}
	checkCount(t, f.d, "kannel", notify.ResultFailed, 1)
	if strings.Contains(f.logs.String(), "kannel-pass-xyz") || strings.Contains(m.LastError, "kannel-pass-xyz") {
		t.Error("the Kannel password reached the log or the store")
	}
}

// An unreachable gateway: the error names no URL (it carries the password),
// the message waits for its retry.
func TestKannelDownIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	k, err := notify.NewKannel(url, "sipdesk", "kannel-pass-xyz", "")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, k, notify.Options{Backoff: time.Minute})
	c := f.signup(t)
	f.d.DeliverNow(context.Background(), c.ID)
	m := f.message(t, c.ID)
	if m.State != sipdesk.MessageQueued || !m.Failing() || m.Attempts != 1 || m.NextAt.Before(time.Now().Add(50*time.Second)) {
		t.Fatalf("after a refused connection: %+v", m)
	}
	if strings.Contains(f.logs.String()+m.LastError, "kannel-pass-xyz") {
		t.Error("the Kannel password reached the log or the store")
	}
	checkCount(t, f.d, "kannel", notify.ResultError, 1)
}

// Delivery reports: an unknown token is not found; a message's own token
// moves it to delivered or undelivered.
func TestDeliveryReports(t *testing.T) {
	var mu sync.Mutex
	var reportURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reportURL = r.URL.Query().Get("dlr-url")
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "0: Accepted for delivery")
	}))
	defer srv.Close()
	k, _ := notify.NewKannel(srv.URL, "u", "p", "")
	f := newFixture(t, k, notify.Options{ReportBase: "http://portal.test/"})
	c := f.signup(t)
	f.d.DeliverNow(context.Background(), c.ID)
	if f.message(t, c.ID).State != sipdesk.MessageSent {
		t.Fatal("not sent")
	}
	if !strings.HasPrefix(reportURL, "http://portal.test"+notify.ReportPath) || !strings.HasSuffix(reportURL, "?type=%d") {
		t.Fatalf("dlr-url = %q", reportURL)
	}
	h := f.d.ReportHandler()
	get := func(path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code
	}
	path := strings.TrimPrefix(strings.TrimSuffix(reportURL, "?type=%d"), "http://portal.test")
	if code := get(notify.ReportPath + "not-a-token?type=1"); code != 404 {
		t.Errorf("unknown token: %d, want 404", code)
	}
	if code := get(path + "?type=x"); code != 400 {
		t.Errorf("bad type: %d, want 400", code)
	}
	if code := get(path + "?type=8"); code != 200 || f.message(t, c.ID).State != sipdesk.MessageSent {
		t.Errorf("type 8: %d, state %s", code, f.message(t, c.ID).State)
	}
	if code := get(path + "?type=1"); code != 200 || f.message(t, c.ID).State != sipdesk.MessageDelivered {
		t.Errorf("type 1: %d, state %s", code, f.message(t, c.ID).State)
	}
	checkCount(t, f.d, "kannel", notify.ResultDelivered, 1)
}

// Every channel goes through the service's issue and resend functions, so
// their limits hold: a resend within the minute is refused and queues
// nothing; a later one replaces the queued code, which is never sent.
func TestResendLimitAndReplace(t *testing.T) {
	var mu sync.Mutex
	var texts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		texts = append(texts, r.URL.Query().Get("text"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "0: Accepted for delivery")
	}))
	defer srv.Close()
	k, _ := notify.NewKannel(srv.URL, "u", "p", "")
	f := newFixture(t, k, notify.Options{})
	c := f.signup(t)
	first := f.message(t, c.ID)
	if err := f.svc.ResendSignupCode(context.Background(), c.ID); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("resend within the minute: %v, want rate limited", err)
	}
	if m := f.message(t, c.ID); m.ID != first.ID {
		t.Fatal("a refused resend queued a message")
	}

	// A Caller ID number asked for twice, two minutes apart, before the
	// first code went out: only the second code is sent, and it works.
	ctx := context.Background()
	p, _, err := f.svc.CreateVerifiedCustomer(ctx, "p@example.com", "Portal-Pass-123", "+447700900999")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TopUp(ctx, p.ID, 2000); err != nil {
		t.Fatal(err)
	}
	n1, err := f.svc.AddCallerIDNumber(ctx, p.ID, "+442079460002")
	if err != nil {
		t.Fatal(err)
	}
	f.offset.Add(int64(2 * time.Minute))
	n2, err := f.svc.AddCallerIDNumber(ctx, p.ID, "+442079460002")
	if err != nil || n2.ID != n1.ID {
		t.Fatalf("second code: %v", err)
	}
	f.d.DeliverNow(ctx, p.ID)
	mu.Lock()
	defer mu.Unlock()
	if len(texts) != 1 {
		t.Fatalf("sent %d messages, want 1 (the first code was replaced): %q", len(texts), texts)
	}
	code := codeRE.FindStringSubmatch(texts[0])[1]
	if _, err := f.svc.VerifyCallerIDNumber(ctx, p.ID, n1.ID, code); err != nil {
		t.Fatalf("the code sent does not verify the number: %v", err)
	}
}

// A receiver that does not answer in time gets the same message again
// (same message_id, new signature); it keeps one.
func TestWebhookTimeoutIsRetried(t *testing.T) {
	rc := &receiver{}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // longer than the try's timeout
		}
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	wh, _ := notify.NewWebhook(srv.URL, secret)
	f := newFixture(t, wh, notify.Options{TryTimeout: 100 * time.Millisecond})
	c := f.signup(t)
	f.until(t, func() bool { return f.message(t, c.ID).State == sipdesk.MessageSent })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if calls.Load() != 2 || rc.requests != 2 || len(rc.delivered) != 1 {
		t.Fatalf("%d calls, %d verified requests, %d messages kept; want 2, 2, 1", calls.Load(), rc.requests, len(rc.delivered))
	}
	if m := f.message(t, c.ID); !strings.Contains(f.logs.String(), "timed out") || m.Attempts != 2 {
		t.Errorf("attempts %d; log:\n%s", m.Attempts, f.logs.String())
	}
	checkCount(t, f.d, "webhook", notify.ResultError, 1)
}
