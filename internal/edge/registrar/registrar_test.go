package registrar

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TestRefreshOnly: a refresh skips the store write while the stored copy
// covers 90 % of the new interval, from the same source and transport.
func TestRefreshOnly(t *testing.T) {
	now := time.Now()
	b := &Binding{Reg: sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp"}, stored: now.Add(3000 * time.Second).Unix()}
	for _, tc := range []struct {
		name string
		r    sipdesk.Registration
		skip bool
	}{
		{"stored copy covers 3000 of 3200 s", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp", ExpiresAt: now.Add(3200 * time.Second)}, true},
		{"stored copy covers 3000 of 3600 s", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "udp", ExpiresAt: now.Add(3600 * time.Second)}, false},
		{"new source", sipdesk.Registration{Received: "127.0.0.3:5060", Transport: "udp", ExpiresAt: now.Add(60 * time.Second)}, false},
		{"new transport", sipdesk.Registration{Received: "127.0.0.2:5060", Transport: "tcp", ExpiresAt: now.Add(60 * time.Second)}, false},
	} {
		if got := refreshOnly(b, &tc.r, now); got != tc.skip {
			t.Errorf("%s: refreshOnly = %v, want %v", tc.name, got, tc.skip)
		}
	}
	if refreshOnly(nil, &sipdesk.Registration{}, now) {
		t.Error("a new binding counts as a refresh")
	}
}
