//go:build e2e

package edge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/media/prompts"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestSippVoiceCallee: "Call me instead" through an edge request, with a
// sipp UAS as the callee behind the carrier trunk. sipp answers and hangs
// up the SIP side; its answer names the test's RTP socket as its media
// address (sipp 3.6 cannot save received RTP), and the payload arriving
// there equals the prompts for the code's digits, in order. The call
// record is a system call and no channel is taken.
func TestSippVoiceCallee(t *testing.T) {
	sink := newRTPSink(t, "127.0.0.8")
	rtpPort := sink.conn.LocalAddr().(*net.UDPAddr).Port
	sippPort := siptest.FreePort(t, "127.0.0.7")
	e := newCallEnv(t, 1, nil, func(c *Config) {
		c.Carrier = fmt.Sprintf("sip:127.0.0.7:%d", sippPort)
		c.VoiceCalls = true
	})
	uas := startSippUASScenario(t, "uas_voice.xml", "127.0.0.7", sippPort, 1, "-set", "rtpip", "127.0.0.8", "-set", "rtpport", fmt.Sprint(rtpPort))

	const code = "905172"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.svc.PlaceVoiceCall(ctx, sipdesk.VoiceCallRequest{CustomerID: e.cust, Number: "+15557654321", Code: code, From: "+15550009999"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != sipdesk.EdgeDone {
		t.Fatalf("voice call request: %+v", r)
	}
	log := uas.wait(t)
	if !strings.Contains(log, "INVITE sip:+15557654321@127.0.0.7") || !strings.Contains(log, "BYE sip:") {
		t.Fatalf("sipp did not see the INVITE and the BYE:\n%s", tail(log, 3000))
	}
	time.Sleep(200 * time.Millisecond)
	want, err := prompts.Code(prompts.ULaw, code)
	if err != nil {
		t.Fatal(err)
	}
	got, pts := sink.payload()
	if !bytes.Equal(got, want) {
		t.Fatalf("RTP payload at the callee's media address: %d bytes, want the PCMU prompts for %s: %d bytes (first difference at %d)",
			len(got), code, len(want), firstDiff(got, want))
	}
	if len(pts) != 1 || pts[0] == 0 {
		t.Fatalf("payload types %v, want only 0 (PCMU)", pts)
	}
	e.s.FlushRecords(3 * time.Second)
	var rec *sipdesk.CallRecord
	for _, x := range e.records() {
		if x.Direction == sipdesk.DirSystem {
			rec = x
		}
	}
	if rec == nil || rec.Reason != "played" || rec.CustomerID != e.cust || rec.AnsweredAt.IsZero() {
		t.Fatalf("call record: %+v", rec)
	}
	if n := e.live(); n != 0 {
		t.Fatalf("live leases: %d", n)
	}
}
