package edge

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// padded is msg (an OPTIONS out of dialog) grown by an X-Pad header to
// size bytes on the wire.
func padded(t *testing.T, msg string, size int) string {
	t.Helper()
	head, _, _ := strings.Cut(msg, "\n\n")
	head += "\nX-Pad: "
	base := len(siptest.Fix(head + "\n\n"))
	if size < base {
		t.Fatalf("message of %d bytes is already %d", size, base)
	}
	return head + strings.Repeat("a", size-base) + "\n\n"
}

// TestMessageSizeLimits: sipgo's read buffer (transport.Tune) bounds a
// UDP datagram and a WebSocket message at sipmsg.MaxMessageSize and
// nothing else. Over WebSocket a message of the limit is answered, one
// over it is dropped (refusals message_too_large) and the connection goes
// on; over TCP a message of 20,000 bytes, read in several chunks, is
// answered. A flood of oversized WebSocket messages bans its source.
func TestMessageSizeLimits(t *testing.T) {
	e := newWSEnv(t)
	tooLarge := e.s.met.Refusals.WithLabelValues("message_too_large")
	p := newWSPhone(t, e.s, "probe")
	wsOptions := func(size int) string {
		p.cseq++
		return padded(t, "OPTIONS sip:"+testRealm+" SIP/2.0\nVia: SIP/2.0/WS "+wsHost+";branch=z9hG4bK"+p.callID+strings.Repeat("x", p.cseq)+
			"\nFrom: <sip:probe@"+testRealm+">;tag="+p.tag+"\nTo: <sip:"+testRealm+">\nCall-ID: "+p.callID+
			"\nCSeq: "+strconv.Itoa(p.cseq)+" OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n", size)
	}
	msg := wsOptions(sipmsg.MaxMessageSize)
	if n := len(siptest.Fix(msg)); n != sipmsg.MaxMessageSize {
		t.Fatalf("test message is %d bytes", n)
	}
	p.send(msg)
	if r := p.response(3 * time.Second); r.Code != 200 {
		t.Fatalf("WebSocket OPTIONS of %d bytes: %d %s", sipmsg.MaxMessageSize, r.Code, r.Reason)
	}

	p.send(wsOptions(sipmsg.MaxMessageSize + 800)) // cut by the read buffer
	deadline := time.Now().Add(3 * time.Second)
	for metricValue(tooLarge) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("refusals message_too_large %v after an oversized WebSocket message, want 1", metricValue(tooLarge))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.send(wsOptions(500))
	if r := p.response(3 * time.Second); r.Code != 200 || r.Get("CSeq") != "3 OPTIONS" {
		t.Fatalf("WebSocket OPTIONS after the oversized one: %d %s (CSeq %s), want 200 to CSeq 3", r.Code, r.Reason, r.Get("CSeq"))
	}

	u := newUAC(t, "tcp", "127.0.0.1", e.s)
	if r := u.send(padded(t, optionsMsg(u, ""), 20000)); r.Code != 200 {
		t.Fatalf("TCP OPTIONS of 20,000 bytes: %d %s", r.Code, r.Reason)
	}
	if v := metricValue(tooLarge); v != 1 {
		t.Fatalf("refusals message_too_large %v after TCP, want 1", v)
	}

	// With bans on: 20 oversized messages are garbage enough for a ban.
	b := newCallEnv(t, 5, nil, func(c *Config) {
		c.WSAddr = "127.0.0.1:0"
		c.WS.Origins = []string{testOrigin}
	})
	p = newWSPhone(t, b.s, "probe")
	for range 20 {
		p.send(wsOptions(sipmsg.MaxMessageSize + 800))
	}
	p.send(wsOptions(500))
	select {
	case m, ok := <-p.msgs:
		if ok {
			t.Fatalf("a banned source got %d %s", m.Code, m.Reason)
		}
	case <-time.After(time.Second):
	}
	if !b.s.shield.Banned(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("20 oversized WebSocket messages did not ban their source")
	}
}

// TestHeaderParamsLimit: a Via or a URI with more parameters than sipgo
// parses (sip.ParseMaxHeaderParams, 100) makes the message unparsable: it
// is dropped unanswered, and the next message from the same source is
// answered.
func TestHeaderParamsLimit(t *testing.T) {
	e := newWSEnv(t)
	u := newUAC(t, "udp", "127.0.0.1", e.s)
	var params strings.Builder
	for i := range 150 {
		params.WriteString(";p" + strconv.Itoa(i) + "=1")
	}
	for _, where := range []string{";rport\n", " SIP/2.0\n"} { // the Via, the Request-URI
		msg := strings.Replace(optionsMsg(u, ""), where, params.String()+where, 1)
		if err := u.c.Send(msg); err != nil {
			t.Fatal(err)
		}
		if m, err := u.c.RecvResponse(time.Second, 100); err == nil {
			t.Fatalf("OPTIONS with 150 parameters before %q: %d %s, want no answer", where, m.Code, m.Reason)
		}
	}
	if r := u.send(optionsMsg(u, "")); r.Code != 200 {
		t.Fatalf("OPTIONS after the dropped one: %d %s", r.Code, r.Reason)
	}
}
