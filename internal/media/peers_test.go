package media

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Test peers: real pion and real UDP, on 127.0.0.1 only.

const payloadLen = 160 // 20 ms of G.711

// fillPayload writes a self-checking payload for packet number n.
func fillPayload(p []byte, n uint32) {
	binary.BigEndian.PutUint32(p, n)
	for i := 4; i < len(p); i++ {
		p[i] = byte(n*7 + uint32(i))
	}
}

func payloadIntact(p []byte) bool {
	if len(p) != payloadLen {
		return false
	}
	n := binary.BigEndian.Uint32(p)
	for i := 4; i < len(p); i++ {
		if p[i] != byte(n*7+uint32(i)) {
			return false
		}
	}
	return true
}

// counter counts received packets and damaged payloads.
type counter struct {
	packets atomic.Uint64
	bad     atomic.Uint64
	pt      atomic.Int32
}

func (c *counter) got(pt uint8, payload []byte) {
	c.pt.Store(int32(pt))
	if payloadIntact(payload) {
		c.packets.Add(1)
	} else {
		c.bad.Add(1)
	}
}

// testBrowser is a WebRTC peer standing in for Chromium.
type testBrowser struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	rx    counter
	wg    sync.WaitGroup
}

type browserCodecs struct {
	opus, pcmu, pcma, dtmf bool
	send                   string // MIME type of the microphone track; PCMU if empty
}

var chromeLike = browserCodecs{opus: true, pcmu: true, pcma: true, dtmf: true}

func newTestBrowser(codecs browserCodecs) (*testBrowser, error) {
	me := &webrtc.MediaEngine{}
	reg := func(mime string, rate uint32, ch uint16, fmtp string, pt uint8) error {
		return me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: rate, Channels: ch, SDPFmtpLine: fmtp},
			PayloadType:        webrtc.PayloadType(pt),
		}, webrtc.RTPCodecTypeAudio)
	}
	var errs []error
	if codecs.opus { // first, as Chromium does
		errs = append(errs, reg(webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1", 111))
	}
	if codecs.pcmu {
		errs = append(errs, reg(webrtc.MimeTypePCMU, 8000, 1, "", 0))
	}
	if codecs.pcma {
		errs = append(errs, reg(webrtc.MimeTypePCMA, 8000, 1, "", 8))
	}
	if codecs.dtmf {
		errs = append(errs, reg(mimeTelephoneEvent, 8000, 0, "", 126))
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	b := &testBrowser{pc: pc}
	mime := codecs.send
	switch {
	case mime != "":
	case codecs.pcmu:
		mime = webrtc.MimeTypePCMU
	default:
		mime = webrtc.MimeTypeOpus
	}
	b.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 8000}, "mic", "browser")
	if err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			b.rx.got(p.PayloadType, p.Payload)
		}
	})
	return b, nil
}

func (b *testBrowser) gather(d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("test browser: gathering timed out")
	}
	return b.pc.LocalDescription().SDP, nil
}

// offer makes the browser's INVITE SDP.
func (b *testBrowser) offer() (string, error) {
	if _, err := b.pc.AddTrack(b.track); err != nil {
		return "", err
	}
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	return b.gather(o)
}

func (b *testBrowser) setAnswer(sdp string) error {
	return b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

// answer answers an INVITE from the relay.
func (b *testBrowser) answer(offer string) (string, error) {
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	if _, err := b.pc.AddTrack(b.track); err != nil {
		return "", err
	}
	a, err := b.pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	return b.gather(a)
}

// send writes 20 ms packets until stop is closed.
func (b *testBrowser) send(stop <-chan struct{}) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0x1234}, Payload: make([]byte, payloadLen)}
		for n := uint32(0); ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber = uint16(n)
			pkt.Timestamp = n * 160
			fillPayload(pkt.Payload, n)
			if err := b.track.WriteRTP(pkt); err != nil {
				return
			}
		}
	}()
}

func (b *testBrowser) close() {
	b.pc.GracefulClose()
	b.wg.Wait()
}

// testCarrier is a plain RTP peer standing in for a carrier's media server.
type testCarrier struct {
	conn *net.UDPConn
	rx   counter
	dest atomic.Pointer[netip.AddrPort]
	wg   sync.WaitGroup
}

func newTestCarrier() (*testCarrier, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	c := &testCarrier{conn: conn}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) == nil {
				c.rx.got(p.PayloadType, p.Payload)
			}
		}
	}()
	return c, nil
}

func (c *testCarrier) addr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// sdp describes the carrier with the given payload types (0 PCMU, 8 PCMA, 101 DTMF).
func (c *testCarrier) sdp(pts ...uint8) string {
	var codecs []codecEntry
	for _, pt := range pts {
		k := map[uint8]codecKind{0: kindPCMU, 8: kindPCMA, 101: kindDTMF}[pt]
		codecs = append(codecs, codecEntry{k, pt})
	}
	return plainSDP(c.addr().Addr(), c.addr().Port(), 42, codecs)
}

// target takes the relay's plain SDP and sends there.
func (c *testCarrier) target(relaySDP string) error {
	d, err := parseAudio(relaySDP)
	if err != nil {
		return err
	}
	a := d.addr
	c.dest.Store(&a)
	return nil
}

func (c *testCarrier) send(stop <-chan struct{}, pt uint8) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0xcafe, PayloadType: pt}, Payload: make([]byte, payloadLen)}
		buf := make([]byte, 1500)
		for n := uint32(0); ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber = uint16(n + 1000)
			pkt.Timestamp = n*160 + 99
			fillPayload(pkt.Payload, n)
			m, _ := pkt.MarshalTo(buf)
			if d := c.dest.Load(); d != nil {
				if _, err := c.conn.WriteToUDPAddrPort(buf[:m], *d); err != nil && strings.Contains(err.Error(), "closed") {
					return
				}
			}
		}
	}()
}

func (c *testCarrier) close() {
	c.conn.Close()
	c.wg.Wait()
}
