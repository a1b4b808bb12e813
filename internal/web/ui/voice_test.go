package ui

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/notify"
	"github.com/sipdesk/sipdesk/internal/store"
)

// uiChannel takes SMS codes; uiVoice is a voice channel that is never
// reached here (the dispatcher is not run: the pages only queue calls).
type uiChannel struct{ name string }

func (c uiChannel) Name() string                               { return c.name }
func (c uiChannel) Send(context.Context, notify.Message) error { return nil }
func (c uiChannel) TryTimeout() time.Duration                  { return time.Minute }

// newVoiceEnv is newEnv with a dispatcher whose channels include "voice".
func newVoiceEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, now: time.Now()}
	now := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	d := notify.New(st, notify.Options{SMS: smsOnly{}, Extra: []notify.Channel{uiChannel{notify.ChannelVoice}}, Log: slog.New(slog.DiscardHandler), Now: now})
	e.svc = app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://portal.test", Log: slog.New(slog.DiscardHandler), Now: now, Messages: d})
	e.ui = New(e.svc, Options{})
	mux := http.NewServeMux()
	e.ui.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// smsOnly is a fast SMS channel.
type smsOnly struct{}

func (smsOnly) Name() string                               { return "sms" }
func (smsOnly) Send(context.Context, notify.Message) error { return nil }

// latestChannel is the channel of the latest code queued for number.
func latestChannel(t *testing.T, e *env, customerID int64, number string) string {
	t.Helper()
	var ch string
	err := e.st.View(context.Background(), func(tx sipdesk.Tx) error {
		ns, err := tx.CallerIDNumbers(customerID)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Number == number {
				m, err := tx.LatestVerificationMessage(n.ID)
				if err != nil {
					return err
				}
				ch = m.Channel
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// "Call me instead" on the verify page: under the resend interval, then a
// call is queued and the page says the phone is being called.
func TestVerifyCallMeInstead(t *testing.T) {
	e := newVoiceEnv(t)
	b := e.browser()
	e.signup(b, "voice@acme.example", "+447700900777").must(t, 200, "Verify your phone", "Send a new code", "Call me instead")
	b.post("/verify/call", nil).must(t, 200, "less than a minute ago")
	e.advance(2 * time.Minute)
	b.post("/verify/call", nil).must(t, 200, "We're calling +447700900777 now", "to read out a 6-digit code")
	var id int64
	_ = e.st.View(context.Background(), func(tx sipdesk.Tx) error {
		c, err := tx.CustomerByEmail("voice@acme.example")
		if err == nil {
			id = c.ID
		}
		return err
	})
	if ch := latestChannel(t, e, id, "+447700900777"); ch != notify.ChannelVoice {
		t.Fatalf("latest code queued for %q, want voice", ch)
	}

	// Without a voice channel there is no button.
	plain := newEnv(t)
	pb := plain.browser()
	p := plain.signup(pb, "novoice@acme.example", "+447700900778").must(t, 200, "Verify your phone")
	p.mustNot(t, "Call me instead")
	pb.post("/verify/call", nil).must(t, 200, "voice calls are not offered here")
}

// "Call me instead" next to a Caller ID number waiting for its code.
func TestNumbersCallMeInstead(t *testing.T) {
	e := newVoiceEnv(t)
	c := e.customer("nums@acme.example", "+447700900888")
	e.topUp(c)
	c.b.post("/caller-id/numbers", url.Values{"number": {"+442071234567"}}).must(t, 200, "+442071234567", "Call me instead")
	e.advance(2 * time.Minute)
	p := c.b.get("/caller-id/numbers")
	m := callFormRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no Call me instead form:\n%s", p.body)
	}
	id := m[1]
	c.b.post("/caller-id/numbers/"+id+"/call", nil).must(t, 200, "We're calling +442071234567 now")
	if ch := latestChannel(t, e, c.id, "+442071234567"); ch != notify.ChannelVoice {
		t.Fatalf("latest code queued for %q, want voice", ch)
	}
	c.b.post("/caller-id/numbers/"+id+"/call", nil).must(t, http.StatusTooManyRequests, "less than a minute ago")
}

var callFormRe = regexp.MustCompile(`action="/caller-id/numbers/(\d+)/call"`)
