package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/notify"
)

// slowVoice stands in for the edge's voice channel here (the call itself
// is tested with a real carrier UAS in internal/edge, TestVoiceCallReadsTheCode).
type slowVoice struct {
	mu   sync.Mutex
	sent []notify.Message
}

func (v *slowVoice) Name() string              { return notify.ChannelVoice }
func (v *slowVoice) TryTimeout() time.Duration { return 3 * time.Second }
func (v *slowVoice) Send(ctx context.Context, m notify.Message) error {
	time.Sleep(100 * time.Millisecond) // a call takes its time
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sent = append(v.sent, m)
	return nil
}

// smsSink takes SMS codes at once.
type smsSink struct{}

func (smsSink) Name() string                               { return "sink" }
func (smsSink) Send(context.Context, notify.Message) error { return nil }

func (v *slowVoice) calls() []notify.Message {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]notify.Message(nil), v.sent...)
}

// "Call me instead": the code goes to the voice channel under the limits of
// every code (not within a minute of the last one), a page's DeliverNow
// does not wait for the call, the queue places it with the customer's id,
// and the code read out verifies the phone.
func TestCallMeGoesThroughTheVoiceChannel(t *testing.T) {
	voice := &slowVoice{}
	f := newFixture(t, smsSink{}, notify.Options{Extra: []notify.Channel{voice}})
	if !f.svc.VoiceCalls() {
		t.Fatal("the service does not offer voice calls with a voice channel")
	}
	c := f.signup(t)
	ctx := context.Background()
	err := f.svc.CallMe(ctx, c.ID, "")
	if err == nil || !strings.Contains(err.Error(), "less than a minute ago") {
		t.Fatalf("a call right after the SMS code: %v, want the resend interval", err)
	}
	f.offset.Add(int64(61 * time.Second))
	if err := f.svc.CallMe(ctx, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	if m := f.message(t, c.ID); m.Channel != notify.ChannelVoice || m.State != sipdesk.MessageQueued {
		t.Fatalf("queued message: channel %q state %q", m.Channel, m.State)
	}
	start := time.Now()
	f.d.DeliverNow(ctx, c.ID)
	if len(voice.calls()) != 0 || time.Since(start) > time.Second {
		t.Fatal("DeliverNow placed the call (a page would wait for it)")
	}
	f.until(t, func() bool { return len(voice.calls()) == 1 && f.message(t, c.ID).State == sipdesk.MessageSent })
	call := voice.calls()[0]
	if call.CustomerID != c.ID || call.To != "+447700900123" || len(call.Code) != 6 {
		t.Fatalf("call: %+v", call)
	}
	if _, err := f.svc.VerifyPhone(ctx, c.ID, call.Code); err != nil {
		t.Fatalf("the code read out does not verify the phone: %v", err)
	}
	if err := f.svc.CallMe(ctx, c.ID, ""); err == nil {
		t.Fatal("a call for a verified phone was queued")
	}
}
