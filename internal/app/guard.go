package app

import (
	"context"
	"time"

	"github.com/sipdesk/sipdesk"
)

// guessingNoticeAge is how long the SIP Accounts page shows a
// password-guessing notice.
const guessingNoticeAge = 24 * time.Hour

// GuessingNotices are the password-guessing guards the edges recorded on the
// customer's SIP accounts in the last day (sipdesk.AuditPasswordGuessing),
// the newest one per SIP account, newest first.
func (s *Service) GuessingNotices(ctx context.Context, customerID int64) ([]*sipdesk.AuditEntry, error) {
	es, err := s.Audit(ctx, customerID, 200)
	if err != nil {
		return nil, err
	}
	since := s.now().Add(-guessingNoticeAge)
	seen := map[int64]bool{}
	var out []*sipdesk.AuditEntry
	for _, e := range es {
		if e.Action != sipdesk.AuditPasswordGuessing || e.At.Before(since) || seen[e.SIPAccountID] {
			continue
		}
		seen[e.SIPAccountID] = true
		out = append(out, e)
	}
	return out, nil
}
