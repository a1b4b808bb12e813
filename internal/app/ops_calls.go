package app

import (
	"context"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// OpsLiveCallLimit bounds the live calls listed at once (the newest first
// are cut; the count says how many there are).
const OpsLiveCallLimit = 500

// OpsLiveCall is a live call as the console lists it.
type OpsLiveCall struct {
	*sipdesk.CallLease
	CustomerEmail  string
	SIPAccountName string
	Destination    string // the number called: the user of its call record's To ("" before the record is written)
	Duration       time.Duration
}

// OpsLiveCalls lists the live calls on every node, oldest first, with the
// customer, the SIP account and the destination; total is how many there
// are (at most OpsLiveCallLimit are listed).
func (s *Service) OpsLiveCalls(ctx context.Context, op *sipdesk.Operator) (calls []OpsLiveCall, total int, err error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, 0, err
	}
	now := s.now()
	err = s.view(ctx, func(tx sipdesk.Tx) error {
		ls, err := tx.Leases(0, now)
		if err != nil {
			return err
		}
		total = len(ls)
		ls = ls[:min(len(ls), OpsLiveCallLimit)]
		recs, err := tx.CallRecords(sipdesk.CallFilter{Disposition: sipdesk.DispActive, Limit: 4 * OpsLiveCallLimit})
		if err != nil {
			return err
		}
		to := make(map[string]string, len(recs))
		for _, r := range recs {
			to[r.CallID] = uriUser(r.To)
		}
		emails, names := map[int64]string{}, map[int64]string{}
		for _, l := range ls {
			if _, ok := emails[l.CustomerID]; !ok {
				if c, err := tx.Customer(l.CustomerID, false); err == nil {
					emails[l.CustomerID] = c.Email
				}
			}
			if _, ok := names[l.SIPAccountID]; !ok && l.SIPAccountID != 0 {
				if a, err := tx.SIPAccount(l.CustomerID, l.SIPAccountID); err == nil {
					names[l.SIPAccountID] = a.Name
				}
			}
			calls = append(calls, OpsLiveCall{CallLease: l, CustomerEmail: emails[l.CustomerID], SIPAccountName: names[l.SIPAccountID],
				Destination: to[l.CallID], Duration: now.Sub(l.StartedAt).Truncate(time.Second)})
		}
		return nil
	})
	return calls, total, err
}

// OpsHangUp ends a live call on both legs (support): the node holding it
// (its lease says which) sends BYE to the caller and the carrier, and its
// call record gets the reason operator_hangup; the audit log names the
// operator, the call and the customer. It waits for the node's answer (at
// most ~12 s) and returns the request with its result; a call that is not
// live is not found.
func (s *Service) OpsHangUp(ctx context.Context, op *sipdesk.Operator, callID string) (*sipdesk.EdgeRequest, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "hang up calls"); err != nil {
		return nil, err
	}
	var lease *sipdesk.CallLease
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		ls, err := tx.Leases(0, s.now())
		for _, l := range ls {
			if l.CallID == callID {
				lease = l
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if lease == nil || callID == "" {
		return nil, sipdesk.Errorf(sipdesk.ENotFound, "no live call with this Call-ID")
	}
	r := &sipdesk.EdgeRequest{Kind: sipdesk.EdgeHangUp, Node: lease.Node, MaxAttempts: 2, ExpiresAt: s.now().Add(hangUpTTL)}
	wctx, cancel := context.WithTimeout(ctx, hangUpTTL+2*time.Second)
	defer cancel()
	r, err = s.askEdge(wctx, r, sipdesk.HangUpRequest{CallID: callID, Reason: sipdesk.EndOperatorHangUp}, func(tx sipdesk.Tx) error {
		return s.audit(tx, operatorActor(op), lease.CustomerID, lease.SIPAccountID, sipdesk.AuditCallHungUp,
			"call "+callID+" on node "+lease.Node)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("operator hang-up", "operator", op.ID, "call_id", callID, "node", lease.Node, "customer", lease.CustomerID,
		"state", r.State, "result", r.Result)
	return r, nil
}

// uriUser is the user part of a SIP URI as a header carries it
// ("<sip:+4930123@host;user=phone>" → "+4930123"), or the text as it is.
func uriUser(s string) string {
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
	}
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if strings.HasPrefix(strings.ToLower(s), scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexAny(s, "@;>"); i >= 0 {
		s = s[:i]
	}
	return s
}
