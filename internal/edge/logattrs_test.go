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

// BenchmarkCallLogger is the logger a handler makes per INVITE and the two
// Info lines of an answered call, at warn (the benchmark's level: nothing
// written) and at info (the default: both written).
// Run: go test -run '^$' -bench CallLogger -benchmem ./internal/edge
func BenchmarkCallLogger(b *testing.B) {
	src := netip.MustParseAddrPort("192.0.2.1:5060")
	warn, info := &slog.HandlerOptions{Level: slog.LevelWarn}, &slog.HandlerOptions{Level: slog.LevelInfo}
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"warn/inner", slog.NewTextHandler(io.Discard, warn)},
		{"warn/deferred", newDeferAttrs(slog.NewTextHandler(io.Discard, warn))},
		{"info/inner", slog.NewTextHandler(io.Discard, info)},
		{"info/deferred", newDeferAttrs(slog.NewTextHandler(io.Discard, info))},
	} {
		log := slog.New(tc.h).With("component", "edge")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lg := log.With("call_id", "a84b4c76e66710@pc33.example.com", "src", src.String(), "direction", "outbound")
				lg = lg.With("sip_account", int64(1234))
				lg.Info("call answered", "carrier_call_id", "b84b4c76e66710@203.0.113.1")
				lg.Info("call", "result", "completed")
			}
		})
	}
}
