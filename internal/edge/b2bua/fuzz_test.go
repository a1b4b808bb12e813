package b2bua

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// FuzzSessionTimer: Session-Expires, Min-SE and option-tag headers (RFC
// 4028) never panic; the interval is 0 or at least Min-SE.
func FuzzSessionTimer(f *testing.F) {
	for _, s := range [][3]string{{"1800;refresher=uac", "90", "timer"}, {"abc", "-1", "timer, 100rel"}, {"99999999999999999999", "", "TIMER"},
		{"0", "9223372036854775807", "timer"}, {"90;refresher=uas", "", "timer"}, {"", "", ""}} {
		f.Add(s[0], s[1], s[2])
	}
	s := &B2BUA{cfg: Config{SessionExpires: 1800 * time.Second, MinSE: 90 * time.Second}}
	f.Fuzz(func(t *testing.T, se, minSE, supported string) {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "15551234567", Host: "sipdesk.local"})
		req.AppendHeader(sip.NewHeader("Supported", supported))
		if se != "" {
			req.AppendHeader(sip.NewHeader("Session-Expires", se))
		}
		if minSE != "" {
			req.AppendHeader(sip.NewHeader("Min-SE", minSE))
		}
		if d := s.sessionInterval(req); d != 0 && d < s.cfg.MinSE {
			t.Fatalf("interval %v below Min-SE", d)
		}
	})
}
