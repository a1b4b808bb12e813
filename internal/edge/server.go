// Package edge is the SIP edge of sipdesk: registrar and B2BUA toward the
// carrier on sipgo. It answers from an immutable configuration snapshot
// rebuilt when the store's config version changes; only registrations (and,
// through Admission, channel leases) touch the store per request.
package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// MaxMessageSize is the largest SIP message the edge sends or takes over UDP.
const MaxMessageSize = 8192

var sipgoOnce sync.Once

// Server is a running SIP edge.
type Server struct {
	cfg          Config
	st           sipdesk.Store
	log          *slog.Logger
	now          func() time.Time
	carrier      sip.Uri
	carrierAddrs *addrMatcher

	snap   atomic.Pointer[snapshot]
	regs   *regIndex
	auth   *digestAuth
	shield *shield
	fails  *callFails

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dua    *sipgo.DialogUA

	calls *callTable

	// regWrites batches the registrar's store writes (group commit);
	// regStoreDown is set after one failed (see handleRegister).
	regWrites    groupCommit
	regStoreDown atomic.Bool

	met      *metrics
	recorder CallRecorder
	recq     chan recOp
	recBusy  atomic.Int64 // record changes queued or being written

	ready   chan struct{}
	udpAddr atomic.Pointer[net.UDPAddr]
	tcpAddr atomic.Pointer[net.TCPAddr]
	tlsAddr atomic.Pointer[net.TCPAddr]
	wsAddr  atomic.Pointer[net.Addr]
	media   *mediaRelay // WebRTC legs (webrtc.go); nil without SIP over WebSocket
	dropped atomic.Int64
}

// New checks the configuration and prepares a server; Run starts it.
func New(cfg Config, st sipdesk.Store, log *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, st: st, log: log.With("component", "edge"), now: time.Now,
		regs: newRegIndex(), fails: newCallFails(), ready: make(chan struct{}), calls: newCallTable()}
	s.snap.Store(emptySnapshot())
	if cfg.Registry != nil {
		s.met = newMetrics(cfg.Registry)
	} else {
		s.met = newMetrics(nil)
	}
	s.recorder = cfg.Records
	s.recq = make(chan recOp, 8192)
	s.auth = newDigestAuth(cfg.Realm, cfg.NonceKey, s.nowFn)
	s.auth.sha256First = cfg.SHA256First
	s.shield = newShield(cfg.BanFailures, cfg.BanWindow, cfg.BanDuration, s.nowFn)
	s.shield.challengeRate = cfg.ChallengeRate
	mr, err := newMediaRelay(&s.cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.media = mr

	var carrierHost string
	if cfg.Carrier != "" {
		c := cfg.Carrier
		if !strings.HasPrefix(strings.ToLower(c), "sip:") && !strings.HasPrefix(strings.ToLower(c), "sips:") {
			c = "sip:" + c
		}
		if err := sip.ParseUri(c, &s.carrier); err != nil || s.carrier.Host == "" {
			return nil, fmt.Errorf("edge: bad carrier URI %q", cfg.Carrier)
		}
		carrierHost = s.carrier.Host
	}
	addrs := cfg.CarrierAddrs
	if len(addrs) == 0 && carrierHost != "" {
		addrs = []string{carrierHost}
	}
	m, err := parseAddrMatcher(addrs)
	if err != nil {
		return nil, err
	}
	s.carrierAddrs = m

	sipLog := slog.New(&quietHandler{next: s.log.With("component", "sipgo").Handler(), mu: &sync.Mutex{}, last: new(time.Time)})
	sipgoOnce.Do(func() {
		sip.SetDefaultLogger(sipLog)
		// 8 KB messages over UDP (sipgo refuses to send more than MTU-200).
		sip.UDPMTUSize = MaxMessageSize + 200
	})
	tcp := &sip.TransportTCP{ReadTimeout: cfg.TCPIdleTimeout, WriteTimeout: cfg.TCPWriteTimeout}
	tlsT := &sip.TransportTLS{TransportTCP: &sip.TransportTCP{ReadTimeout: cfg.TCPIdleTimeout, WriteTimeout: cfg.TCPWriteTimeout}}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("sipdesk"),
		sipgo.WithUserAgentHostname(cfg.AdvertiseHost),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipLog),
			sip.WithTransportLayerReadFilter(s.readFilter),
			sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp, TLS: tlsT, WS: wsTransport(cfg), WSS: &sip.TransportWSS{TransportWS: wsTransport(cfg)}}),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipLog),
			sip.WithTransactionLayerUnhandledResponseHandler(s.unhandledResponse),
		),
	)
	if err != nil {
		return nil, err
	}
	s.ua = ua
	s.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(cfg.AdvertiseHost), sipgo.WithClientPort(port))
	if err != nil {
		return nil, err
	}
	s.dua = &sipgo.DialogUA{Client: s.client, RewriteContact: true,
		ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: cfg.AdvertiseHost, Port: port}}}

	s.srv.OnRegister(s.wrap(s.countRegister(s.handleRegister)))
	s.srv.OnOptions(s.wrap(s.handleOptions))
	s.srv.OnInvite(s.wrap(s.handleInvite))
	s.srv.OnAck(s.handleAck)
	s.srv.OnBye(s.wrap(s.handleBye))
	s.srv.OnCancel(s.wrap(s.handleCancel))
	s.srv.OnRequest(sip.UPDATE, s.wrap(s.handleInDialog))
	s.srv.OnRequest(sip.INFO, s.wrap(s.handleInDialog))
	s.srv.OnNoRoute(s.wrap(s.handleUnknown))
	return s, nil
}

func (s *Server) nowFn() time.Time { return s.now() }

// AppliedVersion is the config version of the snapshot in use (-1 before
// the first load).
func (s *Server) AppliedVersion() int64 { return s.snap.Load().version }

// Ready is closed once the listeners are up.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// UDPAddr, TCPAddr and TLSAddr are the bound addresses once Ready.
func (s *Server) UDPAddr() *net.UDPAddr { return s.udpAddr.Load() }
func (s *Server) TCPAddr() *net.TCPAddr { return s.tcpAddr.Load() }
func (s *Server) TLSAddr() *net.TCPAddr { return s.tlsAddr.Load() }

// Run loads the configuration and the stored registrations, listens, and
// serves until ctx is done; then it ends the calls and closes everything.
func (s *Server) Run(ctx context.Context) error {
	if err := s.refresh(ctx); err != nil {
		return fmt.Errorf("edge: initial config: %w", err)
	}
	if err := s.loadRegistrations(ctx); err != nil {
		return fmt.Errorf("edge: registrations: %w", err)
	}

	udp, err := net.ListenUDP("udp", mustUDPAddr(s.cfg.Addr))
	if err != nil {
		return fmt.Errorf("edge: listen udp: %w", err)
	}
	if err := udp.SetReadBuffer(s.cfg.UDPReadBuffer); err != nil {
		s.log.Warn("udp receive buffer", "error", err)
	}
	tcpL, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("edge: listen tcp: %w", err)
	}
	s.udpAddr.Store(udp.LocalAddr().(*net.UDPAddr))
	s.tcpAddr.Store(tcpL.Addr().(*net.TCPAddr))
	closers := []func() error{udp.Close, tcpL.Close}
	var tlsL net.Listener
	if s.cfg.TLSAddr != "" && s.cfg.TLSCert != "" && s.cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			udp.Close()
			tcpL.Close()
			return fmt.Errorf("edge: tls certificate: %w", err)
		}
		tlsL, err = tls.Listen("tcp", s.cfg.TLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			udp.Close()
			tcpL.Close()
			return fmt.Errorf("edge: listen tls: %w", err)
		}
		s.tlsAddr.Store(tlsL.Addr().(*net.TCPAddr))
		closers = append(closers, tlsL.Close)
	}

	var wg sync.WaitGroup
	if s.cfg.WSAddr != "" {
		closeWS, err := s.startWS(&wg)
		if err != nil {
			for _, c := range closers {
				c()
			}
			return err
		}
		closers = append(closers, closeWS)
	}
	wg.Go(func() { s.srv.ServeUDP(udp) })
	wg.Go(func() { s.srv.ServeTCP(tcpL) })
	if tlsL != nil {
		wg.Go(func() { s.srv.ServeTLS(tlsL) })
	}
	wg.Go(func() { s.pollLoop(ctx) })
	wg.Go(func() { s.expireLoop(ctx) })
	if r, ok := s.cfg.Admission.(Runner); ok {
		wg.Go(func() { r.Run(ctx) })
	}
	recStop, recDone := make(chan struct{}), make(chan struct{})
	go s.recordWriter(recStop, recDone)
	s.log.Info("edge listening", "udp", udp.LocalAddr().String(), "tcp", tcpL.Addr().String(), "tls", s.cfg.TLSAddr, "realm", s.cfg.Realm, "carrier", s.cfg.Carrier, "config_version", s.AppliedVersion())
	close(s.ready)

	<-ctx.Done()
	s.calls.endAll(s, endShutdown)
	close(recStop)
	<-recDone
	for _, c := range closers {
		c()
	}
	s.ua.Close()
	wg.Wait()
	return nil
}

func mustUDPAddr(a string) *net.UDPAddr {
	ua, err := net.ResolveUDPAddr("udp", a)
	if err != nil {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
	}
	return ua
}

func (s *Server) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("config refresh", "error", err)
			}
		}
	}
}

// refresh rebuilds the snapshot when the config version moved and drops
// the registrations the change invalidates.
func (s *Server) refresh(ctx context.Context) error {
	v, err := s.st.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	old := s.snap.Load()
	if v == old.version {
		return nil
	}
	ns, err := loadSnapshot(ctx, s.st, v)
	if err != nil {
		return err
	}
	s.snap.Store(ns)
	s.invalidate(ctx, old, ns)
	if old.version >= 0 {
		s.log.Info("config applied", "config_version", v, "sip_accounts", len(ns.byID))
	}
	return nil
}

// invalidate drops bindings of accounts that are gone, not active, changed
// auth type or credentials, or whose ACL no longer admits the binding.
func (s *Server) invalidate(ctx context.Context, old, cur *snapshot) {
	now := s.now()
	for _, id := range s.regs.Accounts() {
		o := old.byID[id]
		c := cur.byID[id]
		drop := c == nil || c.Status != sipdesk.StatusActive || c.AuthType != sipdesk.AuthPassword || (o != nil && invalidated(o, c))
		if drop {
			n := s.regs.DeleteAccount(id)
			// Through the registrar's queue, after its pending writes.
			err := s.regWrites.do(s.st, func(tx sipdesk.Tx) error { return tx.DeleteRegistrations(id) })
			s.log.Info("registrations dropped", "sip_account", id, "bindings", n, "error", err)
			continue
		}
		for _, b := range s.regs.Lookup(id, now) {
			ap, err := netip.ParseAddrPort(b.reg.Received)
			if err == nil && !aclAllowsFrom(c, ap) {
				s.regs.Delete(id, b.reg.Contact)
				err := s.regWrites.do(s.st, func(tx sipdesk.Tx) error { return tx.DeleteRegistration(id, b.reg.Contact) })
				s.log.Info("registration dropped", "sip_account", id, "reason", "acl", "error", err)
			}
		}
	}
}

func (s *Server) loadRegistrations(ctx context.Context) error {
	now := s.now()
	snap := s.snap.Load()
	return s.st.View(ctx, func(tx sipdesk.Tx) error {
		rs, err := tx.Registrations(0)
		if err != nil {
			return err
		}
		for _, r := range rs {
			a := snap.byID[r.SIPAccountID]
			if !r.ExpiresAt.After(now) || a == nil || a.Status != sipdesk.StatusActive {
				continue
			}
			if b, ok := newBinding(r); ok {
				s.regs.Put(b)
			}
		}
		return nil
	})
}

func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := s.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.now()
			s.regs.Expire(now)
			s.fails.sweep(now)
			if now.Sub(last) > time.Minute {
				last = now
				if err := s.st.Update(ctx, func(tx sipdesk.Tx) error {
					_, err := tx.DeleteExpiredRegistrations(now)
					return err
				}); err != nil && ctx.Err() == nil {
					s.log.Warn("expire registrations", "error", err)
				}
			}
		}
	}
}

// readFilter drops packets of banned sources before parsing.
func (s *Server) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	ap := addrPortOf(info.RemoteAddr)
	if ap.IsValid() && s.shield.Banned(ap.Addr()) && !s.carrierAddrs.Match(ap) {
		s.dropped.Add(1)
		return nil, nil
	}
	if len(data) > MaxMessageSize && strings.EqualFold(info.Transport, "udp") {
		return nil, nil
	}
	// Datagrams that are not SIP count against their source (keepalives
	// are not garbage); the ban is logged once, the datagrams never.
	if ap.IsValid() && strings.EqualFold(info.Transport, "udp") && !looksLikeSIP(data) && !s.carrierAddrs.Match(ap) {
		if s.shield.Garbage(ap.Addr()) {
			s.log.Warn("source banned", "src", ap.Addr().String(), "reason", "garbage", "for", s.cfg.BanDuration.String())
		}
		return nil, nil
	}
	return data, nil
}

// looksLikeSIP reports whether a datagram is empty (a keepalive) or starts
// with a request line ending in SIP/2.0 or a status line.
func looksLikeSIP(b []byte) bool {
	b = bytes.TrimLeft(b, "\r\n\t ")
	if len(b) == 0 {
		return true
	}
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	line = bytes.TrimRight(line, "\r\t ")
	return bytes.HasPrefix(line, []byte("SIP/")) || bytes.Contains(line, []byte(" SIP/"))
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort()
	case *net.TCPAddr:
		return v.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func sourceOf(req *sip.Request) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
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
		if code, why := validate(req); code != 0 {
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

// validate checks what the handlers rely on and what sipgo's parser lets
// through (RFC 4475): it returns 0 or the status code and reason to answer
// (for 420, the unsupported option tags instead of the reason).
func validate(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		return 400, "Missing mandatory header"
	}
	if v := req.Via(); v.ProtocolName != "SIP" || v.ProtocolVersion != "2.0" {
		return 400, "Bad Via"
	}
	for _, n := range singleHeaders {
		if len(req.GetHeaders(n)) > 1 {
			return 400, "Multiple " + n
		}
	}
	if req.CSeq().MethodName != req.Method && served[req.Method] {
		return 400, "CSeq method mismatch"
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return 400, "Content-Length mismatch"
	}
	if req.Recipient.Scheme != "sip" && req.Recipient.Scheme != "sips" && req.Recipient.Scheme != "tel" {
		return 416, "Unsupported URI Scheme"
	}
	if req.Recipient.Headers.Length() > 0 {
		return 400, "Headers in Request-URI"
	}
	if h := req.GetHeader("Date"); h != nil {
		if _, err := time.Parse(time.RFC1123, h.Value()); err != nil || !strings.HasSuffix(h.Value(), " GMT") {
			return 400, "Bad Date"
		}
	}
	if req.Method == sip.REGISTER {
		if sc := req.To().Address.Scheme; sc != "sip" && sc != "sips" {
			return 400, "To must be a SIP URI"
		}
		// Headers in a Contact would be copied into requests toward it.
		for _, h := range req.GetHeaders("Contact") {
			if c, ok := h.(*sip.ContactHeader); ok && c.Address.Headers.Length() > 0 {
				return 400, "Headers in Contact"
			}
		}
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		var bad []string
		for _, h := range req.GetHeaders("Require") {
			for _, t := range strings.Split(h.Value(), ",") {
				if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "timer") {
					bad = append(bad, t)
				}
			}
		}
		if len(bad) > 0 {
			return 420, strings.Join(bad, ", ")
		}
	}
	return 0, ""
}

// singleHeaders may appear once in a request (RFC 4475 multi01, mcl01).
var singleHeaders = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// handleUnknown answers the methods the edge does not serve.
func (s *Server) handleUnknown(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 501, "Not Implemented", sip.NewHeader("Allow", allowed))
}

const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO"

// served are the methods with a handler; others get 501 whatever their CSeq.
var served = map[sip.RequestMethod]bool{sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true,
	sip.OPTIONS: true, sip.REGISTER: true, sip.UPDATE: true, sip.INFO: true}

func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if tx == nil {
		return
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// refuse answers with the refusal's fixed code and reason.
func (s *Server) refuse(tx sip.ServerTransaction, req *sip.Request, r Refusal, hdrs ...sip.Header) {
	in := Refusals[r]
	s.met.refusals.WithLabelValues(refusalCode(r)).Inc()
	if in.Code == 0 {
		return
	}
	s.respond(tx, req, in.Code, in.Reason, hdrs...)
}

func (s *Server) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 200, "OK",
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp"))
}

// challenge answers 401 (REGISTER) or 407 with the digest challenges.
func (s *Server) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool) {
	code, reason, hname := 407, "Proxy Authentication Required", "Proxy-Authenticate"
	if req.Method == sip.REGISTER {
		code, reason, hname = 401, "Unauthorized", "WWW-Authenticate"
	}
	var hs []sip.Header
	md5Only := false
	if h := req.GetHeader("User-Agent"); h != nil {
		ua := h.Value()
		for _, p := range s.cfg.MD5OnlyUserAgents {
			if strings.HasPrefix(ua, p) {
				md5Only = true
			}
		}
	}
	for _, v := range s.auth.Challenges(stale, md5Only) {
		hs = append(hs, sip.NewHeader(hname, v))
	}
	s.respond(tx, req, code, reason, hs...)
}

// authenticate checks the digest answer in header hname (Authorization or
// Proxy-Authorization). It returns the account, or nil after answering.
func (s *Server) authenticate(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, hname string, snap *snapshot) (*sipdesk.SIPAccount, Refusal) {
	var creds Credentials
	found := false
	for _, h := range req.GetHeaders(hname) {
		c, ok := ParseCredentials(h.Value())
		if !ok {
			continue
		}
		creds, found = c, true
		if c.Realm == s.cfg.Realm {
			break
		}
	}
	if !found {
		if !s.carrierAddrs.Match(src) && s.shield.Challenged(src.Addr()) {
			s.log.Warn("source banned: requests without credentials flood", "src", src.Addr().String(), "for", s.cfg.BanDuration.String())
		}
		s.challenge(tx, req, false)
		return nil, RefuseUnauthorized
	}
	acct := snap.byUser[creds.Username]
	var ha *sipdesk.DigestHashes
	if acct != nil {
		ha = &acct.Digest
	}
	switch s.auth.Verify(&creds, string(req.Method), ha) {
	case vOK:
		return acct, RefuseNone
	case vStale, vReplay:
		// A replayed nonce-count carries a right answer: a retransmission
		// that outlived its transaction (see nonInviteServerLinger) or a
		// captured request, never a password guess. Like Kamailio, answer
		// with a fresh nonce (stale=true); it does not count towards a ban.
		s.challenge(tx, req, true)
		return nil, RefuseUnauthorized
	}
	// A failed answer: counted per source (bans) and per Call-ID.
	if !s.carrierAddrs.Match(src) {
		if s.shield.Fail(src.Addr()) {
			s.log.Warn("source banned", "src", src.Addr().String(), "for", s.cfg.BanDuration.String())
		}
	}
	callID := req.CallID().Value()
	if s.fails.inc(callID, s.now()) >= 3 {
		s.refuse(tx, req, RefuseAuthFailed)
		return nil, RefuseAuthFailed
	}
	s.challenge(tx, req, false)
	s.log.Info("auth failed", "call_id", callID, "src", src.String(), "method", string(req.Method), "result", sipdesk.EUnauthorized)
	return nil, RefuseUnauthorized
}

// callFails counts failed answers per Call-ID.
type callFails struct {
	mu sync.Mutex
	m  map[string]cfEntry
}

type cfEntry struct {
	n   int
	exp time.Time
}

func newCallFails() *callFails { return &callFails{m: map[string]cfEntry{}} }

func (c *callFails) inc(id string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if now.After(e.exp) {
		e = cfEntry{}
	}
	e.n++
	e.exp = now.Add(2 * time.Minute)
	c.m[id] = e
	return e.n
}

func (c *callFails) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if now.After(e.exp) {
			delete(c.m, k)
		}
	}
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
