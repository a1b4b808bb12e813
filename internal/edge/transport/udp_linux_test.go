package transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

func listenRaw(t *testing.T, network, addr string) *UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		siptest.Unavailable(t, "no %s socket on %s here: %v", network, addr, err)
	}
	uc, err := newUDPConn(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return uc
}

// The raw reads and writes answer as the standard ones: the bytes, the
// source address as sipgo prints it, and the peer sees our address.
func TestRawUDPRoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			ours := listenRaw(t, tc.network, tc.addr)
			peer, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: ours.LocalAddr().(*net.UDPAddr).IP})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()

			msg := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
			if _, err := peer.WriteToUDPAddrPort(msg, ours.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := ours.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], msg) || from.String() != peer.LocalAddr().String() {
				t.Fatalf("read %q from %s, want %q from %s", buf[:n], from, msg, peer.LocalAddr())
			}

			answer := []byte("SIP/2.0 200 OK\r\n\r\n")
			if n, err := ours.WriteTo(answer, from); err != nil || n != len(answer) {
				t.Fatalf("write: %d, %v", n, err)
			}
			peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, src, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], answer) || src != ours.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("peer read %q from %s", buf[:n], src)
			}
			if _, err := ours.WriteToUDPAddrPort(answer, peerAP); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An edge listening on 0.0.0.0 has an IPv6 socket that also serves IPv4
// (Go's choice for "udp" on a wildcard): IPv4 peers are read as
// ::ffff:a.b.c.d, print as a.b.c.d, and are answered. Tests bind no
// wildcard, so the socket is bound to ::ffff:127.0.0.1 by hand.
func TestRawUDPDualStack(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		siptest.Unavailable(t, "no IPv6 socket here: %v", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	if err := syscall.Bind(fd, sa); err != nil {
		siptest.Unavailable(t, "cannot bind ::ffff:127.0.0.1 here: %v", err)
	}
	f := os.NewFile(uintptr(fd), "udp6")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := newUDPConn(pc.(*net.UDPConn))
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if !ours.v6 {
		t.Fatal("an AF_INET6 socket was taken for IPv4")
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	port := ours.LocalAddr().(*net.UDPAddr).Port
	if _, err := peer.WriteToUDP([]byte("ping"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, from, err := ours.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Fatalf("source %s, want %s", from, peer.LocalAddr())
	}
	if _, err := ours.WriteToUDPAddrPort([]byte("pong"), peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _, err := peer.ReadFromUDP(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
}

// An IPv4 socket cannot reach an IPv6 address, and says so; a v4-mapped
// address is IPv4.
func TestRawUDPFamilies(t *testing.T) {
	ours := listenRaw(t, "udp4", "127.0.0.1:0")
	if _, err := ours.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:5060")); err == nil {
		t.Fatal("an IPv4 socket wrote to an IPv6 address")
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	p := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(p.Addr().As16()), p.Port())
	if _, err := ours.WriteToUDPAddrPort([]byte("x"), mapped); err != nil {
		t.Fatalf("write to %s: %v", mapped, err)
	}
}

// Deadlines and Close end a waiting read as the standard read does: sipgo
// stops its read loop on net.ErrClosed.
func TestRawUDPDeadlineAndClose(t *testing.T) {
	ours := listenRaw(t, "udp4", "127.0.0.1:0")
	ours.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := ours.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	ours.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, _, err := ours.ReadFrom(make([]byte, 10)); done <- err }()
	time.Sleep(50 * time.Millisecond)
	ours.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end the read")
	}
	if _, err := ours.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// A datagram costs no allocation to send (the fast path's answers).
func TestRawUDPWriteAllocs(t *testing.T) {
	ours := listenRaw(t, "udp4", "127.0.0.1:0")
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	dst, b := peer.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("SIP/2.0 200 OK\r\n\r\n")
	if a := testing.AllocsPerRun(rawAllocRuns, func() { ours.WriteToUDPAddrPort(b, dst) }); a != 0 {
		t.Fatalf("%v allocations per datagram sent", a)
	}
}

// rawAllocRuns: the no-allocation checks average over this many
// operations. Under the race detector sync.Pool drops a quarter of what is
// put back, and a new rawOp is three allocations: 0.75 per operation on
// average, which AllocsPerRun rounds down to 0 over enough runs (over 50,
// one run in ten or so read 1), while one real allocation per operation
// still reads at least 1.
const rawAllocRuns = 1000

// QueueWait tells how long datagrams waited in the socket before they were
// read: the shortest wait since the last look, nothing when none was read.
// Reading costs no allocation with the arrival stamps on.
func TestRawUDPQueueWait(t *testing.T) {
	ours := listenRaw(t, "udp4", "127.0.0.1:0")
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := ours.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, ok := ours.QueueWait(); ok {
		t.Fatal("a wait reported before any datagram was read")
	}
	send := func() {
		if _, err := peer.WriteToUDPAddrPort([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"), to); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	read := func() {
		ours.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := ours.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}

	send()
	send()
	time.Sleep(150 * time.Millisecond) // both wait in the socket
	read()
	read()
	if w, ok := ours.QueueWait(); !ok || w < 150*time.Millisecond || w > 2*time.Second {
		t.Fatalf("queue wait %v (%v) after 150 ms in the socket", w, ok)
	}
	if _, ok := ours.QueueWait(); ok {
		t.Fatal("a wait reported twice")
	}

	send()
	time.Sleep(150 * time.Millisecond)
	read() // waited 150 ms
	send()
	read() // read at once: the minimum
	if w, ok := ours.QueueWait(); !ok || w >= 100*time.Millisecond {
		t.Fatalf("queue wait %v (%v), want the shorter one, under 100 ms", w, ok)
	}

	if a := testing.AllocsPerRun(rawAllocRuns, func() { send(); read() }); a > 0 {
		t.Fatalf("%v allocations per datagram sent and read", a)
	}
}
