package b2bua

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestCallerTxLetsGo: once sipgo's transaction has ended, callerTx answers
// as an ended transaction would and holds it no more (with it the INVITE
// as parsed), so a dialog session that keeps callerTx for a whole call
// does not keep the transaction.
func TestCallerTxLetsGo(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "+15551230000", Host: "edge.test"})
	inner := sip.NewServerTx("k", req, nil, slog.Default())
	c := newCallerTx(inner)
	if c.inner() == nil || c.Err() != nil {
		t.Fatalf("a live transaction: inner %v, err %v", c.inner(), c.Err())
	}
	select {
	case <-c.Done():
		t.Fatal("Done before the transaction ended")
	default:
	}
	inner.Terminate()
	if c.inner() != nil {
		t.Fatal("callerTx still holds the ended transaction")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after the transaction ended")
	}
	if err := c.Err(); !errors.Is(err, sip.ErrTransactionTerminated) {
		t.Errorf("Err = %v, want %v", err, sip.ErrTransactionTerminated)
	}
	if err := c.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)); err == nil {
		t.Error("Respond on an ended transaction succeeded")
	}
	if c.OnCancel(func(*sip.Request) {}) || c.OnTerminate(func(string, error) {}) {
		t.Error("callbacks registered on an ended transaction")
	}
	if c.Acks() != nil {
		t.Error("Acks of an ended transaction is not nil")
	}
	c.Terminate() // a no-op, as on an ended transaction

	// Wrapped after it ended: the same from the start.
	if late := newCallerTx(inner); late.inner() != nil || !errors.Is(late.Err(), sip.ErrTransactionTerminated) {
		t.Errorf("wrapped after the end: inner %v, err %v", late.inner(), late.Err())
	}
}
