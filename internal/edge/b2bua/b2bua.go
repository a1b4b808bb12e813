// Package b2bua is the edge's back-to-back user agent: outbound calls from
// devices and IP accounts to the carrier, inbound calls from the carrier to
// the bindings of a DID's SIP account (forked), media bridges for WebRTC
// legs, in-dialog relay, session timers and dead-dialog probes.
package b2bua

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/media"
)

// RingTimeout bounds how long a call may ring before the edge gives up.
const RingTimeout = 3 * time.Minute

// Config of the B2BUA (edge.Config documents each field).
type Config struct {
	Node, Realm, AdvertiseHost       string
	Carrier                          sip.Uri // Host "": no carrier
	CarrierUsername, CarrierPassword string
	MaxCallDuration, RingTimeout     time.Duration
	RetryAfter                       time.Duration
	SessionExpires, MinSE            time.Duration
	ProbeInterval, ProbeTimeout      time.Duration
	// HopKey signs and checks edge-to-edge hops (hop.go); shared by every
	// edge. Empty: hops are refused.
	HopKey []byte
}

// Deps are the parts the B2BUA works with.
type Deps struct {
	Policy    policy.Policy
	Auth      *auth.Authenticator
	Registrar *registrar.Registrar
	Dialog    *sipgo.DialogUA
	Carrier   *shield.AddrMatcher // sources whose INVITEs are inbound calls
	Media     *media.Relay        // nil: WebRTC offers get 488
	Metrics   *metrics.Edge
	Log       *slog.Logger
	Now       func() time.Time
	UDPAddr   func() *net.UDPAddr // our UDP socket: requests over UDP leave from it
}

// B2BUA bridges calls: devices and IP accounts to the carrier (outbound),
// the carrier to the SIP account of a DID (inbound, forked to every
// binding), with the channel, Caller ID and call record decided by the
// policy.
type B2BUA struct {
	cfg          Config
	pol          policy.Policy
	auth         *auth.Authenticator
	reg          *registrar.Registrar
	dua          *sipgo.DialogUA
	carrier      sip.Uri
	carrierAddrs *shield.AddrMatcher
	media        *media.Relay
	met          *metrics.Edge
	log          *slog.Logger
	now          func() time.Time
	udpAddr      func() *net.UDPAddr
	calls        *callTable
	live         liveTable   // admitted attempts by Call-ID (ending.go)
	voice        voiceTable  // voice calls in progress (voice.go)
	draining     atomic.Bool // refusing new calls (Drain)
}

// New makes a B2BUA.
func New(cfg Config, d Deps) *B2BUA {
	return &B2BUA{cfg: cfg, pol: d.Policy, auth: d.Auth, reg: d.Registrar, dua: d.Dialog, carrier: cfg.Carrier,
		carrierAddrs: d.Carrier, media: d.Media, met: d.Metrics, log: d.Log, now: d.Now, udpAddr: d.UDPAddr, calls: newCallTable()}
}

// HandleInvite, HandleAck, HandleBye, HandleCancel and HandleInDialog are
// the sipgo request handlers of calls; UnhandledResponse is sipgo's
// handler of responses that match no transaction.
func (s *B2BUA) HandleInvite(req *sip.Request, tx sip.ServerTransaction)   { s.handleInvite(req, tx) }
func (s *B2BUA) HandleAck(req *sip.Request, tx sip.ServerTransaction)      { s.handleAck(req, tx) }
func (s *B2BUA) HandleBye(req *sip.Request, tx sip.ServerTransaction)      { s.handleBye(req, tx) }
func (s *B2BUA) HandleCancel(req *sip.Request, tx sip.ServerTransaction)   { s.handleCancel(req, tx) }
func (s *B2BUA) HandleInDialog(req *sip.Request, tx sip.ServerTransaction) { s.handleInDialog(req, tx) }
func (s *B2BUA) UnhandledResponse(res *sip.Response)                       { s.unhandledResponse(res) }

func (s *B2BUA) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	if err := sipmsg.Respond(tx, req, code, reason, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// refuse answers with the refusal's fixed code and reason, and counts it.
func (s *B2BUA) refuse(tx sip.ServerTransaction, req *sip.Request, r string, hdrs ...sip.Header) {
	s.met.Refusals.WithLabelValues(sipdesk.RefusalCode(r)).Inc()
	if err := sipmsg.Refuse(tx, req, r, hdrs...); err != nil {
		s.log.Debug("respond", "error", err)
	}
}
