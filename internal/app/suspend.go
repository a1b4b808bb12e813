package app

import (
	"context"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sipdesk/sipdesk"
)

// MaxSuspendReason bounds an operator's reason for a suspension.
const MaxSuspendReason = 500

// OpsSuspendCustomer suspends a customer account (support): every SIP
// account of it is refused at the edge (the config change drops its
// registrations on every edge), portal sessions end, logins and API tokens
// are refused. Calls in progress go on to their end, as with a lower channel
// limit; no new call starts. The customer sees the reason in the audit log.
func (s *Service) OpsSuspendCustomer(ctx context.Context, op *sipdesk.Operator, customerID int64, reason string) (*sipdesk.Customer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "suspend customers"); err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return nil, sipdesk.FieldError("reason", "is required: the customer sees it")
	case utf8.RuneCountInString(reason) > MaxSuspendReason || !utf8.ValidString(reason) ||
		strings.ContainsFunc(reason, func(r rune) bool { return sipdesk.HiddenRune(r) || r < ' ' }):
		return nil, sipdesk.FieldError("reason", "must be at most %d characters on one line, without control or invisible characters", MaxSuspendReason)
	}
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if c, err = tx.Customer(customerID, true); err != nil {
			return err
		}
		if c.Suspended() {
			return sipdesk.Errorf(sipdesk.EConflict, "the account is suspended already")
		}
		c.SuspendedAt, c.SuspendedReason = s.now().Truncate(time.Millisecond), reason
		if err := tx.UpdateCustomer(c); err != nil { // a config change: the edges apply it
			return err
		}
		if _, err := tx.DeleteCustomerSessions(c.ID, ""); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), c.ID, 0, sipdesk.AuditCustomerSuspended, "active → suspended: "+reason)
	})
	return c, err
}

// OpsUnsuspendCustomer lifts a suspension (support): the SIP accounts may
// register and call again at once, the customer may log in.
func (s *Service) OpsUnsuspendCustomer(ctx context.Context, op *sipdesk.Operator, customerID int64) (*sipdesk.Customer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "unsuspend customers"); err != nil {
		return nil, err
	}
	var c *sipdesk.Customer
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if c, err = tx.Customer(customerID, true); err != nil {
			return err
		}
		if !c.Suspended() {
			return sipdesk.Errorf(sipdesk.EConflict, "the account is not suspended")
		}
		c.SuspendedAt, c.SuspendedReason = time.Time{}, ""
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), c.ID, 0, sipdesk.AuditCustomerUnsuspended, "suspended → active")
	})
	return c, err
}

// MaxBansListed bounds the bans the console and the operator API list
// (the latest expiries first).
const MaxBansListed = 1000

// OpsBans lists the bans the edges recorded that are in force.
func (s *Service) OpsBans(ctx context.Context, op *sipdesk.Operator) ([]*sipdesk.Ban, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	var out []*sipdesk.Ban
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		out, err = tx.Bans(s.now(), MaxBansListed)
		return err
	})
	return out, err
}

// OpsLiftBan lifts the ban of a source address (support): every edge drops
// it at once (the store signals a config change), so the source may
// register again.
func (s *Service) OpsLiftBan(ctx context.Context, op *sipdesk.Operator, source string) error {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "lift bans"); err != nil {
		return err
	}
	a, err := netip.ParseAddr(strings.TrimSpace(source))
	if err != nil || a.Zone() != "" {
		return sipdesk.FieldError("source", "must be an IP address")
	}
	source = a.Unmap().String()
	return s.update(ctx, func(tx sipdesk.Tx) error {
		ban, err := tx.Ban(source)
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.Errorf(sipdesk.ENotFound, "no ban of %s", source)
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteBan(source); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), 0, 0, sipdesk.AuditBanLifted, "source "+source+" ("+ban.Reason+", node "+ban.Node+
			", until "+ban.ExpiresAt.UTC().Format(time.RFC3339)+") banned → lifted")
	})
}
