//go:build hostile

package edge

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// startEdgeLog is startEdge with the edge's log captured at debug level.
func startEdgeLog(t *testing.T, st sipdesk.Store) (*Server, *siptest.LockedBuffer) {
	t.Helper()
	buf := &siptest.LockedBuffer{}
	cfg := Config{Addr: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")), NonceKey: testKey, PollInterval: 50 * time.Millisecond,
		Carrier: "sip:127.0.0.9:5090", MinExpires: 60 * time.Second}
	s := runEdge(t, st, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), cfg)
	return s, buf
}

// legit registers from its own address in a loop until stop and returns
// the REGISTER round trips (challenge and answer each count). Like a UDP
// device it retransmits a request left unanswered (RFC 3261 Timer E: after
// 500 ms, then 1 s, 2 s): a flood can overflow the kernel's receive queue
// of the edge's socket, and the kernel then drops any datagram, the
// device's too. A round trip is that of the datagram that was answered; at
// most 2 retransmissions are allowed in a run.
func legit(t *testing.T, s *Server, addr string, stop <-chan struct{}) func() []time.Duration {
	var lat []time.Duration
	var fails, retrans atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		u := newUAC(t, "udp", addr, s)
		exchange := func(msg string) *siptest.Msg {
			wait := 500 * time.Millisecond
			for try := 0; try < 4; try++ {
				if try > 0 {
					retrans.Add(1)
				}
				t0 := time.Now()
				if err := u.c.Send(msg); err != nil {
					return nil
				}
				if m, err := u.c.RecvResponse(wait, 200); err == nil {
					lat = append(lat, time.Since(t0))
					return m
				}
				wait *= 2
			}
			return nil
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := exchange(u.registerMsg("alice0001", ""))
			if r == nil {
				fails.Add(1)
				return
			}
			ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
			r = exchange(u.registerMsg("alice0001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, "")))
			if r == nil || r.Code != 200 {
				fails.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() []time.Duration {
		<-done
		if n := fails.Load(); n > 0 {
			t.Errorf("legitimate device: %d REGISTERs not 200", n)
		}
		if n := retrans.Load(); n > 2 {
			t.Errorf("legitimate device: %d REGISTERs retransmitted (lost in the kernel's queue), want at most 2", n)
		} else if n > 0 {
			t.Logf("legitimate device: %d REGISTERs retransmitted", n)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat
	}
}

func p99(l []time.Duration) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[len(l)*99/100]
}

func floodFixture(t *testing.T) (*Server, *siptest.LockedBuffer) {
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	return startEdgeLog(t, st)
}

// waitBanned returns how long after start the address was banned.
func waitBanned(t *testing.T, s *Server, ip string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	a := mustAddr(ip)
	for !s.shield.Banned(a) {
		if time.Since(start) > limit {
			t.Fatalf("%s not banned after %v", ip, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestFloodGarbage: 20,000 datagrams of garbage from one address: it is
// banned within 2 s, the listener stays up, a device on another address
// keeps registering with p99 < 100 ms, and the log stays short.
func TestFloodGarbage(t *testing.T) {
	s, logs := floodFixture(t)
	stop := make(chan struct{})
	result := legit(t, s, "127.0.0.51", stop)
	time.Sleep(200 * time.Millisecond)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 50)}, s.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	var banned time.Duration
	junk := []byte("\x16\x03\x01 GET / HTTP/1.1 garbage garbage \x00\xff")
	for i := range 20000 {
		junk[len(junk)-3] = byte(i)
		c.Write(junk)
		if banned == 0 && s.shield.Banned(mustAddr("127.0.0.50")) {
			banned = time.Since(start)
		}
	}
	sent := time.Since(start)
	if banned == 0 {
		banned = waitBanned(t, s, "127.0.0.50", start, 2*time.Second)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	lat := result()
	lines := floodLines(logs.String(), "127.0.0.51")
	t.Logf("20000 garbage datagrams in %v; banned after %v; legitimate REGISTERs: %d, p99 %v, max %v; log: %d lines; dropped after ban: %d",
		sent.Round(time.Millisecond), banned.Round(time.Millisecond), len(lat), p99(lat), lat[len(lat)-1], lines, s.dropped.Load())
	if banned > 2*time.Second {
		t.Errorf("banned after %v, want <= 2 s", banned)
	}
	if p := p99(lat); p > 100*time.Millisecond {
		t.Errorf("legitimate p99 %v, want < 100 ms", p)
	}
	if lines > 10 {
		t.Errorf("log grew by %d lines:\n%s", lines, logs.String())
	}
	u := newUAC(t, "udp", "127.0.0.52", s)
	if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("listener after the flood: %d", r.Code)
	}
}

// TestFloodRegister: REGISTERs with wrong answers at 2,000/s for 3 s from
// one address: banned within 2 s, legitimate p99 < 100 ms, log bounded.
func TestFloodRegister(t *testing.T) {
	s, logs := floodFixture(t)
	stop := make(chan struct{})
	result := legit(t, s, "127.0.0.61", stop)
	time.Sleep(200 * time.Millisecond)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 60)}, s.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { // drain the answers
		b := make([]byte, 65535)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
		}
	}()
	nonce := s.auth.Nonce()
	start := time.Now()
	var banned time.Duration
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < 6000 {
		<-tick.C
		want := int(time.Since(start) * 2000 / time.Second)
		for ; sent < want && sent < 6000; sent++ {
			msg := siptest.Fix(fmt.Sprintf("REGISTER sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\nFrom: <sip:alice0001@%s>;tag=f%d\nTo: <sip:alice0001@%s>\nCall-ID: flood%d\nCSeq: 1 REGISTER\nContact: <sip:alice0001@%s>\nAuthorization: Digest username=\"alice0001\", realm=\"%s\", nonce=\"%s\", uri=\"sip:%s\", response=\"%032x\", algorithm=MD5\nMax-Forwards: 70\nContent-Length: 0\n\n",
				testRealm, c.LocalAddr(), sent, testRealm, sent, testRealm, sent, c.LocalAddr(), testRealm, nonce, testRealm, sent))
			c.Write([]byte(msg))
		}
		if banned == 0 && s.shield.Banned(mustAddr("127.0.0.60")) {
			banned = time.Since(start)
		}
	}
	if banned == 0 {
		banned = waitBanned(t, s, "127.0.0.60", start, 2*time.Second)
	}
	close(stop)
	lat := result()
	lines := floodLines(logs.String(), "127.0.0.61")
	t.Logf("%d REGISTERs at 2000/s in %v; banned after %v; dropped %d; legitimate REGISTERs: %d, p99 %v, max %v; log: %d lines",
		sent, time.Since(start).Round(time.Millisecond), banned.Round(time.Millisecond), s.dropped.Load(), len(lat), p99(lat), lat[len(lat)-1], lines)
	if banned > 2*time.Second {
		t.Errorf("banned after %v", banned)
	}
	if p := p99(lat); p > 100*time.Millisecond {
		t.Errorf("legitimate p99 %v, want < 100 ms", p)
	}
	if lines > 10 {
		t.Errorf("log grew by %d lines:\n%s", lines, logs.String())
	}
}

// TestIdleTCPConnections: 1,000 idle TCP connections do not stop a new
// client from registering over TCP and UDP.
func TestIdleTCPConnections(t *testing.T) {
	s, _ := floodFixture(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 1000 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i/250))}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", s.TCPAddr().String())
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	for _, network := range []string{"tcp", "udp"} {
		t0 := time.Now()
		u := newUAC(t, network, "127.0.0.70", s)
		if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("%s with 1000 idle connections: %d", network, r.Code)
		}
		t.Logf("%s REGISTER with %d idle TCP connections open: %v", network, len(conns), time.Since(t0).Round(time.Millisecond))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// floodLines counts the log lines that are not about the legitimate
// device (whose registrations log one line each at debug level).
func floodLines(log, legit string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if l != "" && !strings.Contains(l, legit) && !strings.Contains(l, "edge listening") {
			n++
		}
	}
	return n
}
