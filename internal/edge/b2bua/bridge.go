package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// attempt is one call attempt from the moment its SIP account is known:
// the channel it may hold and its call record.
type attempt struct {
	info     policy.CallInfo
	rec      sipdesk.CallRecord
	admitted bool   // holds a channel (Admission.Release still due)
	counted  bool   // counted in the channels gauge
	relay    bool   // the holding edge's side of a hop: counted and recorded by the edge the carrier reached
	branch   string // the top Via branch of the INVITE that made it (repeated tells retransmissions by it)
	finished atomic.Bool
	media    *callMedia // bridges of a call with a WebRTC leg (webrtc.go)
	stop     stopState  // ended from outside (fencing, drain): ending.go
}

func (s *B2BUA) newAttempt(req *sip.Request, dir string, acct *sipdesk.SIPAccount) *attempt {
	callID := req.CallID().Value()
	at := &attempt{info: policy.CallInfo{CallID: callID, Direction: dir, Account: acct, CustomerID: acct.CustomerID, Node: s.cfg.Node}}
	if via := req.Via(); via != nil {
		at.branch, _ = via.Params.Get("branch")
	}
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
		r := sipdesk.RefusalFor(err)
		if r == "" {
			r = sipdesk.EUnavailable
		}
		if r == sipdesk.EUnavailable {
			lg.Warn("channel admission failed; refusing (fail closed)", "error", err)
		}
		s.refuseCall(tx, req, r, at, lg)
		return false
	}
	at.admitted = true
	s.live.add(at)
	if s.pol.Config().Counted(at.info.CustomerID, at.info.Direction) {
		at.counted = true
		s.met.Channels.WithLabelValues(strconv.FormatInt(at.info.CustomerID, 10)).Inc()
	}
	s.pol.Record(at, at.rec, false)
	return true
}

// refuseCall answers a refusal and records the attempt.
func (s *B2BUA) refuseCall(tx sip.ServerTransaction, req *sip.Request, r string, at *attempt, lg *slog.Logger) {
	s.refuse(tx, req, r, retryAfter(r, s.cfg.RetryAfter)...)
	code, _ := sipdesk.SIPAnswerFor(r)
	s.finish(at, code, sipdesk.DispRefused, sipdesk.RefusalCode(r))
	lg.Info("call", "result", sipdesk.RefusalCode(r))
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
	defer s.live.remove(at) // after the final record is queued: EndAll waits for it
	if at.relay {
		return
	}
	at.rec.EndedAt = s.now()
	at.rec.Disposition, at.rec.SIPCode, at.rec.Reason = disp, code, reason
	s.met.Calls.WithLabelValues(at.info.Direction, disp).Inc()
	s.pol.Record(at, at.rec, true)
}

// stopRinging answers the caller of a call stopped before it was bridged
// (503 with Retry-After and a Reason header) and finishes the attempt.
func (s *B2BUA) stopRinging(a *callerInvite, at *attempt, why ending, lg *slog.Logger) {
	hs := append(retryAfter(sipdesk.EUnavailable, s.cfg.RetryAfter), sip.NewHeader("Reason", `SIP;cause=503;text="`+why.text+`"`))
	if err := a.Respond(503, "Service Unavailable", nil, hs...); err != nil {
		lg.Debug("respond final", "error", err)
	}
	s.finish(at, 503, sipdesk.DispFailed, why.code)
	lg.Info("call", "result", "stopped", "reason", why.code)
}

func retryAfter(r string, d time.Duration) []sip.Header {
	if r == sipdesk.EUnavailable {
		return []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(d/time.Second))))}
	}
	return nil
}

// bridge forwards legs (one, or several when forking), relays provisional
// responses, answers the caller with the first 2xx and keeps the call until
// a BYE from either side, the maximum duration or a dead dialog. Every way
// out finishes the attempt (channel released, call record stored).
func (s *B2BUA) bridge(req *sip.Request, tx sip.ServerTransaction, at *attempt, legs []*sip.Request, lg *slog.Logger) {
	info := at.info
	a, err := s.readInvite(req, tx)
	if err != nil {
		s.respond(tx, req, 500, "Server Internal Error")
		s.finish(at, 500, sipdesk.DispFailed, "internal")
		lg.Warn("call", "result", "internal", "error", err)
		return
	}
	defer a.cancel()
	ctx, cancel := context.WithTimeout(a.ctx, s.cfg.RingTimeout)
	defer cancel()
	if at.stop.ringing(cancel) != nil {
		cancel() // stopped between admission and now
	}

	type result struct {
		inv *invite
		err error
	}
	results := make(chan result, len(legs))
	var pmu sync.Mutex
	answered := false
	relay := func(r *sip.Response) {
		if !r.IsProvisional() || r.StatusCode == 100 {
			return
		}
		pmu.Lock()
		defer pmu.Unlock()
		if answered {
			return
		}
		body, hs, err := s.callerBody(at, r)
		if err != nil {
			lg.Info("provisional answer: media", "error", err)
			body, hs = nil, nil
		}
		if err := a.Respond(r.StatusCode, r.Reason, body, hs...); err != nil {
			lg.Debug("relay provisional", "error", err)
		}
	}
	cancels := make([]context.CancelFunc, 0, len(legs))
	started := 0
	for _, leg := range legs {
		if ctx.Err() != nil {
			break // canceled or stopped already: no INVITE to take back
		}
		lctx, lcancel := context.WithCancel(ctx)
		cancels = append(cancels, lcancel)
		inv, err := s.sendInvite(lctx, leg)
		if err != nil {
			lg.Warn("leg invite", "error", err)
			continue
		}
		started++
		var auth *sipgo.DigestAuth
		if info.Direction == sipdesk.DirOutbound && s.cfg.CarrierUsername != "" {
			auth = &sipgo.DigestAuth{Username: s.cfg.CarrierUsername, Password: s.cfg.CarrierPassword}
		}
		wait := func() { results <- result{inv, s.waitAnswer(lctx, inv, auth, relay)} }
		if len(legs) == 1 {
			// One leg (every outbound call): wait here, on this goroutine's
			// grown stack, rather than start one that grows its own.
			wait()
		} else {
			go wait()
		}
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	var winner *invite
	var b *uacLeg // the winner's dialog, once ACKed
	var best *sip.Response
	for i := 0; i < started; i++ {
		r := <-results
		if r.err == nil {
			if winner == nil {
				l, err := s.answered(r.inv)
				if l == nil {
					lg.Warn("answer without a dialog", "error", err)
					continue
				}
				if err != nil {
					lg.Warn("ack", "error", err)
				}
				pmu.Lock()
				answered = true
				pmu.Unlock()
				winner, b = r.inv, l
				for _, c := range cancels {
					c() // CANCEL the other forks (a no-op for the winner)
				}
				if started == 1 {
					break
				}
				continue
			}
			// A second fork answered too: take it down.
			s.hangUp(r.inv)
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
		switch stopped := at.stop.why(); {
		case a.ctx.Err() != nil:
			// The caller canceled: sipgo answered 487; the legs got CANCEL.
			s.finish(at, 487, sipdesk.DispCancelled, "cancelled")
			lg.Info("call", "result", "canceled")
			return
		case stopped != nil:
			// Stopped while ringing (fenced, drained): the forks got CANCEL.
			s.stopRinging(a, at, *stopped, lg)
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

	body, hs, merr := s.callerBody(at, winner.res)
	if merr != nil {
		s.takeDown(b)
		if err := a.Respond(488, "Not Acceptable Here", nil); err != nil {
			lg.Debug("respond final", "error", err)
		}
		s.finish(at, 488, sipdesk.DispFailed, "media")
		lg.Info("call", "result", "media", "error", merr)
		return
	}
	c := &call{at: at, a: s.callerLeg(a), b: b, inviteCSeq: req.CSeq().SeqNo, acked: make(chan struct{}), start: s.now(), log: lg}
	if why := at.stop.why(); why != nil {
		// Stopped as the callee answered: take the callee down, never
		// answer the caller.
		s.takeDown(b)
		s.stopRinging(a, at, *why, lg)
		return
	}
	s.calls.add(c)
	c.timer = time.AfterFunc(s.cfg.MaxCallDuration, func() { s.endCall(c, "", endMaxDuration) })
	if c.se = s.sessionInterval(req); c.se > 0 {
		hs = append(hs, sessionTimerHeaders(c.se)...)
	}
	at.rec.AnsweredAt = s.now()
	if !at.relay {
		s.pol.Record(at, at.rec, false)
	}
	lg.Info("call answered", "carrier_call_id", b.leg.CallID, "session_expires", c.se.String())
	if err := a.answer(s.dua.Client.TransportLayer(), c, body, hs...); err != nil {
		lg.Warn("caller did not confirm", "error", err)
		c.confirm()
		s.endCall(c, "", endNoAck)
		return
	}
	// From here a stop (fencing, drain) ends the call with endCall; one
	// that came while the call was being answered ends it now.
	if why := at.stop.bridged(c); why != nil {
		s.endCall(c, "", *why)
		return
	}
	s.pol.SaveDialog(info.CallID, s.dialogOf(c))
	s.watchDialog(c)
}
