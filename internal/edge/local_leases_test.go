package edge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// The edge alone on its store (SQLite, `sipdesk serve` without
// --database): channel admission in memory, lease rows written behind
// (policy.ChannelOptions.Local).

// newLocalEnv is a fenceEnv whose admission is Local; pre runs with the
// carrier's address before the edge starts.
func newLocalEnv(t *testing.T, pre func(e *callEnv, carrier string)) *fenceEnv {
	var cfg *Config
	return newFenceEnvPre(t, fastLeases, nil, func(c *Config) { cfg = c }, func(e *callEnv, carrier string) {
		e.adm = policy.NewChannels(e.st, e.svc, "n1", policy.ChannelOptions{Timing: fastLeases, Log: testLogger(t),
			Timeout: 300 * time.Millisecond, Local: true})
		cfg.Channels, cfg.Records = e.adm, e.adm
		if pre != nil {
			pre(e, carrier)
		}
	})
}

// TestLocalChannelLimit: over SIP, the limit holds (403 Channel limit
// reached), a limit raised in the portal admits the very next call, a
// live call's lease row (with its dialog) shows within a write window,
// and a hung-up call's row goes.
func TestLocalChannelLimit(t *testing.T) {
	e := newLocalEnv(t, nil)
	e.setLimit(1)
	waitApplied(t, e.s, e.st)
	p := e.answered()
	e.carrier.mode.Store("answer")
	p2 := newPhone(t, "127.0.0.2", e.s)
	p2.dial("+15551230001")
	if r := p2.final(3 * time.Second); r.Code != 403 || r.Reason != "Channel limit reached" {
		t.Fatalf("second call at limit 1: %d %s", r.Code, r.Reason)
	}
	if _, err := e.svc.SetChannelLimit(context.Background(), e.cust, 2); err != nil {
		t.Fatal(err)
	}
	p3 := newPhone(t, "127.0.0.2", e.s)
	p3.dial("+15551230001")
	if r := p3.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("next call after the limit went to 2: %d %s", r.Code, r.Reason)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if l := e.lease(p.callID); l != nil && l.Dialog != "" {
			var d policy.Dialog
			if err := json.Unmarshal([]byte(l.Dialog), &d); err != nil || len(d.Legs) != 2 {
				t.Fatalf("dialog %q", l.Dialog)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no lease row with its dialog 2 s after the answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.inDialog("BYE")
	p3.inDialog("BYE")
	e.waitLive(0, 2*time.Second)
}

// TestLocalRestartEndsPreviousLife: TestRestartEndsPreviousLife with the
// admission in memory: the rows a previous life wrote are ended (BYE from
// the stored dialog, record node_lost) and freed.
func TestLocalRestartEndsPreviousLife(t *testing.T) {
	const callID, carrierCallID = "previous-life@127.0.0.2", "carrier-leg-1"
	e := newLocalEnv(t, func(e *callEnv, carrier string) {
		d := policy.Dialog{Node: "n1", Legs: []policy.DialogLeg{{Side: policy.LegCarrier, CallID: carrierCallID,
			From: "<sip:+15550000002@127.0.0.1>;tag=ours", To: "<sip:+15551230001@" + carrier + ">;tag=theirs",
			Target: "sip:carrier@" + carrier, CSeq: 2, Transport: "UDP"}}}
		js, _ := json.Marshal(d)
		now := time.Now()
		e.f.update(func(tx sipdesk.Tx) error {
			if err := tx.InsertLease(&sipdesk.CallLease{CallID: callID, CustomerID: e.cust, SIPAccountID: e.acct.ID, Direction: sipdesk.DirOutbound,
				Node: "n1", StartedAt: now, ExpiresAt: now.Add(time.Hour), Dialog: string(js)}); err != nil {
				return err
			}
			return tx.InsertCallRecord(&sipdesk.CallRecord{CallID: callID, CustomerID: e.cust, SIPAccountID: e.acct.ID,
				Direction: sipdesk.DirOutbound, StartedAt: now, Disposition: sipdesk.DispActive, Node: "n1"})
		})
	})
	bye := e.carrier.waitReq(t, "BYE", 3*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == carrierCallID })
	if !strings.Contains(bye.Get("From"), "tag=ours") || !strings.Contains(bye.Get("To"), "tag=theirs") {
		t.Errorf("BYE From %q To %q", bye.Get("From"), bye.Get("To"))
	}
	e.waitLive(0, 3*time.Second)
	if r := e.record(callID); r.Disposition != sipdesk.DispNodeLost {
		t.Errorf("record %s, want node_lost", r.Disposition)
	}
}

// TestLocalHangUpListsNoCall: when an operator is told a call was hung up,
// Live calls no longer lists it, although lease rows are written behind
// (the console shows the list right after the hang-up).
func TestLocalHangUpListsNoCall(t *testing.T) {
	e := newLocalEnv(t, nil)
	p := e.answered()
	e.waitLive(1, 2*time.Second)
	r, err := e.svc.OpsHangUp(context.Background(), e.operator(sipdesk.RoleSupport), p.callID)
	if err != nil || r.State != sipdesk.EdgeDone {
		t.Fatalf("hang-up: %+v %v", r, err)
	}
	if n := e.live(); n != 0 {
		t.Fatalf("live calls listed right after the hang-up: %d, want 0", n)
	}
}
