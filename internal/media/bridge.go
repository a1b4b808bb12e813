package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Bridge is one call's media: a PeerConnection toward the browser and an
// RTP/RTCP port pair toward the carrier. Close it when the call ends.
type Bridge struct {
	r        *Relay
	log      *slog.Logger
	outbound bool // browser called out (FromBrowser)

	pc        *webrtc.PeerConnection
	conn      *net.UDPConn // RTP toward the carrier (symmetric: we send from it too)
	rtcp      *net.UDPConn // held, not read
	port      uint16
	track     *browserTrack
	transc    *webrtc.RTPTransceiver
	sessID    uint64
	carrier   *audioDesc // the carrier's offer (inbound) or answer (outbound)
	browser   *audioDesc // the browser's offer (outbound) or answer (inbound)
	answerSDP string     // the answer already produced (CarrierAnswered may be called for 183 and 200)

	route     atomic.Pointer[route]
	dest      atomic.Pointer[netip.AddrPort] // where RTP to the carrier goes
	latched   atomic.Bool                    // dest learnt from the carrier's first packet
	toCarrier atomic.Uint64
	toBrowser atomic.Uint64

	mu           sync.Mutex
	closed       bool
	answered     bool
	onClose      func(reason error)
	selfReason   error // set when the bridge closed itself
	wg           sync.WaitGroup
	done         chan struct{}
	connectTimer *time.Timer
}

// route says how packets are mapped once both legs are negotiated.
type route struct {
	browserKinds [128]codecKind // browser PT -> kind
	carrierKinds [128]codecKind // carrier PT -> kind
	carrierPT    [numKinds]int16
	carrierAudio codecKind // the law the carrier expects
}

func newRoute(browser, carrier *audioDesc, carrierAudio codecKind) *route {
	rt := &route{browserKinds: browser.kinds(), carrierKinds: carrier.kinds(), carrierAudio: carrierAudio}
	for k := range rt.carrierPT {
		rt.carrierPT[k] = -1
	}
	for _, c := range carrier.codecs {
		if rt.carrierPT[c.kind] < 0 {
			rt.carrierPT[c.kind] = int16(c.pt)
		}
	}
	return rt
}

// FromBrowser starts an outbound call: the browser's WebRTC offer (from its
// INVITE) in, a plain RTP/AVP offer for the carrier's INVITE out. The answer
// for the browser comes from CarrierAnswered.
func (r *Relay) FromBrowser(ctx context.Context, browserOffer string) (*Bridge, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	bd, err := parseAudio(browserOffer)
	if err != nil {
		return nil, "", fmt.Errorf("media: browser offer: %w", err)
	}
	if !strings.Contains(bd.proto, "SAVPF") && !strings.Contains(bd.proto, "SAVP") {
		return nil, "", fmt.Errorf("media: browser offer: audio is %s, not a WebRTC (UDP/TLS/RTP/SAVPF) stream", bd.proto)
	}
	var audio []codecKind
	for _, k := range []codecKind{kindPCMU, kindPCMA} { // PCMU first, whatever the browser prefers
		if _, ok := bd.pt(k); ok {
			audio = append(audio, k)
		}
	}
	if len(audio) == 0 {
		return nil, "", fmt.Errorf("%w: the browser offered only %s", ErrNoCommonCodec, describeOthers(bd.others))
	}
	_, dtmf := bd.pt(kindDTMF)

	b, err := r.newBridge(true, audio, dtmf)
	if err != nil {
		return nil, "", err
	}
	b.browser = bd
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: browserOffer}); err != nil {
		b.Close()
		return nil, "", fmt.Errorf("media: browser offer: %w", err)
	}
	sender, err := b.pc.AddTrack(b.track)
	if err != nil {
		b.Close()
		return nil, "", fmt.Errorf("media: add track: %w", err)
	}
	for _, t := range b.pc.GetTransceivers() {
		if t.Sender() == sender {
			b.transc = t
		}
	}
	if b.transc == nil {
		b.Close()
		return nil, "", errors.New("media: no audio transceiver for the browser offer")
	}
	b.drainRTCP(sender)

	offer := make([]codecEntry, 0, 3)
	for _, k := range audio {
		offer = append(offer, codecEntry{k, carrierPT[k]})
	}
	if dtmf {
		offer = append(offer, codecEntry{kindDTMF, carrierPT[kindDTMF]})
	}
	b.log.Debug("media: outbound bridge")
	return b, plainSDP(r.cfg.PublicIP, b.port, b.sessID, offer), nil
}

// CarrierAnswered takes the carrier's SDP (from its 183 or 200), points RTP at
// the carrier and returns the complete WebRTC answer for the browser (with
// its ICE candidates: no trickle). Calling it again (183 then 200) updates the
// carrier's address and returns the same browser answer.
func (b *Bridge) CarrierAnswered(carrierAnswer string) (string, error) {
	if !b.outbound {
		return "", errors.New("media: CarrierAnswered on an inbound bridge")
	}
	cd, err := parseAudio(carrierAnswer)
	if err != nil {
		return "", fmt.Errorf("media: carrier answer: %w", err)
	}
	if cd.proto != "RTP/AVP" {
		return "", fmt.Errorf("media: carrier answer: audio is %s, RTP/AVP was offered", cd.proto)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", ErrClosed
	}
	var chosen codecEntry
	found := false
	for _, c := range cd.codecs { // the carrier's first codec that we offered
		if _, ok := b.browser.pt(c.kind); ok && c.kind.audio() {
			chosen, found = c, true
			break
		}
	}
	if !found {
		return "", fmt.Errorf("%w: the carrier answered %s", ErrNoCommonCodec, describeOthers(cd.others))
	}
	if b.answered {
		// a later answer (200 after 183): same browser answer, new address and codec map
		b.carrier = cd
		b.route.Store(newRoute(b.browser, cd, chosen.kind))
		b.setDest(cd.addr)
		return b.answerSDP, nil
	}

	// Make the browser send what the carrier takes, so nothing is transcoded.
	prefs := []webrtc.RTPCodecParameters{codecParams(chosen.kind, b.browser)}
	if _, ok := cd.pt(kindDTMF); ok {
		if _, ok := b.browser.pt(kindDTMF); ok {
			prefs = append(prefs, codecParams(kindDTMF, b.browser))
		}
	}
	if err := b.transc.SetCodecPreferences(prefs); err != nil {
		return "", fmt.Errorf("media: codec preferences: %w", err)
	}
	answer, err := b.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("media: create answer: %w", err)
	}
	if err := b.setLocalAndGather(context.Background(), answer); err != nil {
		return "", err
	}
	b.carrier = cd
	b.route.Store(newRoute(b.browser, cd, chosen.kind))
	b.setDest(cd.addr)
	b.answered = true
	b.answerSDP = b.pc.LocalDescription().SDP
	b.armConnectTimer()
	return b.answerSDP, nil
}

// ToBrowser starts an inbound call: the carrier's plain offer (from its
// INVITE) in, a WebRTC offer for the INVITE to the browser out (complete with
// ICE candidates). The carrier's answer comes from BrowserAnswered.
func (r *Relay) ToBrowser(ctx context.Context, carrierOffer string) (*Bridge, string, error) {
	cd, err := parseAudio(carrierOffer)
	if err != nil {
		return nil, "", fmt.Errorf("media: carrier offer: %w", err)
	}
	if cd.proto != "RTP/AVP" {
		return nil, "", fmt.Errorf("media: carrier offer: audio is %s, only RTP/AVP is supported", cd.proto)
	}
	var audio []codecKind // the carrier's order
	for _, c := range cd.codecs {
		if c.kind.audio() {
			audio = append(audio, c.kind)
		}
	}
	if len(audio) == 0 {
		return nil, "", fmt.Errorf("%w: the carrier offered only %s", ErrNoCommonCodec, describeOthers(cd.others))
	}
	_, dtmf := cd.pt(kindDTMF)

	b, err := r.newBridge(false, audio, dtmf)
	if err != nil {
		return nil, "", err
	}
	b.carrier = cd
	b.setDest(cd.addr)
	sender, err := b.pc.AddTrack(b.track)
	if err != nil {
		b.Close()
		return nil, "", fmt.Errorf("media: add track: %w", err)
	}
	b.drainRTCP(sender)
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.Close()
		return nil, "", fmt.Errorf("media: create offer: %w", err)
	}
	b.mu.Lock()
	err = b.setLocalAndGather(ctx, offer)
	b.mu.Unlock()
	if err != nil {
		b.Close()
		return nil, "", err
	}
	b.log.Debug("media: inbound bridge")
	return b, b.pc.LocalDescription().SDP, nil
}

// BrowserAnswered takes the browser's answer (from its 200) and returns the
// plain answer for the carrier's 200: the codec the browser chose, our RTP
// address.
func (b *Bridge) BrowserAnswered(browserAnswer string) (string, error) {
	if b.outbound {
		return "", errors.New("media: BrowserAnswered on an outbound bridge")
	}
	bd, err := parseAudio(browserAnswer)
	if err != nil {
		return "", fmt.Errorf("media: browser answer: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return "", ErrClosed
	}
	if b.answered {
		return "", errors.New("media: browser already answered")
	}
	chosen, ok := bd.firstAudio()
	if !ok {
		return "", fmt.Errorf("%w: the browser answered %s", ErrNoCommonCodec, describeOthers(bd.others))
	}
	cpt, ok := b.carrier.pt(chosen.kind)
	if !ok {
		return "", fmt.Errorf("%w: the browser answered %s, which the carrier did not offer", ErrNoCommonCodec, chosen.kind)
	}
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: browserAnswer}); err != nil {
		return "", fmt.Errorf("media: browser answer: %w", err)
	}
	answer := []codecEntry{{chosen.kind, cpt}}
	if dpt, ok := b.carrier.pt(kindDTMF); ok {
		if _, ok := bd.pt(kindDTMF); ok {
			answer = append(answer, codecEntry{kindDTMF, dpt})
		}
	}
	b.browser = bd
	b.route.Store(newRoute(bd, b.carrier, chosen.kind))
	b.answered = true
	b.armConnectTimer()
	return plainSDP(b.r.cfg.PublicIP, b.port, b.sessID, answer), nil
}

// OnClose registers fn, called once (in its own goroutine) if the bridge
// closes by itself: the browser's PeerConnection failed, was closed by the
// browser, or never connected. It is not called for Close. If the bridge has
// already closed itself, fn is called at once.
func (b *Bridge) OnClose(fn func(reason error)) {
	b.mu.Lock()
	b.onClose = fn
	reason := b.selfReason
	b.mu.Unlock()
	if reason != nil && fn != nil {
		go fn(reason)
	}
}

// Stats returns the packets relayed each way so far.
func (b *Bridge) Stats() (toCarrier, toBrowser uint64) {
	return b.toCarrier.Load(), b.toBrowser.Load()
}

// LocalPort is the RTP port offered to the carrier.
func (b *Bridge) LocalPort() uint16 { return b.port }

// Close frees the RTP ports and the PeerConnection and waits for the relay's
// goroutines to stop. It is idempotent.
func (b *Bridge) Close() error {
	return b.close(nil)
}

func (b *Bridge) close(reason error) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.selfReason = reason
	fn := b.onClose
	if b.connectTimer != nil {
		b.connectTimer.Stop()
	}
	close(b.done)
	b.mu.Unlock()

	err := b.pc.GracefulClose()
	b.conn.Close()
	b.rtcp.Close()
	b.wg.Wait()
	tc, tb := b.Stats()
	b.log.Info("media: bridge closed", "to_carrier", tc, "to_browser", tb, "reason", reason)
	if reason != nil && fn != nil {
		fn(reason)
	}
	return err
}

func (r *Relay) newBridge(outbound bool, audio []codecKind, dtmf bool) (*Bridge, error) {
	conn, rtcp, err := r.allocPair()
	if err != nil {
		return nil, err
	}
	pc, err := r.newPeerConnection(audio, dtmf)
	if err != nil {
		conn.Close()
		rtcp.Close()
		return nil, fmt.Errorf("media: peer connection: %w", err)
	}
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	b := &Bridge{
		r:        r,
		log:      r.log.With("rtp_port", port),
		outbound: outbound,
		pc:       pc,
		conn:     conn,
		rtcp:     rtcp,
		port:     port,
		track:    &browserTrack{},
		sessID:   rand.Uint64() >> 1,
		done:     make(chan struct{}),
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		b.log.Debug("media: peer connection", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			b.mu.Lock()
			if b.connectTimer != nil {
				b.connectTimer.Stop()
			}
			b.mu.Unlock()
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Not from inside pion's callback: Close waits for pion.
			go b.close(fmt.Errorf("media: browser peer connection %s", s))
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeAudio || !b.goAdd() {
			return
		}
		defer b.wg.Done()
		b.browserLoop(t)
	})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.carrierLoop()
	}()
	return b, nil
}

// goAdd registers a goroutine unless the bridge is closing.
func (b *Bridge) goAdd() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

func (b *Bridge) drainRTCP(s *webrtc.RTPSender) {
	if !b.goAdd() {
		return
	}
	go func() {
		defer b.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
		}
	}()
}

// setLocalAndGather sets the local description and waits until ICE gathering
// is complete, so the SDP carries every candidate. Called with b.mu held.
func (b *Bridge) setLocalAndGather(ctx context.Context, d webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(d); err != nil {
		return fmt.Errorf("media: set local description: %w", err)
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("media: ICE gathering timed out")
	}
	if !strings.Contains(b.pc.LocalDescription().SDP, "a=candidate:") {
		return fmt.Errorf("%w: no ICE port could be bound", ErrNoPorts)
	}
	return nil
}

// armConnectTimer closes the bridge if the browser never connects.
func (b *Bridge) armConnectTimer() {
	if b.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		return
	}
	b.connectTimer = time.AfterFunc(connectTimeout, func() {
		if b.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			b.close(errors.New("media: the browser did not connect in time"))
		}
	})
}

func (b *Bridge) setDest(a netip.AddrPort) {
	if b.latched.Load() || !a.Addr().IsValid() || a.Addr().IsUnspecified() || a.Port() == 0 {
		return
	}
	b.dest.Store(&a)
}

// codecParams names kind with the browser's payload type, for SetCodecPreferences.
func codecParams(kind codecKind, browser *audioDesc) webrtc.RTPCodecParameters {
	pt, _ := browser.pt(kind)
	c := webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt)}
	switch kind {
	case kindPCMU:
		c.RTPCodecCapability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
	case kindPCMA:
		c.RTPCodecCapability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}
	case kindDTMF:
		c.RTPCodecCapability = webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 8000, SDPFmtpLine: "0-16"}
	}
	return c
}

// carrierLoop reads the carrier's RTP and writes it to the browser track.
func (b *Bridge) carrierLoop() {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var rw rewriter
	for {
		n, src, err := b.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if d := b.dest.Load(); !b.latched.Load() {
			// Symmetric RTP: the carrier's real source (behind NAT, or a media
			// server other than the signalled one) is where we send.
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			b.dest.Store(&src)
			b.latched.Store(true)
			if d == nil || *d != src {
				b.log.Debug("media: carrier RTP source latched", "src", src)
			}
		} else if d != nil && *d != src {
			continue // not from the carrier's latched address
		}
		rt := b.route.Load()
		if rt == nil || pkt.Unmarshal(buf[:n]) != nil || pkt.Version != 2 {
			continue
		}
		kind := rt.carrierKinds[pkt.PayloadType&0x7f]
		if kind == kindNone {
			continue
		}
		stripHeader(&pkt.Header)
		rw.rewrite(&pkt.Header)
		if err := b.track.write(kind, &pkt.Header, pkt.Payload); err == nil {
			b.toBrowser.Add(1)
		} else if errors.Is(err, io.ErrClosedPipe) {
			return
		}
	}
}

// browserLoop reads the browser's (decrypted) RTP and sends it to the carrier.
func (b *Bridge) browserLoop(t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	out := make([]byte, 1500)
	var pkt rtp.Packet
	var rw rewriter
	ssrc := rand.Uint32()
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return // closed
		}
		rt := b.route.Load()
		d := b.dest.Load()
		if rt == nil || d == nil || pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		kind := rt.browserKinds[pkt.PayloadType&0x7f]
		if kind == kindNone {
			continue
		}
		if kind.audio() && kind != rt.carrierAudio {
			transcode(kind, rt.carrierAudio, pkt.Payload)
			kind = rt.carrierAudio
		}
		pt := rt.carrierPT[kind]
		if pt < 0 {
			continue
		}
		stripHeader(&pkt.Header)
		rw.rewrite(&pkt.Header)
		pkt.SSRC = ssrc
		pkt.PayloadType = uint8(pt)
		m, err := pkt.MarshalTo(out)
		if err != nil {
			continue
		}
		if _, err := b.conn.WriteToUDPAddrPort(out[:m], *d); err == nil {
			b.toCarrier.Add(1)
		} else if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
