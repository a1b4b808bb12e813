package shield

import (
	"sync"
	"time"
)

// CallFails counts failed digest answers per Call-ID (3 of them get 403).
type CallFails struct {
	mu sync.Mutex
	m  map[string]cfEntry
}

type cfEntry struct {
	n   int
	exp time.Time
}

// NewCallFails makes an empty CallFails.
func NewCallFails() *CallFails { return &CallFails{m: map[string]cfEntry{}} }

func (c *CallFails) Inc(id string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if now.After(e.exp) {
		e = cfEntry{}
	}
	e.n++
	e.exp = now.Add(2 * time.Minute)
	c.m[id] = e
	return e.n
}

func (c *CallFails) Sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if now.After(e.exp) {
			delete(c.m, k)
		}
	}
}
