package b2bua

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// uacLeg is one leg of a call up as the requests we send on it need it
// (we are their UAC on either leg): the few strings they are built from.
// Of the leg we called (the carrier, or a device on an inbound call) the
// INVITE sent, the 2xx as parsed and their transaction go at the ACK
// (invite.go), and of the caller's leg the INVITE and the 2xx we sent
// (callerinvite.go); sipgo's dialog sessions kept them for the whole call.
type uacLeg struct {
	id   string           // dialog id (the call table's key)
	leg  policy.DialogLeg // as stored for another edge, but for CSeq (cseq)
	dest string           // where requests go without a route set: the 2xx's source (a NATed device, a WebSocket)
	cseq atomic.Uint32    // the last CSeq sent
}

// answeredLeg keeps what the rest of the call needs of the leg whose
// INVITE req was answered by the 2xx res.
func (s *B2BUA) answeredLeg(req *sip.Request, res *sip.Response) (*uacLeg, error) {
	id, err := sip.DialogIDFromResponse(res)
	if err != nil {
		return nil, err
	}
	cseq := req.CSeq().SeqNo
	l := &uacLeg{id: id, leg: policy.DialogLeg{CallID: req.CallID().Value(), From: req.From().Value(), To: res.To().Value(),
		Target: req.Recipient.String(), Transport: req.Transport(), Contact: s.dua.ContactHDR.Value()}}
	if ct := res.Contact(); ct != nil {
		l.leg.Target = ct.Address.String()
	}
	// The route set is the 2xx's Record-Route reversed (RFC 3261 §12.1.2).
	rr := sipmsg.Headers(res, "Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		l.leg.Route = append(l.leg.Route, rr[i].Value())
	}
	if len(rr) == 0 && s.dua.RewriteContact {
		l.dest = res.Source()
	}
	l.cseq.Store(cseq)
	return l, nil
}

// callerLeg is the caller's leg of ci: we are its UAS, so its From is our
// To, and the route set is the INVITE's Record-Route in order (RFC 3261
// §12.1.1). Our CSeq space starts at the caller's, as sipgo's did.
func (s *B2BUA) callerLeg(ci *callerInvite) *uacLeg {
	req := ci.req
	l := &uacLeg{id: ci.id, leg: policy.DialogLeg{CallID: req.CallID().Value(), From: req.To().Value(), To: req.From().Value(),
		Target: req.Contact().Address.String(), Transport: req.Transport(), Contact: s.dua.ContactHDR.Value()}}
	rr := sipmsg.Headers(req, "Record-Route")
	for _, h := range rr {
		l.leg.Route = append(l.leg.Route, h.Value())
	}
	if len(rr) == 0 && s.dua.RewriteContact {
		l.dest = req.Source()
	}
	l.cseq.Store(req.CSeq().SeqNo)
	return l
}

// request builds the leg's next in-dialog request; an ACK takes the CSeq
// of the INVITE it confirms.
func (l *uacLeg) request(method sip.RequestMethod, ackOf uint32) (*sip.Request, error) {
	cseq := ackOf
	if method != sip.ACK {
		cseq = l.cseq.Add(1)
	}
	r, err := legRequest(&l.leg, method, cseq)
	if err != nil {
		return nil, err
	}
	if l.dest != "" {
		r.SetDestination(l.dest)
	}
	return r, nil
}

// ackLeg sends the ACK of a 2xx to the INVITE of CSeq cseq on leg b (the
// UAC core sends it, outside any transaction).
func (s *B2BUA) ackLeg(b *uacLeg, cseq uint32) error {
	ack, err := b.request(sip.ACK, cseq)
	if err != nil {
		return err
	}
	ack.SetBody(nil)
	return s.dua.Client.WriteRequest(ack, sipgo.ClientRequestBuild)
}

// bye sends BYE on leg l (with a Reason header, when given) and waits for
// the answer.
func (s *B2BUA) bye(ctx context.Context, l *uacLeg, reason sip.Header) error {
	bye, err := l.request(sip.BYE, 0)
	if err != nil {
		return err
	}
	if reason != nil {
		bye.AppendHeader(sip.HeaderClone(reason))
	}
	_, err = s.dua.Client.Do(ctx, bye, sipgo.ClientRequestBuild)
	return err
}

// legRequest builds an in-dialog request on leg (RFC 3261 §12.2.1.1): the
// dialog's From, To and Call-ID, the remote target as Request-URI and the
// route set as Route, or, when the first route is a strict router, that
// route as Request-URI and the target as the last route.
func legRequest(leg *policy.DialogLeg, method sip.RequestMethod, cseq uint32) (*sip.Request, error) {
	var target sip.Uri
	if err := sip.ParseUri(leg.Target, &target); err != nil {
		return nil, err
	}
	route := leg.Route
	var strict *sip.Uri
	if len(route) > 0 {
		var first sip.Uri
		var params sip.HeaderParams
		if _, err := sip.ParseAddressValue(route[0], &first, &params); err != nil {
			return nil, err
		}
		if !first.UriParams.Has("lr") {
			strict = &first
			route = append(route[1:len(route):len(route)], "<"+leg.Target+">")
		}
	}
	ruri := target
	if strict != nil {
		ruri = *strict
	}
	req := sip.NewRequest(method, ruri)
	from, to := &sip.FromHeader{}, &sip.ToHeader{}
	if err := parseNameAddr(leg.From, &from.DisplayName, &from.Address, &from.Params); err != nil {
		return nil, err
	}
	if err := parseNameAddr(leg.To, &to.DisplayName, &to.Address, &to.Params); err != nil {
		return nil, err
	}
	callID := sip.CallIDHeader(leg.CallID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	for _, r := range route {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	if leg.Contact != "" && (method == sip.INVITE || method == sip.UPDATE) {
		req.AppendHeader(sip.NewHeader("Contact", leg.Contact))
	}
	if leg.Transport != "" {
		req.SetTransport(strings.ToUpper(leg.Transport))
	}
	if strict != nil {
		req.SetDestination(hostPort(strict, req.Transport()))
	}
	return req, nil
}

// hostPort is where a request to u goes: its host and port, or the
// transport's default port.
func hostPort(u *sip.Uri, transport string) string {
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	return u.Host + ":" + strconv.Itoa(port)
}
