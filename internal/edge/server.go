// Package edge is the SIP edge of sipdesk, the composition root of its
// layers: transport (sipgo, listeners), shield (bans), auth (digest, JWT),
// registrar, b2bua (calls toward the carrier), all answering from
// policy (configuration snapshot, channel leases, call records, the store).
// docs/ARCHITECTURE.md draws the map.
package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/edge/transport"
	"github.com/sipdesk/sipdesk/internal/logq"
)

// Server is a running SIP edge.
type Server struct {
	cfg          Config
	st           sipdesk.Store
	log          *slog.Logger
	quiet        *slog.Logger // log through logq: failures that repeat while the database is away
	now          func() time.Time
	carrierAddrs *shield.AddrMatcher

	pol    *policy.Engine
	shield *shield.Shield
	bans   *policy.BanSync // bans shared with the other edges through the store
	auth   *auth.Authenticator
	reg    *registrar.Registrar
	regs   *registrar.Index
	calls  *b2bua.B2BUA
	met    *metrics.Edge
	stack  *transport.Stack
	fast   *fastPath // REGISTER and OPTIONS over UDP without sipgo's transactions (fastpath.go)
	load   overload  // sheds new calls while the process cannot keep up (overload.go)

	ready   chan struct{}
	health  health // why new calls are refused (health.go)
	udpAddr atomic.Pointer[net.UDPAddr]
	tcpAddr atomic.Pointer[net.TCPAddr]
	tlsAddr atomic.Pointer[net.TCPAddr]
	wsAddr  atomic.Pointer[net.Addr]
	dropped atomic.Int64
}

// New checks the configuration and wires the layers; Run starts them.
func New(cfg Config, st sipdesk.Store, log *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(newDeferAttrs(log.Handler())) // per-request loggers cost nothing until they write
	s := &Server{cfg: cfg, st: st, log: log.With("component", "edge"), now: time.Now, ready: make(chan struct{}),
		load: overload{enter: cfg.OverloadWait, leave: cfg.OverloadWait / overloadLeave}}
	s.health.set(NotReadyStarting, true)
	now := func() time.Time { return s.now() }
	s.met = metrics.New(nil)
	if cfg.Registry != nil {
		s.met = metrics.New(cfg.Registry)
	}

	var carrier sip.Uri
	if cfg.Carrier != "" {
		c := cfg.Carrier
		if !strings.HasPrefix(strings.ToLower(c), "sip:") && !strings.HasPrefix(strings.ToLower(c), "sips:") {
			c = "sip:" + c
		}
		if err := sip.ParseUri(c, &carrier); err != nil || carrier.Host == "" {
			return nil, fmt.Errorf("edge: bad carrier URI %q", cfg.Carrier)
		}
	}
	addrs := cfg.CarrierAddrs
	if len(addrs) == 0 && carrier.Host != "" {
		addrs = []string{carrier.Host}
	}
	m, err := shield.ParseAddrMatcher(addrs)
	if err != nil {
		return nil, err
	}
	s.carrierAddrs = m

	// What fails on every request while the database is away logs once per
	// 10 s with a count (logq); bans and transport keep every line.
	quiet := logq.Logger(s.log)
	s.quiet = quiet
	opt := policy.Options{Records: cfg.Records, PollInterval: cfg.PollInterval, Log: quiet, Now: now}
	if cfg.Shared {
		opt.NodeTTL = cfg.NodeTTL
	}
	if cfg.Channels != nil {
		opt.Admission, opt.Background = cfg.Channels, cfg.Channels.Run
	}
	s.pol = policy.New(st, opt)
	s.shield = shield.New(cfg.BanFailures, cfg.BanWindow, cfg.BanDuration, cfg.ChallengeRate, now)
	s.bans = policy.NewBanSync(st, cfg.Node, s.shield, cfg.PollInterval, quiet, now)
	s.shield.OnBan(s.bans.Post)
	s.auth = auth.New(auth.Config{Realm: cfg.Realm, NonceKey: cfg.NonceKey, SHA256First: cfg.SHA256First,
		MD5OnlyUserAgents: cfg.MD5OnlyUserAgents, BanDuration: cfg.BanDuration, Guard: cfg.AccountGuard, OnGuard: s.guardNotice},
		s.shield, s.carrierAddrs, s.met, s.log, now)
	s.reg = registrar.New(registrar.Config{Node: cfg.Node, MinExpires: cfg.MinExpires, MaxExpires: cfg.MaxExpires, RetryAfter: cfg.RetryAfter,
		Shared: cfg.Shared, MaxContacts: cfg.MaxContacts, EdgeAddr: s.edgeAddr},
		s.pol, s.auth, s.met, quiet, now)
	s.regs = s.reg.Index()
	s.pol.OnChange(s.reg.Invalidate)

	relay, err := newMediaRelay(&s.cfg, s.log)
	if err != nil {
		return nil, err
	}
	sipLog := slog.New(transport.Quiet(s.log.With("component", "sipgo").Handler()))
	s.stack, err = transport.NewStack(transport.StackConfig{Addr: cfg.Addr, AdvertiseHost: cfg.AdvertiseHost,
		IdleTimeout: cfg.TCPIdleTimeout, WriteTimeout: cfg.TCPWriteTimeout,
		ReadFilter: s.readFilter, Unhandled: func(r *sip.Response) { s.calls.UnhandledResponse(r) }}, sipLog)
	if err != nil {
		return nil, err
	}
	s.calls = b2bua.New(b2bua.Config{Node: cfg.Node, Realm: cfg.Realm, AdvertiseHost: cfg.AdvertiseHost, Carrier: carrier,
		CarrierUsername: cfg.CarrierUsername, CarrierPassword: cfg.CarrierPassword, MaxCallDuration: cfg.MaxCallDuration,
		RingTimeout: cfg.RingTimeout, RetryAfter: cfg.RetryAfter, SessionExpires: cfg.SessionExpires, MinSE: cfg.MinSE,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.ProbeTimeout, HopKey: hopKey(cfg.NonceKey)},
		b2bua.Deps{Policy: s.pol, Auth: s.auth, Registrar: s.reg, Dialog: s.stack.Dialog, Carrier: s.carrierAddrs, Media: relay,
			Metrics: s.met, Log: quiet, Now: now, UDPAddr: s.udpAddr.Load})

	if cfg.Registry != nil {
		metrics.RegisterState(cfg.Registry, metrics.State{Ready: s.health.ready, Calls: s.ActiveCalls, Bindings: s.Bindings,
			Overflow: func() int64 { return s.fast.fallbacks.Load() }, Overloaded: s.load.on.Load})
	}

	if cfg.Channels != nil {
		cfg.Channels.SetEnder(s.calls) // fencing and dead edges' calls end through the b2bua
	}

	srv := s.stack.Server
	register, options := s.wrap(s.countRegister(s.gate(s.reg.HandleRegister))), s.wrap(s.handleOptions)
	srv.OnRegister(register)
	srv.OnOptions(options)
	invite, bye := s.wrap(s.gate(s.calls.HandleInvite)), s.wrap(s.calls.HandleBye)
	s.fast = newFastPath(map[sip.RequestMethod]sipgo.RequestHandler{sip.REGISTER: register, sip.OPTIONS: options,
		sip.INVITE: invite, sip.BYE: bye}, s.calls)
	srv.OnInvite(invite)
	srv.OnAck(s.calls.HandleAck)
	srv.OnBye(bye)
	srv.OnCancel(s.wrap(s.calls.HandleCancel))
	srv.OnRequest(sip.UPDATE, s.wrap(s.calls.HandleInDialog))
	srv.OnRequest(sip.INFO, s.wrap(s.calls.HandleInDialog))
	srv.OnNoRoute(s.wrap(s.handleUnknown))
	return s, nil
}

// edgeAddr is this edge's SIP address for edge-to-edge hops: the
// advertised host and the UDP port ("" before Run listens).
func (s *Server) edgeAddr() string {
	if a := s.udpAddr.Load(); a != nil {
		return net.JoinHostPort(s.cfg.AdvertiseHost, strconv.Itoa(a.Port))
	}
	return ""
}

// hopKey signs edge-to-edge hops: derived from the nonce key, which every
// node derives from the cluster's secret key.
func hopKey(nonceKey []byte) []byte {
	m := hmac.New(sha256.New, nonceKey)
	m.Write([]byte("sipdesk edge hop"))
	return m.Sum(nil)
}

// AppliedVersion is the config version applied in full: its snapshot in
// use and the bindings it invalidated dropped (-1 before the first load).
func (s *Server) AppliedVersion() int64 { return s.pol.AppliedVersion() }

// Ready is closed once the listeners are up.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// UDPAddr, TCPAddr, TLSAddr and WSAddr are the bound addresses once Ready.
func (s *Server) UDPAddr() *net.UDPAddr { return s.udpAddr.Load() }
func (s *Server) TCPAddr() *net.TCPAddr { return s.tcpAddr.Load() }
func (s *Server) TLSAddr() *net.TCPAddr { return s.tlsAddr.Load() }
func (s *Server) WSAddr() net.Addr {
	if p := s.wsAddr.Load(); p != nil {
		return *p
	}
	return nil
}

// ActiveCalls is the number of bridged calls.
func (s *Server) ActiveCalls() int { return s.calls.ActiveCalls() }

// PlaceVoiceCall calls a number through the carrier and reads a
// verification code out (b2bua/voice.go): a system call, no lease.
func (s *Server) PlaceVoiceCall(ctx context.Context, v b2bua.VoiceCall) error {
	return s.calls.PlaceVoiceCall(ctx, v)
}

// FlushRecords waits until the queued call records are written (tests).
func (s *Server) FlushRecords(d time.Duration) bool { return s.pol.FlushRecords(d) }

// Run loads the configuration and the stored registrations, listens, and
// serves until ctx is done; then it ends the calls and closes everything.
func (s *Server) Run(ctx context.Context) error {
	if err := s.pol.Refresh(ctx); err != nil {
		return fmt.Errorf("edge: initial config: %w", err)
	}
	if err := s.reg.Load(ctx); err != nil {
		return fmt.Errorf("edge: registrations: %w", err)
	}
	ls, err := transport.Listen(s.cfg.Addr, s.cfg.UDPReadBuffer, s.cfg.TLSAddr, s.cfg.TLSCert, s.cfg.TLSKey, s.log)
	if err != nil {
		return err
	}
	s.udpAddr.Store(ls.UDP.LocalAddr().(*net.UDPAddr))
	if c := &s.stack.Dialog.ContactHDR; c.Address.Port == 0 {
		// Bound to port 0: our Contact carries the port the system chose
		// (set before anything is sent, so never read concurrently).
		c.Address.Port = ls.UDP.LocalAddr().(*net.UDPAddr).Port
	}
	s.tcpAddr.Store(ls.TCP.Addr().(*net.TCPAddr))
	if ls.TLS != nil {
		s.tlsAddr.Store(ls.TLS.Addr().(*net.TCPAddr))
	}
	closers := []func() error{}
	var wg sync.WaitGroup
	if s.cfg.WSAddr != "" {
		f, err := s.listenWS()
		if err != nil {
			ls.Close()
			return err
		}
		a := f.Addr()
		s.wsAddr.Store(&a)
		closers = append(closers, f.Close)
		if f.TLS() {
			wg.Go(func() { s.stack.Server.ServeWSS(f) })
		} else {
			wg.Go(func() { s.stack.Server.ServeWS(f) })
		}
	}
	s.fast.start(ls.UDP, &wg)
	ls.Serve(s.stack.Server, &wg)
	pctx, stopPolicy := context.WithCancel(context.Background())
	wg.Go(func() { s.pol.Run(pctx) })
	wg.Go(func() { s.bans.Run(pctx) })
	wg.Go(func() { s.expireLoop(ctx) })
	wg.Go(func() { s.probeDatabase(ctx) })
	wg.Go(func() { s.requestLoop(ctx) })
	if s.cfg.OverloadWait > 0 {
		wg.Go(func() { s.load.watch(ctx, overloadEvery, ls.UDP.QueueWait, s.overloadChanged) })
	}
	stopRecords := s.pol.StartRecords()
	s.log.Info("edge listening", "udp", ls.UDP.LocalAddr().String(), "tcp", ls.TCP.Addr().String(), "tls", s.cfg.TLSAddr, "realm", s.cfg.Realm, "carrier", s.cfg.Carrier, "config_version", s.AppliedVersion())
	s.health.set(NotReadyStarting, false)
	close(s.ready)

	<-ctx.Done()
	s.drain()
	stopRecords()
	stopPolicy()
	for _, c := range closers {
		_ = c()
	}
	ls.Close()
	s.fast.close()
	s.stack.UA.Close()
	wg.Wait()
	return nil
}

// drain is the graceful stop: new calls get 503 with Retry-After and
// OPTIONS 503 from now on; the calls up go on for at most DrainTimeout,
// then the ones left (ringing or answered) are ended with BYE; the last
// channel releases are committed before the store closes.
func (s *Server) drain() {
	s.SetDraining() // OPTIONS, new INVITEs and REGISTERs, /readyz, node list
	s.calls.Drain()
	reason := "shutdown"
	if d := s.cfg.DrainTimeout; d > 0 && s.calls.LiveAttempts() > 0 {
		s.log.Info("draining: new calls refused, calls up go on", "calls", s.calls.LiveAttempts(), "drain_timeout", d.String())
		deadline := time.Now().Add(d)
		for s.calls.LiveAttempts() > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		reason = "drained"
	}
	if n := s.calls.LiveAttempts(); n > 0 {
		s.log.Info("ending the calls left", "calls", n, "reason", reason)
	}
	if !s.calls.EndAll(reason, 40*time.Second) {
		s.log.Warn("calls still ending at shutdown", "calls", s.calls.LiveAttempts())
	}
	if s.cfg.Channels != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if !s.cfg.Channels.Settle(ctx, 5*time.Second) {
			s.log.Warn("channel leases not released at shutdown; they expire with their lease", "pending", s.cfg.Channels.Pending())
		}
		cancel()
	}
}

func (s *Server) listenWS() (*transport.WSFront, error) {
	var tlsConf *tls.Config
	if s.cfg.TLSCert != "" && s.cfg.TLSKey != "" {
		c, err := transport.TLSConfig(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		tlsConf = c
	}
	return transport.ListenWS(s.cfg.WSAddr, s.cfg.WS, tlsConf, transport.WSHooks{
		Banned:  s.shield.Banned,
		Refused: func() { s.met.Refusals.WithLabelValues("ws_origin").Inc() },
		Closed:  s.reg.DropWS,
		Log:     s.log,
		Dropped: &s.dropped,
	})
}

// expireLoop drops expired bindings and failure counts every second.
func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.now()
			s.reg.Expire(now)
			s.auth.Sweep(now)
		}
	}
}

// readFilter drops packets of banned sources before parsing, and serves
// out-of-dialog REGISTER and OPTIONS over UDP itself (fastpath.go).
func (s *Server) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	ap := sipmsg.AddrPortOf(info.RemoteAddr)
	if ap.IsValid() && s.shield.Banned(ap.Addr()) && !s.carrierAddrs.Match(ap) {
		s.dropped.Add(1)
		return nil, nil
	}
	if len(data) > sipmsg.MaxMessageSize && !strings.EqualFold(info.Transport, "tcp") && !strings.EqualFold(info.Transport, "tls") {
		// A datagram or WebSocket message over the limit (cut by the read
		// buffer, transport.Tune): it cannot be parsed, so it is dropped.
		// Over WebSocket it is logged and counts as garbage, so that a flood
		// of them ends in a ban rather than in the log.
		s.met.Refusals.WithLabelValues("message_too_large").Inc()
		if !strings.EqualFold(info.Transport, "udp") && ap.IsValid() {
			s.log.Warn("WebSocket message over the size limit dropped", "src", ap.String(), "limit_bytes", sipmsg.MaxMessageSize)
			if s.shield.Garbage(ap.Addr()) {
				s.log.Warn("source banned", "src", ap.Addr().String(), "reason", "garbage", "for", s.cfg.BanDuration.String())
			}
		}
		return nil, nil
	}
	// Datagrams that are not SIP count against their source (keepalives
	// are not garbage); the ban is logged once, the datagrams never.
	if ap.IsValid() && strings.EqualFold(info.Transport, "udp") && !sipmsg.LooksLikeSIP(data) && !s.carrierAddrs.Match(ap) {
		if s.shield.Garbage(ap.Addr()) {
			s.log.Warn("source banned", "src", ap.Addr().String(), "reason", "garbage", "for", s.cfg.BanDuration.String())
		}
		return nil, nil
	}
	if strings.EqualFold(info.Transport, "udp") {
		// The UDP socket's reads do not enter the scheduler
		// (transport.UDPConn): yield to the goroutines each accepted
		// datagram makes ready, or the read loop keeps the CPU while
		// datagrams wait, until the runtime preempts it 10 ms later.
		// Dropped datagrams (a flood) are drained without yielding.
		defer runtime.Gosched()
		if s.fast.take(info, data) {
			return nil, nil
		}
	}
	return data, nil
}

// wrap validates what the handlers rely on before calling them; requests
// sipgo parsed but that lack a header we need get 400.
func (s *Server) wrap(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panic", "panic", fmt.Sprint(r), "method", string(req.Method))
				s.respond(tx, req, 500, "Server Internal Error")
			}
		}()
		if code, why := sipmsg.Validate(req); code != 0 {
			var hs []sip.Header
			if code == 420 {
				hs = append(hs, sip.NewHeader("Unsupported", why))
				why = "Bad Extension"
			}
			s.respond(tx, req, code, why, hs...)
			return
		}
		h(req, tx)
	}
}

func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if err := sipmsg.Respond(tx, req, code, reason, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// handleUnknown answers the methods the edge does not serve.
func (s *Server) handleUnknown(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 501, "Not Implemented", sip.NewHeader("Allow", sipmsg.Allowed))
}

// guardNotice tells the customer, through the audit log that the SIP
// Accounts page reads, that a SIP account's guard started.
func (s *Server) guardNotice(acct *sipdesk.SIPAccount, until time.Time) {
	g := s.cfg.AccountGuard
	s.pol.Notice(sipdesk.AuditEntry{CustomerID: acct.CustomerID, SIPAccountID: acct.ID, Actor: "edge:" + s.cfg.Node,
		Action: sipdesk.AuditPasswordGuessing,
		Detail: fmt.Sprintf("%d wrong passwords within %s, from any addresses. Until %s (longer while it goes on), "+
			"only devices that logged in from their address in the last %s are accepted; a new device or address has to wait. "+
			"If you did not cause this, reset the password.", g.Failures, spoken(g.Window), until.UTC().Format("15:04 UTC"), spoken(g.Trust))})
}

// spoken says a duration as people do: "10 minutes", "24 hours".
func spoken(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
