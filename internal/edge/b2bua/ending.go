package b2bua

import (
	"context"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// Ending calls on the edge's own initiative: by Call-ID (the policy's
// self-fencing and lost leases), all of them (graceful stop), and the calls
// of a dead edge from their stored dialog state (ByeLost).

var (
	endFenced    = ending{policy.EndFenced, "Channel lease not renewed"}
	endLeaseLost = ending{policy.EndLeaseLost, "Channel lease lost"}
	endDrained   = ending{"drained", "Server shutting down"}
	endOperator  = ending{sipdesk.EndOperatorHangUp, "Ended by the operator"}
)

func endingFor(reason string) ending {
	switch reason {
	case policy.EndFenced:
		return endFenced
	case policy.EndLeaseLost:
		return endLeaseLost
	case endDrained.code:
		return endDrained
	case endOperator.code:
		return endOperator
	}
	return endShutdown
}

// liveTable holds every admitted attempt, ringing or bridged, by the
// customer leg's Call-ID, from admission to finish.
type liveTable struct {
	mu sync.Mutex
	m  map[string]*attempt
}

func (t *liveTable) add(at *attempt) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*attempt{}
	}
	t.m[at.info.CallID] = at
	t.mu.Unlock()
}

func (t *liveTable) remove(at *attempt) {
	t.mu.Lock()
	if t.m[at.info.CallID] == at {
		delete(t.m, at.info.CallID)
	}
	t.mu.Unlock()
}

func (t *liveTable) get(id string) *attempt {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (t *liveTable) all() []*attempt {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*attempt, 0, len(t.m))
	for _, at := range t.m {
		out = append(out, at)
	}
	return out
}

func (t *liveTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// repeated answers a new INVITE (no To tag) whose Call-ID is a call this
// edge has admitted and not finished. With the branch of the call's own
// INVITE it is a retransmission that outlived its transaction (bridge ends
// it at the ACK): absorbed, as the transaction would have, and no second
// call. Otherwise it is a merged request (RFC 3261 8.2.2.2: the same call
// reached us twice, as through a forking proxy), or a client reusing the
// Call-ID of its live call: 482.
func (s *B2BUA) repeated(req *sip.Request, tx sip.ServerTransaction, at *attempt) {
	if via := req.Via(); via != nil && at.branch != "" {
		if b, _ := via.Params.Get("branch"); b == at.branch {
			s.log.Debug("invite retransmission absorbed", "call_id", at.info.CallID)
			return // unanswered: sipgo ends the transaction when the handler returns
		}
	}
	s.respond(tx, req, 482, "Loop Detected")
}

// stopState is how an attempt is stopped from outside: while it rings its
// forks are cancelled, once bridged the call is ended.
type stopState struct {
	mu      sync.Mutex
	stopped *ending
	ring    context.CancelFunc
	call    *call
}

// ringing registers the cancel of the ringing forks; it reports the stop
// when the attempt was stopped already (the caller cancels then).
func (st *stopState) ringing(cancel context.CancelFunc) *ending {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ring = cancel
	return st.stopped
}

// bridged registers the answered call (its 200 sent); it reports the stop
// when the attempt was stopped before (the caller ends the call then).
func (st *stopState) bridged(c *call) *ending {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped == nil {
		st.call = c
	}
	return st.stopped
}

func (st *stopState) why() *ending {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stopped
}

// stop ends the attempt: the ringing forks are cancelled (bridge answers
// the caller 503 and records the reason) or the bridged call is ended.
func (s *B2BUA) stop(at *attempt, why ending) {
	st := &at.stop
	st.mu.Lock()
	if st.stopped != nil {
		st.mu.Unlock()
		return
	}
	st.stopped = &why
	c, ring := st.call, st.ring
	st.mu.Unlock()
	switch {
	case c != nil:
		s.endCall(c, "", why)
	case ring != nil:
		ring()
	}
}

// EndCalls ends the calls with these customer-leg Call-IDs (policy.CallEnder):
// BYE with a Reason header on both legs of an answered call, CANCEL toward
// the callee and 503 to the caller of a ringing one. It does not wait.
func (s *B2BUA) EndCalls(callIDs []string, reason string) {
	why := endingFor(reason)
	for _, id := range callIDs {
		if at := s.live.get(id); at != nil {
			go s.stop(at, why)
		}
	}
}

// EndCall ends the call with this customer-leg Call-ID like EndCalls, and
// waits until it is ended (the BYEs answered or timed out). It reports
// whether this edge holds the call.
func (s *B2BUA) EndCall(callID, reason string) bool {
	at := s.live.get(callID)
	if at == nil {
		return false
	}
	s.stop(at, endingFor(reason))
	return true
}

// Drain refuses new calls from now on (503 with Retry-After); the calls up
// go on.
func (s *B2BUA) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *B2BUA) Draining() bool { return s.draining.Load() }

// EndAll ends every call, ringing or answered, with reason (shutdown,
// drained) and waits until each is finished (channel released, final
// record queued), at most d.
func (s *B2BUA) EndAll(reason string, d time.Duration) bool {
	why := endingFor(reason)
	var wg sync.WaitGroup
	for _, at := range s.live.all() {
		wg.Go(func() { s.stop(at, why) }) // an answered call's BYEs are answered (or time out)
	}
	wg.Wait()
	deadline := time.Now().Add(d)
	for s.live.len() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// LiveAttempts is the number of admitted calls not finished yet, ringing
// or answered.
func (s *B2BUA) LiveAttempts() int { return s.live.len() }

// dialogOf is what another edge needs to send BYE on both legs of c.
func (s *B2BUA) dialogOf(c *call) policy.Dialog {
	d := policy.Dialog{Node: s.cfg.Node}
	a, b := c.a.leg, c.b.leg
	a.Side, a.CSeq = policy.LegCustomer, c.a.cseq.Load()+1
	b.Side, b.CSeq = policy.LegCarrier, c.b.cseq.Load()+1
	if c.at.info.Direction == sipdesk.DirInbound {
		a.Side, b.Side = policy.LegCarrier, policy.LegCustomer
	}
	d.Legs = []policy.DialogLeg{b, a}
	return d
}

// lostCSeqGap is added to a stored CSeq: in-dialog requests sent after the
// state was stored (probes, relayed re-INVITEs) used numbers above it, and
// a UAS refuses only lower ones (RFC 3261 §12.2.2).
const lostCSeqGap = 10000

// ByeLost sends BYE on every leg of a call whose edge died, from the
// dialog state that edge stored (policy.CallEnder), and waits for the
// answers until ctx is done. Legs it cannot reach (a device behind NAT
// or on a connection to the dead edge) are logged and left.
func (s *B2BUA) ByeLost(ctx context.Context, callID string, d policy.Dialog) {
	var wg sync.WaitGroup
	for _, leg := range d.Legs {
		wg.Go(func() {
			res, err := s.byeLeg(ctx, leg)
			code := 0
			if res != nil {
				code = res.StatusCode
			}
			s.log.Info("bye on a lost call's leg", "call_id", callID, "leg_call_id", leg.CallID, "side", leg.Side,
				"lost_node", d.Node, "sip_code", code, "error", errString(err))
		})
	}
	wg.Wait()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// byeLeg builds the BYE of one stored leg and sends it through our stack.
func (s *B2BUA) byeLeg(ctx context.Context, leg policy.DialogLeg) (*sip.Response, error) {
	bye, err := legRequest(&leg, sip.BYE, leg.CSeq+lostCSeqGap)
	if err != nil {
		return nil, err
	}
	bye.AppendHeader(sip.NewHeader("Reason", `SIP;cause=200;text="Edge lost"`))
	return s.dua.Client.Do(ctx, bye, sipgo.ClientRequestBuild)
}

// parseNameAddr reads a From/To value (name-addr with params).
func parseNameAddr(v string, name *string, uri *sip.Uri, params *sip.HeaderParams) error {
	*params = sip.NewParams()
	n, err := sip.ParseAddressValue(v, uri, params)
	*name = n
	return err
}
