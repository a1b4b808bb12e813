package media

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRelay50Calls measures the relay's CPU per concurrent call: 50
// outbound calls bridged at once, media both ways (50 packets/s each way per
// call, as G.711 at 20 ms). The test peers (50 pion "browsers", 50 RTP
// "carriers") run in a child process so that getrusage counts the relay only.
//
//	go test -run '^$' -bench Relay50Calls -benchtime 1x ./internal/media/
//
// SIPDESK_MEDIA_BENCH_SECONDS sets the measured window (default 5).
func BenchmarkRelay50Calls(b *testing.B) {
	const calls = 50
	window := 5 * time.Second
	if s := os.Getenv("SIPDESK_MEDIA_BENCH_SECONDS"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		window = time.Duration(n) * time.Second
	}
	for range b.N {
		runRelayMeasurement(b, calls, window)
	}
}

type peerMsg struct {
	Op      string `json:"op"`
	ID      int    `json:"id"`
	SDP     string `json:"sdp,omitempty"`
	Err     string `json:"err,omitempty"`
	Browser uint64 `json:"browser,omitempty"` // packets the browsers received intact
	Carrier uint64 `json:"carrier,omitempty"`
	Bad     uint64 `json:"bad,omitempty"`
}

func cpuTime() time.Duration {
	u, s := cpuUserSys()
	return u + s
}

func cpuUserSys() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

func runRelayMeasurement(b *testing.B, calls int, window time.Duration) {
	r := newTestRelay(b, 30000, 30999)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SIPDESK_MEDIA_PEERS=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	out := bufio.NewScanner(outPipe)
	out.Buffer(make([]byte, 1<<20), 1<<20)
	ask := func(m peerMsg) peerMsg {
		b.Helper()
		line, _ := json.Marshal(m)
		if _, err := fmt.Fprintf(in, "%s\n", line); err != nil {
			b.Fatal(err)
		}
		for out.Scan() {
			if s, ok := strings.CutPrefix(out.Text(), "@@"); ok {
				var reply peerMsg
				if err := json.Unmarshal([]byte(s), &reply); err != nil {
					b.Fatal(err)
				}
				if reply.Err != "" {
					b.Fatalf("peer %s %d: %s", m.Op, m.ID, reply.Err)
				}
				return reply
			}
		}
		b.Fatalf("peer process ended: %v", out.Err())
		return peerMsg{}
	}

	cpu0, t0 := cpuTime(), time.Now()
	bridges := make([]*Bridge, 0, calls)
	defer func() {
		for _, br := range bridges {
			br.Close()
		}
	}()
	for i := range calls {
		offer := ask(peerMsg{Op: "offer", ID: i})
		br, carrierOffer, err := r.FromBrowser(context.Background(), offer.SDP)
		if err != nil {
			b.Fatal(err)
		}
		bridges = append(bridges, br)
		ans := ask(peerMsg{Op: "carrier", ID: i, SDP: carrierOffer})
		browserAnswer, err := br.CarrierAnswered(ans.SDP)
		if err != nil {
			b.Fatal(err)
		}
		ask(peerMsg{Op: "answer", ID: i, SDP: browserAnswer})
	}
	setupCPU, setupWall := cpuTime()-cpu0, time.Since(t0)

	ask(peerMsg{Op: "start"})
	time.Sleep(time.Second) // ICE and DTLS done, media steady
	var c0, b0 uint64
	for _, br := range bridges {
		tc, tb := br.Stats()
		c0, b0 = c0+tc, b0+tb
	}
	u1, s1 := cpuUserSys()
	t1 := time.Now()
	time.Sleep(window)
	u2, s2 := cpuUserSys()
	wall := time.Since(t1)
	cpu := u2 - u1 + s2 - s1
	var c1, b1 uint64
	for _, br := range bridges {
		tc, tb := br.Stats()
		c1, b1 = c1+tc, b1+tb
	}
	res := ask(peerMsg{Op: "stop"})

	callSeconds := float64(calls) * wall.Seconds()
	usPerCallSec := float64(cpu.Microseconds()) / callSeconds
	pps := float64(c1-c0+b1-b0) / wall.Seconds()
	b.ReportMetric(usPerCallSec, "µs-cpu/call-s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(c1-c0+b1-b0), "ns-cpu/pkt")
	b.ReportMetric(float64(setupCPU.Microseconds())/float64(calls), "µs-cpu/setup")
	b.Logf("%d calls, %v window: relay CPU %v (%.1f%% of one core), %.0f µs CPU per call-second, %.0f packets/s relayed (%.0f ns CPU each); setup %v CPU for %d calls in %v",
		calls, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), usPerCallSec, pps,
		float64(cpu.Nanoseconds())/float64(c1-c0+b1-b0), setupCPU.Round(time.Millisecond), calls, setupWall.Round(time.Millisecond))
	b.Logf("of which user %v, system %v (UDP send on loopback includes the receiver's kernel work)", (u2 - u1).Round(time.Millisecond), (s2 - s1).Round(time.Millisecond))
	b.Logf("peers received intact: browsers %d, carriers %d, damaged %d", res.Browser, res.Carrier, res.Bad)
	expect := uint64(float64(calls) * 45 * wall.Seconds()) // 50/s nominal, allow for a busy 2-core box
	if c1-c0 < expect || b1-b0 < expect || res.Bad != 0 {
		b.Errorf("relay fell behind or damaged audio: to carrier %d, to browser %d in window (want ≥ %d each), damaged %d", c1-c0, b1-b0, expect, res.Bad)
	}
}

// TestPeerProcess is the child of BenchmarkRelay50Calls: it runs the browser
// and carrier peers and answers the parent's JSON lines on stdin.
func TestPeerProcess(t *testing.T) {
	if os.Getenv("SIPDESK_MEDIA_PEERS") == "" {
		t.Skip("helper process of BenchmarkRelay50Calls")
	}
	browsers := map[int]*testBrowser{}
	carriers := map[int]*testCarrier{}
	stop := make(chan struct{})
	reply := func(m peerMsg, err error) {
		if err != nil {
			m.Err = err.Error()
		}
		line, _ := json.Marshal(m)
		fmt.Printf("@@%s\n", line)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var m peerMsg
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			reply(m, err)
			continue
		}
		switch m.Op {
		case "offer":
			br, err := newTestBrowser(chromeLike)
			if err != nil {
				reply(m, err)
				continue
			}
			browsers[m.ID] = br
			m.SDP, err = br.offer()
			reply(m, err)
		case "carrier":
			ca, err := newTestCarrier()
			if err != nil {
				reply(m, err)
				continue
			}
			carriers[m.ID] = ca
			err = ca.target(m.SDP)
			m.SDP = ca.sdp(0, 101)
			reply(m, err)
		case "answer":
			reply(peerMsg{Op: m.Op, ID: m.ID}, browsers[m.ID].setAnswer(m.SDP))
		case "start":
			for i, br := range browsers {
				br.send(stop)
				carriers[i].send(stop, 0)
			}
			reply(m, nil)
		case "stop":
			close(stop)
			time.Sleep(100 * time.Millisecond)
			for i, br := range browsers {
				m.Browser += br.rx.packets.Load()
				m.Carrier += carriers[i].rx.packets.Load()
				m.Bad += br.rx.bad.Load() + carriers[i].rx.bad.Load()
			}
			reply(m, nil)
			for i, br := range browsers {
				br.close()
				carriers[i].close()
			}
			io.Copy(io.Discard, os.Stdin)
			return
		default:
			reply(m, fmt.Errorf("unknown op %q", m.Op))
		}
	}
}
