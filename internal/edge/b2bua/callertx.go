package b2bua

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// callerTx is the caller's INVITE transaction as sipgo's dialog session
// holds it. The session keeps its transaction for the whole call, and the
// transaction the INVITE as parsed and its last response: about 3 KB a
// call that is of no use once the transaction has ended (Timer L, 5 s after
// the 2xx). From then on callerTx answers for it from what it kept (the
// error) and lets it go.
type callerTx struct {
	mu  sync.Mutex
	tx  sip.ServerTransaction // nil once it ended
	err error
}

// closedDone is the Done channel of an ended transaction.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newCallerTx(tx sip.ServerTransaction) *callerTx {
	c := &callerTx{tx: tx}
	if !tx.OnTerminate(c.ended) {
		c.ended("", tx.Err())
	}
	return c
}

// ended runs when the transaction terminates; sipgo may hold the
// transaction's locks, so it must not call the transaction, and no method
// calls the transaction under c.mu.
func (c *callerTx) ended(_ string, err error) {
	c.mu.Lock()
	c.tx, c.err = nil, err
	c.mu.Unlock()
}

func (c *callerTx) inner() sip.ServerTransaction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tx
}

func (c *callerTx) Respond(res *sip.Response) error {
	if tx := c.inner(); tx != nil {
		return tx.Respond(res)
	}
	return c.Err()
}

func (c *callerTx) Acks() <-chan *sip.Request {
	if tx := c.inner(); tx != nil {
		return tx.Acks()
	}
	return nil
}

func (c *callerTx) OnCancel(f sip.FnTxCancel) bool {
	if tx := c.inner(); tx != nil {
		return tx.OnCancel(f)
	}
	return false
}

func (c *callerTx) Terminate() {
	if tx := c.inner(); tx != nil {
		tx.Terminate()
	}
}

func (c *callerTx) OnTerminate(f sip.FnTxTerminate) bool {
	if tx := c.inner(); tx != nil {
		return tx.OnTerminate(f)
	}
	return false
}

func (c *callerTx) Done() <-chan struct{} {
	if tx := c.inner(); tx != nil {
		return tx.Done()
	}
	return closedDone
}

func (c *callerTx) Err() error {
	if tx := c.inner(); tx != nil {
		return tx.Err() // not under c.mu: sipgo may be ending it, calling ended
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return sip.ErrTransactionTerminated
	}
	return c.err
}

// callerInvite is the caller's INVITE while we answer it (we are its UAS):
// the INVITE reduced to what responses copy, with our To tag, and its
// transaction. Once the 2xx is ACKed it goes; the call keeps the caller's
// leg as a uacLeg, as the callee's (sipgo's DialogServerSession kept the
// INVITE and the 2xx sent for the whole call).
type callerInvite struct {
	req      *sip.Request // sipmsg.DialogInvite with our To tag
	tx       *callerTx
	id       string // the dialog id (the call table's key)
	ctx      context.Context
	cancel   context.CancelFunc // the caller canceled, or the transaction ended unanswered
	answered atomic.Bool        // a 2xx went out: a CANCEL or the transaction's end no longer cancels
	contact  sip.Header         // our Contact
}

// readInvite starts answering req on tx.
func (s *B2BUA) readInvite(req *sip.Request, tx *callerTx) (*callerInvite, error) {
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

// answer sends the 2xx and sends it again (T1 doubling to T2, RFC 3261
// §13.3.1.4; any transport, since the ACK is end to end) until c's ACK
// comes, or the transaction ends without it (64×T1: an error).
func (ci *callerInvite) answer(c *call, body []byte, hs ...sip.Header) error {
	ci.answered.Store(true)
	res := ci.response(200, "OK", body, hs...)
	if err := ci.tx.Respond(res); err != nil {
		return err
	}
	t := time.NewTimer(sip.T1)
	defer t.Stop()
	for d := sip.T1; ; {
		select {
		case <-c.acked:
			return nil
		case <-t.C:
			if err := ci.tx.Respond(res); err != nil {
				return err
			}
			d = min(2*d, sip.T2)
			t.Reset(d)
		}
	}
}
