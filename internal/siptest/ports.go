package siptest

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// handedOut holds the ports FreePort and FreeTCPPort returned. A port is
// closed again before its user binds it, so the kernel may pick it once
// more for the next ":0" listener (a cluster edge saw its SIP port taken by
// its own database proxy); never giving a port out twice in one test
// binary stops that.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// claim reports whether p was not handed out yet, and marks it.
func claim(p int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[p] {
		return false
	}
	handedOut.ports[p] = true
	return true
}

// FreePort is a port free for both UDP and TCP on ip (a SIP listener).
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(p)))
		u.Close()
		if err == nil {
			l.Close()
			if claim(p) {
				return p
			}
		}
	}
	t.Fatal("no free port")
	return 0
}

// FreeTCPPort is a free TCP port on ip.
func FreeTCPPort(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claim(p) {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}
