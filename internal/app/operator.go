package app

import (
	"context"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TopUp records a top-up; the first one makes the account paid with the
// paid default channel limit.
func (s *Service) TopUp(ctx context.Context, customerID int64, amountCents int64) (*sipdesk.Customer, error) {
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if c, err = tx.Customer(customerID, true); err != nil {
			return err
		}
		if err := c.TopUp(amountCents, s.opt.PaidChannelLimit); err != nil {
			return err
		}
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		return s.audit(tx, ActorOperator, c.ID, 0, sipdesk.AuditTopUp, "amount "+formatCents(amountCents)+", channel limit "+strconv.FormatInt(int64(c.ChannelLimit), 10))
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

// SetChannelLimit sets a customer's account-wide channel limit. A lower
// limit never cuts calls in progress; it applies to the next call.
func (s *Service) SetChannelLimit(ctx context.Context, customerID int64, n int) (*sipdesk.Customer, error) {
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
		return s.audit(tx, ActorOperator, c.ID, 0, sipdesk.AuditChannelLimit, strconv.FormatInt(int64(old), 10)+" → "+strconv.FormatInt(int64(n), 10))
	})
	return c, err
}

// ApproveSIPAccount releases an account held for review; it turns active
// once the edge nodes have applied it.
func (s *Service) ApproveSIPAccount(ctx context.Context, id int64) (*sipdesk.SIPAccount, error) {
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
		return s.audit(tx, ActorOperator, a.CustomerID, a.ID, sipdesk.AuditSIPAccountApprove, "")
	})
	return a, err
}

// AssignDID routes a provider number to a SIP account for inbound calls.
func (s *Service) AssignDID(ctx context.Context, number string, sipAccountID int64) (*sipdesk.DID, error) {
	number, err := sipdesk.NormalizePhone("number", number)
	if err != nil {
		return nil, err
	}
	var d *sipdesk.DID
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(0, sipAccountID)
		if err != nil {
			return err
		}
		d = &sipdesk.DID{Number: number, SIPAccountID: a.ID, CustomerID: a.CustomerID}
		return tx.UpsertDID(d)
	})
	return d, err
}

// Nodes lists live nodes (heartbeat within the window).
const NodeTTL = 10 * time.Second

// Heartbeat records that this node is alive and which config version its
// edge has applied (a node without an edge reports -1 and is not waited for).
func (s *Service) Heartbeat(ctx context.Context, name, role string, applied int64) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		return tx.PutNode(&sipdesk.Node{Name: name, Role: role, AppliedVersion: applied, Heartbeat: s.now()})
	})
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
