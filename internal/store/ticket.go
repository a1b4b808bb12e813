package store

import (
	"github.com/sipdesk/sipdesk"
)

const ticketCols = "id, customer_id, kind, wanted, reason, status, message, created_at, decided_at"

func scanTicket(s interface{ Scan(...any) error }) (*sipdesk.Ticket, error) {
	var k sipdesk.Ticket
	var kind, status string
	var created, decided int64
	if err := s.Scan(&k.ID, &k.CustomerID, &kind, &k.Wanted, &k.Reason, &status, &k.Message, &created, &decided); err != nil {
		return nil, err
	}
	k.Kind, k.Status = sipdesk.TicketKind(kind), sipdesk.TicketStatus(status)
	k.CreatedAt, k.DecidedAt = fromMS(created), fromMS(decided)
	return &k, nil
}

func (t *tx) InsertTicket(k *sipdesk.Ticket) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	id, err := t.insert(`INSERT INTO tickets (customer_id, kind, wanted, reason, status, message, created_at, decided_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.CustomerID, string(k.Kind), k.Wanted, k.Reason, string(k.Status), k.Message, ms(k.CreatedAt), ms(k.DecidedAt))
	if err != nil {
		return t.fail("insert ticket", err)
	}
	k.ID = id
	return nil
}

func (t *tx) Ticket(customerID, id int64) (*sipdesk.Ticket, error) {
	q, args := scoped("SELECT "+ticketCols+" FROM tickets WHERE id = ?", []any{id}, "customer_id", customerID)
	k, err := scanTicket(t.queryRow(q, args...))
	if err != nil {
		return nil, t.get("ticket", "get ticket", err)
	}
	return k, nil
}

// Tickets lists tickets oldest first; status "" means any status.
func (t *tx) Tickets(customerID int64, status sipdesk.TicketStatus) ([]*sipdesk.Ticket, error) {
	q, args := scoped("SELECT "+ticketCols+" FROM tickets WHERE 1 = 1", nil, "customer_id", customerID)
	if status != "" {
		q, args = q+" AND status = ?", append(args, string(status))
	}
	rows, err := t.query(q+" ORDER BY id", args...)
	if err != nil {
		return nil, t.fail("list tickets", err)
	}
	return collect(t, rows, "list tickets", scanTicket)
}

func (t *tx) UpdateTicket(k *sipdesk.Ticket) error {
	q, args := scoped(`UPDATE tickets SET kind = ?, wanted = ?, reason = ?, status = ?, message = ?, decided_at = ?
		WHERE id = ?`, []any{string(k.Kind), k.Wanted, k.Reason, string(k.Status), k.Message, ms(k.DecidedAt), k.ID}, "customer_id", k.CustomerID)
	res, err := t.exec(q, args...)
	return t.affected("ticket", "update ticket", res, err)
}
