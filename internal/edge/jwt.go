package edge

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/token"
)

// JWT authentication (RFC 8898) for the browser softphone: REGISTER and
// INVITE carry "Authorization: Bearer <jwt>" signed with the SIP account's
// secret (internal/token). The token's sub must be the From user; the
// account must be active and JWT-enabled; the IP ACL still applies (the
// callers check it after authentication, as for digest).
//
// Order of checks: the token is verified first against the account's
// stored secrets, so a bad token never reveals the account's status; a
// good token of an account that is not active gets its status refusal,
// and one of an account without JWT gets 403 JWT not enabled. An account
// that never had a secret answers 403 JWT not enabled at once.

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(req *sip.Request) (string, bool) {
	for _, h := range req.GetHeaders("Authorization") {
		v := strings.TrimSpace(h.Value())
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:]), true
		}
	}
	return "", false
}

// isWS reports whether req came over SIP over WebSocket.
func isWS(req *sip.Request) bool {
	t := req.Transport()
	return strings.EqualFold(t, "ws") || strings.EqualFold(t, "wss")
}

// hasDigest reports whether req carries a digest answer in header hname.
func hasDigest(req *sip.Request, hname string) bool {
	for _, h := range req.GetHeaders(hname) {
		if v := strings.TrimSpace(h.Value()); len(v) > 7 && strings.EqualFold(v[:7], "digest ") {
			return true
		}
	}
	return false
}

// wantsBearer reports whether an INVITE is to be authenticated by JWT (or
// challenged for one) rather than by source address or digest.
func wantsBearer(req *sip.Request) bool {
	if _, ok := bearerToken(req); ok {
		return true
	}
	return isWS(req)
}

// authenticateAny authenticates by Bearer JWT when the request carries one,
// challenges WebSocket clients without credentials for one (plus digest for
// REGISTER), and otherwise authenticates by digest in header hname. It
// returns the account, or nil after answering.
func (s *Server) authenticateAny(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, hname string, snap *snapshot) (*sipdesk.SIPAccount, Refusal) {
	if raw, ok := bearerToken(req); ok {
		return s.authenticateBearer(req, tx, src, raw, snap)
	}
	if isWS(req) && !hasDigest(req, hname) && !hasDigest(req, "Authorization") {
		s.bearerChallenge(tx, req, "")
		return nil, RefuseUnauthorized
	}
	if isWS(req) && req.Method == sip.INVITE && !hasDigest(req, hname) {
		hname = "Authorization" // a WS client answered our 401 with Authorization
	}
	return s.authenticate(req, tx, src, hname, snap)
}

// bearerChallenge answers 401 with a Bearer challenge (RFC 8898 §2.3);
// errCode "" is the initial challenge (REGISTER also gets the digest
// challenges, for WebSocket clients with a password).
func (s *Server) bearerChallenge(tx sip.ServerTransaction, req *sip.Request, errCode string) {
	v := `Bearer realm="` + s.cfg.Realm + `"`
	if errCode != "" {
		v += `, error="` + errCode + `"`
	}
	hs := []sip.Header{sip.NewHeader("WWW-Authenticate", v)}
	if errCode == "" && req.Method == sip.REGISTER {
		for _, c := range s.auth.Challenges(false, false) {
			hs = append(hs, sip.NewHeader("WWW-Authenticate", c))
		}
	}
	if errCode != "" {
		s.met.refusals.WithLabelValues(refusalCode(RefuseInvalidToken)).Inc()
	}
	s.respond(tx, req, 401, "Unauthorized", hs...)
}

// authenticateBearer verifies a Bearer JWT for the From user's account.
func (s *Server) authenticateBearer(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, raw string, snap *snapshot) (*sipdesk.SIPAccount, Refusal) {
	user := req.From().Address.User
	acct := snap.byUser[user]
	lg := s.log.With("call_id", req.CallID().Value(), "src", src.String(), "method", string(req.Method))
	if acct == nil || acct.AuthType != sipdesk.AuthPassword {
		s.bearerFailed(tx, req, src)
		lg.Info("jwt refused", "result", sipdesk.EInvalidToken, "why", "unknown user")
		return nil, RefuseInvalidToken
	}
	if acct.JWTSecret == "" && acct.JWTPrevSecret == "" {
		s.refuse(tx, req, RefuseJWTNotEnabled)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EJWTNotEnabled)
		return nil, RefuseJWTNotEnabled
	}
	keys := token.Keys{Current: acct.JWTSecret, Previous: acct.JWTPrevSecret, PreviousUntil: acct.JWTPrevUntil}
	sub, err := token.Verify(raw, keys, s.now())
	if err != nil || sub != user {
		s.bearerFailed(tx, req, src)
		why := "bad token"
		if err == nil {
			why = "sub is not the From user"
		}
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EInvalidToken, "why", why)
		return nil, RefuseInvalidToken
	}
	if r := statusRefusal(acct); r != RefuseNone {
		s.refuse(tx, req, r)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", refusalResult(r))
		return nil, r
	}
	if !acct.JWTEnabled {
		s.refuse(tx, req, RefuseJWTNotEnabled)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EJWTNotEnabled)
		return nil, RefuseJWTNotEnabled
	}
	return acct, RefuseNone
}

// bearerFailed answers a refused token and counts it against the source,
// like a failed digest answer.
func (s *Server) bearerFailed(tx sip.ServerTransaction, req *sip.Request, src netip.AddrPort) {
	if !s.carrierAddrs.Match(src) && s.shield.Fail(src.Addr()) {
		s.log.Warn("source banned", "src", src.Addr().String(), "for", s.cfg.BanDuration.String())
	}
	s.bearerChallenge(tx, req, "invalid_token")
}
