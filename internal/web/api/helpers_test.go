package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

const portalPassword = "Portal-Password-1"

type env struct {
	t   *testing.T
	svc *app.Service
	st  sipdesk.Store
	api *API
	log *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	svc := app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://127.0.0.1", Log: slog.New(slog.DiscardHandler)})
	return &env{t: t, svc: svc, st: st, api: New(svc, log), log: &logs}
}

// customer is a verified customer with an API token and its first SIP account.
type customer struct {
	id    int64
	token string
	first int64
	phone string
	user  string // first account's username
	pass  string // first account's password
}

func (e *env) customer(email, phone string) customer {
	e.t.Helper()
	ctx := context.Background()
	c, first, err := e.svc.CreateVerifiedCustomer(ctx, email, portalPassword, phone)
	if err != nil {
		e.t.Fatalf("create customer: %v", err)
	}
	tok, err := e.svc.CreateAPIToken(ctx, c.ID, "test", app.ActorOperator)
	if err != nil {
		e.t.Fatalf("create token: %v", err)
	}
	return customer{id: c.ID, token: tok, first: first.Account.ID, phone: c.VerifiedPhone, user: first.Account.Username, pass: first.Password}
}

func (e *env) topUp(c customer) {
	e.t.Helper()
	if _, err := e.svc.TopUp(context.Background(), c.id, 5000); err != nil {
		e.t.Fatalf("topup: %v", err)
	}
}

// activate plays a single edge node that applied the current config, so that
// in_process accounts turn active.
func (e *env) activate() {
	e.t.Helper()
	ctx := context.Background()
	v, err := e.st.ConfigVersion(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.Heartbeat(ctx, "test-node", "all", v); err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.svc.ActivateApplied(ctx, 0); err != nil {
		e.t.Fatal(err)
	}
}

type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r resp) errCode() string  { return r.str("error", "code") }
func (r resp) errField() string { return r.str("error", "field") }

// str digs a string out of the body by keys.
func (r resp) str(keys ...string) string {
	v := r.get(keys...)
	s, _ := v.(string)
	return s
}

func (r resp) get(keys ...string) any {
	var v any = r.body
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (r resp) id() int64 {
	f, _ := r.get("id").(float64)
	return int64(f)
}

func (r resp) items() []map[string]any {
	list, _ := r.body["items"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
}

// do sends a request; body is sent as-is when a string, JSON-encoded otherwise.
func (e *env) do(method, path, token string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if strings.TrimSpace(r.raw) != "" {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, r.raw)
		}
	}
	return r
}

// must fails unless the answer has the status.
func (r resp) must(t *testing.T, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

var codeRE = regexp.MustCompile(`code is (\d{6})`)
var resetRE = regexp.MustCompile(`token=([^\s&"]+)`)

// lastMail returns the text of the newest mail to the address.
func (e *env) lastMail(to string) string {
	e.t.Helper()
	var text string
	err := e.st.View(context.Background(), func(tx sipdesk.Tx) error {
		ms, err := tx.Mails(100)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.To == to {
				text = m.Text
				return nil
			}
		}
		return nil
	})
	if err != nil || text == "" {
		e.t.Fatalf("no mail to %s (%v)", to, err)
	}
	return text
}

func (e *env) verificationCode(number string) string {
	e.t.Helper()
	m := codeRE.FindStringSubmatch(e.lastMail("sms:" + number))
	if m == nil {
		e.t.Fatalf("no code in the mail to %s", number)
	}
	return m[1]
}

func (e *env) resetToken(email string) string {
	e.t.Helper()
	m := resetRE.FindStringSubmatch(e.lastMail(email))
	if m == nil {
		e.t.Fatalf("no reset link in the mail to %s", email)
	}
	return m[1]
}

func idPath(prefix string, id int64, suffix string) string {
	return prefix + "/" + strconv.FormatInt(id, 10) + suffix
}

// doRaw sends a body with a content type of the caller's choice.
func (e *env) doRaw(method, path, token, contentType string, body io.Reader) resp {
	e.t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &r.body)
	return r
}
