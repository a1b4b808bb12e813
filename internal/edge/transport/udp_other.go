//go:build !linux

package transport

import "net"

func newUDPConn(c *net.UDPConn) (*UDPConn, error) {
	u := &UDPConn{UDPConn: c}
	u.minWait.Store(-1)
	return u, nil
}
