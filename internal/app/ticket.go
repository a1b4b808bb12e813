package app

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

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

// DecideTicket decides a ticket from the server's shell.
func (s *Service) DecideTicket(ctx context.Context, id int64, approve bool, message string) (*sipdesk.Ticket, error) {
	return s.OpsDecideTicket(ctx, ShellOperator, id, approve, message)
}

// OpsDecideTicket approves (applying it at once) or declines a ticket
// (support); the message is shown to the customer.
func (s *Service) OpsDecideTicket(ctx context.Context, op *sipdesk.Operator, id int64, approve bool, message string) (*sipdesk.Ticket, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerSupport, "answer tickets"); err != nil {
		return nil, err
	}
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
			before := c.ChannelLimit
			if t.Kind == sipdesk.TicketSIPAccounts {
				before = c.SIPAccountQuota
			}
			if err := t.Approve(c, s.now()); err != nil {
				return err
			}
			if err := setApprovalMessage(t, message); err != nil {
				return err
			}
			if err := tx.UpdateCustomer(c); err != nil {
				return err
			}
			detail = "ticket " + strconv.FormatInt(t.ID, 10) + " approved: " + string(t.Kind) + " " + strconv.Itoa(before) + " → " + strconv.Itoa(t.Wanted)
		} else if err := t.Decline(message, s.now()); err != nil {
			return err
		}
		if err := tx.UpdateTicket(t); err != nil {
			return err
		}
		return s.audit(tx, operatorActor(op), c.ID, 0, sipdesk.AuditTicketDecided, detail)
	})
	return t, err
}

// setApprovalMessage adds an operator's optional note to an approved ticket
// (the customer sees it next to the ticket).
func setApprovalMessage(t *sipdesk.Ticket, message string) error {
	message = strings.TrimSpace(message)
	if utf8.RuneCountInString(message) > 2000 || strings.ContainsFunc(message, sipdesk.HiddenRune) {
		return sipdesk.FieldError("message", "must be at most 2000 characters without control or invisible characters")
	}
	t.Message = message
	return nil
}
