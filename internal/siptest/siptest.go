// Package siptest has helpers for SIP tests that talk to a real server over
// loopback: a raw text UAC over UDP/TCP, a digest answerer for 401/407
// challenges (RFC 2617/8760, qop=auth), and drivers for sipp and baresip.
// It does not import sipgo (only internal/edge does).
package siptest

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Need returns the path of an external program, skipping the test when it
// is missing locally and failing it when CI=true.
func Need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		Unavailable(t, "%s not installed (apt-get install %s): %v", prog, pkgOf(prog), err)
	}
	return p
}

// Unavailable ends a test that this machine lacks a real part for: skipped
// locally, failed when CI=true, whose machines have every part.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

func pkgOf(prog string) string {
	switch {
	case prog == "sipp":
		return "sip-tester"
	case strings.HasPrefix(prog, "sv"): // svmap, svwar, svcrack
		return "sipvicious"
	}
	return prog
}

// Challenge is a parsed WWW-Authenticate / Proxy-Authenticate value.
type Challenge struct {
	Realm, Nonce, Algorithm, QOP, Opaque string
	Stale                                bool
}

// ParseChallenge parses a Digest challenge.
func ParseChallenge(v string) (Challenge, error) {
	var c Challenge
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(strings.ToLower(v), "digest ") {
		return c, errors.New("not a Digest challenge")
	}
	for k, val := range params(v[7:]) {
		switch k {
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "algorithm":
			c.Algorithm = val
		case "qop":
			c.QOP = val
		case "opaque":
			c.Opaque = val
		case "stale":
			c.Stale = strings.EqualFold(val, "true")
		}
	}
	return c, nil
}

func params(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ,\t")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[1:1+end], s[end+2:]
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			v, s = strings.TrimSpace(s[:end]), s[end:]
		}
		m[k] = v
	}
	return m
}

func hasher(alg string) func() hash.Hash {
	switch strings.ToUpper(alg) {
	case "SHA-256":
		return sha256.New
	case "SHA-512-256":
		return sha512.New512_256
	}
	return md5.New
}

func hx(h func() hash.Hash, parts ...string) string {
	d := h()
	d.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(d.Sum(nil))
}

// Answer computes a credentials header value for a challenge (qop=auth when
// offered). nc is the nonce count; cnonce empty picks a random one.
func Answer(c Challenge, method, uri, user, pass string, nc uint32, cnonce string) string {
	h := hasher(c.Algorithm)
	ha1 := hx(h, user, c.Realm, pass)
	ha2 := hx(h, method, uri)
	alg := c.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	if cnonce == "" {
		var b [8]byte
		rand.Read(b[:])
		cnonce = hex.EncodeToString(b[:])
	}
	ncs := fmt.Sprintf("%08x", nc)
	var resp, extra string
	if strings.Contains(c.QOP, "auth") {
		resp = hx(h, ha1, c.Nonce, ncs, cnonce, "auth", ha2)
		extra = fmt.Sprintf(`, qop=auth, nc=%s, cnonce="%s"`, ncs, cnonce)
	} else {
		resp = hx(h, ha1, c.Nonce, ha2)
	}
	v := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s%s`,
		user, c.Realm, c.Nonce, uri, resp, alg, extra)
	if c.Opaque != "" {
		v += fmt.Sprintf(`, opaque="%s"`, c.Opaque)
	}
	return v
}

// Msg is a parsed SIP message (enough for tests).
type Msg struct {
	StartLine string
	Code      int // responses
	Reason    string
	Method    string // requests
	Headers   [][2]string
	Body      string
	Src       string // the UDP source address (ip:port) it came from
}

// Get returns the first value of a header (case-insensitive name).
func (m *Msg) Get(name string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// All returns every value of a header.
func (m *Msg) All(name string) []string {
	var out []string
	for _, h := range m.Headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

// Parse parses one SIP message.
func Parse(b []byte) (*Msg, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	return readMsg(r)
}

func readMsg(r *bufio.Reader) (*Msg, error) {
	line, err := r.ReadString('\n')
	for err == nil && strings.TrimSpace(line) == "" {
		line, err = r.ReadString('\n')
	}
	if err != nil {
		return nil, err
	}
	m := &Msg{StartLine: strings.TrimRight(line, "\r\n")}
	if strings.HasPrefix(m.StartLine, "SIP/2.0 ") {
		f := strings.SplitN(m.StartLine, " ", 3)
		m.Code, _ = strconv.Atoi(f[1])
		if len(f) > 2 {
			m.Reason = f[2]
		}
	} else {
		m.Method = strings.SplitN(m.StartLine, " ", 2)[0]
	}
	cl := 0
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		i := strings.IndexByte(l, ':')
		if i < 0 {
			continue
		}
		k, v := strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:])
		m.Headers = append(m.Headers, [2]string{k, v})
		if strings.EqualFold(k, "Content-Length") || k == "l" {
			cl, _ = strconv.Atoi(v)
		}
	}
	if cl > 0 {
		b := make([]byte, cl)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		m.Body = string(b)
	}
	return m, nil
}

// recvBufs are Recv's datagram buffers: Parse copies what it keeps, and a
// fresh 64 KB buffer per datagram was three quarters of the bytes
// BenchmarkCall counted, hiding the server's own.
var recvBufs = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

// Conn is a raw SIP connection (UDP or TCP) from a fixed local address.
type Conn struct {
	Network string
	c       net.Conn
	r       *bufio.Reader
	udp     *net.UDPConn
	raddr   *net.UDPAddr
}

// Dial opens a UDP or TCP connection from laddr ("127.0.0.5:0") to raddr.
func Dial(network, laddr, raddr string) (*Conn, error) {
	switch network {
	case "udp":
		la, err := net.ResolveUDPAddr("udp", laddr)
		if err != nil {
			return nil, err
		}
		ra, err := net.ResolveUDPAddr("udp", raddr)
		if err != nil {
			return nil, err
		}
		u, err := net.ListenUDP("udp", la)
		if err != nil {
			return nil, err
		}
		return &Conn{Network: "udp", udp: u, raddr: ra}, nil
	case "tcp":
		la, err := net.ResolveTCPAddr("tcp", laddr)
		if err != nil {
			return nil, err
		}
		d := net.Dialer{LocalAddr: la, Timeout: 3 * time.Second}
		c, err := d.Dial("tcp", raddr)
		if err != nil {
			return nil, err
		}
		return &Conn{Network: "tcp", c: c, r: bufio.NewReader(c)}, nil
	}
	return nil, fmt.Errorf("network %q", network)
}

// LocalAddr is "ip:port" of our side.
func (c *Conn) LocalAddr() string {
	if c.udp != nil {
		return c.udp.LocalAddr().String()
	}
	return c.c.LocalAddr().String()
}

// Transport is "UDP" or "TCP" for Via headers.
func (c *Conn) Transport() string { return strings.ToUpper(c.Network) }

// Send writes a message; "\n" line ends become "\r\n" and Content-Length is
// filled in when the message has "Content-Length: auto".
func (c *Conn) Send(msg string) error {
	return c.SendRaw([]byte(Fix(msg)))
}

// SendTo writes a message (as Send) to addr instead of the dialed address
// (UDP only: answering several edges from one socket).
func (c *Conn) SendTo(msg, addr string) error {
	if c.udp == nil || addr == "" {
		return c.Send(msg)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	_, err = c.udp.WriteToUDP([]byte(Fix(msg)), ua)
	return err
}

// SendRaw writes bytes as they are.
func (c *Conn) SendRaw(b []byte) error {
	if c.udp != nil {
		_, err := c.udp.WriteToUDP(b, c.raddr)
		return err
	}
	_, err := c.c.Write(b)
	return err
}

// Fix normalises line ends and computes "Content-Length: auto".
func Fix(msg string) string {
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	head = strings.Replace(head, "Content-Length: auto", "Content-Length: "+strconv.Itoa(len(body)), 1)
	return head + "\r\n\r\n" + body
}

// Recv reads the next message within d.
func (c *Conn) Recv(d time.Duration) (*Msg, error) {
	if c.udp != nil {
		c.udp.SetReadDeadline(time.Now().Add(d))
		bp := recvBufs.Get().(*[]byte)
		defer recvBufs.Put(bp)
		buf := *bp
		for {
			n, src, err := c.udp.ReadFromUDP(buf)
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(buf[:n])) == 0 {
				continue
			}
			m, err := Parse(buf[:n])
			if m != nil {
				m.Src = src.String()
			}
			return m, err
		}
	}
	c.c.SetReadDeadline(time.Now().Add(d))
	return readMsg(c.r)
}

// RecvResponse reads until a final response (or one with code >= min),
// skipping provisional ones below it.
func (c *Conn) RecvResponse(d time.Duration, min int) (*Msg, error) {
	end := time.Now().Add(d)
	for {
		m, err := c.Recv(time.Until(end))
		if err != nil {
			return nil, err
		}
		if m.Code >= min {
			return m, nil
		}
	}
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c.udp != nil {
		return c.udp.Close()
	}
	return c.c.Close()
}

// RandHex returns n random bytes in hex (branches, tags, Call-IDs).
func RandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Reply builds a response to a request: Via, From, To (with toTag added
// when the request's To has none), Call-ID and CSeq copied, then the extra
// header lines; a body after a blank line in extra is not supported (use
// ReplyBody).
func Reply(req *Msg, code int, reason, toTag string, extra ...string) string {
	return ReplyBody(req, code, reason, toTag, "", extra...)
}

// ReplyBody is Reply with a body (SDP when not empty).
func ReplyBody(req *Msg, code int, reason, toTag, body string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\n", code, reason)
	for _, v := range req.All("Via") {
		b.WriteString("Via: " + v + "\n")
	}
	to := req.Get("To")
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "From: %s\nTo: %s\nCall-ID: %s\nCSeq: %s\n", req.Get("From"), to, req.Get("Call-ID"), req.Get("CSeq"))
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\n")
	}
	b.WriteString("Content-Length: auto\n\n" + body)
	return b.String()
}

// Param returns a header parameter (e.g. Param(to, "tag")).
func Param(hdr, name string) string {
	for _, p := range strings.Split(hdr, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// URIOf returns the URI inside <…> of a header value (or the value up to
// its first ';').
func URIOf(hdr string) string {
	if i := strings.IndexByte(hdr, '<'); i >= 0 {
		if j := strings.IndexByte(hdr[i:], '>'); j > 0 {
			return hdr[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(hdr, ";")
	return strings.TrimSpace(u)
}
