// Package shield keeps abusive sources away from the edge: bans after
// failed authentications, garbage or challenge floods, and the count of
// failed answers per Call-ID.
package shield

import (
	"net/netip"
	"sync"
	"time"
)

// Shield counts failed authentications per source IP and bans a source
// after Failures within Window for Duration; a banned source's packets are
// dropped before they are parsed.
type Shield struct {
	failures int
	window   time.Duration
	duration time.Duration
	// challengeRate is how many credential-less requests (each answered
	// with a challenge) one source may send per second before it is banned
	// as a flood; 0 disables the check.
	challengeRate int
	now           func() time.Time

	mu    sync.Mutex
	srcs  map[netip.Addr]*srcState
	sweep time.Time
}

type srcState struct {
	fails       []time.Time
	bannedUntil time.Time
	garbage     int       // datagrams that are not SIP since garbageFrom
	garbageFrom time.Time // start of the garbage window
	challenges  int       // credential-less requests since challengeFrom
	challengeAt time.Time // start of the one-second challenge window
}

// garbageLimit datagrams that are not SIP within the window ban a source.
const garbageLimit = 20

// New makes a Shield: failures within window ban a source for duration
// (failures <= 0: never); challengeRate credential-less requests per second
// from one source ban it too (0: no limit).
func New(failures int, window, duration time.Duration, challengeRate int, now func() time.Time) *Shield {
	return &Shield{failures: failures, window: window, duration: duration, challengeRate: challengeRate, now: now, srcs: make(map[netip.Addr]*srcState)}
}

// Banned reports whether packets from a should be dropped.
func (s *Shield) Banned(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.srcs[a]
	return st != nil && s.now().Before(st.bannedUntil)
}

// Fail records a failed authentication from a and reports whether a is now
// banned.
func (s *Shield) Fail(a netip.Addr) bool {
	if s.failures <= 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.sweep) > time.Minute {
		for k, st := range s.srcs {
			if now.After(st.bannedUntil) && (len(st.fails) == 0 || now.Sub(st.fails[len(st.fails)-1]) > s.window) {
				delete(s.srcs, k)
			}
		}
		s.sweep = now
	}
	st := s.srcs[a]
	if st == nil {
		st = &srcState{}
		s.srcs[a] = st
	}
	keep := st.fails[:0]
	for _, t := range st.fails {
		if now.Sub(t) < s.window {
			keep = append(keep, t)
		}
	}
	st.fails = append(keep, now)
	if len(st.fails) >= s.failures {
		st.bannedUntil = now.Add(s.duration)
		st.fails = st.fails[:0]
		return true
	}
	return false
}

// Garbage records a datagram from a that is not SIP and reports whether a
// is now banned (garbageLimit of them within the window).
func (s *Shield) Garbage(a netip.Addr) bool {
	if s.failures <= 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.srcs[a]
	if st == nil {
		st = &srcState{}
		s.srcs[a] = st
	}
	if now.Sub(st.garbageFrom) > s.window {
		st.garbage, st.garbageFrom = 0, now
	}
	st.garbage++
	if st.garbage >= garbageLimit && !now.Before(st.bannedUntil) {
		st.bannedUntil = now.Add(s.duration)
		st.garbage = 0
		return true
	}
	return false
}

// Challenged records a request from a that came without credentials (it
// gets a challenge) and reports whether a is now banned: more than
// challengeRate of them within one second is a flood, not a device.
func (s *Shield) Challenged(a netip.Addr) bool {
	if s.failures <= 0 || s.challengeRate <= 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.srcs[a]
	if st == nil {
		st = &srcState{}
		s.srcs[a] = st
	}
	if now.Sub(st.challengeAt) >= time.Second {
		st.challenges, st.challengeAt = 0, now
	}
	st.challenges++
	if st.challenges > s.challengeRate && !now.Before(st.bannedUntil) {
		st.bannedUntil = now.Add(s.duration)
		st.challenges = 0
		return true
	}
	return false
}
