package b2bua

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

func (s *B2BUA) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.handleInDialog(req, tx)
		return
	}
	if at := s.live.get(req.CallID().Value()); at != nil {
		s.repeated(req, tx, at)
		return
	}
	if s.draining.Load() {
		s.refuse(tx, req, sipdesk.EUnavailable, retryAfter(sipdesk.EUnavailable, s.cfg.RetryAfter)...)
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
	if h := sipmsg.FirstHeader(req, HopHeader); h != nil {
		s.relayHop(req, tx, h.Value())
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
	if sipmsg.FirstHeader(req, "Proxy-Authorization") != nil || len(ipAccts) == 0 || sipmsg.WantsBearer(req) {
		var ref string
		acct, ref = s.auth.Authenticate(req, tx, src, "Proxy-Authorization", snap)
		if acct == nil {
			if ref == sipdesk.SIPAuthFailed {
				lg.Info("call", "result", sipdesk.RefusalCode(ref))
			}
			return
		}
		if !policy.ACLAllows(acct, src) {
			s.refuseCall(tx, req, sipdesk.ESourceNotAllowed, s.newAttempt(req, sipdesk.DirOutbound, acct), lg.With("sip_account", acct.ID))
			return
		}
	} else {
		var ref string
		acct, dialed, ref = policy.PickIPAccount(ipAccts, dialed)
		if acct == nil {
			s.refuse(tx, req, ref)
			lg.Info("call", "result", sipdesk.RefusalCode(ref))
			return
		}
	}
	if _, ok := tx.(sipmsg.NoDialog); ok {
		// Challenges picked it, then the configuration changed (its source
		// became an IP account): the retry is served anew.
		s.refuse(tx, req, sipdesk.EUnavailable, retryAfter(sipdesk.EUnavailable, s.cfg.RetryAfter)...)
		return
	}
	lg = lg.With("sip_account", acct.ID)
	at := s.newAttempt(req, sipdesk.DirOutbound, acct)
	from := req.From()
	call, ref := snap.Outbound(acct, dialed, from.Address.User, from.DisplayName)
	if ref != "" {
		s.refuseCall(tx, req, ref, at, lg)
		return
	}
	at.info.Number = call.Number
	if s.carrier.Host == "" {
		s.refuseCall(tx, req, sipdesk.SIPNoCarrier, at, lg)
		return
	}
	// The carrier leg is built (Caller ID chosen) before admission so that
	// refused attempts record the Caller ID they would have had; nothing
	// is sent before the channel is acquired.
	leg := s.carrierRequest(req, call)
	cid := call.CallerID
	at.rec.CallerID, at.rec.CallerIDRuleID, at.rec.CallerIDReason = cid.CallerID(), cid.RuleID, cid.Reason
	if !s.admit(tx, req, at, lg) {
		return
	}
	if !s.mediaOutbound(tx, req, at, leg, lg) {
		return
	}
	s.bridge(req, tx, at, []*sip.Request{leg}, lg)
}

// Challenges reports whether handleInvite answers req with a final
// response and no dialog: a new INVITE without credentials from a source
// that is neither a carrier nor an IP account gets its digest challenge
// (or a refusal). The UDP fast path serves those without sipgo's INVITE
// transaction; should the configuration change before the handler runs,
// it refuses what would need a dialog (sipmsg.NoDialog).
func (s *B2BUA) Challenges(req *sip.Request) bool {
	src, ok := sipmsg.SourceOf(req)
	if !ok || sipmsg.FirstHeader(req, "Proxy-Authorization") != nil || sipmsg.FirstHeader(req, "Authorization") != nil || sipmsg.FirstHeader(req, HopHeader) != nil {
		return false
	}
	return s.ChallengesFrom(src)
}

// ChallengesFrom reports whether a new INVITE without credentials from src
// gets a challenge: src is neither a carrier nor an IP account. The fast
// path asks it before parsing, so that a trunk's INVITEs are parsed once.
func (s *B2BUA) ChallengesFrom(src netip.AddrPort) bool {
	return !s.carrierAddrs.Match(src) && len(s.pol.Config().IPAccounts(src)) == 0
}

// carrierRequest builds the carrier leg's INVITE: new dialog and Call-ID,
// the customer's From user, the account's Caller ID in P-Asserted-Identity,
// SDP passed through; identity headers from the customer are not copied.
func (s *B2BUA) carrierRequest(req *sip.Request, call policy.OutboundCall) *sip.Request {
	number, cid := call.Number, call.CallerID
	target := sip.Uri{Scheme: "sip", User: "+" + number, Host: s.carrier.Host, Port: s.carrier.Port}
	if tp, ok := s.carrier.UriParams.Get("transport"); ok {
		target.UriParams = sip.HeaderParams{}
		target.UriParams.Add("transport", tp)
	}
	r := sip.NewRequest(sip.INVITE, target)
	fh := &sip.FromHeader{DisplayName: cid.FromDisplay, Address: sip.Uri{Scheme: "sip", User: cid.FromUser, Host: s.cfg.AdvertiseHost}}
	if cid.Anonymous {
		fh.Address.Host = sipdesk.AnonymousHost
	}
	fh.Params.Add("tag", sip.GenerateTagN(16))
	r.AppendHeader(fh)
	r.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "+" + number, Host: s.carrier.Host, Port: s.carrier.Port}})
	if cid.PAI != "" {
		r.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+cid.PAI+"@"+s.cfg.AdvertiseHost+">"))
	}
	if cid.Privacy != "" {
		r.AppendHeader(sip.NewHeader("Privacy", cid.Privacy))
	}
	if mf := req.MaxForwards(); mf != nil && *mf > 1 {
		m := sip.MaxForwardsHeader(*mf - 1)
		r.AppendHeader(&m)
	}
	sipmsg.CopyBody(req, r)
	s.setTransport(r, target)
	return r
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
