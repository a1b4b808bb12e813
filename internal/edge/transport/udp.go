package transport

import (
	"net"
	"syscall"
)

// UDPConn is the edge's UDP socket: sipgo reads and writes it as a
// net.PacketConn, the fast path writes its answers with
// WriteToUDPAddrPort. On Linux its reads and writes skip the Go
// scheduler's system-call bookkeeping (udp_linux.go); elsewhere they are
// the standard ones.
type UDPConn struct {
	*net.UDPConn
	raw syscall.RawConn
	v6  bool // an AF_INET6 socket: IPv4 peers are written as ::ffff:a.b.c.d
}
