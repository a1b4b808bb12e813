//go:build !linux

package transport

import "net"

func newUDPConn(c *net.UDPConn) (*UDPConn, error) { return &UDPConn{UDPConn: c}, nil }
