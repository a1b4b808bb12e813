package edge

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/token"
)

const (
	testOrigin  = "http://portal.test:8080"
	jwtSecret   = "Abcdefghijklmnopqrstuvwxyz012345"
	jwtSecret2  = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654"
	wrongSecret = "00000000000000000000000000000000"
)

// wsPhone is a browser-like SIP over WebSocket client (what JsSIP sends).
type wsPhone struct {
	t      testing.TB
	c      net.Conn
	user   string
	callID string
	tag    string
	cseq   int
	msgs   chan *siptest.Msg
}

func dialWS(t testing.TB, addr, origin, path string) (net.Conn, error) {
	t.Helper()
	d := ws.Dialer{Protocols: []string{"sip"}, Timeout: 3 * time.Second}
	if origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})
	}
	c, _, _, err := d.Dial(context.Background(), "ws://"+addr+path)
	return c, err
}

func newWSPhone(t testing.TB, s *Server, user string) *wsPhone {
	t.Helper()
	c, err := dialWS(t, s.WSAddr().String(), testOrigin, "/")
	if err != nil {
		t.Fatalf("ws dial: %v", err)
	}
	p := &wsPhone{t: t, c: c, user: user, callID: siptest.RandHex(8), tag: siptest.RandHex(4), msgs: make(chan *siptest.Msg, 64)}
	go func() {
		defer close(p.msgs)
		for {
			b, err := wsutil.ReadServerText(c)
			if err != nil {
				return
			}
			if m, err := siptest.Parse(b); err == nil {
				p.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *wsPhone) send(msg string) {
	p.t.Helper()
	if err := wsutil.WriteClientText(p.c, []byte(siptest.Fix(msg))); err != nil {
		p.t.Fatalf("ws send: %v", err)
	}
}

func (p *wsPhone) recv(d time.Duration, want func(*siptest.Msg) bool) *siptest.Msg {
	p.t.Helper()
	end := time.After(d)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatal("ws closed")
			}
			if want(m) {
				return m
			}
		case <-end:
			p.t.Fatalf("ws: nothing within %v", d)
			return nil
		}
	}
}

func (p *wsPhone) response(d time.Duration) *siptest.Msg {
	p.t.Helper()
	return p.recv(d, func(m *siptest.Msg) bool { return m.Code >= 200 })
}

const wsHost = "df7jal23ls0d.invalid"

// register sends a REGISTER with an Authorization header value (or none).
func (p *wsPhone) register(auth string) *siptest.Msg {
	p.t.Helper()
	p.cseq++
	h := ""
	if auth != "" {
		h = "Authorization: " + auth + "\n"
	}
	p.send(fmt.Sprintf(`REGISTER sip:%s SIP/2.0
Via: SIP/2.0/WS %s;branch=z9hG4bK%s
Max-Forwards: 69
To: <sip:%s@%s>
From: <sip:%s@%s>;tag=%s
Call-ID: %s
CSeq: %d REGISTER
Contact: <sip:%s@%s;transport=ws>;expires=600
%sExpires: 600
Content-Length: 0

`, testRealm, wsHost, siptest.RandHex(6), p.user, testRealm, p.user, testRealm, p.tag, p.callID, p.cseq, p.user, wsHost, h))
	return p.response(3 * time.Second)
}

func (p *wsPhone) invite(number, auth, sdp string) {
	p.t.Helper()
	p.cseq++
	h := ""
	if auth != "" {
		h = "Authorization: " + auth + "\n"
	}
	p.callID = siptest.RandHex(8)
	p.send(fmt.Sprintf(`INVITE sip:%s@%s SIP/2.0
Via: SIP/2.0/WS %s;branch=z9hG4bK%s
Max-Forwards: 69
To: <sip:%s@%s>
From: "Web" <sip:%s@%s>;tag=%s
Call-ID: %s
CSeq: %d INVITE
Contact: <sip:%s@%s;transport=ws;ob>
%sContent-Type: application/sdp
Content-Length: auto

%s`, number, testRealm, wsHost, siptest.RandHex(6), number, testRealm, p.user, testRealm, p.tag, p.callID, p.cseq, p.user, wsHost, h, sdp))
}

func bearer(tok string) string { return "Bearer " + tok }

func mint(t testing.TB, secret, user string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, _, err := token.Mint(secret, user, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newWSEnv(t testing.TB) *callEnv {
	return newCallEnv(t, 5, nil, func(c *Config) {
		c.WSAddr = "127.0.0.1:0"
		c.WS.Origins = []string{testOrigin}
		c.BanFailures = -1
	})
}

func (e *callEnv) jwtAccount(user string, mod ...func(*sipdesk.SIPAccount)) *sipdesk.SIPAccount {
	return e.f.passwordAccount(e.cust, user, "Secret-pass-1", append([]func(*sipdesk.SIPAccount){func(a *sipdesk.SIPAccount) {
		a.JWTEnabled, a.JWTSecret = true, jwtSecret
	}}, mod...)...)
}

func wantBearerRefusal(t *testing.T, r *siptest.Msg) {
	t.Helper()
	if r.Code != 401 {
		t.Fatalf("got %d %s, want 401", r.Code, r.Reason)
	}
	for _, v := range r.All("WWW-Authenticate") {
		if strings.HasPrefix(v, "Bearer ") && strings.Contains(v, `error="invalid_token"`) {
			return
		}
	}
	t.Fatalf("no Bearer invalid_token challenge in %q", r.All("WWW-Authenticate"))
}

// TestWSJWTRefusals: every bad JWT attempt over SIP over WebSocket gets the
// documented answer (docs/refusals.md), and a good token registers.
func TestWSJWTRefusals(t *testing.T) {
	e := newWSEnv(t)
	now := time.Now()
	e.jwtAccount("webuser01")
	e.jwtAccount("webuser02", func(a *sipdesk.SIPAccount) { a.JWTEnabled = false }) // secret kept, JWT off
	e.f.passwordAccount(e.cust, "webuser03", "Secret-pass-1")                       // never had JWT
	e.jwtAccount("webuser04", func(a *sipdesk.SIPAccount) { a.Status = sipdesk.StatusInactive })
	e.jwtAccount("webuser05", func(a *sipdesk.SIPAccount) {
		a.AllowedIPs = []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}
	})
	waitApplied(t, e.s, e.st)

	good := mint(t, jwtSecret, "webuser01", 10*time.Minute, now)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"webuser01","iat":1,"exp":9999999999,"jti":"x"}`)) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"webuser01","iat":%d,"exp":%d,"jti":"y"}`, now.Unix(), now.Unix()+600))) + "."

	t.Run("no_authorization_gets_bearer_challenge", func(t *testing.T) {
		r := newWSPhone(t, e.s, "webuser01").register("")
		if r.Code != 401 || !strings.HasPrefix(r.Get("WWW-Authenticate"), `Bearer realm="`+testRealm+`"`) {
			t.Fatalf("got %d %s %q", r.Code, r.Reason, r.All("WWW-Authenticate"))
		}
	})
	for _, tc := range []struct{ name, user, tok string }{
		{"expired", "webuser01", mint(t, jwtSecret, "webuser01", 10*time.Minute, now.Add(-time.Hour))},
		{"tampered", "webuser01", tampered},
		{"alg_none", "webuser01", none},
		{"wrong_secret", "webuser01", mint(t, wrongSecret, "webuser01", 10*time.Minute, now)},
		{"sub_not_from_user", "webuser01", mint(t, jwtSecret, "webuser09", 10*time.Minute, now)},
		{"garbage", "webuser01", "not-a-jwt"},
		{"unknown_user", "nosuchuser", mint(t, jwtSecret, "nosuchuser", 10*time.Minute, now)},
	} {
		t.Run(tc.name+"_refused_401_invalid_token", func(t *testing.T) {
			wantBearerRefusal(t, newWSPhone(t, e.s, tc.user).register(bearer(tc.tok)))
		})
	}
	for _, tc := range []struct{ name, user, reason string }{
		{"jwt_disabled", "webuser02", "JWT not enabled"},
		{"jwt_never_enabled", "webuser03", "JWT not enabled"},
		{"inactive_account", "webuser04", "Account inactive"},
		{"ip_outside_acl", "webuser05", "Source not allowed"},
	} {
		t.Run(tc.name+"_refused_403", func(t *testing.T) {
			r := newWSPhone(t, e.s, tc.user).register(bearer(mint(t, jwtSecret, tc.user, 10*time.Minute, now)))
			if r.Code != 403 || r.Reason != tc.reason {
				t.Fatalf("got %d %s, want 403 %s", r.Code, r.Reason, tc.reason)
			}
		})
	}
	t.Run("invite_with_bad_token_refused_401", func(t *testing.T) {
		p := newWSPhone(t, e.s, "webuser01")
		p.invite("+15551230001", bearer(tampered), testSDP)
		wantBearerRefusal(t, p.response(3*time.Second))
	})
	t.Run("invite_jwt_disabled_refused_403", func(t *testing.T) {
		p := newWSPhone(t, e.s, "webuser02")
		p.invite("+15551230001", bearer(mint(t, jwtSecret, "webuser02", 10*time.Minute, now)), testSDP)
		if r := p.response(3 * time.Second); r.Code != 403 || r.Reason != "JWT not enabled" {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
	})
	t.Run("good_token_registers_ws_binding", func(t *testing.T) {
		r := newWSPhone(t, e.s, "webuser01").register(bearer(good))
		if r.Code != 200 || !strings.Contains(r.Get("Contact"), "transport=ws") {
			t.Fatalf("got %d %s contact %q", r.Code, r.Reason, r.Get("Contact"))
		}
	})
}

// TestWSOrigin: the upgrade is refused with 403 for a foreign Origin, 404
// off "/", and accepted for the allowed Origin and for non-browser clients
// (no Origin).
func TestWSOrigin(t *testing.T) {
	e := newWSEnv(t)
	addr := e.s.WSAddr().String()
	for _, tc := range []struct {
		name, origin, path string
		status             int
	}{
		{"foreign_origin_403", "https://evil.example", "/", 403},
		{"allowed_origin_upgrades", testOrigin, "/", 101},
		{"no_origin_upgrades", "", "/", 101},
		{"other_path_404", testOrigin, "/other", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialWS(t, addr, tc.origin, tc.path)
			if tc.status == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.Close()
				return
			}
			if c != nil {
				c.Close()
			}
			se, ok := err.(ws.StatusError)
			if !ok || int(se) != tc.status {
				t.Fatalf("got %v, want HTTP %d", err, tc.status)
			}
		})
	}
	t.Run("idle_handshake_closed_in_time", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Another client is not blocked by the silent one.
		if c2, err := dialWS(t, addr, testOrigin, "/"); err != nil {
			t.Fatalf("second client blocked: %v", err)
		} else {
			c2.Close()
		}
	})
}

// TestWSRotation: a token signed with the previous secret works during the
// overlap and is refused after it.
func TestWSRotation(t *testing.T) {
	e := newWSEnv(t)
	rotated := time.Now() // the rotation: the previous secret is good for 10 more minutes
	a := e.jwtAccount("rotuser01", func(a *sipdesk.SIPAccount) {
		a.JWTSecret, a.JWTPrevSecret, a.JWTPrevUntil = jwtSecret2, jwtSecret, rotated.Add(10*time.Minute)
	})
	waitApplied(t, e.s, e.st)
	// Issued before the rotation (a token minted with the old secret after
	// it is refused: TestHostileTokens).
	old := mint(t, jwtSecret, "rotuser01", 10*time.Minute, rotated.Add(-time.Minute))
	if r := newWSPhone(t, e.s, "rotuser01").register(bearer(old)); r.Code != 200 {
		t.Fatalf("previous secret during the overlap: %d %s", r.Code, r.Reason)
	}
	if r := newWSPhone(t, e.s, "rotuser01").register(bearer(mint(t, jwtSecret2, "rotuser01", 10*time.Minute, time.Now()))); r.Code != 200 {
		t.Fatalf("current secret: %d %s", r.Code, r.Reason)
	}
	e.f.modify(a, func(a *sipdesk.SIPAccount) { a.JWTPrevUntil = time.Now().Add(-time.Second) })
	waitApplied(t, e.s, e.st)
	wantBearerRefusal(t, newWSPhone(t, e.s, "rotuser01").register(bearer(old)))
}

// TestWSCalls: a WS client calls out with a JWT through the same admission
// (channel lease, Caller ID) and hangs up; the carrier calls its DID and the
// INVITE arrives over the same WebSocket; closing the socket drops the
// binding.
func TestWSCalls(t *testing.T) {
	e := newWSEnv(t)
	a := e.jwtAccount("calluser1")
	e.f.update(func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: "+15557770009", SIPAccountID: a.ID, CustomerID: e.cust})
	})
	waitApplied(t, e.s, e.st)
	tok := bearer(mint(t, jwtSecret, "calluser1", 10*time.Minute, time.Now()))
	p := newWSPhone(t, e.s, "calluser1")
	if r := p.register(tok); r.Code != 200 {
		t.Fatalf("register: %d %s", r.Code, r.Reason)
	}

	// Outbound.
	p.invite("+15551230001", tok, testSDP)
	r := p.response(3 * time.Second)
	if r.Code != 200 {
		t.Fatalf("outbound: %d %s", r.Code, r.Reason)
	}
	inv := e.carrier.last()
	if got := inv.Get("P-Asserted-Identity"); !strings.Contains(got, "+15550000001") {
		t.Fatalf("carrier PAI %q: Caller ID not applied", got)
	}
	e.waitLive(1, time.Second)
	p.cseq++
	p.send(fmt.Sprintf(`ACK %s SIP/2.0
Via: SIP/2.0/WS %s;branch=z9hG4bK%s
Max-Forwards: 69
To: %s
From: %s
Call-ID: %s
CSeq: %d ACK
Content-Length: 0

`, siptest.URIOf(r.Get("Contact")), wsHost, siptest.RandHex(6), r.Get("To"), r.Get("From"), p.callID, p.cseq-1))
	time.Sleep(200 * time.Millisecond) // the ACK is in before the carrier hangs up
	e.carrier.hangup(inv)
	bye := p.recv(3*time.Second, func(m *siptest.Msg) bool { return m.Method == "BYE" })
	p.send(siptest.Reply(bye, 200, "OK", ""))
	e.waitLive(0, 2*time.Second)

	// Inbound to the DID rings the WebSocket.
	in := newPhone(t, "127.0.0.9", e.s)
	in.dial("+15557770009")
	ring := p.recv(3*time.Second, func(m *siptest.Msg) bool { return m.Method == "INVITE" })
	p.send(siptest.Reply(ring, 486, "Busy Here", "ws"+siptest.RandHex(2)))
	if r := in.final(3 * time.Second); r.Code != 486 {
		t.Fatalf("inbound: %d %s", r.Code, r.Reason)
	}

	// The socket closes: the binding goes.
	p.c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for len(e.s.regs.Lookup(a.ID, time.Now())) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("binding kept after the WebSocket closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWSClientPing: a client's WebSocket ping (some SIP clients send them
// as keepalives) gets a pong with its payload, also between the frames of
// a fragmented SIP message, and the connection goes on: the message is
// answered.
func TestWSClientPing(t *testing.T) {
	e := newWSEnv(t)
	c, err := dialWS(t, e.s.WSAddr().String(), testOrigin, "/")
	if err != nil {
		t.Fatalf("ws dial: %v", err)
	}
	defer c.Close()
	write := func(f ws.Frame) {
		t.Helper()
		if err := ws.WriteFrame(c, ws.MaskFrameInPlace(f)); err != nil {
			t.Fatalf("ws write: %v", err)
		}
	}
	// next reads the next frame from the server, its opcode and payload.
	next := func() (ws.OpCode, string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		h, err := ws.ReadHeader(c)
		if err != nil {
			t.Fatalf("ws read: %v", err)
		}
		b := make([]byte, h.Length)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("ws read: %v", err)
		}
		return h.OpCode, string(b)
	}
	write(ws.NewPingFrame([]byte("keepalive-1")))
	if op, p := next(); op != ws.OpPong || p != "keepalive-1" {
		t.Fatalf("after a ping: opcode %v payload %q, want a pong with keepalive-1", op, p)
	}

	msg := siptest.Fix("OPTIONS sip:" + testRealm + " SIP/2.0\nVia: SIP/2.0/WS " + wsHost + ";branch=z9hG4bKping1" +
		"\nFrom: <sip:probe@" + testRealm + ">;tag=p1\nTo: <sip:" + testRealm + ">\nCall-ID: ping1@" + wsHost +
		"\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n")
	half := len(msg) / 2
	write(ws.NewFrame(ws.OpText, false, []byte(msg[:half])))
	write(ws.NewPingFrame([]byte("keepalive-2")))
	write(ws.NewFrame(ws.OpContinuation, true, []byte(msg[half:])))
	got := map[ws.OpCode]string{}
	for len(got) < 2 {
		op, p := next()
		got[op] = p
	}
	if got[ws.OpPong] != "keepalive-2" {
		t.Fatalf("ping inside a fragmented message: pong payload %q, want keepalive-2", got[ws.OpPong])
	}
	if r, err := siptest.Parse([]byte(got[ws.OpText])); err != nil || r.Code != 200 || r.Get("CSeq") != "1 OPTIONS" {
		t.Fatalf("fragmented OPTIONS with a ping between its frames: %q (%v), want 200", got[ws.OpText], err)
	}
}
