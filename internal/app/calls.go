package app

import (
	"context"

	"github.com/sipdesk/sipdesk"
)

// AcquireChannel admits a call or refuses it, in one transaction: the
// customer's row is locked (PostgreSQL) or the write is serialised (SQLite),
// live leases are counted, and the lease is inserted only if the call fits
// the account-wide limit and the SIP account's cap. Calls that do not count
// (sipdesk.CountsAgainstLimit: inbound under "outbound") get a lease
// without a check, so they still show as live calls.
func (s *Service) AcquireChannel(ctx context.Context, l *sipdesk.CallLease) error {
	return s.update(ctx, func(tx sipdesk.Tx) error { return s.AcquireChannelTx(tx, l) })
}

// AcquireChannelTx is AcquireChannel inside the caller's write transaction
// (the edge commits concurrent acquisitions together).
func (s *Service) AcquireChannelTx(tx sipdesk.Tx, l *sipdesk.CallLease) error {
	now := s.now()
	l.StartedAt, l.ExpiresAt = now, now.Add(s.opt.LeaseTTL)
	u, err := tx.ChannelUse(l.CustomerID, l.SIPAccountID, now)
	if err != nil {
		return err
	}
	if err := sipdesk.CheckChannelUse(u, l.CustomerID, l.SIPAccountID, l.Direction); err != nil {
		return err
	}
	return tx.InsertLease(l)
}

// ReleaseChannelTx is ReleaseChannel inside the caller's write transaction.
func (s *Service) ReleaseChannelTx(tx sipdesk.Tx, callID string) error {
	_, err := tx.DeleteLease(callID)
	return err
}

// SaveCallRecordTx is SaveCallRecord inside the caller's write transaction.
func (s *Service) SaveCallRecordTx(tx sipdesk.Tx, r *sipdesk.CallRecord) error {
	if r.ID == 0 {
		return tx.InsertCallRecord(r)
	}
	return tx.UpdateCallRecord(r)
}

// ReleaseChannel frees a call's channel; releasing twice is harmless.
func (s *Service) ReleaseChannel(ctx context.Context, callID string) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		_, err := tx.DeleteLease(callID)
		return err
	})
}

// RenewLeases extends the leases of a node's live calls and lists the
// Call-IDs it extended: a live call missing from the list lost its lease
// (another node claimed it while this one could not renew) and must end.
func (s *Service) RenewLeases(ctx context.Context, node string) ([]string, error) {
	until := s.now().Add(s.opt.LeaseTTL)
	var ids []string
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		ids, err = tx.RenewLeases(node, until)
		return err
	})
	return ids, err
}

// SetLeaseDialogTx stores a live call's dialog state with its lease.
func (s *Service) SetLeaseDialogTx(tx sipdesk.Tx, callID, dialog string) error {
	return tx.SetLeaseDialog(callID, dialog)
}

// ClaimLostCalls claims up to limit expired leases for node (their node
// died or lost the store and fenced itself) and closes their call records
// with disposition node_lost, in one transaction: each lost call is
// claimed by exactly one node. The claim lasts a lease life; the claimer
// sends the BYEs and then releases the lease (ReleaseChannel). A claimer
// that dies too lets the claim expire, and another node claims it again.
func (s *Service) ClaimLostCalls(ctx context.Context, node string, limit int) ([]*sipdesk.LostCall, error) {
	now := s.now()
	var lost []*sipdesk.LostCall
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		if lost, err = tx.ClaimExpiredLeases(node, now, now.Add(s.opt.LeaseTTL), limit); err != nil {
			return err
		}
		for _, l := range lost {
			if _, err := tx.CloseLostRecords(l.CallID, l.LostNode, now); err != nil {
				return err
			}
		}
		return nil
	})
	return lost, err
}

// ExpireLeases makes leases of node expire now: a node restarted under the
// same name hands the calls of its previous life to the sweep, which ends
// them like a dead node's.
func (s *Service) ExpireLeases(ctx context.Context, node string, callIDs []string) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		for _, id := range callIDs {
			if err := tx.ExpireLease(id, node); err != nil {
				return err
			}
		}
		return nil
	})
}

// CloseOrphanRecords closes the records left in_progress for more than a
// lease life without a lease: their call ended but the final update never
// reached the store (the node lost it, then died or gave up retrying).
func (s *Service) CloseOrphanRecords(ctx context.Context) (int, error) {
	now := s.now()
	var n int
	err := s.update(ctx, func(tx sipdesk.Tx) (err error) {
		n, err = tx.CloseOrphanRecords(now.Add(-s.opt.LeaseTTL), now)
		return err
	})
	return n, err
}

// ActiveCalls lists the customer's live calls (0: every customer).
func (s *Service) ActiveCalls(ctx context.Context, customerID int64) ([]*sipdesk.CallLease, error) {
	var ls []*sipdesk.CallLease
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		ls, err = tx.Leases(customerID, s.now())
		return err
	})
	return ls, err
}

// SaveCallRecord inserts (r.ID == 0) or updates a call record.
func (s *Service) SaveCallRecord(ctx context.Context, r *sipdesk.CallRecord) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if r.ID == 0 {
			return tx.InsertCallRecord(r)
		}
		return tx.UpdateCallRecord(r)
	})
}

// CallRecords lists call records, newest first.
func (s *Service) CallRecords(ctx context.Context, f sipdesk.CallFilter) ([]*sipdesk.CallRecord, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var rs []*sipdesk.CallRecord
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		rs, err = tx.CallRecords(f)
		return err
	})
	return rs, err
}
