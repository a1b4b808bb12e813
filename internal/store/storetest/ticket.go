package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Tickets (store: ticket.go).

func testTickets(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	k1 := &sipdesk.Ticket{CustomerID: ca.ID, Kind: sipdesk.TicketChannelLimit, Wanted: 50, Reason: "call centre", Status: sipdesk.TicketOpen, CreatedAt: at(0)}
	k2 := &sipdesk.Ticket{CustomerID: ca.ID, Kind: sipdesk.TicketSIPAccounts, Wanted: 20, Status: sipdesk.TicketDeclined, Message: "no", DecidedAt: at(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertTicket(k1); err != nil {
			return err
		}
		return tx.InsertTicket(k2)
	})
	if k1.ID == 0 || k2.CreatedAt.IsZero() {
		t.Fatal("InsertTicket did not set ID/CreatedAt")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Ticket(ca.ID, k1.ID)
		if err != nil {
			return err
		}
		equal(t, "Ticket", got, k1)
		list, err := tx.Tickets(ca.ID, "")
		if err != nil {
			return err
		}
		equal(t, "Tickets", list, []*sipdesk.Ticket{k1, k2})
		list, err = tx.Tickets(ca.ID, sipdesk.TicketOpen)
		if err != nil {
			return err
		}
		equal(t, "Tickets open", list, []*sipdesk.Ticket{k1})
		list, err = tx.Tickets(0, sipdesk.TicketDeclined)
		if err != nil {
			return err
		}
		if got := ids(list, func(k *sipdesk.Ticket) int64 { return k.ID }); !slices.Contains(got, k2.ID) || slices.Contains(got, k1.ID) {
			t.Errorf("Tickets(0, declined) = %v, want %d and not %d", got, k2.ID, k1.ID)
		}
		list, err = tx.Tickets(cb.ID, "")
		if err != nil {
			return err
		}
		equal(t, "Tickets of another customer", len(list), 0)
		_, err = tx.Ticket(cb.ID, k1.ID)
		wantCode(t, "Ticket by another customer", err, sipdesk.ENotFound, "")
		return nil
	})
	k1.Status, k1.Message, k1.DecidedAt = sipdesk.TicketApproved, "done", at(2*time.Hour)
	hijack := *k1
	hijack.CustomerID = cb.ID
	wantCode(t, "UpdateTicket by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateTicket(&hijack) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateTicket(k1) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Ticket(0, k1.ID)
		if err != nil {
			return err
		}
		equal(t, "Ticket after update", got, k1)
		return nil
	})
}
