package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/notify"
	"github.com/sipdesk/sipdesk/internal/store"
)

// failingVoice is a voice channel whose call is not answered, as an edge
// writes it back (cmd/sipdesk's voice channel returns the edge request's
// result as a permanent error).
type failingVoice struct{}

func (failingVoice) Name() string { return notify.ChannelVoice }
func (failingVoice) Send(context.Context, notify.Message) error {
	return notify.Permanent(errors.New("voice call: callee did not answer: 486 (Busy Here)"))
}
func (failingVoice) TryTimeout() time.Duration { return time.Minute }

type okSMS struct{}

func (okSMS) Name() string                               { return "sms" }
func (okSMS) Send(context.Context, notify.Message) error { return nil }

// POST /caller-ids/{id}/call-me queues a voice call (202); the failed call
// shows in the number's delivery; without voice calls it is refused on
// number; another customer's number is not found.
func TestCallMe(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	d := notify.New(st, notify.Options{SMS: okSMS{}, Extra: []notify.Channel{failingVoice{}}, Log: slog.New(slog.DiscardHandler), Now: now})
	svc := app.New(st, app.Options{Realm: "sipdesk.local", BaseURL: "http://127.0.0.1", Log: slog.New(slog.DiscardHandler), Now: now, Messages: d})
	e := &env{t: t, svc: svc, st: st, api: New(svc, slog.New(slog.DiscardHandler))}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	c, other := e.customer("a@example.com", "+15551230001"), e.customer("b@example.com", "+15551230002")
	e.topUp(c)
	n := e.do("POST", "/api/v1/caller-ids", c.token, map[string]any{"number": "+15557654321"}).must(t, 202)
	id := n.id()
	e.do("POST", idPath("/api/v1/caller-ids", id, "/call-me"), other.token, nil).must(t, 404)
	// Under the resend interval: refused like any new code.
	if r := e.do("POST", idPath("/api/v1/caller-ids", id, "/call-me"), c.token, nil); r.status < 400 {
		t.Fatalf("call-me right after the SMS code: %d %s", r.status, r.raw)
	}
	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	r := e.do("POST", idPath("/api/v1/caller-ids", id, "/call-me"), c.token, nil).must(t, 202)
	if r.str("delivery", "channel") != "voice" || r.str("delivery", "state") != "queued" {
		t.Fatalf("call-me answer: %s", r.raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		items := e.do("GET", "/api/v1/caller-ids", c.token, nil).must(t, 200).items()
		var del map[string]any
		for _, it := range items {
			if it["number"] == "+15557654321" {
				del, _ = it["delivery"].(map[string]any)
			}
		}
		if del != nil && del["state"] == "failed" {
			if del["channel"] != "voice" || !strings.Contains(del["error"].(string), "did not answer") {
				t.Fatalf("delivery: %v", del)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed call never showed in delivery: %v", del)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A server without voice calls refuses it on number.
	plain := newEnv(t)
	pc := plain.customer("c@example.com", "+15551230003")
	plain.topUp(pc)
	pn := plain.do("POST", "/api/v1/caller-ids", pc.token, map[string]any{"number": "+15557654322"}).must(t, 202)
	if r := plain.do("POST", idPath("/api/v1/caller-ids", pn.id(), "/call-me"), pc.token, nil); r.status != 422 || r.errField() != "number" {
		t.Fatalf("call-me without voice calls: %d %s", r.status, r.raw)
	}
}
