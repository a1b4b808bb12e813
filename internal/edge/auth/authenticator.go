package auth

import (
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// Accounts is what authentication reads of the configuration: the
// password account of a digest or JWT username (the policy's snapshot).
type Accounts interface {
	AccountByUser(username string) *sipdesk.SIPAccount
}

// Config of an Authenticator.
type Config struct {
	Realm string
	// NonceKey is shared by every node: a node tells another node's nonce
	// from a forged one, and answers a right answer to it with stale=true
	// (a nonce is answered at the node that issued it only; see Digest).
	NonceKey []byte
	// SHA256First and MD5OnlyUserAgents shape the challenge (see edge.Config).
	SHA256First       bool
	MD5OnlyUserAgents []string
	BanDuration       time.Duration // logged with a ban
	// Guard is the failure budget per SIP account (shield.AccountGuard);
	// OnGuard, when set, hears of each guard that starts on an existing
	// account (the edge records it for the customer's SIP Accounts page).
	Guard   shield.GuardConfig
	OnGuard func(acct *sipdesk.SIPAccount, until time.Time)
}

// Authenticator checks the credentials of REGISTER and INVITE and answers
// the challenge or refusal itself when they fail; failures count against
// the source (shield), the username (its failure budget) and the Call-ID.
type Authenticator struct {
	cfg     Config
	digest  *Digest
	shield  *shield.Shield
	carrier *shield.AddrMatcher // exempt from bans
	fails   *shield.CallFails
	guard   *shield.AccountGuard
	met     *metrics.Edge
	log     *slog.Logger
	now     func() time.Time
}

// New makes an Authenticator.
func New(cfg Config, sh *shield.Shield, carrier *shield.AddrMatcher, met *metrics.Edge, log *slog.Logger, now func() time.Time) *Authenticator {
	d := NewDigest(cfg.Realm, cfg.NonceKey, now)
	d.SHA256First = cfg.SHA256First
	return &Authenticator{cfg: cfg, digest: d, shield: sh, carrier: carrier, fails: shield.NewCallFails(),
		guard: shield.NewAccountGuard(cfg.Guard, now), met: met, log: log, now: now}
}

// Nonce is a fresh nonce (tests).
func (a *Authenticator) Nonce() string { return a.digest.Nonce() }

// Sweep forgets old per-Call-ID failure counts.
func (a *Authenticator) Sweep(now time.Time) { a.fails.Sweep(now) }

// refuse answers a refusal and counts it.
func (a *Authenticator) refuse(tx sip.ServerTransaction, req *sip.Request, r string) {
	a.met.Refusals.WithLabelValues(sipdesk.RefusalCode(r)).Inc()
	a.respondErr(sipmsg.Refuse(tx, req, r))
}

func (a *Authenticator) respondErr(err error) {
	if err != nil {
		a.log.Debug("respond", "error", err)
	}
}

// Authenticate authenticates by Bearer JWT when the request carries one
// (over WebSocket or TLS; over UDP or TCP it gets the digest challenge),
// challenges WebSocket clients without credentials for one (plus digest for
// REGISTER), and otherwise authenticates by digest in header hname
// (Authorization or Proxy-Authorization). It returns the account, or nil
// and the refusal after answering.
func (a *Authenticator) Authenticate(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, hname string, accts Accounts) (*sipdesk.SIPAccount, string) {
	if raw, ok := sipmsg.BearerToken(req); ok {
		if !bearerTransport(req) {
			a.bearerOverClearText(tx, req, src)
			return nil, sipdesk.EUnauthorized
		}
		return a.bearer(req, tx, src, raw, accts)
	}
	if sipmsg.IsWS(req) && !sipmsg.HasDigest(req, hname) && !sipmsg.HasDigest(req, "Authorization") {
		a.bearerChallenge(tx, req, "")
		return nil, sipdesk.EUnauthorized
	}
	if sipmsg.IsWS(req) && req.Method == sip.INVITE && !sipmsg.HasDigest(req, hname) {
		hname = "Authorization" // a WS client answered our 401 with Authorization
	}
	return a.digestAnswer(req, tx, src, hname, accts)
}

// challenge answers 401 (REGISTER) or 407 with the digest challenges.
func (a *Authenticator) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool, extra ...sip.Header) {
	code, reason, hname := 407, "Proxy Authentication Required", "Proxy-Authenticate"
	if req.Method == sip.REGISTER {
		code, reason, hname = 401, "Unauthorized", "WWW-Authenticate"
	}
	var hs []sip.Header
	md5Only := false
	if h := sipmsg.FirstHeader(req, "User-Agent"); h != nil {
		ua := h.Value()
		for _, p := range a.cfg.MD5OnlyUserAgents {
			if strings.HasPrefix(ua, p) {
				md5Only = true
			}
		}
	}
	for _, v := range a.digest.Challenges(stale, md5Only) {
		hs = append(hs, sip.NewHeader(hname, v))
	}
	hs = append(hs, extra...)
	a.respondErr(sipmsg.Respond(tx, req, code, reason, hs...))
}

// digestAnswer checks the digest answer in header hname.
func (a *Authenticator) digestAnswer(req *sip.Request, tx sip.ServerTransaction, src netip.AddrPort, hname string, accts Accounts) (*sipdesk.SIPAccount, string) {
	var creds Credentials
	found := false
	for _, h := range sipmsg.Headers(req, hname) {
		c, ok := ParseCredentials(h.Value())
		if !ok {
			continue
		}
		creds, found = c, true
		if c.Realm == a.cfg.Realm {
			break
		}
	}
	if !found {
		if !a.carrier.Match(src) && a.shield.Challenged(src.Addr()) {
			a.log.Warn("source banned: requests without credentials flood", "src", src.Addr().String(), "for", a.cfg.BanDuration.String())
		}
		a.challenge(tx, req, false)
		return nil, sipdesk.EUnauthorized
	}
	acct := accts.AccountByUser(creds.Username)
	var ha *sipdesk.DigestHashes
	if acct != nil {
		ha = &acct.Digest
	}
	v := a.digest.Verify(&creds, string(req.Method), ha)
	guardable := len(creds.Username) <= sipdesk.MaxUsernameLen // longer: no account has it, no key kept
	if guardable && a.guard.Refused(creds.Username, src.Addr()) {
		return a.guardRefusal(tx, req, src, &creds, acct)
	}
	switch v {
	case OK:
		a.guard.Succeeded(creds.Username, src.Addr())
		return acct, ""
	case Stale, Replay:
		// A replayed nonce-count carries a right answer: a retransmission
		// that outlived its transaction (see transport's lingers) or a
		// captured request, never a password guess; so does a right answer
		// to another node's nonce (a device moving between edges, or a
		// replay there). Like Kamailio, answer with a fresh nonce
		// (stale=true); it does not count towards a ban.
		a.challenge(tx, req, true)
		return nil, sipdesk.EUnauthorized
	}
	// A failed answer: counted per source (bans), per username (the
	// account's failure budget) and per Call-ID.
	if !a.carrier.Match(src) {
		a.sourceFailed(src)
		if guardable {
			a.usernameFailed(creds.Username, acct)
		}
	}
	callID := req.CallID().Value()
	if a.fails.Inc(callID, a.now()) >= 3 {
		a.refuse(tx, req, sipdesk.SIPAuthFailed)
		return nil, sipdesk.SIPAuthFailed
	}
	a.challenge(tx, req, false)
	a.log.Info("auth failed", "call_id", callID, "src", src.String(), "method", string(req.Method), "result", sipdesk.EUnauthorized)
	return nil, sipdesk.EUnauthorized
}

// sourceFailed counts a failure against the source (bans).
func (a *Authenticator) sourceFailed(src netip.AddrPort) {
	if a.shield.Fail(src.Addr()) {
		a.log.Warn("source banned", "src", src.Addr().String(), "for", a.cfg.BanDuration.String())
	}
}

// usernameFailed counts a failure against the username's budget; the one
// that starts a guard is logged, counted and reported (OnGuard) once.
func (a *Authenticator) usernameFailed(user string, acct *sipdesk.SIPAccount) {
	started, until := a.guard.Fail(user)
	if !started {
		return
	}
	a.met.AccountGuards.Inc()
	if acct == nil {
		// Guessing at a username no account has: counted, not logged one
		// line each (spoofed sources could make them at will).
		a.log.Debug("unknown SIP username guarded", "until", until.UTC().Format(time.RFC3339))
		return
	}
	a.log.Warn("SIP account guarded: too many failed passwords from any sources; only sources that authenticated recently are accepted",
		"sip_account", acct.ID, "customer", acct.CustomerID, "failures", a.cfg.Guard.Failures, "within", a.cfg.Guard.Window.String(),
		"until", until.UTC().Format(time.RFC3339))
	if a.cfg.OnGuard != nil {
		a.cfg.OnGuard(acct, until)
	}
}

// guardRefusal answers a digest answer for a guarded username from a
// source it does not trust: refused whether the password is right or
// wrong, and counted as a failure either way, so neither the answer nor
// what follows tells a guesser anything.
func (a *Authenticator) guardRefusal(tx sip.ServerTransaction, req *sip.Request, src netip.AddrPort, creds *Credentials, acct *sipdesk.SIPAccount) (*sipdesk.SIPAccount, string) {
	if !a.carrier.Match(src) {
		a.sourceFailed(src)
		a.usernameFailed(creds.Username, acct)
	}
	a.refuse(tx, req, sipdesk.SIPAccountGuarded)
	var id int64
	if acct != nil {
		id = acct.ID
	}
	a.log.Info("auth refused", "call_id", req.CallID().Value(), "src", src.String(), "method", string(req.Method),
		"sip_account", id, "result", sipdesk.SIPAccountGuarded)
	return nil, sipdesk.SIPAccountGuarded
}
