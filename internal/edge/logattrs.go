package edge

import (
	"context"
	"log/slog"
	"slices"
)

// deferAttrs is a log handler whose WithAttrs only keeps the attributes:
// they are formatted when a record is written. The SIP handlers make a
// logger with the call's attributes for every REGISTER and INVITE (Call-ID,
// source, account) and at the usual level (warn) write nothing with most of
// them; the text and JSON handlers format attributes in WithAttrs, which
// cost about 3 % of the CPU of a call (profile of 2026-12-06,
// docs/PERFORMANCE.md). The output is the same: the kept attributes come
// first, as if the inner handler had been given them.
type deferAttrs struct {
	next  slog.Handler
	attrs []slog.Attr
}

func newDeferAttrs(next slog.Handler) slog.Handler {
	if d, ok := next.(*deferAttrs); ok {
		return d
	}
	return &deferAttrs{next: next}
}

func (h *deferAttrs) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *deferAttrs) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) == 0 {
		return h.next.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, nr)
}

func (h *deferAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return &deferAttrs{next: h.next, attrs: append(slices.Clip(h.attrs), as...)}
}

// WithGroup hands the kept attributes to the inner handler first: they
// belong outside the group.
func (h *deferAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	next := h.next
	if len(h.attrs) > 0 {
		next = next.WithAttrs(h.attrs)
	}
	return &deferAttrs{next: next.WithGroup(name)}
}
