package shield

import (
	"time"

	"github.com/sipdesk/sipdesk/internal/ratelimit"
)

// callFailWindow is how long a failed digest answer counts for its Call-ID.
const callFailWindow = 2 * time.Minute

// CallFails counts failed digest answers per Call-ID (3 of them get 403).
type CallFails struct {
	w *ratelimit.Window[string]
}

// NewCallFails makes an empty CallFails.
func NewCallFails() *CallFails {
	return &CallFails{w: ratelimit.New[string](callFailWindow, ratelimit.Options{Limit: 3})}
}

// Inc records a failed answer for Call-ID id at now and returns the
// failures of the last two minutes for it (at most 3).
func (c *CallFails) Inc(id string, now time.Time) int { return c.w.AddAt(id, now) }

// Sweep forgets the Call-IDs whose failures are all older than two minutes.
func (c *CallFails) Sweep(now time.Time) { c.w.Sweep(now) }
