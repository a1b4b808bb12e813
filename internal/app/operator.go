package app

import (
	"context"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TopUp records a top-up from the server's shell (`sipdesk admin topup`).
func (s *Service) TopUp(ctx context.Context, customerID int64, amountCents int64) (*sipdesk.Customer, error) {
	return s.OpsTopUp(ctx, ShellOperator, customerID, amountCents)
}

// OpsTopUp records a top-up (admin); the first one makes the account paid
// with the paid default channel limit.
func (s *Service) OpsTopUp(ctx context.Context, op *sipdesk.Operator, customerID int64, amountCents int64) (*sipdesk.Customer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerAdmin, "record top-ups"); err != nil {
		return nil, err
	}
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if c, err = tx.Customer(customerID, true); err != nil {
			return err
		}
		state, limit := c.BillingState, c.ChannelLimit
		if err := c.TopUp(amountCents, s.opt.PaidChannelLimit); err != nil {
			return err
		}
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), c.ID, 0, sipdesk.AuditTopUp, "amount "+formatCents(amountCents)+
			", billing state "+string(state)+" → "+string(c.BillingState)+
			", channel limit "+strconv.Itoa(limit)+" → "+strconv.Itoa(c.ChannelLimit))
	})
	return c, err
}

func formatCents(c int64) string {
	cents := c % 100
	s := strconv.FormatInt(c/100, 10) + "."
	if cents < 10 {
		s += "0"
	}
	return s + strconv.FormatInt(cents, 10)
}

// SetChannelLimit sets a channel limit from the server's shell.
func (s *Service) SetChannelLimit(ctx context.Context, customerID int64, n int) (*sipdesk.Customer, error) {
	return s.OpsSetChannelLimit(ctx, ShellOperator, customerID, n)
}

// OpsSetChannelLimit sets a customer's account-wide channel limit (admin).
// A lower limit never cuts calls in progress; it applies to the next call.
func (s *Service) OpsSetChannelLimit(ctx context.Context, op *sipdesk.Operator, customerID int64, n int) (*sipdesk.Customer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerAdmin, "set channel limits"); err != nil {
		return nil, err
	}
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if c, err = tx.Customer(customerID, true); err != nil {
			return err
		}
		old := c.ChannelLimit
		if err := c.SetChannelLimit(n); err != nil {
			return err
		}
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), c.ID, 0, sipdesk.AuditChannelLimit, strconv.FormatInt(int64(old), 10)+" → "+strconv.FormatInt(int64(n), 10))
	})
	return c, err
}

// ApproveSIPAccount approves a SIP account from the server's shell.
func (s *Service) ApproveSIPAccount(ctx context.Context, id int64) (*sipdesk.SIPAccount, error) {
	return s.OpsApproveSIPAccount(ctx, ShellOperator, id)
}

// OpsApproveSIPAccount releases an account held for review (support); it
// turns active once the edge nodes have applied it.
func (s *Service) OpsApproveSIPAccount(ctx context.Context, op *sipdesk.Operator, id int64) (*sipdesk.SIPAccount, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "approve SIP accounts"); err != nil {
		return nil, err
	}
	var a *sipdesk.SIPAccount
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if a, err = tx.SIPAccount(0, id); err != nil {
			return err
		}
		if a.Status != sipdesk.StatusInProcess {
			return sipdesk.Errorf(sipdesk.EConflict, "SIP account %d is %s, not in process", id, a.Status)
		}
		a.HeldForReview = false
		others, err := tx.IPAccounts()
		if err != nil {
			return err
		}
		if err := sipdesk.CheckIPConflicts(a, others); err != nil {
			return err
		}
		v, err := tx.ChangeVersion()
		if err != nil {
			return err
		}
		a.PendingVersion = v
		if err := tx.UpdateSIPAccount(a); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), a.CustomerID, a.ID, sipdesk.AuditSIPAccountApprove, "in process → approved")
	})
	return a, err
}

// NodeTTL is how long a node counts as alive after its last heartbeat
// (nodes beat every 2 s): a live edge is waited for before an account
// leaves in_process, and `sipdesk admin node list` calls a node silent for
// longer "dead".
const NodeTTL = 10 * time.Second

// NodePrune is how long a dead node stays listed before a heartbeat of
// another node deletes it.
const NodePrune = 24 * time.Hour

// Node states in NodeList.
const (
	NodeAlive    = "alive"
	NodeDraining = "draining"
	NodeDead     = "dead"
)

// Heartbeat records that this node is alive and which config version its
// edge has applied (a node without an edge reports -1 and is not waited for).
func (s *Service) Heartbeat(ctx context.Context, name, role string, applied int64) error {
	return s.Beat(ctx, sipdesk.Node{Name: name, Role: role, AppliedVersion: applied})
}

// Beat records a node's heartbeat with what it reports about itself
// (addresses, version, live calls, bindings, draining); the heartbeat time
// is now.
func (s *Service) Beat(ctx context.Context, n sipdesk.Node) error {
	n.Heartbeat = s.now()
	return s.update(ctx, func(tx sipdesk.Tx) error { return tx.PutNode(&n) })
}

// PruneNodes deletes the nodes silent for NodePrune and returns how many.
func (s *Service) PruneNodes(ctx context.Context) (int, error) {
	var n int
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		n, err = tx.DeleteNodes(s.now().Add(-NodePrune))
		return err
	})
	return n, err
}

// NodeStatus is a node as `sipdesk admin node list` shows it.
type NodeStatus struct {
	sipdesk.Node
	State string // NodeAlive, NodeDraining or NodeDead
}

// NodeList lists every node the table holds, by name, with its state: dead
// when silent for NodeTTL, else draining or alive as it reported.
func (s *Service) NodeList(ctx context.Context) ([]NodeStatus, error) {
	var out []NodeStatus
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		ns, err := tx.Nodes(time.Time{})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, n := range ns {
			out = append(out, NodeStatus{Node: *n, State: NodeState(n, s.now())})
		}
		return nil
	})
	return out, err
}

// NodeState is a node's state at now.
func NodeState(n *sipdesk.Node, now time.Time) string {
	switch {
	case now.Sub(n.Heartbeat) > NodeTTL:
		return NodeDead
	case n.Draining:
		return NodeDraining
	}
	return NodeAlive
}

// ActivateApplied moves in_process accounts to their next status once every
// live edge node has applied their change. It scans the accounts only when
// the lowest applied version passed after (the previous call's answer), and
// returns that version and how many accounts changed.
func (s *Service) ActivateApplied(ctx context.Context, after int64) (applied int64, changed int, err error) {
	applied = after
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		changed = 0
		nodes, err := tx.Nodes(s.now().Add(-NodeTTL))
		if err != nil {
			return err
		}
		minApplied, edges := int64(-1), 0
		for _, n := range nodes {
			if n.AppliedVersion < 0 || n.Role == "portal" {
				continue
			}
			if edges == 0 || n.AppliedVersion < minApplied {
				minApplied = n.AppliedVersion
			}
			edges++
		}
		if edges == 0 || minApplied <= after {
			return nil // nobody applies config, or nothing new was applied
		}
		applied = minApplied
		as, err := tx.SIPAccounts(0)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Applied(minApplied) {
				a.UpdatedAt = s.now()
				if err := tx.UpdateSIPAccount(a); err != nil {
					return err
				}
				changed++
			}
		}
		return nil
	})
	return applied, changed, err
}
