package transport

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// SIP over WebSocket (RFC 7118) for the browser softphone.
//
// sipgo's WS transport upgrades connections itself and sees no Origin, path
// or headers, so the edge puts its own front before it: wsFront accepts the
// TCP (or TLS) connection, reads the HTTP upgrade request within
// HandshakeTimeout, checks path "/", the "sip" subprotocol and the Origin
// allow-list (403 otherwise), and only then hands the connection to sipgo
// with the request bytes replayed, so sipgo's upgrade and connection pool
// (responses and requests to the browser go back over the same connection)
// work unchanged. After the upgrade the front's connection wrapper sends a
// WebSocket ping every PingInterval (frames are never interleaved with
// sipgo's), and closes the connection when nothing at all (not even a
// pong) arrived for IdleTimeout.

// WSConfig tunes SIP over WebSocket.
type WSConfig struct {
	// Origins are the allowed values of the Origin header at the upgrade
	// ("https://portal.example.net"); a browser from any other origin gets
	// 403. Requests without Origin (not a browser) are let through: they
	// still need a valid JWT. Empty: every origin is refused.
	Origins []string
	// HandshakeTimeout bounds the TLS handshake plus the HTTP upgrade
	// request (default 10s); MaxHandshakes bounds connections in handshake
	// at once (default 1024; more are closed at once).
	HandshakeTimeout time.Duration
	MaxHandshakes    int
	// PingInterval is the period of WebSocket pings (default 30s);
	// IdleTimeout closes a connection silent for that long (default 75s).
	PingInterval, IdleTimeout time.Duration
}

func (c *WSConfig) setDefaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = 1024
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 75 * time.Second
	}
}

// WSHooks connect the WebSocket front to the rest of the edge.
type WSHooks struct {
	Banned  func(netip.Addr) bool // a banned source's connection is closed at once
	Refused func()                // an upgrade refused (Origin, path, subprotocol)
	Closed  func(raddr string)    // a connection ended: its bindings go
	Log     *slog.Logger
	Dropped *atomic.Int64 // connections of banned sources
}

// ListenWS listens on addr for SIP over WebSocket (WSS when tlsConf is
// set). Serve the returned front with sipgo's ServeWS or ServeWSS; Close
// ends it.
func ListenWS(addr string, cfg WSConfig, tlsConf *tls.Config, hooks WSHooks) (*WSFront, error) {
	cfg.setDefaults()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge: listen ws: %w", err)
	}
	f := &WSFront{h: hooks, l: l, cfg: cfg, tls: tlsConf, conns: make(chan net.Conn), done: make(chan struct{}),
		sem: make(chan struct{}, cfg.MaxHandshakes), origins: map[string]bool{}}
	for _, o := range cfg.Origins {
		if o = normOrigin(o); o != "" {
			f.origins[o] = true
		}
	}
	go f.acceptLoop()
	hooks.Log.Info("sip over websocket listening", "addr", l.Addr().String(), "tls", tlsConf != nil, "origins", strings.Join(cfg.Origins, " "))
	return f, nil
}

// normOrigin is scheme://host[:port] in lower case, without a default port.
func normOrigin(o string) string {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case u.Scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	if host == "" || strings.HasPrefix(host, ":") {
		return "" // "https://:443": a port without a host is no origin
	}
	// A browser serialises an origin in ASCII (RFC 6454 6.2: IDNs as
	// punycode), without escapes: anything else is no origin.
	if strings.ContainsRune(o, '%') || strings.ContainsFunc(host, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("-._:[]", r))
	}) {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// WSFront is the net.Listener sipgo's WS transport serves: it yields only
// connections whose upgrade request passed the checks.
type WSFront struct {
	h       WSHooks
	l       net.Listener
	cfg     WSConfig
	tls     *tls.Config
	origins map[string]bool
	sem     chan struct{}
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func (f *WSFront) Addr() net.Addr { return f.l.Addr() }

func (f *WSFront) Close() error {
	var err error
	f.once.Do(func() {
		close(f.done)
		err = f.l.Close()
	})
	return err
}

func (f *WSFront) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}

func (f *WSFront) acceptLoop() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-f.done:
				return
			case <-time.After(50 * time.Millisecond):
				continue
			}
		}
		ap := sipmsg.AddrPortOf(c.RemoteAddr())
		if ap.IsValid() && f.h.Banned(ap.Addr()) {
			f.h.Dropped.Add(1)
			c.Close()
			continue
		}
		select {
		case f.sem <- struct{}{}:
		default:
			c.Close() // too many handshakes in progress
			continue
		}
		go func() {
			defer func() { <-f.sem }()
			f.handshake(c)
		}()
	}
}

// recorder keeps what was read through it, for replay to sipgo.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	if r.buf.Len() > 16<<10 {
		return n, errors.New("upgrade request too large")
	}
	return n, err
}

// handshake checks one connection's upgrade request within the handshake
// timeout and passes it on, or answers an HTTP error and closes it.
func (f *WSFront) handshake(raw net.Conn) {
	var c net.Conn = raw
	c.SetDeadline(time.Now().Add(f.cfg.HandshakeTimeout))
	if f.tls != nil {
		tc := tls.Server(raw, f.tls)
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return
		}
		c = tc
	}
	rec := &recorder{r: c}
	req, err := http.ReadRequest(bufio.NewReader(rec))
	if err != nil {
		c.Close()
		return
	}
	status, why := f.check(req)
	if status != 0 {
		f.h.Log.Info("websocket refused", "src", raw.RemoteAddr().String(), "status", status, "reason", why, "origin", req.Header.Get("Origin"))
		if status == http.StatusForbidden {
			f.h.Refused()
		}
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			status, http.StatusText(status), len(why), why)
		c.Close()
		return
	}
	wc := &wsConn{Conn: c, closedHook: f.h.Closed, cfg: f.cfg, prefix: rec.buf.Bytes(), raddr: raw.RemoteAddr().String(), closed: make(chan struct{})}
	select {
	case f.conns <- wc:
	case <-f.done:
		c.Close()
	}
}

// check returns 0 for an acceptable upgrade request, else an HTTP status
// and the reason.
func (f *WSFront) check(r *http.Request) (int, string) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "GET only"
	}
	if r.URL.Path != "/" {
		return http.StatusNotFound, "SIP over WebSocket is at /"
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		return http.StatusBadRequest, "not a WebSocket upgrade"
	}
	if !headerHas(r.Header, "Sec-WebSocket-Protocol", "sip") {
		return http.StatusBadRequest, "the sip subprotocol is required (RFC 7118)"
	}
	if o := r.Header.Get("Origin"); o != "" && !f.origins[normOrigin(o)] {
		return http.StatusForbidden, "origin not allowed"
	}
	return 0, ""
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), token) {
				return true
			}
		}
	}
	return false
}

// wsConn replays the checked upgrade request to sipgo, then keeps the
// connection alive with pings and closes it when idle.
type wsConn struct {
	net.Conn
	closedHook func(raddr string)
	cfg        WSConfig
	raddr      string
	prefix     []byte

	upgraded atomic.Bool
	hs       []byte // the upgrade response written so far

	wmu     sync.Mutex // held from a frame's header to its last payload byte
	pending int64      // payload bytes of the current frame still to write

	closeOnce sync.Once
	closed    chan struct{}
}

func (c *wsConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	if c.upgraded.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	}
	return c.Conn.Read(p)
}

// Write passes sipgo's writes through; after the upgrade response it
// tracks frame boundaries (gobwas writes a header, then the payload) so
// that a ping never lands inside a frame.
func (c *wsConn) Write(b []byte) (int, error) {
	if !c.upgraded.Load() {
		c.hs = append(c.hs, b...)
		n, err := c.Conn.Write(b)
		if err == nil && bytes.HasSuffix(c.hs, []byte("\r\n\r\n")) {
			c.hs = nil
			c.upgraded.Store(true)
			go c.pingLoop()
		}
		return n, err
	}
	if c.pending == 0 {
		if len(b) == 0 {
			return 0, nil
		}
		h, err := ws.ReadHeader(bytes.NewReader(b))
		if err != nil {
			return c.Conn.Write(b) // not a header: pass through
		}
		c.wmu.Lock()
		c.pending = h.Length - int64(len(b)-ws.HeaderSize(h))
		n, err := c.Conn.Write(b)
		if c.pending <= 0 || err != nil {
			c.pending = 0
			c.wmu.Unlock()
		}
		return n, err
	}
	n, err := c.Conn.Write(b)
	c.pending -= int64(len(b))
	if c.pending <= 0 || err != nil {
		c.pending = 0
		c.wmu.Unlock()
	}
	return n, err
}

var pingFrame = func() []byte {
	b, _ := ws.CompileFrame(ws.NewPingFrame(nil))
	return b
}()

func (c *wsConn) pingLoop() {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
			c.wmu.Lock()
			c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Conn.Write(pingFrame)
			c.wmu.Unlock()
			if err != nil {
				c.Close()
				return
			}
		}
	}
}

// Close closes the connection once and drops the bindings registered over
// it: a browser has no other address to reach it at.
func (c *wsConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		close(c.closed)
		go c.closedHook(c.raddr)
	})
	return err
}

// TLS reports whether the front serves WSS.
func (f *WSFront) TLS() bool { return f.tls != nil }
