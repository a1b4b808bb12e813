// Package transport is the SIP edge's wire: sipgo's user agent, server and
// client with every process-wide sipgo setting in one place (Tune), and the
// UDP, TCP, TLS and WebSocket listeners.
package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

var tuneOnce sync.Once

// Tune sets sipgo's process-wide settings, once per process and before any
// transaction exists (sipgo reads them as package variables): its logger,
// 8 KB messages over UDP (sipgo refuses to send more than MTU-200), its
// read buffer, and the transaction lingers of timers.go.
func Tune(log *slog.Logger) {
	tuneOnce.Do(func() {
		sip.SetDefaultLogger(log)
		sip.UDPMTUSize = sipmsg.MaxMessageSize + 200
		// sipgo reads each UDP socket and each TCP, TLS and WebSocket
		// connection into a buffer of this size (32 KiB by default: most of
		// an idle device's memory). TCP and TLS parse the stream across
		// reads, so the size bounds only a datagram and a WebSocket message;
		// one byte more than the limit lets the read filter see a message
		// that was cut.
		sip.TransportBufferReadSize = sipmsg.MaxMessageSize + 1
		sip.Timer_J = NonInviteServerLinger
		sip.Timer_L = inviteServerLinger
		sip.Timer_I = ackedLinger
		sip.Timer_K = clientTxLinger
		sip.Timer_M = clientTxLinger
	})
}

// StackConfig shapes the sipgo stack.
type StackConfig struct {
	Addr          string // listening address (its port goes in Via/Contact)
	AdvertiseHost string // host put in Via/Contact toward peers
	// TCP/TLS/WS read (idle) and write timeouts: sipgo has none by default.
	IdleTimeout, WriteTimeout time.Duration
	// ReadFilter sees every datagram and stream chunk before parsing; it
	// drops one by returning nil (never an error: that kills the listener).
	ReadFilter func(info sip.TransportReadProps, data []byte) ([]byte, error)
	// Unhandled gets the responses that match no transaction.
	Unhandled func(*sip.Response)
}

// Stack is sipgo's user agent with its server, client and dialog helper.
type Stack struct {
	UA     *sipgo.UserAgent
	Server *sipgo.Server
	Client *sipgo.Client
	Dialog *sipgo.DialogUA
}

// NewStack builds the sipgo stack; log is sipgo's logger (see Quiet).
func NewStack(cfg StackConfig, log *slog.Logger) (*Stack, error) {
	Tune(log)
	tcp := &sip.TransportTCP{ReadTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout}
	tlsT := &sip.TransportTLS{TransportTCP: &sip.TransportTCP{ReadTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout}}
	// WS reads are bounded by the front's idle timeout (ws.go).
	ws := &sip.TransportWS{WriteTimeout: cfg.WriteTimeout}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("sipdesk"),
		sipgo.WithUserAgentHostname(cfg.AdvertiseHost),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(log),
			sip.WithTransportLayerReadFilter(cfg.ReadFilter),
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp, TLS: tlsT, WS: ws, WSS: &sip.TransportWSS{TransportWS: ws}}),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerUnhandledResponseHandler(cfg.Unhandled),
		),
	)
	if err != nil {
		return nil, err
	}
	st := &Stack{UA: ua}
	if st.Server, err = sipgo.NewServer(ua, sipgo.WithServerLogger(log)); err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	if st.Client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname(cfg.AdvertiseHost), sipgo.WithClientPort(port)); err != nil {
		return nil, err
	}
	st.Dialog = &sipgo.DialogUA{Client: st.Client, RewriteContact: true,
		ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: cfg.AdvertiseHost, Port: port}}}
	return st, nil
}

// Listeners are the bound SIP sockets.
type Listeners struct {
	UDP *UDPConn
	TCP net.Listener
	TLS net.Listener // nil without a certificate
}

// Listen binds UDP and TCP on addr (UDP with a receive buffer of
// udpBuffer bytes) and TLS on tlsAddr when a certificate is given.
func Listen(addr string, udpBuffer int, tlsAddr, cert, key string, log *slog.Logger) (*Listeners, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge: bad address %q: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("edge: listen udp: %w", err)
	}
	if err := udp.SetReadBuffer(udpBuffer); err != nil {
		log.Warn("udp receive buffer", "error", err)
	}
	uc, err := newUDPConn(udp)
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("edge: udp socket: %w", err)
	}
	l := &Listeners{UDP: uc}
	if l.TCP, err = net.Listen("tcp", addr); err != nil {
		udp.Close()
		return nil, fmt.Errorf("edge: listen tcp: %w", err)
	}
	if tlsAddr != "" && cert != "" && key != "" {
		conf, err := TLSConfig(cert, key)
		if err == nil {
			l.TLS, err = tls.Listen("tcp", tlsAddr, conf)
		}
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("edge: listen tls: %w", err)
		}
	}
	return l, nil
}

// TLSConfig loads a certificate for the TLS and WSS listeners.
func TLSConfig(cert, key string) (*tls.Config, error) {
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("edge: tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

// Serve runs sipgo's server on every listener until they are closed. It
// returns once sipgo's pool holds the UDP listener: a request the edge
// sends before that (a voice call taken from the queue at start-up) would
// make sipgo bind the listener's address again and fail with "address
// already in use".
func (l *Listeners) Serve(srv *sipgo.Server, wg *sync.WaitGroup) {
	wg.Go(func() { srv.ServeUDP(l.UDP) })
	wg.Go(func() { srv.ServeTCP(l.TCP) })
	if l.TLS != nil {
		wg.Go(func() { srv.ServeTLS(l.TLS) })
	}
	addr := l.UDP.LocalAddr().String()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if c, _ := srv.TransportLayer().GetConnection("udp", addr); c != nil {
			return
		}
	}
}

// Close closes every listener.
func (l *Listeners) Close() {
	l.UDP.Close()
	if l.TCP != nil {
		l.TCP.Close()
	}
	if l.TLS != nil {
		l.TLS.Close()
	}
}

// Quiet wraps a log handler for sipgo: it passes warnings and errors on,
// rate-limits the ones about unparsable input and never logs message
// contents.
func Quiet(next slog.Handler) slog.Handler {
	return &quietHandler{next: next, mu: &sync.Mutex{}, last: new(time.Time)}
}

// quietHandler passes sipgo's warnings and errors on, rate-limits the ones
// about unparsable input and never logs message contents.
type quietHandler struct {
	next slog.Handler
	mu   *sync.Mutex
	last *time.Time
}

func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.next.Enabled(ctx, l)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "parse") || strings.Contains(r.Message, "Unhandled") {
		h.mu.Lock()
		if time.Since(*h.last) < 10*time.Second {
			h.mu.Unlock()
			return nil
		}
		*h.last = time.Now()
		h.mu.Unlock()
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data", "msg", "req", "res":
		default:
			nr.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, nr)
}

func (h *quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &quietHandler{next: h.next.WithAttrs(as), mu: h.mu, last: h.last}
}

func (h *quietHandler) WithGroup(n string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(n), mu: h.mu, last: h.last}
}
