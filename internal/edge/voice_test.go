package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/media/prompts"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// rtpSink collects the RTP a callee receives on a real UDP socket.
type rtpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts []rtp.Packet
	done chan struct{}
}

func newRTPSink(t *testing.T, ip string) *rtpSink {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	k := &rtpSink{conn: c, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
				k.mu.Lock()
				k.pkts = append(k.pkts, p)
				k.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-k.done })
	return k
}

// payload is the received audio in sequence order, and the payload types seen.
func (k *rtpSink) payload() ([]byte, map[uint8]int) {
	k.mu.Lock()
	ps := append([]rtp.Packet(nil), k.pkts...)
	k.mu.Unlock()
	sort.SliceStable(ps, func(i, j int) bool { return int16(ps[i].SequenceNumber-ps[j].SequenceNumber) < 0 })
	var out []byte
	pts := map[uint8]int{}
	for _, p := range ps {
		out = append(out, p.Payload...)
		pts[p.PayloadType]++
	}
	return out, pts
}

// voiceInvite waits for the voice call's INVITE at the carrier (10 s: the
// race detector on a loaded machine is slow), failing at once if the call
// returns before sending it.
func voiceInvite(t *testing.T, fc *fakeCarrier, errc <-chan error) *siptest.Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-errc:
			t.Fatalf("PlaceVoiceCall returned before the carrier saw its INVITE: %v", err)
		case m := <-fc.reqs:
			if m.Method == "INVITE" {
				return m
			}
		case <-deadline:
			t.Fatal("carrier: no INVITE within 10 s")
		}
	}
}

// The edge calls a number through the carrier, the carrier answers, and
// the RTP it receives is the intro and the code's digits twice, byte for
// byte the embedded prompts; the call is recorded as a system call and
// takes no channel: with a limit of 1, the customer's own call still goes
// through while the code is read out.
func TestVoiceCallReadsTheCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		law  prompts.Law
		pt   string
	}{{"pcmu", prompts.ULaw, "0"}, {"pcma", prompts.ALaw, "8"}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCallEnv(t, 1, nil, nil)
			sink := newRTPSink(t, "127.0.0.9")
			port := sink.conn.LocalAddr().(*net.UDPAddr).Port
			e.carrier.sdp.Store(fmt.Sprintf("v=0\no=- 1 1 IN IP4 127.0.0.9\ns=-\nc=IN IP4 127.0.0.9\nt=0 0\nm=audio %d RTP/AVP %s\n", port, tc.pt))
			const code = "482916"
			errc := make(chan error, 1)
			go func() {
				errc <- e.s.PlaceVoiceCall(context.Background(), b2bua.VoiceCall{CustomerID: e.cust, Number: "+15557654321", Code: code, From: "+15550009999"})
			}()

			inv := voiceInvite(t, e.carrier, errc)
			if !strings.Contains(inv.StartLine, "sip:+15557654321@") || !strings.Contains(inv.Get("From"), "+15550009999") {
				t.Fatalf("carrier INVITE: %s / From %s", inv.StartLine, inv.Get("From"))
			}
			// While the code is read out: no lease, and the customer's one
			// channel is free for their own call.
			time.Sleep(time.Second)
			if n := e.live(); n != 0 {
				t.Fatalf("live leases during the voice call: %d, want 0", n)
			}
			p := newPhone(t, "127.0.0.2", e.s)
			p.dial("+15551230001")
			if r := p.final(3 * time.Second); r.Code != 200 {
				t.Fatalf("customer call during the voice call (limit 1): %d %s", r.Code, r.Reason)
			}
			p.inDialog("BYE")

			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("PlaceVoiceCall: %v", err)
				}
			case <-time.After(40 * time.Second):
				t.Fatal("the voice call did not end")
			}
			e.carrier.waitReq(t, "BYE", 10*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })

			want, err := prompts.Code(tc.law, code)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the last packets in flight
			got, pts := sink.payload()
			if !bytes.Equal(got, want) {
				t.Fatalf("RTP payload: %d bytes, want the prompts for %s: %d bytes (first difference at %d)", len(got), code, len(want), firstDiff(got, want))
			}
			if len(pts) != 1 || pts[map[string]uint8{"0": 0, "8": 8}[tc.pt]] == 0 {
				t.Fatalf("payload types: %v, want only %s", pts, tc.pt)
			}

			r := e.record(inv.Get("Call-ID"))
			if r.Direction != sipdesk.DirSystem || r.CustomerID != e.cust || r.SIPAccountID != 0 || r.AnsweredAt.IsZero() ||
				r.Disposition != sipdesk.DispAnswered || r.Reason != "played" || !strings.Contains(r.To, "+15557654321") {
				t.Fatalf("call record: %+v", r)
			}
			if n := e.live(); n != 0 {
				t.Fatalf("live leases after: %d", n)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A callee that does not answer: the call gives up at the ring timeout and
// the record says so.
func TestVoiceCallRingTimeout(t *testing.T) {
	e := newCallEnv(t, 1, nil, nil)
	e.carrier.mode.Store("ring")
	start := time.Now()
	err := e.s.PlaceVoiceCall(context.Background(), b2bua.VoiceCall{CustomerID: e.cust, Number: "+15557654321", Code: "1234", Ring: time.Second})
	if !errors.Is(err, b2bua.ErrNotAnswered) || time.Since(start) > 5*time.Second {
		t.Fatalf("unanswered voice call: err %v after %v", err, time.Since(start))
	}
	inv := e.carrier.last()
	r := e.record(inv.Get("Call-ID"))
	if r.Direction != sipdesk.DirSystem || r.Reason != "ring_timeout" || !r.AnsweredAt.IsZero() {
		t.Fatalf("call record: %+v", r)
	}
	if err := e.s.PlaceVoiceCall(context.Background(), b2bua.VoiceCall{CustomerID: e.cust, Number: "12345", Code: "1"}); err == nil {
		t.Fatal("a number that is not E.164 was called")
	}
}

// The callee hangs up while the code is read out: the playback stops at
// once, what was sent is the start of the prompts, and the record says bye.
func TestVoiceCallCalleeHangsUp(t *testing.T) {
	e := newCallEnv(t, 1, nil, nil)
	sink := newRTPSink(t, "127.0.0.9")
	port := sink.conn.LocalAddr().(*net.UDPAddr).Port
	e.carrier.sdp.Store(fmt.Sprintf("v=0\no=- 1 1 IN IP4 127.0.0.9\ns=-\nc=IN IP4 127.0.0.9\nt=0 0\nm=audio %d RTP/AVP 8 0\n", port))
	errc := make(chan error, 1)
	go func() {
		errc <- e.s.PlaceVoiceCall(context.Background(), b2bua.VoiceCall{CustomerID: e.cust, Number: "+15557654321", Code: "555555"})
	}()
	inv := voiceInvite(t, e.carrier, errc)
	time.Sleep(1500 * time.Millisecond)
	e.carrier.hangup(inv)
	select {
	case err := <-errc:
		if !errors.Is(err, b2bua.ErrCalleeBye) {
			t.Fatalf("PlaceVoiceCall after the callee's BYE: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the playback went on after the callee's BYE")
	}
	time.Sleep(100 * time.Millisecond)
	got, _ := sink.payload()
	full, _ := prompts.Code(prompts.ALaw, "555555") // the answer put PCMA first
	if len(got) == 0 || len(got) >= len(full) || !bytes.Equal(got, full[:len(got)]) {
		t.Fatalf("RTP before the BYE: %d bytes, want a prefix of the %d-byte prompts", len(got), len(full))
	}
	if r := e.record(inv.Get("Call-ID")); r.Reason != "bye" || r.AnsweredAt.IsZero() || r.Direction != sipdesk.DirSystem {
		t.Fatalf("call record: %+v", r)
	}
}
