package transport

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Reads and writes on the UDP socket as raw system calls.
//
// A goroutine that enters a system call the standard way wakes the
// runtime's monitor thread (sysmon) when the process was idle, and sysmon
// then polls every 20 µs for a while. An edge at a few hundred messages a
// second is idle between most of them, so each message paid a wake-up and
// several context switches of sysmon: 18 % of the edge's CPU at 500
// REGISTER/s (perf, docs/PERFORMANCE.md). recvmsg and sendto on a
// non-blocking UDP socket never block, which is what the bookkeeping is
// for, so they are made as raw system calls inside the socket's RawConn
// callbacks: those hold the descriptor open against a concurrent Close,
// honour deadlines and wait for readiness through the netpoller exactly as
// the standard calls do.

func newUDPConn(c *net.UDPConn) (*UDPConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	family := syscall.AF_INET
	var serr error
	if err := raw.Control(func(fd uintptr) {
		family, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, os.NewSyscallError("getsockopt", serr)
	}
	// The kernel stamps each datagram as it arrives, so that a read can
	// tell how long it waited in the socket (QueueWait).
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, os.NewSyscallError("setsockopt", serr)
	}
	u := &UDPConn{UDPConn: c, raw: raw, v6: family == syscall.AF_INET6}
	u.minWait.Store(-1)
	return u, nil
}

// rawOp is one read or write: its callbacks are bound once, so that a
// datagram costs no closure allocation.
type rawOp struct {
	b          []byte
	sa         syscall.RawSockaddrAny
	salen      uint32
	n          int
	errno      syscall.Errno
	recv, send func(fd uintptr) bool
	// recvmsg's header, buffer and control data (the arrival stamp; in
	// uint64s, so that the headers read from it are aligned)
	msg  syscall.Msghdr
	iov  syscall.Iovec
	oob  [8]uint64
	oobn int
}

var rawOps = sync.Pool{New: func() any {
	o := new(rawOp)
	o.recv, o.send = o.doRecv, o.doSend
	return o
}}

// doRecv and doSend report false on EAGAIN: RawConn then waits for the
// socket to be ready and calls again.
func (o *rawOp) doRecv(fd uintptr) bool {
	for {
		o.iov.Base = unsafe.SliceData(o.b)
		o.iov.SetLen(len(o.b))
		o.msg = syscall.Msghdr{Name: (*byte)(unsafe.Pointer(&o.sa)), Namelen: syscall.SizeofSockaddrAny, Iov: &o.iov, Iovlen: 1,
			Control: (*byte)(unsafe.Pointer(&o.oob))}
		o.msg.SetControllen(int(unsafe.Sizeof(o.oob)))
		r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&o.msg)), 0)
		if e != syscall.EINTR {
			o.n, o.errno, o.oobn = int(r), e, int(o.msg.Controllen)
			return e != syscall.EAGAIN
		}
	}
}

// arrival is when the kernel received the datagram just read (its
// SO_TIMESTAMPNS stamp, Unix ns), 0 when it carries none.
func (o *rawOp) arrival() int64 {
	off := syscall.CmsgLen(0) // the data's offset: the header, aligned
	if o.oobn < off+int(unsafe.Sizeof(syscall.Timespec{})) {
		return 0
	}
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&o.oob))
	if h.Level != syscall.SOL_SOCKET || h.Type != syscall.SCM_TIMESTAMPNS {
		return 0
	}
	return (*syscall.Timespec)(unsafe.Add(unsafe.Pointer(&o.oob), off)).Nano()
}

func (o *rawOp) doSend(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.b))), uintptr(len(o.b)),
			0, uintptr(unsafe.Pointer(&o.sa)), uintptr(o.salen))
		if e != syscall.EINTR {
			o.n, o.errno = int(r), e
			return e != syscall.EAGAIN
		}
	}
}

// result ends an operation: RawConn's error (closed, deadline), else the
// system call's.
func (o *rawOp) result(err error, call string) error {
	o.b, o.iov.Base = nil, nil // the pool must not keep the caller's buffer
	if err == nil && o.errno != 0 {
		return os.NewSyscallError(call, o.errno)
	}
	return err
}

// ReadFromUDPAddrPort reads a datagram and its source, as
// net.UDPConn.ReadFromUDPAddrPort does (an IPv4 source on an IPv6 socket is
// ::ffff:a.b.c.d). Unlike it, it never lets other goroutines run: the
// edge's read filter yields after each datagram it accepts.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	o := rawOps.Get().(*rawOp)
	defer rawOps.Put(o)
	o.b = b
	if err := o.result(c.raw.Read(o.recv), "recvmsg"); err != nil {
		return 0, netip.AddrPort{}, c.opError("read", nil, err)
	}
	if t := o.arrival(); t != 0 {
		c.waited(time.Duration(time.Now().UnixNano() - t))
	}
	return o.n, sourceOf(&o.sa), nil
}

// ReadFrom is net.PacketConn's read, for sipgo.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, src, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(src), nil
}

// WriteToUDPAddrPort sends a datagram to dst.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	o := rawOps.Get().(*rawOp)
	defer rawOps.Put(o)
	if !c.sockaddr(o, dst) {
		return 0, c.opError("write", net.UDPAddrFromAddrPort(dst), syscall.EAFNOSUPPORT)
	}
	o.b = b
	if err := o.result(c.raw.Write(o.send), "sendto"); err != nil {
		return 0, c.opError("write", net.UDPAddrFromAddrPort(dst), err)
	}
	return o.n, nil
}

// WriteTo is net.PacketConn's write, for sipgo.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opError("write", addr, syscall.EINVAL)
	}
	return c.WriteToUDPAddrPort(b, ua.AddrPort())
}

func (c *UDPConn) opError(op string, addr net.Addr, err error) error {
	if oe, ok := err.(*net.OpError); ok { // from RawConn: closed, deadline
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// sockaddr writes dst into o.sa in the socket's family; false when an
// IPv4 socket is asked to reach an IPv6 address.
func (c *UDPConn) sockaddr(o *rawOp, dst netip.AddrPort) bool {
	a := dst.Addr()
	if !c.v6 {
		a = a.Unmap()
		if !a.Is4() {
			return false
		}
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&o.sa))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
		o.salen = syscall.SizeofSockaddrInet4
		return true
	}
	sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&o.sa))
	*sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16(), Scope_id: zoneIndex(a.Zone())}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
	o.salen = syscall.SizeofSockaddrInet6
	return true
}

// sourceOf is the address a datagram came from.
func sourceOf(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:]))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10)) // Go resolves numeric zones
		}
		return netip.AddrPortFrom(a, binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:]))
	}
	return netip.AddrPort{}
}

// zoneIndex is the interface index of an IPv6 zone (a name or a number).
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// waited records one datagram's wait in the socket (one reader at a time).
func (c *UDPConn) waited(d time.Duration) {
	for {
		cur := c.minWait.Load()
		if cur >= 0 && cur <= int64(d) || c.minWait.CompareAndSwap(cur, int64(max(d, 0))) {
			return
		}
	}
}
