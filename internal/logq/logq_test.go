package logq

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestOncePerIntervalWithCount: the same warning passes once per interval,
// the next one that passes carries the count held back; other kinds and
// info lines are not held back.
func TestOncePerIntervalWithCount(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	log := slog.New(New(slog.NewTextHandler(&buf, nil), 10*time.Second, func() time.Time { return at })).With("component", "x")
	for range 24 {
		log.Warn("config refresh", "error", "timeout")
		log.Info("info passes")
	}
	log.Warn("heartbeat failed")
	at = at.Add(9 * time.Second)
	log.Warn("config refresh", "error", "timeout")
	at = at.Add(time.Second)
	log.Warn("config refresh", "error", "timeout")
	out := buf.String()
	if n := strings.Count(out, "config refresh"); n != 2 {
		t.Fatalf("%d config refresh lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=24") {
		t.Fatalf("no count of the 24 held back:\n%s", out)
	}
	if strings.Count(out, "info passes") != 24 || strings.Count(out, "heartbeat failed") != 1 {
		t.Fatalf("other lines held back:\n%s", out)
	}
}
