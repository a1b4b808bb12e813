package transport

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
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
	// minWait is the shortest time a datagram read since QueueWait last
	// looked had waited in the socket (ns; -1: none read, or not measured).
	minWait atomic.Int64
}

// QueueWait reports the shortest time a datagram read since the last call
// had waited in the socket's receive queue, and false when none was read
// (or the platform does not tell: Linux only). A queue that stands (every
// datagram waits) means the edge reads slower than datagrams come; its
// minimum over an interval, as in CoDel, ignores a burst that drains.
func (c *UDPConn) QueueWait() (time.Duration, bool) {
	v := c.minWait.Swap(-1)
	return time.Duration(v), v >= 0
}
