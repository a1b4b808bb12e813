// Package shield keeps abusive sources away from the edge: bans after
// failed authentications, garbage or challenge floods, and the count of
// failed answers per Call-ID. Every count is a ratelimit.Window, so memory
// stays bounded when a flood comes from many (spoofed) addresses.
package shield

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk/internal/ratelimit"
)

// Shield counts failed authentications per source IP and bans a source
// after Failures within Window for Duration; a banned source's packets are
// dropped before they are parsed.
//
// Each count and the bans are separate windows, each with its own lock: two
// failures from one source at the same instant may both report the ban
// (logged twice, same end); no failure goes uncounted.
type Shield struct {
	failures int
	// challengeRate is how many credential-less requests (each answered
	// with a challenge) one source may send per second before it is banned
	// as a flood; 0 disables the check.
	challengeRate int
	duration      time.Duration
	now           func() time.Time
	onBan         func(a netip.Addr, reason string, until time.Time)
	// shared are the bans any edge recorded in the store, by address with
	// their end (SetShared); read lock-free on every packet.
	shared atomic.Pointer[map[netip.Addr]time.Time]

	fails      *ratelimit.Window[netip.Addr] // failed authentications, sliding over window
	garbage    *ratelimit.Window[netip.Addr] // datagrams that are not SIP, fixed windows of window
	challenges *ratelimit.Window[netip.Addr] // credential-less requests, fixed one-second windows
	bans       *ratelimit.Window[netip.Addr] // a ban is one event in a window as long as the ban
}

// garbageLimit datagrams that are not SIP within the window ban a source.
const garbageLimit = 20

// New makes a Shield: failures within window ban a source for duration
// (failures <= 0: never); challengeRate credential-less requests per second
// from one source ban it too (0: no limit).
func New(failures int, window, duration time.Duration, challengeRate int, now func() time.Time) *Shield {
	s := &Shield{failures: failures, challengeRate: challengeRate, duration: duration, now: now}
	s.fails = ratelimit.New[netip.Addr](window, ratelimit.Options{Limit: max(failures, 1), Now: now})
	s.garbage = ratelimit.New[netip.Addr](window, ratelimit.Options{Limit: garbageLimit, Fixed: true, Now: now})
	s.challenges = ratelimit.New[netip.Addr](time.Second, ratelimit.Options{Limit: max(challengeRate+1, 1), Fixed: true, Now: now})
	s.bans = ratelimit.New[netip.Addr](duration, ratelimit.Options{Limit: 1, Now: now})
	return s
}

// Banned reports whether packets from a should be dropped: this edge
// banned it, or another edge did (SetShared).
func (s *Shield) Banned(a netip.Addr) bool {
	return s.bans.Count(a) > 0 || s.sharedBan(a)
}

// Fail records a failed authentication from a and reports whether a is now
// banned.
func (s *Shield) Fail(a netip.Addr) bool {
	if s.failures <= 0 {
		return false
	}
	now := s.now()
	if s.fails.AddAt(a, now) < s.failures {
		return false
	}
	s.fails.Reset(a)
	s.imposed(a, ReasonFailures, now)
	return true
}

// Garbage records a datagram from a that is not SIP and reports whether a
// is now banned (garbageLimit of them within the window).
func (s *Shield) Garbage(a netip.Addr) bool {
	if s.failures <= 0 {
		return false
	}
	now := s.now()
	if s.garbage.AddAt(a, now) < garbageLimit || s.bans.CountAt(a, now) > 0 {
		return false
	}
	s.garbage.Reset(a)
	s.imposed(a, ReasonGarbage, now)
	return true
}

// Challenged records a request from a that came without credentials (it
// gets a challenge) and reports whether a is now banned: more than
// challengeRate of them within one second is a flood, not a device.
func (s *Shield) Challenged(a netip.Addr) bool {
	if s.failures <= 0 || s.challengeRate <= 0 {
		return false
	}
	now := s.now()
	if s.challenges.AddAt(a, now) <= s.challengeRate || s.bans.CountAt(a, now) > 0 {
		return false
	}
	s.challenges.Reset(a)
	s.imposed(a, ReasonChallenge, now)
	return true
}
