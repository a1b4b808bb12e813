package app

import (
	"context"
	"net/netip"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// Operator views: what the console and the operator API show. Every
// operator may read (sipdesk.PowerView); the checks are here all the same,
// so a disabled or unknown operator reads nothing.

// OpsDashboard is the console's first page.
type OpsDashboard struct {
	Customers   int
	LiveCalls   int
	OpenTickets int
	InProcess   int // SIP accounts held for review
	Nodes       []NodeStatus
	Charts      *CallCharts // the last hour's calls and refusals
}

// OpsDashboard counts customers, live calls, open tickets and held
// accounts, and lists the nodes with their state.
func (s *Service) OpsDashboard(ctx context.Context, op *sipdesk.Operator) (*OpsDashboard, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	d := &OpsDashboard{}
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		cs, err := tx.Customers()
		if err != nil {
			return err
		}
		ls, err := tx.Leases(0, s.now())
		if err != nil {
			return err
		}
		ts, err := tx.Tickets(0, sipdesk.TicketOpen)
		if err != nil {
			return err
		}
		held, err := heldAccounts(tx)
		if err != nil {
			return err
		}
		d.Customers, d.LiveCalls, d.OpenTickets, d.InProcess = len(cs), len(ls), len(ts), len(held)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d.Nodes, err = s.NodeList(ctx); err != nil {
		return nil, err
	}
	d.Charts, err = s.OpsCallCharts(ctx, op)
	return d, err
}

func heldAccounts(tx sipdesk.Tx) ([]*sipdesk.SIPAccount, error) {
	as, err := tx.SIPAccounts(0)
	if err != nil {
		return nil, err
	}
	var out []*sipdesk.SIPAccount
	for _, a := range as {
		if a.Status == sipdesk.StatusInProcess && a.HeldForReview {
			out = append(out, a)
		}
	}
	return out, nil
}

// OpsSearchLimit bounds a customer search's answer.
const OpsSearchLimit = 100

// OpsSearchCustomers finds customers by part of their email, a phone
// number (signup or Caller ID), a SIP username, or an IP address (an IP
// account's allowed range, or where a device registered from); an empty
// query lists the newest customers. At most OpsSearchLimit, by id.
func (s *Service) OpsSearchCustomers(ctx context.Context, op *sipdesk.Operator, q string) ([]*sipdesk.Customer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	if len(q) > 254 {
		return nil, sipdesk.FieldError("q", "must be at most 254 characters")
	}
	var out []*sipdesk.Customer
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		cs, err := tx.Customers()
		if err != nil {
			return err
		}
		hit := map[int64]bool{}
		if q != "" {
			if err := matchAccounts(tx, q, hit); err != nil {
				return err
			}
		}
		digits := strings.TrimLeft(q, "+")
		for _, c := range cs {
			match := q == "" || hit[c.ID] || strings.Contains(c.Email, q) ||
				(digits != "" && strings.Contains(strings.TrimLeft(c.VerifiedPhone, "+"), digits))
			if !match && digits != "" && isDigits(digits) {
				ns, err := tx.CallerIDNumbers(c.ID)
				if err != nil {
					return err
				}
				for _, n := range ns {
					match = match || strings.Contains(strings.TrimLeft(n.Number, "+"), digits)
				}
			}
			if match {
				out = append(out, c)
			}
		}
		return nil
	})
	if len(out) > OpsSearchLimit {
		out = out[len(out)-OpsSearchLimit:] // the newest
	}
	return out, err
}

// matchAccounts marks the customers whose SIP username contains q, or
// whose IP accounts or registrations hold the address q.
func matchAccounts(tx sipdesk.Tx, q string, hit map[int64]bool) error {
	addr, addrErr := netip.ParseAddr(q)
	isAddr := addrErr == nil
	as, err := tx.SIPAccounts(0)
	if err != nil {
		return err
	}
	owner := map[int64]int64{}
	for _, a := range as {
		owner[a.ID] = a.CustomerID
		if a.Username != "" && strings.Contains(strings.ToLower(a.Username), q) {
			hit[a.CustomerID] = true
		}
		for _, p := range a.AllowedIPs {
			if isAddr && p.Contains(addr) {
				hit[a.CustomerID] = true
			}
		}
	}
	if !isAddr {
		return nil // not an address: no registration to match
	}
	rs, err := tx.Registrations(0)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if ap, err := netip.ParseAddrPort(r.Received); err == nil && ap.Addr().Unmap() == addr.Unmap() {
			hit[owner[r.SIPAccountID]] = true
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// OpsCustomer is everything the console shows of one customer.
type OpsCustomer struct {
	Customer      *sipdesk.Customer
	SIPAccounts   []*sipdesk.SIPAccount
	Registrations map[int64][]*sipdesk.Registration // by SIP account
	LiveCalls     []*sipdesk.CallLease
	RecentCalls   []*sipdesk.CallRecord
	Tickets       []*sipdesk.Ticket
	Audit         []*sipdesk.AuditEntry
}

// OpsCustomer reads one customer with its SIP accounts and where each is
// registered, live and recent calls, tickets and audit log.
func (s *Service) OpsCustomer(ctx context.Context, op *sipdesk.Operator, id int64) (*OpsCustomer, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	v := &OpsCustomer{Registrations: map[int64][]*sipdesk.Registration{}}
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		if v.Customer, err = tx.Customer(id, false); err != nil {
			return err
		}
		if v.SIPAccounts, err = tx.SIPAccounts(id); err != nil {
			return err
		}
		for _, a := range v.SIPAccounts {
			if v.Registrations[a.ID], err = tx.Registrations(a.ID); err != nil {
				return err
			}
		}
		if v.LiveCalls, err = tx.Leases(id, s.now()); err != nil {
			return err
		}
		if v.RecentCalls, err = tx.CallRecords(sipdesk.CallFilter{CustomerID: id, Limit: 20}); err != nil {
			return err
		}
		if v.Tickets, err = tx.Tickets(id, ""); err != nil {
			return err
		}
		v.Audit, err = tx.Audit(id, 50)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// OpsTickets lists tickets of a status ("" all), open ones first.
func (s *Service) OpsTickets(ctx context.Context, op *sipdesk.Operator, status sipdesk.TicketStatus) ([]*sipdesk.Ticket, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	switch status {
	case "", sipdesk.TicketOpen, sipdesk.TicketApproved, sipdesk.TicketDeclined:
	default:
		return nil, sipdesk.FieldError("status", "must be open, approved or declined")
	}
	return s.Tickets(ctx, 0, status)
}

// OpsHeldAccounts lists the SIP accounts waiting in In Process for an
// operator's approval.
func (s *Service) OpsHeldAccounts(ctx context.Context, op *sipdesk.Operator) ([]*sipdesk.SIPAccount, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	var out []*sipdesk.SIPAccount
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		out, err = heldAccounts(tx)
		return err
	})
	return out, err
}

// OpsNodes lists the nodes with their state (`sipdesk admin node list`).
func (s *Service) OpsNodes(ctx context.Context, op *sipdesk.Operator) ([]NodeStatus, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	return s.NodeList(ctx)
}
