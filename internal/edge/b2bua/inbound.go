package b2bua

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// inbound routes a carrier INVITE to the SIP account of the DID: its
// registered contacts (forked), or an IP account's first address.
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
