package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// DIDs: the provider's numbers routed to SIP accounts for inbound calls.
// Every operator sees them; admins assign and unassign them (the console,
// the operator API and `sipdesk admin did assign`).

// OpsDID is a DID with who it routes to.
type OpsDID struct {
	sipdesk.DID
	CustomerEmail  string
	SIPAccountName string
}

// AssignDID routes a number from the server's shell.
func (s *Service) AssignDID(ctx context.Context, number string, sipAccountID int64) (*sipdesk.DID, error) {
	return s.OpsAssignDID(ctx, ShellOperator, number, sipAccountID)
}

// OpsDIDs lists the DIDs whose number contains q's digits, or whose
// customer's email contains q, or whose SIP account has the id q or a name
// or username containing q; an empty q lists them all. At most
// OpsSearchLimit, by number.
func (s *Service) OpsDIDs(ctx context.Context, op *sipdesk.Operator, q string) ([]*OpsDID, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if len(q) > 254 {
		return nil, sipdesk.FieldError("q", "must be at most 254 characters")
	}
	digits := strings.TrimLeft(q, "+")
	var out []*OpsDID
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		ds, err := tx.DIDs(0)
		if err != nil {
			return err
		}
		cs, err := tx.Customers()
		if err != nil {
			return err
		}
		as, err := tx.SIPAccounts(0)
		if err != nil {
			return err
		}
		email := map[int64]string{}
		for _, c := range cs {
			email[c.ID] = c.Email
		}
		acct := map[int64]*sipdesk.SIPAccount{}
		for _, a := range as {
			acct[a.ID] = a
		}
		for _, d := range ds {
			v := &OpsDID{DID: *d, CustomerEmail: email[d.CustomerID]}
			a := acct[d.SIPAccountID]
			if a != nil {
				v.SIPAccountName = a.Name
			}
			match := q == "" || strings.Contains(v.CustomerEmail, q) ||
				isDigits(digits) && strings.Contains(strings.TrimLeft(d.Number, "+"), digits) ||
				q == strconv.FormatInt(d.SIPAccountID, 10) ||
				a != nil && (strings.Contains(strings.ToLower(a.Name), q) || a.Username != "" && strings.Contains(strings.ToLower(a.Username), q))
			if match {
				out = append(out, v)
				if len(out) == OpsSearchLimit {
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// didAccount names a SIP account in a DID's audit detail.
func didAccount(a *sipdesk.SIPAccount) string {
	return "SIP account " + strconv.FormatInt(a.ID, 10) + " (" + a.Name + ")"
}

// OpsAssignDID routes number to a SIP account (admin), moving it from any
// account it routed to before. Both customers' audit logs say so
// ("number +E164, before → after").
func (s *Service) OpsAssignDID(ctx context.Context, op *sipdesk.Operator, number string, sipAccountID int64) (*sipdesk.DID, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerAdmin, "assign DIDs"); err != nil {
		return nil, err
	}
	number, err := sipdesk.NormalizePhone("number", number)
	if err != nil {
		return nil, err
	}
	if sipAccountID <= 0 {
		return nil, sipdesk.FieldError("sip_account_id", "is required")
	}
	var d *sipdesk.DID
	err = s.update(ctx, func(tx sipdesk.Tx) error {
		a, err := tx.SIPAccount(0, sipAccountID)
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.FieldError("sip_account_id", "no SIP account has this id")
		}
		if err != nil {
			return err
		}
		before := "none"
		old, err := tx.DID(number)
		switch {
		case sipdesk.ErrorCode(err) == sipdesk.ENotFound:
		case err != nil:
			return err
		case old.SIPAccountID == a.ID:
			d = old // already there: nothing changes, nothing to audit
			return nil
		default:
			if oa, err := tx.SIPAccount(0, old.SIPAccountID); err == nil {
				before = didAccount(oa)
			} else {
				before = "SIP account " + strconv.FormatInt(old.SIPAccountID, 10)
			}
		}
		d = &sipdesk.DID{Number: number, SIPAccountID: a.ID, CustomerID: a.CustomerID}
		if err := tx.UpsertDID(d); err != nil {
			return err
		}
		if old != nil && old.CustomerID != a.CustomerID { // the former customer loses it
			if err := s.audit(tx, operatorActor(op), old.CustomerID, old.SIPAccountID, sipdesk.AuditDIDUnassigned,
				"number "+number+", "+before+" → none"); err != nil {
				return err
			}
			before = "another customer"
		}
		return s.audit(tx, operatorActor(op), a.CustomerID, a.ID, sipdesk.AuditDIDAssigned, "number "+number+", "+before+" → "+didAccount(a))
	})
	return d, err
}

// OpsUnassignDID removes a number's route (admin): inbound calls to it are
// refused from then on.
func (s *Service) OpsUnassignDID(ctx context.Context, op *sipdesk.Operator, number string) (*sipdesk.DID, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerAdmin, "unassign DIDs"); err != nil {
		return nil, err
	}
	number, err := sipdesk.NormalizePhone("number", number)
	if err != nil {
		return nil, err
	}
	var d *sipdesk.DID
	err = s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if d, err = tx.DeleteDID(number); err != nil {
			return err
		}
		before := "SIP account " + strconv.FormatInt(d.SIPAccountID, 10)
		if a, err := tx.SIPAccount(0, d.SIPAccountID); err == nil {
			before = didAccount(a)
		}
		return s.audit(tx, operatorActor(op), d.CustomerID, d.SIPAccountID, sipdesk.AuditDIDUnassigned, "number "+number+", "+before+" → none")
	})
	return d, err
}

// didWords tells a DID change in words for the customer: "Support
// assigned the number +15550100 to SIP account 7 (office)".
func didWords(e *sipdesk.AuditEntry) string {
	head, change, ok := strings.Cut(e.Detail, ", ")
	number := strings.TrimPrefix(head, "number ")
	if !ok || number == head {
		return ""
	}
	if e.Action == sipdesk.AuditDIDAssigned {
		if i := strings.LastIndex(change, " → "); i >= 0 {
			return "Support assigned the number " + number + " to " + change[i+len(" → "):]
		}
		return ""
	}
	from, _, _ := strings.Cut(change, " → none")
	return "Support removed the number " + number + " from " + from
}
