package auth

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/token"
)

// JWT authentication (RFC 8898) for the browser softphone: REGISTER and
// INVITE carry "Authorization: Bearer <jwt>" signed with the SIP account's
// secret (internal/token), over WebSocket or TLS only (bearerTransport). The token's sub must be the From user; the
// account must be active and JWT-enabled; the IP ACL still applies (the
// callers check it after authentication, as for digest).
//
// Order of checks: the token is verified first against the account's
// stored secrets, so a bad token never reveals the account's status; a
// good token of an account that is not active gets its status refusal,
// and one of an account without JWT gets 403 JWT not enabled. An account
// that never had a secret answers 403 JWT not enabled at once.

// bearerTransport reports whether req came over a transport that may carry
// a Bearer token: WebSocket (the browser softphone; wss in production) or
// TLS.
func bearerTransport(req *sip.Request) bool {
	t := req.Transport()
	return sipmsg.IsWS(req) || strings.EqualFold(t, "tls")
}

// bearerOverClearText answers a Bearer token that came over UDP or TCP:
// it is refused whatever it is (a token read in clear on the way can be
// replayed until it expires), with the digest challenge that transport
// offers and a Warning that says why (RFC 3261 §20.43).
func (a *Authenticator) bearerOverClearText(tx sip.ServerTransaction, req *sip.Request, src netip.AddrPort) {
	a.challenge(tx, req, false, sip.NewHeader("Warning", `399 `+a.cfg.Realm+` "Bearer tokens are accepted over TLS and WebSocket only"`))
	a.log.Info("jwt refused", "call_id", req.CallID().Value(), "src", src.String(), "method", string(req.Method),
		"result", sipdesk.EUnauthorized, "why", "transport "+req.Transport())
}

// bearerChallenge answers 401 with a Bearer challenge (RFC 8898 §2.3);
// errCode "" is the initial challenge (REGISTER also gets the digest
// challenges, for WebSocket clients with a password).
func (a *Authenticator) bearerChallenge(tx sip.ServerTransaction, req *sip.Request, errCode string) {
	v := `Bearer realm="` + a.cfg.Realm + `"`
	if errCode != "" {
		v += `, error="` + errCode + `"`
	}
	hs := []sip.Header{sip.NewHeader("WWW-Authenticate", v)}
	if errCode == "" && req.Method == sip.REGISTER {
		for _, c := range a.digest.Challenges(false, false) {
			hs = append(hs, sip.NewHeader("WWW-Authenticate", c))
		}
	}
	if errCode != "" {
		a.met.Refusals.WithLabelValues(sipdesk.RefusalCode(sipdesk.EInvalidToken)).Inc()
	}
	a.respondErr(sipmsg.Respond(tx, req, 401, "Unauthorized", hs...))
}

// bearer verifies a Bearer JWT for the From user's account.
func (a *Authenticator) bearer(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, raw string, accts Accounts) (*sipdesk.SIPAccount, string) {
	user := req.From().Address.User
	acct := accts.AccountByUser(user)
	lg := a.log.With("call_id", req.CallID().Value(), "src", src.String(), "method", string(req.Method))
	if acct == nil || acct.AuthType != sipdesk.AuthPassword {
		a.bearerFailed(tx, req, src)
		lg.Info("jwt refused", "result", sipdesk.EInvalidToken, "why", "unknown user")
		return nil, sipdesk.EInvalidToken
	}
	if acct.JWTSecret == "" && acct.JWTPrevSecret == "" {
		a.refuse(tx, req, sipdesk.EJWTNotEnabled)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EJWTNotEnabled)
		return nil, sipdesk.EJWTNotEnabled
	}
	keys := token.AccountKeys(acct.JWTSecret, acct.JWTPrevSecret, acct.JWTPrevUntil)
	sub, err := token.Verify(raw, keys, a.now())
	if err != nil || sub != user {
		a.bearerFailed(tx, req, src)
		why := "bad token"
		if err == nil {
			why = "sub is not the From user"
		}
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EInvalidToken, "why", why)
		return nil, sipdesk.EInvalidToken
	}
	if r := sipdesk.RefusalFor(acct.UsableAtEdge()); r != "" {
		a.refuse(tx, req, r)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.RefusalCode(r))
		return nil, r
	}
	if !acct.JWTEnabled {
		a.refuse(tx, req, sipdesk.EJWTNotEnabled)
		lg.Info("jwt refused", "sip_account", acct.ID, "result", sipdesk.EJWTNotEnabled)
		return nil, sipdesk.EJWTNotEnabled
	}
	return acct, ""
}

// bearerFailed answers a refused token and counts it against the source,
// like a failed digest answer.
func (a *Authenticator) bearerFailed(tx sip.ServerTransaction, req *sip.Request, src netip.AddrPort) {
	if !a.carrier.Match(src) && a.shield.Fail(src.Addr()) {
		a.log.Warn("source banned", "src", src.Addr().String(), "for", a.cfg.BanDuration.String())
	}
	a.bearerChallenge(tx, req, "invalid_token")
}
