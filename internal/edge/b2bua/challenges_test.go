package b2bua_test

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	sipgotest "github.com/emiago/sipgo/siptest"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// noDialogTx is a transaction like the edge's UDP fast path's: it cannot
// carry a dialog.
type noDialogTx struct{ *sipgotest.ServerTxRecorder }

func (noDialogTx) NoDialog() {}

// sendNoDialog hands an INVITE to the B2BUA on a noDialogTx and returns
// its one final answer.
func (e *env) sendNoDialog(m msg) *sip.Response {
	e.t.Helper()
	req := e.parse(m)
	rec := sipgotest.NewServerTxRecorder(req)
	defer rec.Terminate()
	e.calls.HandleInvite(req, noDialogTx{rec})
	var final *sip.Response
	for _, r := range rec.Result() {
		if !r.IsProvisional() {
			if final != nil {
				e.t.Fatalf("answered twice: %v, %v", final, r)
			}
			final = r
		}
	}
	return final
}

// TestChallenges: Challenges picks exactly the new INVITEs that get a
// final answer with no dialog (the fast path serves them without sipgo's
// INVITE transaction), and an INVITE on a transaction without dialogs
// that would become a call gets 503 with Retry-After instead (the
// configuration changed after Challenges picked it).
func TestChallenges(t *testing.T) {
	e := newEnv(t, 0)
	for _, c := range []struct {
		name string
		m    msg
		want bool
	}{
		{"device without credentials", invite("alice0001", dialed, deviceSrc), true},
		{"device answering the challenge", invite("alice0001", dialed, deviceSrc, "Proxy-Authorization: Digest username=\"alice0001\""), false},
		{"device with Authorization", invite("alice0001", dialed, deviceSrc, "Authorization: Bearer x.y.z"), false},
		{"edge hop", invite("alice0001", dialed, deviceSrc, b2bua.HopHeader+": x"), false},
		{"IP account", invite("", dialed, trunkSrc), false},
		{"carrier", fromCarrier(didNumber), false},
	} {
		if got := e.calls.Challenges(e.parse(c.m)); got != c.want {
			t.Errorf("%s: Challenges %v, want %v", c.name, got, c.want)
		}
	}

	m := invite("alice0001", dialed, deviceSrc)
	c := e.challenge(e.sendNoDialog(m), m.method)
	e.noCall()

	// The right answer on such a transaction would become a call.
	m.cseq++
	m.headers = append(m.headers, "Proxy-Authorization: "+siptest.Answer(c, "INVITE", "sip:"+realm, "alice0001", pass, 1, ""))
	res := e.sendNoDialog(m)
	want(t, res, 503, "Service Unavailable")
	if ra := header(t, res, "Retry-After"); ra == "" {
		t.Fatal("503 without Retry-After")
	}
	e.noCall()
}
