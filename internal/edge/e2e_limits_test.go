//go:build e2e

package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// sippUAC writes a UAC scenario for the limit tests: INVITE to [field0];
// a 403/486/503/408 is ACKed and ends the call; a 200 is ACKed, then the
// call is held for -d ms and hung up ("hangup"), or held until the edge
// sends a BYE ("wait_bye"); "cancel" CANCELs after the 180.
func sippUAC(t *testing.T, mode string) string {
	t.Helper()
	invite := `
  <send retrans="500">
    <![CDATA[

      INVITE sip:[field0]@[domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field1]@[local_ip]:[local_port]>
      Max-Forwards: 70
      P-Asserted-Identity: <sip:+19990000000@evil.example>
      P-Preferred-Identity: <sip:+19990000001@evil.example>
      Remote-Party-ID: <sip:+19990000002@evil.example>;party=calling;screen=yes
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
`
	ackErr := `
  <label id="failed"/>
  <send>
    <![CDATA[

      ACK sip:[field0]@[domain] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
`
	failures := `
  <recv response="403" optional="true" next="failed"/>
  <recv response="486" optional="true" next="failed"/>
  <recv response="503" optional="true" next="failed"/>
  <recv response="408" optional="true" next="failed"/>
`
	ack200 := `
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
`
	var body string
	switch mode {
	case "hangup":
		body = invite + `  <recv response="180" optional="true"/>` + failures + `  <recv response="200" rrs="true"/>` + ack200 + `
  <pause/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <nop next="end"/>
` + ackErr
	case "wait_bye":
		body = invite + `  <recv response="180" optional="true"/>` + failures + `  <recv response="200" rrs="true"/>` + ack200 + `
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <nop next="end"/>
` + ackErr
	case "cancel":
		body = invite + failures + `  <recv response="180"/>
  <pause milliseconds="500"/>
  <send>
    <![CDATA[

      CANCEL sip:[field0]@[domain] SIP/2.0
      [last_Via:]
      From: "[field2]" <sip:[field1]@[domain]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[domain]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487" next="failed"/>
` + ackErr
	default:
		t.Fatalf("mode %q", mode)
	}
	xml := `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uac_` + mode + `">` + body + `
  <label id="end"/>
</scenario>
`
	p := filepath.Join(t.TempDir(), "uac_"+mode+".xml")
	if err := os.WriteFile(p, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sippCarrier returns a carrier (UAS) scenario: "hold_any" answers
// whatever Caller ID it gets and waits for the BYE (testdata/sipp/
// carrier_hold.xml, shared with e2e/ops.mjs), "486"/"503" refuse, "ring"
// rings until CANCELed.
func sippCarrier(t *testing.T, mode string) string {
	t.Helper()
	if mode == "hold_any" {
		return scenario("carrier_hold.xml")
	}
	var body string
	resp := func(code, reason string) string {
		return `
  <send>
    <![CDATA[

      SIP/2.0 ` + code + ` ` + reason + `
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
`
	}
	switch mode {
	case "486", "503":
		reason := map[string]string{"486": "Busy Here", "503": "Service Unavailable"}[mode]
		// Ring first, fail later: the 5 admitted calls hold their
		// channels while the other 45 INVITEs arrive.
		body = `  <recv request="INVITE"/>` + resp("180", "Ringing") + `  <pause milliseconds="1500"/>` + resp(mode, reason) + `  <recv request="ACK"/>
`
	case "ring":
		body = `  <recv request="INVITE">
    <action><ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="icseq"/></action>
  </recv>` + resp("180", "Ringing") + `  <recv request="CANCEL"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$icseq] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
`
	default:
		t.Fatalf("mode %q", mode)
	}
	xml := `<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier_` + mode + `">
` + body + `</scenario>
`
	p := filepath.Join(t.TempDir(), "carrier_"+mode+".xml")
	if err := os.WriteFile(p, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startSippCarrier runs a sipp UAS scenario (a path) for calls calls.
func startSippCarrier(t *testing.T, sf, ip string, port, calls int) *sippUAS {
	return startSippUASScenario(t, sf, ip, port, calls)
}

// limitEnv is an edge on the service's channel admission with one
// customer and three IP accounts on 127.0.0.4 (tech prefixes 1111, 2222,
// 3333) and a carrier address on 127.0.0.9.
type limitEnv struct {
	st          sipdesk.Store
	svc         *app.Service
	cust        int64
	s           *Server
	carrierPort int
}

func newLimitEnv(t *testing.T, st sipdesk.Store, limit int, mods ...func(*Config)) *limitEnv {
	t.Helper()
	f := fixture{t, st}
	e := &limitEnv{st: st, svc: app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})}
	e.cust = f.customer()
	for _, p := range []string{"1111", "2222", "3333"} {
		f.ipAccount(e.cust, "trunk "+p, p, "127.0.0.4/32")
	}
	if _, err := e.svc.SetChannelLimit(context.Background(), e.cust, limit); err != nil {
		t.Fatal(err)
	}
	e.carrierPort = siptest.FreePort(t, "127.0.0.9")
	e.s = startEdge(t, st, func(c *Config) {
		c.Node = "e2e"
		c.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", e.carrierPort)
		// As `sipdesk serve` on SQLite: the edge alone on its store.
		adm := policy.NewChannels(e.st, e.svc, "e2e", policy.ChannelOptions{Log: testLogger(t), Local: true})
		c.Channels, c.Records = adm, adm
		c.RingTimeout = 2 * time.Second
		c.MaxCallDuration = 2 * time.Second
		for _, m := range mods {
			m(c)
		}
	})
	waitApplied(t, e.s, st)
	return e
}

// csv spreads n calls over the three accounts.
func limitCSV(t *testing.T, n int) string {
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := range n {
		fmt.Fprintf(&b, "%s1555%07d;+1555000%04d;Dev %d\n", []string{"1111", "2222", "3333"}[i%3], 2000000+i, i, i)
	}
	p := filepath.Join(t.TempDir(), "calls.csv")
	os.WriteFile(p, []byte(b.String()), 0o600)
	return p
}

func (e *limitEnv) uac(t *testing.T, mode string, calls int, holdMS int) (string, error) {
	return runSipp(t, "-sf", sippUAC(t, mode), "-inf", limitCSV(t, calls), "-key", "domain", testRealm,
		"-i", "127.0.0.4", "-p", fmt.Sprint(siptest.FreePort(t, "127.0.0.4")), "-bind_local", "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls),
		"-r", "1000", "-d", fmt.Sprint(holdMS), "-timeout", "40s", "-recv_timeout", "10000", "-mp", "23000", e.s.UDPAddr().String())
}

// live counts live leases through the service and straight in the store.
func (e *limitEnv) live(t *testing.T) (int, int) {
	t.Helper()
	ls, err := e.svc.ActiveCalls(context.Background(), e.cust)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = e.st.View(context.Background(), func(tx sipdesk.Tx) error {
		u, err := tx.ChannelUse(e.cust, 0, time.Now())
		if err == nil {
			n = u.CustomerInUse // the calls here are outbound: all counted
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(ls), n
}

func (e *limitEnv) waitLive(t *testing.T, want int, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		a, b := e.live(t)
		if a == want && b == want {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("live calls: service %d, database %d; want %d", a, b, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outcomes counts the records since id > after by disposition/SIP code.
func (e *limitEnv) outcomes(t *testing.T, after int64) (map[string]int, int64) {
	t.Helper()
	e.s.FlushRecords(5 * time.Second)
	rs, err := e.svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: e.cust, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	maxID := after
	for _, r := range rs {
		if r.ID <= after {
			continue
		}
		maxID = max(maxID, r.ID)
		m[fmt.Sprintf("%s %d %s", r.Disposition, r.SIPCode, r.Reason)]++
	}
	return m, maxID
}

// TestSippChannelLimit: limit 5, 50 simultaneous INVITEs over three SIP
// accounts → exactly 5 reach the carrier, 45 get 403 Channel limit
// reached; the channels come back after hang-up, CANCEL, carrier 486 and
// 503, a carrier that never answers and the maximum duration, and 5 more
// calls succeed each time.
func TestSippChannelLimit(t *testing.T) {
	siptest.Need(t, "sipp")
	e := newLimitEnv(t, openStore(t), 5)
	var last int64
	for _, tc := range []struct {
		name, uac, carrier string
		hold               int
		want               string // outcome of the 5 admitted calls
	}{
		{"hang-up", "hangup", "hold", 1500, "answered 200 bye_caller"},
		{"CANCEL before answer", "cancel", "ring", 0, "cancelled 487 cancelled"},
		{"carrier 486", "hangup", "486", 0, "busy 486 callee"},
		{"carrier 503", "hangup", "503", 0, "failed 503 callee"},
		{"carrier never answers", "hangup", "ring", 0, "no_answer 408 ring_timeout"},
		{"maximum duration", "wait_bye", "hold", 0, "answered 200 max_duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sf := scenario("uas_b2bua.xml")
			if tc.carrier != "hold" {
				sf = sippCarrier(t, tc.carrier)
			}
			uas := startSippCarrier(t, sf, "127.0.0.9", e.carrierPort, 5)
			start := time.Now()
			done := make(chan struct{})
			var out string
			go func() { out, _ = e.uac(t, tc.uac, 50, tc.hold); close(done) }()
			if tc.name != "CANCEL before answer" {
				// While the 5 are up: exactly 5 live calls.
				time.Sleep(700 * time.Millisecond)
				if a, b := e.live(t); a != 5 || b != 5 {
					t.Errorf("live calls while holding: service %d, database %d", a, b)
				}
			}
			<-done
			if n := strings.Count(uas.wait(t), "\nINVITE sip:"); n != 5 {
				t.Errorf("the carrier received %d INVITEs, want 5", n)
			}
			e.waitLive(t, 0, 5*time.Second)
			got, id := e.outcomes(t, last)
			last = id
			want := map[string]int{"refused 403 " + sipdesk.EChannelLimit: 45, tc.want: 5}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("outcomes %v, want %v\nsipp:\n%s", got, want, tail(out, 2500))
			}
			t.Logf("50 INVITEs: 5 reached the carrier (%s), 45 × 403 Channel limit reached; live back to 0 in %v",
				tc.want, time.Since(start).Round(10*time.Millisecond))

			// 5 more succeed.
			uas = startSippCarrier(t, scenario("uas_b2bua.xml"), "127.0.0.9", e.carrierPort, 5)
			if out, err := e.uac(t, "hangup", 5, 200); err != nil {
				t.Fatalf("5 more calls: %v\n%s", err, tail(out, 2500))
			}
			uas.wait(t)
			e.waitLive(t, 0, 5*time.Second)
			got, last = e.outcomes(t, last)
			if got["answered 200 bye_caller"] != 5 || len(got) != 1 {
				t.Fatalf("5 more calls: %v", got)
			}
		})
	}
}
