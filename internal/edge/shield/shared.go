package shield

import (
	"net/netip"
	"time"
)

// Reasons of the bans a Shield imposes, as the operator console shows them.
const (
	ReasonFailures  = "failed authentication"
	ReasonGarbage   = "datagrams that are not SIP"
	ReasonChallenge = "credential-less flood"
)

// OnBan sets the function told of every ban this Shield imposes (with its
// reason and end), so that the ban can be shared with the other edges. It
// runs on the request's goroutine: it must not block. Set it before use.
func (s *Shield) OnBan(f func(a netip.Addr, reason string, until time.Time)) { s.onBan = f }

// SetShared replaces the bans recorded by any edge (this one's included)
// with m, the end of each ban by address. The map is read without a lock
// on every packet: the caller must not change it after.
func (s *Shield) SetShared(m map[netip.Addr]time.Time) { s.shared.Store(&m) }

// Lift forgets the ban of a and the counts that led to it, so that a may
// send again at once (an operator lifted it). A shared ban of a goes with
// the next SetShared.
func (s *Shield) Lift(a netip.Addr) {
	s.bans.Reset(a)
	s.fails.Reset(a)
	s.garbage.Reset(a)
	s.challenges.Reset(a)
}

// sharedBan reports whether another edge's ban of a runs at now.
func (s *Shield) sharedBan(a netip.Addr) bool {
	p := s.shared.Load()
	if p == nil || len(*p) == 0 {
		return false
	}
	until, ok := (*p)[a.Unmap()]
	return ok && s.now().Before(until)
}

// imposed records a ban of a from now and tells OnBan.
func (s *Shield) imposed(a netip.Addr, reason string, now time.Time) {
	s.bans.AddAt(a, now)
	if s.onBan != nil {
		s.onBan(a, reason, now.Add(s.duration))
	}
}
