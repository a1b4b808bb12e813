package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newTestRelay(t testing.TB, lo, hi uint16) *Relay {
	t.Helper()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	r, err := NewRelay(Config{PortMin: lo, PortMax: hi, PublicIP: loopback, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitGoroutines waits until the goroutine count is back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func assertPortFree(t *testing.T, port uint16) {
	t.Helper()
	for _, p := range []uint16{port, port + 1} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, p)))
		if err != nil {
			t.Fatalf("port %d still bound after Close: %v", p, err)
		}
		c.Close()
	}
}

func inRange(t *testing.T, sdp string, lo, hi uint16) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(sdp, "\n") {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		f := strings.Fields(line)
		var port int
		fmt.Sscan(f[5], &port)
		if f[4] != "127.0.0.1" || port < int(lo) || port > int(hi) {
			t.Errorf("candidate outside 127.0.0.1:%d-%d: %s", lo, hi, line)
		}
		n++
	}
	if n == 0 {
		t.Errorf("no candidate in SDP:\n%s", sdp)
	}
}

const mediaTime = 3 * time.Second

func checkFlow(t *testing.T, br *testBrowser, ca *testCarrier, b *Bridge) {
	t.Helper()
	toCarrier, toBrowser := b.Stats()
	gotC, gotB := ca.rx.packets.Load(), br.rx.packets.Load()
	t.Logf("relay: %d to carrier, %d to browser; received: carrier %d (bad %d), browser %d (bad %d)",
		toCarrier, toBrowser, gotC, ca.rx.bad.Load(), gotB, br.rx.bad.Load())
	if gotC <= 100 || gotB <= 100 {
		t.Errorf("too few packets: carrier got %d, browser got %d (want > 100 each)", gotC, gotB)
	}
	if ca.rx.bad.Load() != 0 || br.rx.bad.Load() != 0 {
		t.Errorf("damaged payloads: carrier %d, browser %d", ca.rx.bad.Load(), br.rx.bad.Load())
	}
	if toCarrier < gotC || toBrowser < gotB {
		t.Errorf("stats %d/%d lower than received %d/%d", toCarrier, toBrowser, gotC, gotB)
	}
}

func TestOutboundCallRelaysBothWays(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newTestRelay(t, 20000, 20099)

	br, err := newTestBrowser(chromeLike)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := br.offer()
	if err != nil {
		t.Fatal(err)
	}
	b, carrierOffer, err := r.FromBrowser(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(carrierOffer, "m=audio ") || !strings.Contains(carrierOffer, "RTP/AVP 0 8 101") ||
		!strings.Contains(carrierOffer, "c=IN IP4 127.0.0.1") {
		t.Fatalf("carrier offer:\n%s", carrierOffer)
	}
	port := b.LocalPort()
	if port < 20000 || port > 20099 || port%2 != 0 {
		t.Fatalf("RTP port %d not an even port in range", port)
	}

	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.target(carrierOffer); err != nil {
		t.Fatal(err)
	}
	browserAnswer, err := b.CarrierAnswered(ca.sdp(0, 101))
	if err != nil {
		t.Fatal(err)
	}
	inRange(t, browserAnswer, 20000, 20099)
	if strings.Contains(browserAnswer, "PCMA") || !strings.Contains(browserAnswer, "PCMU/8000") {
		t.Errorf("browser answer should carry PCMU only (what the carrier took):\n%s", browserAnswer)
	}
	// a 200 after a 183: same answer
	if again, err := b.CarrierAnswered(ca.sdp(0, 101)); err != nil || again != browserAnswer {
		t.Errorf("second CarrierAnswered: %v, same answer %v", err, again == browserAnswer)
	}
	if err := br.setAnswer(browserAnswer); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	br.send(stop)
	ca.send(stop, 0)
	time.Sleep(mediaTime)
	close(stop)
	time.Sleep(100 * time.Millisecond)
	checkFlow(t, br, ca, b)
	if pt := ca.rx.pt.Load(); pt != 0 {
		t.Errorf("carrier received PT %d, want 0 (PCMU)", pt)
	}

	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.CarrierAnswered(ca.sdp(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("CarrierAnswered after Close: %v", err)
	}
	assertPortFree(t, port)
	br.close()
	ca.close()
	waitGoroutines(t, base)
}

func TestInboundCallRelaysBothWays(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newTestRelay(t, 20100, 20199)

	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	// The carrier prefers PCMA: the browser is offered PCMA first and the
	// whole call runs on PCMA.
	b, browserOffer, err := r.ToBrowser(context.Background(), ca.sdp(8, 0, 101))
	if err != nil {
		t.Fatal(err)
	}
	inRange(t, browserOffer, 20100, 20199)
	if !strings.Contains(browserOffer, "UDP/TLS/RTP/SAVPF 8 0 101") {
		t.Errorf("browser offer should list PCMA, PCMU, telephone-event:\n%s", browserOffer)
	}
	// Like Chromium, the browser sends the first codec of its answer (PCMA).
	pcmaFirst := chromeLike
	pcmaFirst.send = webrtc.MimeTypePCMA
	br, err := newTestBrowser(pcmaFirst)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := br.answer(browserOffer)
	if err != nil {
		t.Fatal(err)
	}
	carrierAnswer, err := b.BrowserAnswered(answer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(carrierAnswer, "RTP/AVP 8 101") {
		t.Errorf("carrier answer:\n%s", carrierAnswer)
	}
	if _, err := b.BrowserAnswered(answer); err == nil {
		t.Error("second BrowserAnswered accepted")
	}
	if err := ca.target(carrierAnswer); err != nil {
		t.Fatal(err)
	}
	closedBy := make(chan error, 1)
	b.OnClose(func(err error) { closedBy <- err })

	stop := make(chan struct{})
	br.send(stop)
	ca.send(stop, 8)
	time.Sleep(mediaTime)
	close(stop)
	time.Sleep(100 * time.Millisecond)
	checkFlow(t, br, ca, b)
	if pt := ca.rx.pt.Load(); pt != 8 {
		t.Errorf("carrier received PT %d, want 8 (PCMA)", pt)
	}

	// The browser hangs up its PeerConnection: the bridge closes itself and
	// tells the edge.
	port := b.LocalPort()
	br.close()
	select {
	case err := <-closedBy:
		t.Logf("OnClose: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("bridge did not close after the browser closed")
	}
	b.Close()
	assertPortFree(t, port)
	ca.close()
	waitGoroutines(t, base)
}

func TestPortRangeAndExhaustion(t *testing.T) {
	base := runtime.NumGoroutine()
	// three ports: one call's RTP/RTCP pair and its ICE port
	r := newTestRelay(t, 20200, 20202)
	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	b, offer, err := r.ToBrowser(context.Background(), ca.sdp(0))
	if err != nil {
		t.Fatal(err)
	}
	inRange(t, offer, 20200, 20202)
	if b.LocalPort() != 20200 {
		t.Errorf("RTP port %d, want 20200", b.LocalPort())
	}
	_, _, err = r.ToBrowser(context.Background(), ca.sdp(0))
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("second call: %v, want ErrNoPorts", err)
	}
	t.Logf("exhausted: %v", err)
	b.Close()

	// RTP pair free but the only ICE port taken: a clear error too.
	hold, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 20202})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.ToBrowser(context.Background(), ca.sdp(0))
	hold.Close()
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("no ICE port: %v, want ErrNoPorts", err)
	}
	t.Logf("no ICE port: %v", err)
	assertPortFree(t, 20200)
	ca.close()
	waitGoroutines(t, base)
}

func TestNewRelayRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no ports":     {PublicIP: loopback},
		"reversed":     {PortMin: 20010, PortMax: 20000, PublicIP: loopback},
		"too small":    {PortMin: 20000, PortMax: 20001, PublicIP: loopback},
		"no public IP": {PortMin: 20000, PortMax: 20999},
	} {
		if _, err := NewRelay(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOpusOnlyOfferRefused(t *testing.T) {
	r := newTestRelay(t, 20300, 20309)
	br, err := newTestBrowser(browserCodecs{opus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer br.close()
	offer, err := br.offer()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.FromBrowser(context.Background(), offer)
	if !errors.Is(err, ErrNoCommonCodec) || !strings.Contains(err.Error(), "opus") {
		t.Fatalf("err = %v, want ErrNoCommonCodec naming opus", err)
	}
	t.Log(err)
	_, _, err = r.ToBrowser(context.Background(), strings.Replace(plainSDP(loopback, 4000, 1, nil), "RTP/AVP", "RTP/AVP 18\r\na=rtpmap:18 G729/8000", 1))
	if !errors.Is(err, ErrNoCommonCodec) || !strings.Contains(err.Error(), "G729") {
		t.Fatalf("G.729-only carrier: %v", err)
	}
	assertPortFree(t, 20300)
}

var malformedSDPs = map[string]string{
	"empty":         "",
	"garbage":       "hello world",
	"binary":        "\x00\xff\xfe=\r\n",
	"no audio":      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n",
	"port 0":        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
	"bad port":      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
	"host name":     "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 carrier.example\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	"bad PT":        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 300\r\n",
	"truncated":     "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio",
	"no codec":      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n",
	"webrtc no ice": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n",
}

func TestMalformedSDPsAreErrors(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newTestRelay(t, 20400, 20449)
	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	defer ca.close()
	for name, s := range malformedSDPs {
		t.Run(name, func(t *testing.T) {
			if b, _, err := r.FromBrowser(context.Background(), s); err == nil {
				b.Close()
				t.Error("FromBrowser accepted it")
			}
			if b, _, err := r.ToBrowser(context.Background(), s); err == nil {
				b.Close()
				t.Error("ToBrowser accepted it")
			}
		})
	}
	// answers
	br, err := newTestBrowser(chromeLike)
	if err != nil {
		t.Fatal(err)
	}
	defer br.close()
	offer, err := br.offer()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := r.FromBrowser(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, _, err := r.ToBrowser(context.Background(), ca.sdp(0))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for name, s := range malformedSDPs {
		if _, err := out.CarrierAnswered(s); err == nil {
			t.Errorf("CarrierAnswered accepted %s", name)
		}
		if _, err := in.BrowserAnswered(s); err == nil {
			t.Errorf("BrowserAnswered accepted %s", name)
		}
	}
	if _, err := out.BrowserAnswered(offer); err == nil {
		t.Error("BrowserAnswered on an outbound bridge accepted")
	}
	if _, err := out.CarrierAnswered(ca.sdp(18)); !errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("carrier answering an unoffered codec: %v", err)
	}
	out.Close()
	in.Close()
	br.close()
	ca.close()
	waitGoroutines(t, base)
}

func FuzzParseAudio(f *testing.F) {
	for _, s := range malformedSDPs {
		f.Add(s)
	}
	f.Add(plainSDP(loopback, 4000, 1, []codecEntry{{kindPCMU, 0}, {kindDTMF, 101}}))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseAudio(s)
		if err == nil && d == nil {
			t.Fatal("nil description without error")
		}
	})
}

func TestG711Transcoding(t *testing.T) {
	// A-law and µ-law agree on every value to within their step size.
	for i := range 256 {
		u := byte(i)
		a := ulawToAlaw[u]
		lu, la := ulawToLinear(u), alawToLinear(a)
		step := max(abs(lu)/16, 16)
		if abs(lu-la) > step {
			t.Errorf("µ %#02x=%d -> A %#02x=%d", u, lu, a, la)
		}
		if back := alawToUlaw[a]; abs(ulawToLinear(back)-lu) > step {
			t.Errorf("µ %#02x round trip gives %#02x", u, back)
		}
	}
	// silence stays silence
	if ulawToAlaw[0xFF] != 0xD5 || abs(ulawToLinear(alawToUlaw[0xD5])) > 8 {
		t.Errorf("silence: µ 0xFF -> A %#02x, A 0xD5 -> µ %#02x", ulawToAlaw[0xFF], alawToUlaw[0xD5])
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// The carrier's SDP names an address it does not send from (NAT, a media
// server pool): after its first packet the relay sends where it came from,
// and ignores other sources.
func TestSymmetricRTPLatchesCarrierSource(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newTestRelay(t, 20500, 20549)
	br, err := newTestBrowser(chromeLike)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := br.offer()
	if err != nil {
		t.Fatal(err)
	}
	b, carrierOffer, err := r.FromBrowser(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.target(carrierOffer); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(ca.sdp(0), fmt.Sprintf("m=audio %d ", ca.addr().Port()), "m=audio 9 ", 1)
	answer, err := b.CarrierAnswered(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := br.setAnswer(answer); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	br.send(stop)
	ca.send(stop, 0)
	time.Sleep(1500 * time.Millisecond)

	// an intruder's packets are not relayed to the browser
	intruder, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	if err := intruder.target(carrierOffer); err != nil {
		t.Fatal(err)
	}
	_, before := b.Stats()
	stopIntruder := make(chan struct{})
	intruder.send(stopIntruder, 0)
	time.Sleep(500 * time.Millisecond)
	close(stopIntruder)
	_, after := b.Stats()
	close(stop)
	if got := ca.rx.packets.Load(); got < 40 {
		t.Errorf("carrier got %d packets at its real source address, want ≥ 40", got)
	}
	if after-before > 30 { // the carrier's own ~25 packets in 0.5 s
		t.Errorf("intruder's packets relayed: %d in 0.5 s", after-before)
	}
	b.Close()
	br.close()
	ca.close()
	intruder.close()
	waitGoroutines(t, base)
}

func TestParsePortRange(t *testing.T) {
	lo, hi, err := ParsePortRange("20000-20999")
	if err != nil || lo != 20000 || hi != 20999 {
		t.Errorf("got %d-%d, %v", lo, hi, err)
	}
	for _, s := range []string{"", "20000", "20999-20000", "0-10", "20000-70000", "a-b", "20000-20001"} {
		if _, _, err := ParsePortRange(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
