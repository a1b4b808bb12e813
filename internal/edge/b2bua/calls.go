package b2bua

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// call is one bridged call: leg a is the side that called us (we are its
// UAS), leg b the side we called (we are its UAC).
type call struct {
	at         *attempt
	a          *uacLeg
	b          *uacLeg
	inviteCSeq uint32        // of the caller's INVITE: its ACK's
	acked      chan struct{} // closed once the caller's ACK came, or will not (confirm)
	ackOnce    sync.Once
	start      time.Time
	timer      *time.Timer                // the maximum duration
	watch      atomic.Pointer[time.Timer] // the dead-dialog watch (dialog.go)
	ended      atomic.Bool
	se         time.Duration // negotiated session interval with leg a; 0: none (OPTIONS probing)
	log        *slog.Logger
}

// confirm marks the caller's 2xx as ACKed, or as never to be: requests
// to the caller may go from then on (RFC 3261 §15).
func (c *call) confirm() { c.ackOnce.Do(func() { close(c.acked) }) }

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
	t.m[c.a.id] = c
	t.m[c.b.id] = c
	t.mu.Unlock()
}

func (t *callTable) remove(c *call) {
	t.mu.Lock()
	if t.m[c.a.id] == c {
		delete(t.m, c.a.id)
	}
	if t.m[c.b.id] == c {
		delete(t.m, c.b.id)
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

// match finds the call of an in-dialog request and which leg sent it.
func (s *B2BUA) match(req *sip.Request) (*call, string) {
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := s.calls.get(id); c != nil && c.a.id == id {
			return c, "a"
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if c := s.calls.get(id); c != nil && c.b.id == id {
			return c, "b"
		}
	}
	return nil, ""
}

// ActiveCalls is the number of bridged calls.
func (s *B2BUA) ActiveCalls() int { return s.calls.Len() }

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
	if c.timer != nil {
		c.timer.Stop()
	}
	if w := c.watch.Load(); w != nil {
		w.Stop()
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
	var r sip.Header
	if from == "" {
		r = reason
	}
	byeA := func() {
		// Not before the caller's ACK, or its INVITE transaction's end
		// (RFC 3261 §15).
		select {
		case <-c.acked:
		case <-ctx.Done():
		}
		if err := s.bye(ctx, c.a, r); err != nil {
			c.log.Debug("bye a", "error", err)
		}
	}
	byeB := func() {
		if err := s.bye(ctx, c.b, r); err != nil {
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
	if !s.TakeAck(req) {
		s.log.Debug("ack: no dialog", "call_id", req.CallID().Value())
	}
}

// TakeAck confirms the caller's leg with the ACK of the call's 2xx (the
// first or a repeat) and reports whether req was that ACK, which needs no
// transaction. Any other ACK is left to the transaction layer: a
// failure's ACK carries its INVITE's branch and stops that transaction's
// retransmissions, and a re-INVITE's has a later CSeq.
func (s *B2BUA) TakeAck(req *sip.Request) bool {
	c, side := s.match(req)
	if c == nil || side != "a" || req.CSeq().SeqNo != c.inviteCSeq {
		return false
	}
	c.confirm()
	return true
}

func (s *B2BUA) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	c, side := s.match(req)
	if c == nil && s.voiceBye(req, tx) {
		return
	}
	if c == nil {
		s.log.Debug("bye: no dialog", "call_id", req.CallID().Value(), "from", req.From().Value(), "to", req.To().Value())
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.respond(tx, req, 200, "OK")
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
	to := c.b // the other leg
	if side == "b" {
		to = c.a
	}
	var ctx2 sip.ClientTransaction
	out, err := to.request(req.Method, 0)
	if err == nil {
		sipmsg.CopyBody(req, out)
		ctx2, err = s.dua.Client.TransactionRequest(ctx, out, sipgo.ClientRequestBuild)
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
		if err := s.ackLeg(to, out.CSeq().SeqNo); err != nil {
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
		s.sessionRefreshed(c)
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
	if c == nil || c.b.id != id {
		return
	}
	if err := s.ackLeg(c.b, cs.SeqNo); err != nil {
		c.log.Debug("re-ack", "error", err)
	}
}
