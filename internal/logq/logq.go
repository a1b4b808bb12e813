// Package logq keeps a repeated warning from flooding the log: while the
// database is away every call, REGISTER, lease renewal and config poll
// fails the same way, and one line per failure buried everything else. A
// quiet logger lets a warning (or error) of each kind (its message) through
// at most once per interval and tells, on the next line of that kind, how
// many it held back ("suppressed"). Lower levels pass untouched.
package logq

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Every is the interval of Logger.
const Every = 10 * time.Second

// maxKinds bounds the messages tracked; messages are constants of the code,
// so this is only a guard: beyond it, new kinds pass unlimited.
const maxKinds = 1024

// Logger returns a logger that writes to l's handler and lets each kind of
// warning through at most once per Every.
func Logger(l *slog.Logger) *slog.Logger {
	return slog.New(New(l.Handler(), Every, time.Now))
}

// New wraps h: records at Warn and above with the same message pass at most
// once per every, with the count of the ones held back since. now is the
// clock (time.Now in production).
func New(h slog.Handler, every time.Duration, now func() time.Time) slog.Handler {
	return &handler{inner: h, l: &limiter{every: every, now: now, kinds: map[string]*kind{}}}
}

type limiter struct {
	mu    sync.Mutex
	every time.Duration
	now   func() time.Time
	kinds map[string]*kind
}

type kind struct {
	last       time.Time
	suppressed int
}

// allow reports whether a record of msg may pass now, and how many were
// held back since the last one that passed.
func (l *limiter) allow(msg string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := l.kinds[msg]
	if k == nil {
		if len(l.kinds) < maxKinds {
			l.kinds[msg] = &kind{last: now}
		}
		return true, 0
	}
	if now.Sub(k.last) < l.every {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return true, n
}

type handler struct {
	inner slog.Handler
	l     *limiter // shared by the handlers WithAttrs and WithGroup derive
}

func (h *handler) Enabled(ctx context.Context, lv slog.Level) bool { return h.inner.Enabled(ctx, lv) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.inner.Handle(ctx, r)
	}
	ok, n := h.l.allow(r.Message)
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.inner.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{inner: h.inner.WithAttrs(as), l: h.l}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), l: h.l}
}
