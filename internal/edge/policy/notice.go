package policy

import (
	"context"
	"time"

	"github.com/sipdesk/sipdesk"
)

// noticeTimeout bounds the write of a notice: it runs in the background,
// never holding a SIP answer, and gives up on a database that is away.
const noticeTimeout = 5 * time.Second

// Notice records an event of the edge in the customer's audit log (the
// portal reads it there), in the background. Edge events worth a notice
// are rare by construction (one per guard started on an account), so one
// goroutine each is bounded.
func (e *Engine) Notice(entry sipdesk.AuditEntry) {
	if e.st == nil {
		return
	}
	if entry.At.IsZero() {
		entry.At = e.opt.Now()
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
		defer cancel()
		if err := e.st.Update(ctx, func(tx sipdesk.Tx) error { return tx.InsertAudit(&entry) }); err != nil {
			e.opt.Log.Warn("notice not recorded", "action", entry.Action, "customer", entry.CustomerID, "error", err)
		}
	}()
}
