package auth

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// TestGuardSameForUnknownUsernames: spread guessing at a username no
// account has ends in the same 403 as at a real one, so the guard does not
// tell which usernames exist; only the real account's guard is logged at
// WARN and reported for the customer's notice.
func TestGuardSameForUnknownUsernames(t *testing.T) {
	var reported []int64
	n := newNode(t, Config{OnGuard: func(a *sipdesk.SIPAccount, _ time.Time) { reported = append(reported, a.ID) }}, time.Now)
	accts := accounts{"alice0001": passwordAccount(10, "alice0001")}
	answers := map[string]string{}
	for _, user := range []string{"alice0001", "nobody001"} {
		for i := range 21 {
			src := fmt.Sprintf("198.51.100.%d:5060", 10+i%7) // 3 each, under the per-source ban
			_, res := n.authenticate(t, req(t, sip.REGISTER, user, fmt.Sprint("c", i), src, "UDP"), accts)
			_, res = n.authenticate(t, req(t, sip.REGISTER, user, fmt.Sprint("c", i), src, "UDP", answerHeader(challengeOf(t, res), sip.REGISTER, user, "Wrong-pass-9", 1)), accts)
			if i == 20 {
				answers[user] = fmt.Sprint(res.StatusCode, " ", res.Reason)
			}
		}
	}
	if answers["alice0001"] != "403 Too many failed passwords" || answers["nobody001"] != answers["alice0001"] {
		t.Fatalf("the 21st guess: %v, want the same 403 for both", answers)
	}
	if len(reported) != 1 || reported[0] != 10 || strings.Count(n.log.String(), "SIP account guarded") != 1 {
		t.Fatalf("reported %v, log:\n%s", reported, n.log.String())
	}
}
