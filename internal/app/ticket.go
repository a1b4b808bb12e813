package app

import (
	"context"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// OpenTicket files a customer's support request.
func (s *Service) OpenTicket(ctx context.Context, customerID int64, kind sipdesk.TicketKind, wanted int, reason string) (*sipdesk.Ticket, error) {
	var t *sipdesk.Ticket
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		c, err := tx.Customer(customerID, false)
		if err != nil {
			return err
		}
		if t, err = sipdesk.NewTicket(c, kind, wanted, reason); err != nil {
			return err
		}
		t.CreatedAt = s.now()
		return tx.InsertTicket(t)
	})
	return t, err
}

// Tickets lists tickets: a customer's (customerID != 0) or all of a status.
func (s *Service) Tickets(ctx context.Context, customerID int64, status sipdesk.TicketStatus) ([]*sipdesk.Ticket, error) {
	var ts []*sipdesk.Ticket
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		ts, err = tx.Tickets(customerID, status)
		return err
	})
	return ts, err
}

// DecideTicket approves (applying it at once) or declines a ticket.
func (s *Service) DecideTicket(ctx context.Context, id int64, approve bool, message string) (*sipdesk.Ticket, error) {
	var t *sipdesk.Ticket
	err := s.update(ctx, func(tx sipdesk.Tx) error {
		var err error
		if t, err = tx.Ticket(0, id); err != nil {
			return err
		}
		c, err := tx.Customer(t.CustomerID, true)
		if err != nil {
			return err
		}
		detail := "ticket " + strconv.FormatInt(t.ID, 10) + " declined"
		if approve {
			if err := t.Approve(c, s.now()); err != nil {
				return err
			}
			if err := tx.UpdateCustomer(c); err != nil {
				return err
			}
			detail = "ticket " + strconv.FormatInt(t.ID, 10) + " approved: " + string(t.Kind) + " → " + strconv.FormatInt(int64(t.Wanted), 10)
		} else if err := t.Decline(message, s.now()); err != nil {
			return err
		}
		if err := tx.UpdateTicket(t); err != nil {
			return err
		}
		return s.audit(tx, ActorOperator, c.ID, 0, sipdesk.AuditTicketDecided, detail)
	})
	return t, err
}
