package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// invite is an INVITE the B2BUA sent (a call's leg, or one fork of it) and
// its client transaction, until the final answer. The B2BUA runs it itself
// rather than through sipgo's DialogClientSession so that the transaction,
// the INVITE and the 2xx can go at the ACK: the session keeps them, and the
// ACK it would resend, for the whole call.
type invite struct {
	req         *sip.Request
	tx          sip.ClientTransaction
	res         *sip.Response // the last response; the 2xx once answered
	provisional bool          // a provisional came: a CANCEL may go (RFC 3261 §9.1)
}

// errInviteEnded: the transaction ended (timeout, transport error) with no
// final answer.
var errInviteEnded = errors.New("invite: transaction ended without an answer")

// sendInvite starts the INVITE transaction of req, with our Contact unless
// it has one.
func (s *B2BUA) sendInvite(ctx context.Context, req *sip.Request) (*invite, error) {
	if req.Contact() == nil {
		req.AppendHeader(sip.HeaderClone(&s.dua.ContactHDR))
	}
	tx, err := s.dua.Client.TransactionRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	return &invite{req: req, tx: tx}, nil
}

// waitAnswer waits for inv's final answer and passes every response to
// onResponse first. It answers a challenge with auth (when given) at most
// twice (a stale nonce), and CANCELs the INVITE when ctx ends first. It
// returns nil once a 2xx came (inv.res), a *sipgo.ErrDialogResponse with a
// failure, or the error that ended it.
func (s *B2BUA) waitAnswer(ctx context.Context, inv *invite, auth *sipgo.DigestAuth, onResponse func(*sip.Response)) error {
	authed := 0
	for {
		select {
		case r := <-inv.tx.Responses():
			inv.res = r
			onResponse(r)
			switch {
			case r.IsProvisional():
				inv.provisional = true
				continue
			case r.IsSuccess():
				return nil
			case auth != nil && authed < 2 && challenged(r):
				authed++
				inv.tx.Terminate()
				tx, err := s.dua.Client.TransactionDigestAuth(ctx, inv.req, r, *auth)
				if err != nil {
					return err
				}
				inv.tx, inv.provisional = tx, false
				continue
			}
			return &sipgo.ErrDialogResponse{Res: r}
		case <-ctx.Done():
			return s.cancelInvite(ctx, inv)
		case <-inv.tx.Done():
			if err := inv.tx.Err(); err != nil {
				return fmt.Errorf("%w: %w", errInviteEnded, err)
			}
			return errInviteEnded
		}
	}
}

// challenged reports whether r asks for credentials we can answer.
func challenged(r *sip.Response) bool {
	return r.StatusCode == sip.StatusUnauthorized && r.GetHeader("WWW-Authenticate") != nil ||
		r.StatusCode == sip.StatusProxyAuthRequired && r.GetHeader("Proxy-Authenticate") != nil
}

// cancelInvite CANCELs inv once a provisional came (RFC 3261 §9.1) and
// waits for its final answer at most 64×T1, whatever the CANCEL's own
// answer; a 2xx that crosses the CANCEL is ACKed and hung up. It returns
// ctx's error.
func (s *B2BUA) cancelInvite(ctx context.Context, inv *invite) error {
	defer inv.tx.Terminate()
	final := func(r *sip.Response) bool {
		inv.res = r
		if r.IsSuccess() {
			s.hangUp(inv)
		}
		return !r.IsProvisional()
	}
	// next is inv's next response, or false when its transaction or
	// done ended first.
	next := func(done <-chan struct{}) (*sip.Response, bool) {
		select {
		case r := <-inv.tx.Responses():
			return r, true
		case <-inv.tx.Done():
		case <-done:
		}
		return nil, false
	}
	if !inv.provisional {
		if r, ok := next(nil); !ok || final(r) {
			return ctx.Err()
		}
	}
	req := inv.req
	c := sip.NewRequest(sip.CANCEL, req.Recipient)
	c.AppendHeader(sip.HeaderClone(req.Via())) // the INVITE's top Via: the same transaction
	c.AppendHeader(sip.HeaderClone(req.From()))
	c.AppendHeader(sip.HeaderClone(req.To()))
	c.AppendHeader(sip.HeaderClone(req.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.CANCEL})
	sip.CopyHeaders("Route", req, c)
	c.SetTransport(req.Transport())
	c.SetDestination(req.Destination())
	cctx, done := context.WithTimeout(context.Background(), 64*sip.T1)
	defer done()
	if res, err := s.dua.Client.Do(cctx, c, sipgo.ClientRequestBuild); err != nil || res.StatusCode != 200 {
		// A 481: the final answer may be on its way (a 2xx to hang up).
		s.log.Debug("cancel", "call_id", req.CallID().Value(), "error", err)
	}
	for {
		if r, ok := next(cctx.Done()); !ok || final(r) {
			return ctx.Err()
		}
	}
}

// answered ACKs inv's 2xx and ends its transaction: what the call keeps of
// the leg from here is the uacLeg (nil when the 2xx makes no dialog). A 2xx
// repeated after this is ACKed again by unhandledResponse.
func (s *B2BUA) answered(inv *invite) (*uacLeg, error) {
	defer inv.tx.Terminate()
	l, err := s.answeredLeg(inv.req, inv.res)
	if err != nil {
		return nil, err
	}
	return l, s.ackLeg(l, inv.req.CSeq().SeqNo)
}

// hangUp ACKs and takes down a 2xx the call does not want (a second fork,
// an answer crossing our CANCEL).
func (s *B2BUA) hangUp(inv *invite) {
	if l, _ := s.answered(inv); l != nil {
		s.takeDown(l)
	}
}

// takeDown sends BYE on a leg the call does not keep, in the background.
func (s *B2BUA) takeDown(l *uacLeg) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
		defer cancel()
		if err := s.bye(ctx, l, nil); err != nil {
			s.log.Debug("bye a leg not kept", "call_id", l.leg.CallID, "error", err)
		}
	}()
}
