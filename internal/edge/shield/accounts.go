package shield

import (
	"net/netip"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk/internal/ratelimit"
)

// GuardConfig is the failure budget of one SIP account.
type GuardConfig struct {
	// Failures failed digest answers for one username within Window, from
	// any sources, start a guard; 0 disables the guard.
	Failures int
	Window   time.Duration
	// Duration is how long a guard lasts after the failure that started or
	// last renewed it (every failure while the budget is spent renews it).
	Duration time.Duration
	// Trust is how long a source that authenticated for a username stays
	// accepted during a guard.
	Trust time.Duration
}

// Defaults of GuardConfig (the serve flags' defaults).
const (
	DefaultGuardFailures = 20
	DefaultGuardWindow   = 10 * time.Minute
	DefaultGuardDuration = 30 * time.Minute
	DefaultGuardTrust    = 24 * time.Hour
)

// trustMaxKeys caps the (username, source) pairs remembered as trusted:
// one per device address that authenticated within GuardConfig.Trust. Only
// a right password makes one, so a flood cannot push devices out.
const trustMaxKeys = 250_000

// AccountGuard is the failure budget per SIP account: bans (Shield) are per
// source, so guesses spread over many addresses, a few from each, never
// ban anyone. After Failures failed answers for one username within
// Window, wherever they come from, the username is guarded for Duration:
// only the sources that authenticated for it within Trust (the customer's
// own devices) are accepted, every other answer is refused, right or
// wrong alike, so the refusal tells nothing about the password.
//
// Usernames are counted whether or not an account has them (an unknown
// username gets guarded the same way, so the guard does not tell which
// exist). Memory: each window is a ratelimit.Window, bounded in keys; a
// flood of usernames replaces its own keys first.
type AccountGuard struct {
	cfg GuardConfig
	now func() time.Time

	mu      sync.Mutex                    // makes "this failure started the guard" exact
	fails   *ratelimit.Window[string]     // failed answers per username, sliding over Window
	guards  *ratelimit.Window[string]     // a guard is one event in a window as long as the guard
	trusted *ratelimit.Window[userSource] // a success per (username, source), over Trust
}

type userSource struct {
	user string
	src  netip.Addr
}

// NewAccountGuard makes an AccountGuard (cfg.Failures <= 0: never guards).
func NewAccountGuard(cfg GuardConfig, now func() time.Time) *AccountGuard {
	g := &AccountGuard{cfg: cfg, now: now}
	if cfg.Failures <= 0 {
		return g
	}
	g.fails = ratelimit.New[string](cfg.Window, ratelimit.Options{Limit: cfg.Failures, Now: now})
	g.guards = ratelimit.New[string](cfg.Duration, ratelimit.Options{Limit: 1, Now: now})
	g.trusted = ratelimit.New[userSource](cfg.Trust, ratelimit.Options{Limit: 1, MaxKeys: trustMaxKeys, Now: now})
	return g
}

// Fail records a failed answer for user and reports whether it started a
// guard (it was not guarded before), and until when the guard lasts.
func (g *AccountGuard) Fail(user string) (started bool, until time.Time) {
	if g.fails == nil {
		return false, time.Time{}
	}
	now := g.now()
	if g.fails.AddAt(user, now) < g.cfg.Failures {
		return false, time.Time{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	started = g.guards.CountAt(user, now) == 0
	g.guards.AddAt(user, now)
	return started, now.Add(g.cfg.Duration)
}

// Refused reports whether user is guarded and src is not one of its
// trusted sources.
func (g *AccountGuard) Refused(user string, src netip.Addr) bool {
	if g.guards == nil || g.guards.Count(user) == 0 {
		return false
	}
	return g.trusted.Count(userSource{user, src}) == 0
}

// Succeeded records that src authenticated for user: it is trusted for
// user during a guard for the next Trust.
func (g *AccountGuard) Succeeded(user string, src netip.Addr) {
	if g.trusted != nil {
		g.trusted.Add(userSource{user, src})
	}
}
