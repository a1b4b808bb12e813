package media

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestChromiumBridge runs the relay against a real headless Chromium (fake
// microphone): an outbound then an inbound call, each with media both ways
// for 3 s, checked with the page's RTCPeerConnection stats and the Go
// carrier's counters. It needs /usr/bin/chromium and SIPDESK_MEDIA_CHROMIUM=1;
// run it in a network namespace with only loopback:
//
//	unshare -n sh -c 'ip link set lo up && SIPDESK_MEDIA_CHROMIUM=1 go test -run Chromium -v ./internal/media/'
func TestChromiumBridge(t *testing.T) {
	if os.Getenv("SIPDESK_MEDIA_CHROMIUM") == "" {
		t.Skip("set SIPDESK_MEDIA_CHROMIUM=1 to run against /usr/bin/chromium")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium")
	}
	r := newTestRelay(t, 20600, 20699)
	ca, err := newTestCarrier()
	if err != nil {
		t.Fatal(err)
	}
	defer ca.close()
	stop := make(chan struct{})
	defer close(stop)
	ca.send(stop, 0)

	var bridge *Bridge
	results := make(chan map[string]any, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, chromiumPage)
	})
	fail := func(w http.ResponseWriter, err error) {
		t.Error(err)
		http.Error(w, err.Error(), 500)
	}
	mux.HandleFunc("POST /outbound", func(w http.ResponseWriter, req *http.Request) {
		offer, _ := io.ReadAll(req.Body)
		t.Logf("Chromium offer codecs: %s", mLine(string(offer)))
		b, carrierOffer, err := r.FromBrowser(req.Context(), loopbackOnly(string(offer)))
		if err != nil {
			fail(w, err)
			return
		}
		bridge = b
		ca.target(carrierOffer)
		answer, err := b.CarrierAnswered(ca.sdp(0, 101))
		if err != nil {
			fail(w, err)
			return
		}
		io.WriteString(w, answer)
	})
	mux.HandleFunc("GET /inbound", func(w http.ResponseWriter, req *http.Request) {
		b, offer, err := r.ToBrowser(req.Context(), ca.sdp(0, 8, 101))
		if err != nil {
			fail(w, err)
			return
		}
		bridge = b
		io.WriteString(w, offer)
	})
	mux.HandleFunc("POST /inbound", func(w http.ResponseWriter, req *http.Request) {
		answer, _ := io.ReadAll(req.Body)
		t.Logf("Chromium answer codecs: %s", mLine(string(answer)))
		carrierAnswer, err := bridge.BrowserAnswered(loopbackOnly(string(answer)))
		if err != nil {
			fail(w, err)
			return
		}
		ca.target(carrierAnswer)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, req *http.Request) {
		var res map[string]any
		json.NewDecoder(req.Body).Decode(&res)
		rx := ca.rx.packets.Load() + ca.rx.bad.Load()
		toC, toB := bridge.Stats()
		res["carrierReceived"], res["relayToCarrier"], res["relayToBrowser"] = rx, toC, toB
		bridge.Close()
		results <- res
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--allow-loopback-in-peer-connection", "--user-data-dir="+t.TempDir(),
		"--remote-debugging-port=0", "http://"+ln.Addr().String()+"/")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for _, dir := range []string{"outbound", "inbound"} {
		select {
		case res := <-results:
			t.Logf("%s: %v", dir, res)
			if res["error"] != nil {
				t.Fatalf("%s: page error %v", dir, res["error"])
			}
			if n, _ := res["packetsReceived"].(float64); n < 100 {
				t.Errorf("%s: Chromium received %v packets", dir, res["packetsReceived"])
			}
			if n, _ := res["carrierReceived"].(uint64); n < 100 {
				t.Errorf("%s: carrier received %v packets", dir, res["carrierReceived"])
			}
			ca.rx.packets.Store(0)
			ca.rx.bad.Store(0)
		case <-ctx.Done():
			t.Fatalf("%s: no result from Chromium", dir)
		}
	}
}

func mLine(sdp string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "m=audio") {
			return strings.TrimSpace(l)
		}
	}
	return "none"
}

// loopbackOnly drops Chromium's candidates on other interfaces: tests send to 127.0.0.1 only.
func loopbackOnly(sdp string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(sdp, "\n") {
		if strings.HasPrefix(l, "a=candidate:") && !strings.Contains(l, " 127.0.0.1 ") {
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

const chromiumPage = `<!doctype html><script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise(r => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()));
}
async function stats(pc) {
  const s = {};
  (await pc.getStats()).forEach(v => {
    if (v.type === 'inbound-rtp') { s.packetsReceived = v.packetsReceived; s.codecIn = v.codecId; }
    if (v.type === 'outbound-rtp') s.packetsSent = v.packetsSent;
    if (v.type === 'codec') s['codec_' + v.id] = v.mimeType;
  });
  s.state = pc.connectionState;
  return s;
}
async function call(dir) {
  const pc = new RTCPeerConnection();
  const mic = await navigator.mediaDevices.getUserMedia({audio: true});
  if (dir === 'outbound') {
    pc.addTrack(mic.getTracks()[0], mic);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch('/outbound', {method: 'POST', body: pc.localDescription.sdp});
    if (!r.ok) throw new Error(await r.text());
    await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  } else {
    const offer = await (await fetch('/inbound')).text();
    await pc.setRemoteDescription({type: 'offer', sdp: offer});
    pc.addTrack(mic.getTracks()[0], mic);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    const r = await fetch('/inbound', {method: 'POST', body: pc.localDescription.sdp});
    if (!r.ok) throw new Error(await r.text());
  }
  await sleep(4000);
  const s = await stats(pc);
  pc.close();
  return s;
}
(async () => {
  for (const dir of ['outbound', 'inbound']) {
    let res;
    try { res = await call(dir); } catch (e) { res = {error: String(e)}; }
    await fetch('/result', {method: 'POST', body: JSON.stringify(res)});
  }
})();
</script>`
