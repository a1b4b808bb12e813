package b2bua

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// inboundLeg is an INVITE of an inbound call toward target: the caller's
// From user and name from our host, To the called account, the caller's
// body.
func (s *B2BUA) inboundLeg(req *sip.Request, toUser string, target sip.Uri) *sip.Request {
	from := req.From()
	r := sip.NewRequest(sip.INVITE, target)
	fh := &sip.FromHeader{DisplayName: from.DisplayName, Address: sip.Uri{Scheme: "sip", User: from.Address.User, Host: s.cfg.AdvertiseHost}}
	fh.Params.Add("tag", sip.GenerateTagN(16))
	r.AppendHeader(fh)
	r.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: toUser, Host: s.cfg.Realm}})
	sipmsg.CopyBody(req, r)
	return r
}

// deviceLeg is the leg to a device over this edge's own flow to it: sent
// to dest (the binding's source address) over its transport, so that it
// follows the device's NAT binding or connection.
func (s *B2BUA) deviceLeg(req *sip.Request, toUser string, target sip.Uri, dest, transport string) *sip.Request {
	r := s.inboundLeg(req, toUser, target)
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

// hopLeg is the leg to a binding another edge holds: over UDP to that
// edge's SIP address, signed (hop.go), so that the holding edge rings the
// device over the device's own flow.
func (s *B2BUA) hopLeg(req *sip.Request, account int64, toUser string, t registrar.Target) *sip.Request {
	r := s.inboundLeg(req, toUser, t.URI())
	s.setTransport(r, sip.Uri{})
	r.SetDestination(t.Via)
	signHop(s.cfg.HopKey, r, account, t.Reg.Contact, s.now())
	return r
}

// relayHop is the holding edge's side of a hop: it checks the signature,
// rings its own binding over the device's flow and bridges. The channel
// and the call record belong to the edge the carrier reached: this attempt
// is neither admitted nor recorded again.
func (s *B2BUA) relayHop(req *sip.Request, tx sip.ServerTransaction, v string) {
	lg := s.log.With("call_id", req.CallID().Value(), "direction", "inbound", "hop", true)
	h, ok := verifyHop(s.cfg.HopKey, req, v, s.now())
	if !ok {
		s.refuse(tx, req, sipdesk.EForbidden)
		src, _ := sipmsg.SourceOf(req)
		lg.Warn("edge hop refused: bad or expired signature", "src", src.String())
		return
	}
	lg = lg.With("sip_account", h.account)
	acct := s.pol.Config().Account(h.account)
	b := s.reg.Local(h.account, h.contact)
	if acct == nil || acct.AuthType != sipdesk.AuthPassword || acct.UsableAtEdge() != nil || b == nil || !aclAllows(acct, b.Reg.Received) {
		s.refuse(tx, req, sipdesk.SIPNobodyRegistered)
		lg.Info("call", "result", "hop_binding_gone")
		return
	}
	leg := s.deviceLeg(req, req.To().Address.User, b.URI(), b.Reg.Received, b.Reg.Transport)
	at := s.newAttempt(req, sipdesk.DirInbound, acct)
	at.relay = true
	s.live.add(at) // a drain ends it too
	legs, code, reason := s.mediaInbound(req, at, []*sip.Request{leg}, lg)
	if len(legs) == 0 {
		s.respond(tx, req, code, reason)
		s.finish(at, code, sipdesk.DispFailed, "media")
		return
	}
	s.bridge(req, tx, at, legs, lg)
}

func aclAllows(acct *sipdesk.SIPAccount, received string) bool {
	ap, err := netip.ParseAddrPort(received)
	return err != nil || policy.ACLAllows(acct, ap)
}

// inbound routes a carrier INVITE to the SIP account of the DID: its
// live bindings on every edge (forked; another edge's through that edge),
// or an IP account's first address.
func (s *B2BUA) inbound(req *sip.Request, tx sip.ServerTransaction, snap *policy.Snapshot) {
	callID := req.CallID().Value()
	lg := s.log.With("call_id", callID, "direction", "inbound")
	num := req.Recipient.User
	if num == "" {
		num = req.To().Address.User
	}
	did, acct, ref := snap.Inbound(num)
	if did == nil {
		s.refuse(tx, req, ref)
		lg.Info("call", "did", num, "result", "unknown_did")
		return
	}
	lg = lg.With("sip_account", did.SIPAccountID, "did", did.Number)
	if acct == nil {
		s.refuse(tx, req, ref)
		lg.Info("call", "result", "account_unavailable")
		return
	}
	var legs []*sip.Request
	toUser := acct.Username
	if toUser == "" {
		toUser = did.Number
	}
	switch acct.AuthType {
	case sipdesk.AuthPassword:
		for _, t := range s.reg.Bindings(acct.ID) {
			if t.Via != "" {
				legs = append(legs, s.hopLeg(req, acct.ID, toUser, t))
				continue
			}
			legs = append(legs, s.deviceLeg(req, toUser, t.URI(), t.Reg.Received, t.Reg.Transport))
		}
	case sipdesk.AuthIP:
		if len(acct.AllowedIPs) > 0 {
			ad, port := acct.AllowedIPs[0].Addr(), 5060
			if p := acct.AllowedIPs[0].Port; p != 0 {
				port = int(p)
			}
			t := sip.Uri{Scheme: "sip", User: strings.TrimPrefix(did.Number, "+"), Host: ad.String(), Port: port}
			legs = append(legs, s.deviceLeg(req, toUser, t, net.JoinHostPort(ad.String(), strconv.Itoa(port)), ""))
		}
	}
	at := s.newAttempt(req, sipdesk.DirInbound, acct)
	at.info.Number = did.Number
	at.rec.CallerID = req.From().Address.User
	at.rec.CallerIDReason = "carrier"
	if len(legs) == 0 {
		s.refuseCall(tx, req, sipdesk.SIPNobodyRegistered, at, lg)
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
