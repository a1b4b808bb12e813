package b2bua

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// callerInvite is the caller's INVITE while we answer it (we are its UAS):
// the INVITE reduced to what responses copy, with our To tag, and its
// transaction. Once the 2xx is ACKed it goes; the call keeps the caller's
// leg as a uacLeg, as the callee's (sipgo's DialogServerSession kept the
// INVITE and the 2xx sent for the whole call).
type callerInvite struct {
	req      *sip.Request // sipmsg.DialogInvite with our To tag
	tx       sip.ServerTransaction
	id       string // the dialog id (the call table's key)
	ctx      context.Context
	cancel   context.CancelFunc // the caller canceled, or the transaction ended unanswered
	answered atomic.Bool        // a 2xx went out: a CANCEL or the transaction's end no longer cancels
	contact  sip.Header         // our Contact
}

// readInvite starts answering req on tx.
func (s *B2BUA) readInvite(req *sip.Request, tx sip.ServerTransaction) (*callerInvite, error) {
	if req.Contact() == nil || req.To() == nil || req.CSeq() == nil {
		return nil, errors.New("INVITE without Contact, To or CSeq")
	}
	d := sipmsg.DialogInvite(req)
	// The To header is req's own (DialogInvite shares them): tag a clone.
	to := sip.HeaderClone(req.To()).(*sip.ToHeader)
	to.Params.Add("tag", sip.GenerateTagN(16)) // headerClone cloned the params
	d.ReplaceHeader(to)
	id, err := sip.DialogIDFromRequestUAS(d)
	if err != nil {
		return nil, err
	}
	ci := &callerInvite{req: d, tx: tx, id: id, contact: &s.dua.ContactHDR}
	ci.ctx, ci.cancel = context.WithCancel(context.Background())
	stop := func() {
		if !ci.answered.Load() {
			ci.cancel()
		}
	}
	if !tx.OnCancel(func(*sip.Request) { stop() }) || !tx.OnTerminate(func(string, error) { stop() }) {
		ci.cancel() // canceled, or ended, already: the call ends as canceled
	}
	return ci, nil
}

// response is the answer code reason to the INVITE, with our Contact.
func (ci *callerInvite) response(code int, reason string, body []byte, hs ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(ci.req, code, reason, body)
	for _, h := range hs {
		res.AppendHeader(h)
	}
	if res.Contact() == nil {
		res.AppendHeader(ci.contact)
	}
	return res
}

// Respond sends a provisional or a failure answer.
func (ci *callerInvite) Respond(code int, reason string, body []byte, hs ...sip.Header) error {
	select {
	case <-ci.tx.Done():
		return ci.tx.Err() // canceled, or timed out, meanwhile
	default:
	}
	return ci.tx.Respond(ci.response(code, reason, body, hs...))
}

// answer ends the INVITE transaction and sends the 2xx outside it
// through tp, then again (T1 doubling to T2, RFC 3261 §13.3.1.4; on any
// transport, since the ACK is end to end) until c's ACK comes, for as long
// as the transaction would have lingered (sip.Timer_L, transport.Tune) at
// most: after that, an error.
//
// Sending the 2xx again is the UAS core's job anyway (RFC 6026), and an
// answered sipgo transaction stays in memory, with the INVITE as parsed
// and the 2xx, until Timer L fires even once ended (ending it does not
// stop that timer): at 750 calls/s, 3,750 of them. The INVITE's
// retransmissions from then on are absorbed by repeated, from the live
// table.
func (ci *callerInvite) answer(tp *sip.TransportLayer, c *call, body []byte, hs ...sip.Header) error {
	if err := ci.tx.Err(); err != nil {
		return err // canceled, or timed out, meanwhile
	}
	ci.answered.Store(true)
	ci.tx.Terminate()
	res := ci.response(200, "OK", body, hs...)
	if err := tp.WriteMsg(res); err != nil {
		return err
	}
	giveUp := time.NewTimer(sip.Timer_L)
	defer giveUp.Stop()
	t := time.NewTimer(sip.T1)
	defer t.Stop()
	for d := sip.T1; ; {
		select {
		case <-c.acked:
			return nil
		case <-giveUp.C:
			return errNoAck
		case <-t.C:
			if err := tp.WriteMsg(res); err != nil {
				return err
			}
			d = min(2*d, sip.T2)
			t.Reset(d)
		}
	}
}

var errNoAck = errors.New("no ACK to the 2xx")
