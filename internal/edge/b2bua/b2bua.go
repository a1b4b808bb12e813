package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/media"
)

// RingTimeout bounds how long a call may ring before the edge gives up.
const RingTimeout = 3 * time.Minute

// Config of the B2BUA (edge.Config documents each field).
type Config struct {
	Node, Realm, AdvertiseHost       string
	Carrier                          sip.Uri // Host "": no carrier
	CarrierUsername, CarrierPassword string
	MaxCallDuration, RingTimeout     time.Duration
	RetryAfter                       time.Duration
	SessionExpires, MinSE            time.Duration
	ProbeInterval, ProbeTimeout      time.Duration
}

// Deps are the parts the B2BUA works with.
type Deps struct {
	Policy    policy.Policy
	Auth      *auth.Authenticator
	Registrar *registrar.Registrar
	Dialog    *sipgo.DialogUA
	Carrier   *shield.AddrMatcher // sources whose INVITEs are inbound calls
	Media     *media.Relay        // nil: WebRTC offers get 488
	Metrics   *metrics.Edge
	Log       *slog.Logger
	Now       func() time.Time
	UDPAddr   func() *net.UDPAddr // our UDP socket: requests over UDP leave from it
}

// B2BUA bridges calls: devices and IP accounts to the carrier (outbound),
// the carrier to the SIP account of a DID (inbound, forked to every
// binding), with the channel, Caller ID and call record decided by the
// policy.
type B2BUA struct {
	cfg          Config
	pol          policy.Policy
	auth         *auth.Authenticator
	reg          *registrar.Registrar
	dua          *sipgo.DialogUA
	carrier      sip.Uri
	carrierAddrs *shield.AddrMatcher
	media        *media.Relay
	met          *metrics.Edge
	log          *slog.Logger
	now          func() time.Time
	udpAddr      func() *net.UDPAddr
	calls        *callTable
}

// New makes a B2BUA.
func New(cfg Config, d Deps) *B2BUA {
	return &B2BUA{cfg: cfg, pol: d.Policy, auth: d.Auth, reg: d.Registrar, dua: d.Dialog, carrier: cfg.Carrier,
		carrierAddrs: d.Carrier, media: d.Media, met: d.Metrics, log: d.Log, now: d.Now, udpAddr: d.UDPAddr, calls: newCallTable()}
}

// HandleInvite, HandleAck, HandleBye, HandleCancel and HandleInDialog are
// the sipgo request handlers of calls; UnhandledResponse is sipgo's
// handler of responses that match no transaction.
func (s *B2BUA) HandleInvite(req *sip.Request, tx sip.ServerTransaction)   { s.handleInvite(req, tx) }
func (s *B2BUA) HandleAck(req *sip.Request, tx sip.ServerTransaction)      { s.handleAck(req, tx) }
func (s *B2BUA) HandleBye(req *sip.Request, tx sip.ServerTransaction)      { s.handleBye(req, tx) }
func (s *B2BUA) HandleCancel(req *sip.Request, tx sip.ServerTransaction)   { s.handleCancel(req, tx) }
func (s *B2BUA) HandleInDialog(req *sip.Request, tx sip.ServerTransaction) { s.handleInDialog(req, tx) }
func (s *B2BUA) UnhandledResponse(res *sip.Response)                       { s.unhandledResponse(res) }

// EndAll ends every call (shutdown).
func (s *B2BUA) EndAll() { s.calls.endAll(s, endShutdown) }

func (s *B2BUA) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if err := sipmsg.Respond(tx, req, code, reason, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// refuse answers with the refusal's fixed code and reason, and counts it.
func (s *B2BUA) refuse(tx sip.ServerTransaction, req *sip.Request, r sipmsg.Refusal, hdrs ...sip.Header) {
	s.met.Refusals.WithLabelValues(r.Code()).Inc()
	if err := sipmsg.Refuse(tx, req, r, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// call is one bridged call: leg a is the side that called us (we are its
// UAS), leg b the side we called (we are its UAC).
type call struct {
	at      *attempt
	a       *sipgo.DialogServerSession
	b       *sipgo.DialogClientSession
	aID     string
	bID     string
	start   time.Time
	timer   *time.Timer
	ended   atomic.Bool
	done    chan struct{} // closed when the call ends
	refresh chan struct{} // a session refresh from leg a went through
	se      time.Duration // negotiated session interval with leg a; 0: none (OPTIONS probing)
	log     *slog.Logger
}

// ending is why the edge ended an answered call: a code for the call
// record and the text of the Reason header.
type ending struct{ code, text string }

var (
	endBye            = ending{"bye", "BYE"}
	endMaxDuration    = ending{"max_duration", "Maximum call duration reached"}
	endSessionExpired = ending{"session_expired", "Session timer expired"}
	endDeadDialog     = ending{"dead_dialog", "Dead dialog"}
	endShutdown       = ending{"shutdown", "Server shutting down"}
	endNoAck          = ending{"no_ack", "No ACK"}
)

type callTable struct {
	mu sync.Mutex
	m  map[string]*call // by dialog id of either leg
}

func newCallTable() *callTable { return &callTable{m: map[string]*call{}} }

func (t *callTable) add(c *call) {
	t.mu.Lock()
	t.m[c.aID] = c
	t.m[c.bID] = c
	t.mu.Unlock()
}

func (t *callTable) remove(c *call) {
	t.mu.Lock()
	if t.m[c.aID] == c {
		delete(t.m, c.aID)
	}
	if t.m[c.bID] == c {
		delete(t.m, c.bID)
	}
	t.mu.Unlock()
}

func (t *callTable) get(id string) *call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// Len is the number of live calls.
func (t *callTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m) / 2
}

func (t *callTable) endAll(s *B2BUA, reason ending) {
	t.mu.Lock()
	var cs []*call
	for _, c := range t.m {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { s.endCall(c, "", reason) })
	}
	wg.Wait()
}

// match finds the call of an in-dialog request and which leg sent it.
func (s *B2BUA) match(req *sip.Request) (*call, string) {
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := s.calls.get(id); c != nil && c.aID == id {
			return c, "a"
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if c := s.calls.get(id); c != nil && c.bID == id {
			return c, "b"
		}
	}
	return nil, ""
}

// ActiveCalls is the number of bridged calls.
func (s *B2BUA) ActiveCalls() int { return s.calls.Len() }

func (s *B2BUA) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.handleInDialog(req, tx)
		return
	}
	src, ok := sipmsg.SourceOf(req)
	if !ok {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	if req.Contact() == nil {
		s.respond(tx, req, 400, "Missing Contact")
		return
	}
	snap := s.pol.Config()
	if s.carrierAddrs.Match(src) && !sipmsg.IsWS(req) { // carriers do not speak WebSocket
		s.inbound(req, tx, snap)
		return
	}
	callID := req.CallID().Value()
	lg := s.log.With("call_id", callID, "src", src.String(), "direction", "outbound")

	dialed := req.Recipient.User
	var acct *sipdesk.SIPAccount
	ipAccts := snap.IPAccounts(src)
	if len(req.GetHeaders("Proxy-Authorization")) > 0 || len(ipAccts) == 0 || sipmsg.WantsBearer(req) {
		var ref sipmsg.Refusal
		acct, ref = s.auth.Authenticate(req, tx, src, "Proxy-Authorization", snap)
		if acct == nil {
			if ref == sipmsg.RefuseAuthFailed {
				lg.Info("call", "result", ref.Result())
			}
			return
		}
		if !policy.ACLAllows(acct, src) {
			s.refuseCall(tx, req, sipmsg.RefuseSourceNotAllowed, s.newAttempt(req, sipdesk.DirOutbound, acct), lg.With("sip_account", acct.ID))
			return
		}
	} else {
		var ref sipmsg.Refusal
		acct, dialed, ref = pickIPAccount(ipAccts, dialed)
		if acct == nil {
			s.refuse(tx, req, ref)
			lg.Info("call", "result", ref.Result())
			return
		}
	}
	lg = lg.With("sip_account", acct.ID)
	at := s.newAttempt(req, sipdesk.DirOutbound, acct)
	if r := sipmsg.StatusRefusal(acct); r != sipmsg.RefuseNone {
		s.refuseCall(tx, req, r, at, lg)
		return
	}
	number, err := sipdesk.NormalizeNumber(dialed)
	if err != nil {
		s.refuseCall(tx, req, sipmsg.RefuseInvalidNumber, at, lg)
		return
	}
	at.info.Number = number
	if s.carrier.Host == "" {
		s.respond(tx, req, 503, "No carrier configured")
		s.finish(at, 503, sipdesk.DispFailed, "no_carrier")
		lg.Warn("call", "result", "no_carrier")
		return
	}
	// The carrier leg is built (Caller ID chosen) before admission so that
	// refused attempts record the Caller ID they would have had; nothing
	// is sent before the channel is acquired.
	leg, cid := s.carrierRequest(req, acct, number, snap)
	at.rec.CallerID, at.rec.CallerIDRuleID, at.rec.CallerIDReason = cid.number(), cid.ruleID, cid.reason
	if !s.admit(tx, req, at, lg) {
		return
	}
	if !s.mediaOutbound(tx, req, at, leg, lg) {
		return
	}
	s.bridge(req, tx, at, []*sip.Request{leg}, lg)
}

// attempt is one call attempt from the moment its SIP account is known:
// the channel it may hold and its call record.
type attempt struct {
	info     policy.CallInfo
	rec      sipdesk.CallRecord
	admitted bool // holds a channel (Admission.Release still due)
	counted  bool // counted in the channels gauge
	finished atomic.Bool
	media    *callMedia // bridges of a call with a WebRTC leg (webrtc.go)
}

func (s *B2BUA) newAttempt(req *sip.Request, dir string, acct *sipdesk.SIPAccount) *attempt {
	callID := req.CallID().Value()
	at := &attempt{info: policy.CallInfo{CallID: callID, Direction: dir, Account: acct, CustomerID: acct.CustomerID, Node: s.cfg.Node}}
	at.rec = sipdesk.CallRecord{CallID: callID, CustomerID: acct.CustomerID, SIPAccountID: acct.ID, Direction: dir,
		From: req.From().Address.String(), To: req.To().Address.String(), StartedAt: s.now(), Disposition: sipdesk.DispActive, Node: s.cfg.Node}
	if d := req.From().DisplayName; d != "" {
		at.rec.From = strconv.Quote(d) + " <" + at.rec.From + ">"
	}
	return at
}

// admit acquires the attempt's channel or refuses the call; it reports
// whether the call may go on.
func (s *B2BUA) admit(tx sip.ServerTransaction, req *sip.Request, at *attempt, lg *slog.Logger) bool {
	if err := s.pol.AdmitCall(context.Background(), at.info); err != nil {
		r := sipmsg.RefusalForError(err)
		if r == sipmsg.RefuseNone {
			r = sipmsg.RefuseUnavailable
		}
		if r == sipmsg.RefuseUnavailable {
			lg.Warn("channel admission failed; refusing (fail closed)", "error", err)
		}
		s.refuseCall(tx, req, r, at, lg)
		return false
	}
	at.admitted = true
	if c := s.pol.Config().Customer(at.info.CustomerID); c == nil || c.Counted(at.info.Direction) {
		at.counted = true
		s.met.Channels.WithLabelValues(strconv.FormatInt(at.info.CustomerID, 10)).Inc()
	}
	s.pol.Record(at, at.rec, false)
	return true
}

// refuseCall answers a refusal and records the attempt.
func (s *B2BUA) refuseCall(tx sip.ServerTransaction, req *sip.Request, r sipmsg.Refusal, at *attempt, lg *slog.Logger) {
	s.refuse(tx, req, r, retryAfter(r, s.cfg.RetryAfter)...)
	in := sipmsg.Refusals[r]
	s.finish(at, in.Code, sipdesk.DispRefused, r.Code())
	lg.Info("call", "result", r.Result())
}

// finish ends an attempt once: releases its channel and stores its final
// call record.
func (s *B2BUA) finish(at *attempt, code int, disp, reason string) {
	if at == nil || !at.finished.CompareAndSwap(false, true) {
		return
	}
	if at.media != nil {
		at.media.close()
	}
	if at.counted {
		at.counted = false
		s.met.Channels.WithLabelValues(strconv.FormatInt(at.info.CustomerID, 10)).Dec()
	}
	if at.admitted {
		at.admitted = false
		s.pol.ReleaseCall(context.Background(), at.info)
	}
	at.rec.EndedAt = s.now()
	at.rec.Disposition, at.rec.SIPCode, at.rec.Reason = disp, code, reason
	s.met.Calls.WithLabelValues(at.info.Direction, disp).Inc()
	s.pol.Record(at, at.rec, true)
}

func retryAfter(r sipmsg.Refusal, d time.Duration) []sip.Header {
	if r == sipmsg.RefuseUnavailable {
		return []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(d/time.Second))))}
	}
	return nil
}

// pickIPAccount chooses among the IP accounts owning a source address by
// tech prefix and returns the dialed number without the prefix.
func pickIPAccount(accts []*sipdesk.SIPAccount, dialed string) (*sipdesk.SIPAccount, string, sipmsg.Refusal) {
	d := strings.TrimPrefix(dialed, "+")
	for _, a := range accts {
		if a.TechPrefix != "" && strings.HasPrefix(d, a.TechPrefix) && len(d) > len(a.TechPrefix) {
			return a, d[len(a.TechPrefix):], sipmsg.RefuseNone
		}
	}
	var noPrefix []*sipdesk.SIPAccount
	for _, a := range accts {
		if a.TechPrefix == "" {
			noPrefix = append(noPrefix, a)
		}
	}
	if len(noPrefix) == 1 {
		return noPrefix[0], dialed, sipmsg.RefuseNone
	}
	return nil, dialed, sipmsg.RefuseTechPrefixRequired
}

// carrierRequest builds the carrier leg's INVITE: new dialog and Call-ID,
// the customer's From user, the account's Caller ID in P-Asserted-Identity,
// SDP passed through; identity headers from the customer are not copied.
func (s *B2BUA) carrierRequest(req *sip.Request, acct *sipdesk.SIPAccount, number string, snap *policy.Snapshot) (*sip.Request, callerID) {
	target := sip.Uri{Scheme: "sip", User: "+" + number, Host: s.carrier.Host, Port: s.carrier.Port}
	if tp, ok := s.carrier.UriParams.Get("transport"); ok {
		target.UriParams = sip.HeaderParams{}
		target.UriParams.Add("transport", tp)
	}
	r := sip.NewRequest(sip.INVITE, target)
	from := req.From()
	cid := s.chooseCallerID(acct, number, from, snap)
	fh := &sip.FromHeader{DisplayName: cid.display, Address: sip.Uri{Scheme: "sip", User: cid.fromUser, Host: s.cfg.AdvertiseHost}}
	if cid.anonymous {
		fh.Address.Host = sipdesk.AnonymousHost
	}
	fh.Params.Add("tag", sip.GenerateTagN(16))
	r.AppendHeader(fh)
	r.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "+" + number, Host: s.carrier.Host, Port: s.carrier.Port}})
	if cid.pai != "" {
		r.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+cid.pai+"@"+s.cfg.AdvertiseHost+">"))
	}
	if cid.privacy {
		r.AppendHeader(sip.NewHeader("Privacy", "id"))
	}
	if mf := req.MaxForwards(); mf != nil && *mf > 1 {
		m := sip.MaxForwardsHeader(*mf - 1)
		r.AppendHeader(&m)
	}
	sipmsg.CopyBody(req, r)
	s.setTransport(r, target)
	return r, cid
}

type callerID struct {
	fromUser, display, pai string
	privacy, anonymous     bool
	ruleID                 int64
	reason                 string
}

// number is the Caller ID as the call record keeps it.
func (c callerID) number() string {
	if c.anonymous {
		return sipdesk.AnonymousUser
	}
	return c.fromUser
}

// chooseCallerID applies sipdesk.ChooseCallerID (trial → verified phone;
// else the account's selected rules, then its default) to From and
// P-Asserted-Identity; a blocked rule gives an anonymous From with
// Privacy: id while P-Asserted-Identity keeps the account's number.
func (s *B2BUA) chooseCallerID(acct *sipdesk.SIPAccount, number string, from *sip.FromHeader, snap *policy.Snapshot) callerID {
	req := sipdesk.CallerIDRequest{Default: acct.CallerID, To: number, FromUser: from.Address.User, FromDisplay: from.DisplayName}
	if c := snap.Customer(acct.CustomerID); c != nil {
		req.Trial, req.VerifiedPhone = c.Trial(), c.VerifiedPhone
	}
	for _, id := range acct.CallerID.RuleIDs {
		if r := snap.Rule(id); r != nil && r.CustomerID == acct.CustomerID {
			req.Rules = append(req.Rules, r)
		}
	}
	ch, err := sipdesk.ChooseCallerID(req)
	if err != nil || (ch.Number == "" && !ch.Anonymous) {
		// No decision (e.g. no default number): the device's From passes.
		return callerID{fromUser: from.Address.User, display: from.DisplayName, pai: acct.CallerID.DefaultNumber, reason: "no_decision"}
	}
	if ch.Anonymous {
		pai := acct.CallerID.DefaultNumber
		if req.Trial || pai == "" {
			pai = req.VerifiedPhone
		}
		return callerID{fromUser: sipdesk.AnonymousUser, display: sipdesk.AnonymousDisplay, pai: pai, privacy: true, anonymous: true,
			ruleID: ch.RuleID, reason: ch.Reason}
	}
	return callerID{fromUser: ch.Number, display: ch.DisplayName, pai: ch.Number, ruleID: ch.RuleID, reason: ch.Reason}
}

// setTransport picks the transport of a request we send and, over UDP,
// sends it from our listening socket so the peer sees our SIP port.
func (s *B2BUA) setTransport(r *sip.Request, target sip.Uri) {
	tp := "UDP"
	if v, ok := target.UriParams.Get("transport"); ok {
		tp = strings.ToUpper(v)
	}
	r.SetTransport(tp)
	if tp == "UDP" {
		if ua := s.udpAddr(); ua != nil {
			r.Laddr = sip.Addr{IP: ua.IP, Port: ua.Port}
		}
	}
}

// bridge forwards legs (one, or several when forking), relays provisional
// responses, answers the caller with the first 2xx and keeps the call until
// a BYE from either side, the maximum duration or a dead dialog. Every way
// out finishes the attempt (channel released, call record stored).
func (s *B2BUA) bridge(req *sip.Request, tx sip.ServerTransaction, at *attempt, legs []*sip.Request, lg *slog.Logger) {
	info := at.info
	a, err := s.dua.ReadInvite(req, tx)
	if err != nil {
		s.respond(tx, req, 500, "Server Internal Error")
		s.finish(at, 500, sipdesk.DispFailed, "internal")
		lg.Warn("call", "result", "internal", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(a.Context(), s.cfg.RingTimeout)
	defer cancel()

	type result struct {
		d   *sipgo.DialogClientSession
		err error
	}
	results := make(chan result, len(legs))
	var pmu sync.Mutex
	answered := false
	relay := func(r *sip.Response) error {
		if !r.IsProvisional() || r.StatusCode == 100 {
			return nil
		}
		pmu.Lock()
		defer pmu.Unlock()
		if answered {
			return nil
		}
		body, hs, err := s.callerBody(at, r)
		if err != nil {
			lg.Info("provisional answer: media", "error", err)
			body, hs = nil, nil
		}
		if err := a.Respond(r.StatusCode, r.Reason, body, hs...); err != nil {
			lg.Debug("relay provisional", "error", err)
		}
		return nil
	}
	cancels := make([]context.CancelFunc, 0, len(legs))
	started := 0
	for _, leg := range legs {
		lctx, lcancel := context.WithCancel(ctx)
		cancels = append(cancels, lcancel)
		d, err := s.dua.WriteInvite(lctx, leg)
		if err != nil {
			lg.Warn("leg invite", "error", err)
			continue
		}
		started++
		opts := sipgo.AnswerOptions{OnResponse: relay}
		if info.Direction == sipdesk.DirOutbound && s.cfg.CarrierUsername != "" {
			opts.Username, opts.Password = s.cfg.CarrierUsername, s.cfg.CarrierPassword
		}
		go func() { results <- result{d, d.WaitAnswer(lctx, opts)} }()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	var winner *sipgo.DialogClientSession
	var best *sip.Response
	for i := 0; i < started; i++ {
		r := <-results
		if r.err == nil {
			if winner == nil {
				pmu.Lock()
				answered = true
				pmu.Unlock()
				winner = r.d
				if err := winner.Ack(context.Background()); err != nil {
					lg.Warn("ack", "error", err)
				}
				for _, c := range cancels {
					c() // CANCEL the other forks (a no-op for the winner)
				}
				if started == 1 {
					break
				}
				continue
			}
			// A second fork answered too: take it down.
			_ = r.d.Ack(context.Background())
			go r.d.Bye(context.Background())
			continue
		}
		var de *sipgo.ErrDialogResponse
		if errors.As(r.err, &de) && de.Res != nil {
			if best == nil || rank(de.Res.StatusCode) > rank(best.StatusCode) {
				best = de.Res
			}
		}
	}
	if winner == nil {
		code, reason := 480, "Temporarily Unavailable"
		why := "no_answer"
		if info.Direction == sipdesk.DirOutbound {
			code, reason, why = 503, "Service Unavailable", "carrier_unavailable"
		}
		switch {
		case a.Context().Err() != nil:
			// The caller canceled: sipgo answered 487; the legs got CANCEL.
			s.finish(at, 487, sipdesk.DispCancelled, "cancelled")
			lg.Info("call", "result", "canceled")
			return
		case best != nil && best.StatusCode != 401 && best.StatusCode != 407:
			code, reason, why = best.StatusCode, best.Reason, "callee"
		case ctx.Err() != nil:
			code, reason, why = 408, "Request Timeout", "ring_timeout"
		}
		if err := a.Respond(code, reason, nil); err != nil {
			lg.Debug("respond final", "error", err)
		}
		s.finish(at, code, sipdesk.DispositionOf(code), why)
		lg.Info("call", "result", "failed", "sip_code", code)
		return
	}

	body, hs, merr := s.callerBody(at, winner.InviteResponse)
	if merr != nil {
		go winner.Bye(context.Background())
		if err := a.Respond(488, "Not Acceptable Here", nil); err != nil {
			lg.Debug("respond final", "error", err)
		}
		s.finish(at, 488, sipdesk.DispFailed, "media")
		lg.Info("call", "result", "media", "error", merr)
		return
	}
	c := &call{at: at, a: a, b: winner, aID: a.ID, bID: winner.ID, start: s.now(), log: lg,
		done: make(chan struct{}), refresh: make(chan struct{}, 1)}
	s.calls.add(c)
	c.timer = time.AfterFunc(s.cfg.MaxCallDuration, func() { s.endCall(c, "", endMaxDuration) })
	if c.se = s.sessionInterval(req); c.se > 0 {
		hs = append(hs, sessionTimerHeaders(c.se)...)
	}
	at.rec.AnsweredAt = s.now()
	s.pol.Record(at, at.rec, false)
	lg.Info("call answered", "carrier_call_id", winner.InviteRequest.CallID().Value(), "session_expires", c.se.String())
	if err := a.Respond(200, "OK", body, hs...); err != nil {
		lg.Warn("caller did not confirm", "error", err)
		s.endCall(c, "", endNoAck)
		return
	}
	go s.watchDialog(c)
}

// rank orders failure responses for forking: 6xx over 486 over 480 over
// the rest, so that the answer does not depend on which fork failed first.
func rank(code int) int {
	switch {
	case code >= 600:
		return 4
	case code == 486:
		return 3
	case code == 480:
		return 2
	case code == 401 || code == 407:
		return 0
	}
	return 1
}

// endCall ends a call once: BYE to the legs other than from ("a", "b" or ""
// for both, with a Reason header), releases the channel, stores the call
// record and logs one line.
func (s *B2BUA) endCall(c *call, from string, why ending) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	close(c.done)
	if c.timer != nil {
		c.timer.Stop()
	}
	// The call leaves the table once its BYEs are done: an ACK that arrives
	// after the other side's BYE (each message runs in its own goroutine)
	// must still confirm the caller's leg, or our BYE to it would wait for
	// the INVITE transaction to time out.
	defer s.calls.remove(c)
	code, by := why.code, "edge"
	switch {
	case why == endBye && from == "a":
		code, by = "bye_caller", "caller"
	case why == endBye && from == "b":
		code, by = "bye_callee", "callee"
	}
	s.finish(c.at, 200, sipdesk.DispAnswered, code)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reason := sip.NewHeader("Reason", `SIP;cause=200;text="`+why.text+`"`)
	byeA := func() {
		bye := sip.NewRequest(sip.BYE, c.a.InviteRequest.Contact().Address)
		if from == "" {
			bye.AppendHeader(sip.HeaderClone(reason))
		}
		if err := c.a.WriteBye(ctx, bye); err != nil {
			c.log.Debug("bye a", "error", err)
		}
	}
	byeB := func() {
		target := c.b.InviteRequest.Recipient
		if ct := c.b.InviteResponse.Contact(); ct != nil {
			target = ct.Address
		}
		bye := sip.NewRequest(sip.BYE, target)
		if from == "" {
			bye.AppendHeader(sip.HeaderClone(reason))
		}
		if err := c.b.WriteBye(ctx, bye); err != nil {
			c.log.Debug("bye b", "error", err)
		}
	}
	// A BYE from one side (the usual end) leaves one leg to take down: no
	// goroutine for it; the edge ending the call takes both down at once.
	switch from {
	case "a":
		byeB()
	case "b":
		byeA()
	default:
		var wg sync.WaitGroup
		wg.Go(byeA)
		byeB()
		wg.Wait()
	}
	c.log.Info("call", "result", "completed", "ended_by", by, "reason", why.text, "duration", s.now().Sub(c.start).Round(time.Millisecond).String())
}

func (s *B2BUA) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	c, side := s.match(req)
	if c == nil || side != "a" {
		s.log.Debug("ack: no dialog", "call_id", req.CallID().Value())
		return
	}
	if err := c.a.ReadAck(req, tx); err != nil {
		s.log.Debug("ack", "call_id", req.CallID().Value(), "error", err)
	}
}

func (s *B2BUA) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	c, side := s.match(req)
	if c == nil {
		s.log.Debug("bye: no dialog", "call_id", req.CallID().Value(), "from", req.From().Value(), "to", req.To().Value())
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	var err error
	if side == "a" {
		err = c.a.ReadBye(req, tx)
	} else {
		err = c.b.ReadBye(req, tx)
	}
	if err != nil {
		s.respond(tx, req, 200, "OK")
	}
	s.endCall(c, side, endBye)
}

func (s *B2BUA) handleCancel(req *sip.Request, tx sip.ServerTransaction) {
	// CANCELs matching a pending INVITE are answered by the transaction
	// layer; this one matched nothing.
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// handleInDialog relays re-INVITE, UPDATE and INFO to the other leg and its
// final answer back; a 2xx to a relayed re-INVITE is ACKed by us, and the
// sender's ACK is absorbed.
func (s *B2BUA) handleInDialog(req *sip.Request, tx sip.ServerTransaction) {
	c, side := s.match(req)
	if c == nil || c.ended.Load() {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	var target sip.Uri
	if side == "a" {
		target = c.b.InviteRequest.Recipient
		if ct := c.b.InviteResponse.Contact(); ct != nil {
			target = ct.Address
		}
	} else {
		target = c.a.InviteRequest.Contact().Address
	}
	out := sip.NewRequest(req.Method, target)
	sipmsg.CopyBody(req, out)
	var ctx2 sip.ClientTransaction
	var err error
	if side == "a" {
		ctx2, err = c.b.TransactionRequest(ctx, out)
	} else {
		ctx2, err = c.a.TransactionRequest(ctx, out)
	}
	if err != nil {
		s.respond(tx, req, 500, "Server Internal Error")
		return
	}
	defer ctx2.Terminate()
	var res *sip.Response
wait:
	for {
		select {
		case r := <-ctx2.Responses():
			if r.IsProvisional() {
				continue
			}
			res = r
			break wait
		case <-ctx2.Done():
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if res == nil {
		s.respond(tx, req, 408, "Request Timeout")
		return
	}
	if req.IsInvite() && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, target)
		ack.SetBody(nil)
		if side == "a" {
			err = c.b.WriteRequest(ack)
		} else {
			err = c.a.WriteRequest(ack)
		}
		if err != nil {
			c.log.Debug("ack relayed re-invite", "error", err)
		}
	}
	ans := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	if ct := res.ContentType(); ct != nil {
		ans.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	ans.SetBody(res.Body())
	if res.IsSuccess() && req.IsInvite() {
		ans.AppendHeader(sip.HeaderClone(&s.dua.ContactHDR))
	}
	if side == "a" && res.IsSuccess() && (req.IsInvite() || req.Method == sip.UPDATE) && c.se > 0 {
		// A session refresh (RFC 4028): the interval starts again.
		for _, h := range sessionTimerHeaders(c.se) {
			ans.AppendHeader(h)
		}
		select {
		case c.refresh <- struct{}{}:
		default:
		}
	}
	if err := tx.Respond(ans); err != nil {
		c.log.Debug("relay in-dialog answer", "error", err)
	}
}

// unhandledResponse re-ACKs a 2xx to an INVITE of ours retransmitted after
// its client transaction ended.
func (s *B2BUA) unhandledResponse(res *sip.Response) {
	cs := res.CSeq()
	if cs == nil || cs.MethodName != sip.INVITE || !res.IsSuccess() {
		return
	}
	id, err := sip.DialogIDFromResponse(res)
	if err != nil {
		return
	}
	c := s.calls.get(id)
	if c == nil || c.bID != id {
		return
	}
	target := c.b.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	ack := sip.NewRequest(sip.ACK, target)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	if err := c.b.WriteRequest(ack); err != nil {
		c.log.Debug("re-ack", "error", err)
	}
}

// inbound routes a carrier INVITE to the SIP account of the DID: its
// registered contacts (forked), or an IP account's first address.
func (s *B2BUA) inbound(req *sip.Request, tx sip.ServerTransaction, snap *policy.Snapshot) {
	callID := req.CallID().Value()
	lg := s.log.With("call_id", callID, "direction", "inbound")
	num := req.Recipient.User
	if num == "" {
		num = req.To().Address.User
	}
	did := snap.DID(num)
	if did == nil {
		s.refuse(tx, req, sipmsg.RefuseUnknownDID)
		lg.Info("call", "did", num, "result", "unknown_did")
		return
	}
	lg = lg.With("sip_account", did.SIPAccountID, "did", did.Number)
	acct := snap.Account(did.SIPAccountID)
	if acct == nil || acct.Status != sipdesk.StatusActive {
		s.refuse(tx, req, sipmsg.RefuseNobodyRegistered)
		lg.Info("call", "result", "account_unavailable")
		return
	}
	var legs []*sip.Request
	from := req.From()
	mk := func(target sip.Uri, dest, transport string) *sip.Request {
		r := sip.NewRequest(sip.INVITE, target)
		fh := &sip.FromHeader{DisplayName: from.DisplayName, Address: sip.Uri{Scheme: "sip", User: from.Address.User, Host: s.cfg.AdvertiseHost}}
		fh.Params.Add("tag", sip.GenerateTagN(16))
		r.AppendHeader(fh)
		toUser := acct.Username
		if toUser == "" {
			toUser = did.Number
		}
		r.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: toUser, Host: s.cfg.Realm}})
		sipmsg.CopyBody(req, r)
		tu := target
		if transport != "" {
			tu.UriParams = sip.HeaderParams{}
			tu.UriParams.Add("transport", transport)
		}
		s.setTransport(r, tu)
		if dest != "" {
			r.SetDestination(dest)
		}
		return r
	}
	switch acct.AuthType {
	case sipdesk.AuthPassword:
		for _, b := range s.reg.Bindings(acct.ID) {
			legs = append(legs, mk(b.URI(), b.Reg.Received, b.Reg.Transport))
		}
	case sipdesk.AuthIP:
		if len(acct.AllowedIPs) > 0 {
			ad, port := acct.AllowedIPs[0].Addr(), 5060
			if p := acct.AllowedIPs[0].Port; p != 0 {
				port = int(p)
			}
			t := sip.Uri{Scheme: "sip", User: strings.TrimPrefix(did.Number, "+"), Host: ad.String(), Port: port}
			legs = append(legs, mk(t, net.JoinHostPort(ad.String(), strconv.Itoa(port)), ""))
		}
	}
	at := s.newAttempt(req, sipdesk.DirInbound, acct)
	at.info.Number = did.Number
	at.rec.CallerID = from.Address.User
	at.rec.CallerIDReason = "carrier"
	if len(legs) == 0 {
		s.refuseCall(tx, req, sipmsg.RefuseNobodyRegistered, at, lg)
		return
	}
	if !s.admit(tx, req, at, lg) {
		return
	}
	if legs, code, reason := s.mediaInbound(req, at, legs, lg); len(legs) == 0 {
		s.respond(tx, req, code, reason)
		s.finish(at, code, sipdesk.DispFailed, "media")
		return
	} else {
		s.bridge(req, tx, at, legs, lg)
	}
}
