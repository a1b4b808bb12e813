package edge

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"testing"
)

var timeRE = regexp.MustCompile(`(time=|"time":)"?[^ ,]+"?[ ,]`)

// The deferred attributes print exactly what the inner handler prints
// when given them directly, groups included.
func TestDeferAttrsSameOutput(t *testing.T) {
	write := func(l *slog.Logger) {
		l = l.With("component", "edge")
		lg := l.With("call_id", "abc@host", "src", "192.0.2.1:5060")
		lg = lg.With("sip_account", int64(7))
		lg.Info("call", "result", "completed")
		lg.WithGroup("g").With("in", 1).Warn("grouped", "k", "v")
		lg.Debug("hidden")
	}
	for _, mk := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var want, got bytes.Buffer
		write(slog.New(mk(&want)))
		write(slog.New(newDeferAttrs(mk(&got))))
		strip := func(b []byte) string { return string(timeRE.ReplaceAll(b, nil)) }
		if strip(got.Bytes()) != strip(want.Bytes()) {
			t.Fatalf("deferred output differs:\n got: %s\nwant: %s", got.String(), want.String())
		}
		if !bytes.Contains(got.Bytes(), []byte("abc@host")) {
			t.Fatalf("call attributes missing: %s", got.String())
		}
	}
}

// BenchmarkCallLogger is the logger a handler makes per INVITE at the
// usual level (warn): the call's attributes and an Info line not written.
// Run: go test -run '^$' -bench CallLogger -benchmem ./internal/edge
func BenchmarkCallLogger(b *testing.B) {
	src := netip.MustParseAddrPort("192.0.2.1:5060")
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"inner", slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})},
		{"deferred", newDeferAttrs(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))},
	} {
		log := slog.New(tc.h).With("component", "edge")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lg := log.With("call_id", "a84b4c76e66710@pc33.example.com", "src", src.String(), "direction", "outbound")
				lg = lg.With("sip_account", int64(1234))
				lg.Info("call", "result", "completed")
			}
		})
	}
}
