package edge

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// Reasons an edge does not take new calls and registrations. One readiness
// state answers every asker: SIP OPTIONS (503 instead of 200, so load
// balancers and carriers send elsewhere), new INVITEs and REGISTERs (503
// with Retry-After) and the HTTP /readyz of the node.
const (
	NotReadyStarting = "starting" // the listeners are not up yet
	NotReadyDatabase = "database" // the store did not answer within DBProbeTimeout
	NotReadyDraining = "draining" // stopping: live calls go on, new ones go elsewhere
	NotReadyFenced   = "fenced"   // channel leases not renewed: this edge ended its calls
)

// reasons in the order NotReady lists them, one bit each.
var reasons = []string{NotReadyStarting, NotReadyDatabase, NotReadyDraining, NotReadyFenced}

// DBProbeEvery and DBProbeTimeout time the edge's database check: a store
// that stops answering is noticed within DBProbeEvery+DBProbeTimeout (1.5 s),
// under the 2 s within which a new call must get its 503.
const (
	DBProbeEvery   = 500 * time.Millisecond
	DBProbeTimeout = time.Second
)

// health is the readiness state: a set of reasons, read on every request.
type health struct{ bits atomic.Uint32 }

func (h *health) set(reason string, on bool) (changed bool) {
	bit := uint32(1) << slices.Index(reasons, reason)
	for {
		old := h.bits.Load()
		nw := old &^ bit
		if on {
			nw = old | bit
		}
		if old == nw {
			return false
		}
		if h.bits.CompareAndSwap(old, nw) {
			return true
		}
	}
}

func (h *health) ready() bool { return h.bits.Load() == 0 }

func (h *health) list() []string {
	b := h.bits.Load()
	out := []string{}
	for i, r := range reasons {
		if b&(1<<i) != 0 {
			out = append(out, r)
		}
	}
	return out
}

// NotReady lists why the edge refuses new calls and registrations (empty
// when it takes them): NotReadyStarting, NotReadyDatabase, NotReadyDraining.
func (s *Server) NotReady() []string { return s.health.list() }

// SetDraining makes the edge refuse new calls and registrations (503 with
// Retry-After) and answer OPTIONS with 503, for good; calls already up and
// their in-dialog requests go on. A graceful stop calls it first and then
// waits for the calls (ActiveCalls) before cancelling Run.
func (s *Server) SetDraining() {
	if s.health.set(NotReadyDraining, true) {
		s.log.Info("draining: new calls and registrations are refused", "live_calls", s.ActiveCalls())
	}
}

// Draining reports whether SetDraining was called.
func (s *Server) Draining() bool { return slices.Contains(s.health.list(), NotReadyDraining) }

// Bindings is the number of registrations this edge holds in memory.
func (s *Server) Bindings() int { return s.regs.Len() }

// probeDatabase checks every DBProbeEvery that the store answers within
// DBProbeTimeout, until ctx is done, and keeps the "database" reason.
func (s *Server) probeDatabase(ctx context.Context) {
	t := time.NewTicker(DBProbeEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, DBProbeTimeout)
		err := s.pol.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.health.set(NotReadyFenced, s.cfg.Channels != nil && s.cfg.Channels.Fenced())
		if s.health.set(NotReadyDatabase, err != nil) {
			if err != nil {
				s.log.Warn("database unreachable: new calls and registrations get 503", "error", err)
			} else {
				s.log.Info("database reachable again: taking new calls and registrations")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gate answers new INVITEs and REGISTERs with 503 and Retry-After while the
// edge is not ready, and new INVITEs while it is overloaded (overload.go);
// requests inside a dialog (To tag) pass, so live calls continue.
func (s *Server) gate(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		switch {
		case inDialog(req):
		case !s.health.ready():
			s.refuseUnavailable(tx, req, sipdesk.EUnavailable)
			return
		case req.Method == sip.INVITE && s.load.on.Load():
			s.load.shed.Add(1)
			s.refuseUnavailable(tx, req, sipdesk.SIPOverloaded)
			return
		}
		h(req, tx)
	}
}

// refuseUnavailable answers 503 with Retry-After and counts the refusal.
func (s *Server) refuseUnavailable(tx sip.ServerTransaction, req *sip.Request, code string) {
	s.met.Refusals.WithLabelValues(sipdesk.RefusalCode(code)).Inc()
	if err := sipmsg.Refuse(tx, req, code, s.retryAfter()); err != nil {
		s.log.Debug("respond", "error", err)
	}
}

// overloadChanged logs the overload guard's turns (overload.go).
func (s *Server) overloadChanged(on bool, wait time.Duration) {
	if on {
		s.log.Warn("overloaded: new calls get 503 until the edge keeps up again",
			"wait", wait.String(), "over", s.load.enter.String())
		return
	}
	s.log.Info("keeping up again: new calls are taken", "wait", wait.String(), "calls_refused", s.load.shed.Swap(0))
}

// handleOptions answers 200 with what the edge supports, or 503 with
// Retry-After to an out-of-dialog OPTIONS (a health check) while the edge
// is not ready. An in-dialog OPTIONS (a caller's session probe) always gets
// 200: a live call is not in question.
func (s *Server) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !s.health.ready() && !inDialog(req) {
		s.respond(tx, req, 503, "Service Unavailable", s.retryAfter(), sip.NewHeader("Allow", sipmsg.Allowed))
		return
	}
	s.respond(tx, req, 200, "OK",
		sip.NewHeader("Allow", sipmsg.Allowed),
		sip.NewHeader("Accept", "application/sdp"))
}

func (s *Server) retryAfter() sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter/time.Second))))
}

func inDialog(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}
