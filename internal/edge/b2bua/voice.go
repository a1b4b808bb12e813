package b2bua

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/media/prompts"
)

// Voice calls: the edge calls a number through the carrier trunk and, once
// answered, reads a verification code out (internal/media/prompts: the
// intro and the digits, twice) as 20 ms G.711 RTP frames, then hangs up.
// It is a system call: no lease (never against a channel limit), one call
// record with direction "system" under the customer.

// VoiceRingTimeout bounds how long a voice call rings.
const VoiceRingTimeout = 30 * time.Second

// voiceLead is the pause between the answer and the first prompt: the
// callee's phone is at the ear, the carrier's media path is up.
const voiceLead = 500 * time.Millisecond

// VoiceCall is one code to read out.
type VoiceCall struct {
	CustomerID int64
	Number     string // E.164, "+<digits>"
	Code       string // digits
	From       string // the From user the callee sees ("" : "sipdesk")
	Ring       time.Duration
}

// voiceTable holds the voice calls in progress by Call-ID, so a BYE from
// the callee ends the playback.
type voiceTable struct {
	mu sync.Mutex
	m  map[string]*voiceDialog
}

type voiceDialog struct {
	d    *sipgo.DialogClientSession
	once sync.Once
	bye  chan struct{} // closed when the callee hung up
}

func (t *voiceTable) add(id string, v *voiceDialog) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*voiceDialog{}
	}
	t.m[id] = v
}

func (t *voiceTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

func (t *voiceTable) get(id string) *voiceDialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// voiceBye takes a BYE of a voice call; it reports whether it was one.
func (s *B2BUA) voiceBye(req *sip.Request, tx sip.ServerTransaction) bool {
	v := s.voice.get(req.CallID().Value())
	if v == nil {
		return false
	}
	if err := v.d.ReadBye(req, tx); err != nil {
		s.respond(tx, req, 200, "OK")
	}
	v.once.Do(func() { close(v.bye) })
	return true
}

// PlaceVoiceCall calls v.Number through the carrier and reads v.Code out.
// It returns nil once the code was played to the end; an error when the
// call was not answered, the media failed, or the callee hung up early.
func (s *B2BUA) PlaceVoiceCall(ctx context.Context, v VoiceCall) error {
	switch {
	case s.carrier.Host == "":
		return errors.New("no carrier configured")
	case s.draining.Load():
		return errors.New("the edge is draining")
	case !validNumber(v.Number):
		return fmt.Errorf("not an E.164 number: %q", v.Number)
	}
	if _, err := prompts.Code(prompts.ULaw, v.Code); err != nil {
		return err
	}
	if v.From == "" {
		v.From = "sipdesk"
	}
	if v.Ring <= 0 {
		v.Ring = VoiceRingTimeout
	}
	conn, err := s.voiceSocket()
	if err != nil {
		return err
	}
	defer conn.Close()
	req := s.voiceInvite(v, conn.LocalAddr().(*net.UDPAddr))
	callID := req.CallID().Value()
	lg := s.log.With("call_id", callID, "direction", sipdesk.DirSystem, "customer", v.CustomerID, "number", v.Number)
	at := &attempt{info: s.voiceInfo(callID, v)}
	at.rec = sipdesk.CallRecord{CallID: callID, CustomerID: v.CustomerID, Direction: sipdesk.DirSystem,
		From: req.From().Address.String(), To: req.To().Address.String(), CallerID: v.From,
		StartedAt: s.now(), Disposition: sipdesk.DispActive, Node: s.cfg.Node}
	s.pol.Record(at, at.rec, false)

	rctx, cancel := context.WithTimeout(ctx, v.Ring)
	defer cancel()
	d, err := s.dua.WriteInvite(rctx, req)
	if err != nil {
		s.finish(at, 503, sipdesk.DispFailed, "carrier_unavailable")
		return fmt.Errorf("invite: %w", err)
	}
	opts := sipgo.AnswerOptions{}
	if s.cfg.CarrierUsername != "" {
		opts.Username, opts.Password = s.cfg.CarrierUsername, s.cfg.CarrierPassword
	}
	if err := d.WaitAnswer(rctx, opts); err != nil {
		code, why := 408, "ring_timeout"
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) && de.Res != nil {
			code, why = de.Res.StatusCode, "callee"
		} else if ctx.Err() != nil {
			code, why = 487, "cancelled"
		}
		s.finish(at, code, sipdesk.DispositionOf(code), why)
		lg.Info("voice call", "result", "not answered", "sip_code", code)
		if code >= 500 && code < 600 {
			return fmt.Errorf("carrier: %d", code) // the carrier's trouble: worth a retry
		}
		return fmt.Errorf("%w: %d (%s)", ErrNotAnswered, code, why)
	}
	if err := d.Ack(context.Background()); err != nil {
		lg.Warn("voice call ack", "error", err)
	}
	vd := &voiceDialog{d: d, bye: make(chan struct{})}
	s.voice.add(callID, vd)
	defer s.voice.remove(callID)
	at.rec.AnsweredAt = s.now()
	s.pol.Record(at, at.rec, false)
	lg.Info("voice call answered")

	err = s.playCode(ctx, conn, d.InviteResponse, v.Code, vd.bye)
	why := "played"
	switch {
	case errors.Is(err, ErrCalleeBye):
		why = "bye"
	case err != nil:
		why = "media"
	}
	if why != "bye" {
		bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if berr := d.Bye(bctx); berr != nil {
			lg.Debug("voice call bye", "error", berr)
		}
		bcancel()
	}
	s.finish(at, 200, sipdesk.DispAnswered, why)
	lg.Info("voice call", "result", why, "error", errString(err))
	return err
}

// ErrNotAnswered: the callee did not answer, declined or was busy (a 4xx
// or 6xx, or the ring timeout); ErrCalleeBye: they hung up before the end.
// Neither is worth calling again unasked.
var (
	ErrNotAnswered = errors.New("not answered")
	ErrCalleeBye   = errors.New("the callee hung up before the code was read out twice")
)

// voiceInfo is the attempt of a voice call: no account, no lease (finish
// releases nothing, as admitted stays false).
func (s *B2BUA) voiceInfo(callID string, v VoiceCall) policy.CallInfo {
	return policy.CallInfo{CallID: callID, Direction: sipdesk.DirSystem, CustomerID: v.CustomerID, Number: strings.TrimPrefix(v.Number, "+"), Node: s.cfg.Node}
}

// voiceSocket opens the call's RTP socket on the SIP listener's address.
func (s *B2BUA) voiceSocket() (*net.UDPConn, error) {
	la := &net.UDPAddr{}
	if ua := s.udpAddr(); ua != nil {
		la.IP = ua.IP
	}
	return net.ListenUDP("udp", la)
}

// voiceInvite is the INVITE to the carrier: a new dialog, the platform's
// From, an SDP offer of PCMU and PCMA from the RTP socket.
func (s *B2BUA) voiceInvite(v VoiceCall, rtpAddr *net.UDPAddr) *sip.Request {
	target := sip.Uri{Scheme: "sip", User: v.Number, Host: s.carrier.Host, Port: s.carrier.Port}
	if tp, ok := s.carrier.UriParams.Get("transport"); ok {
		target.UriParams = sip.HeaderParams{}
		target.UriParams.Add("transport", tp)
	}
	r := sip.NewRequest(sip.INVITE, target)
	fh := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: v.From, Host: s.cfg.AdvertiseHost}}
	fh.Params.Add("tag", sip.GenerateTagN(16))
	r.AppendHeader(fh)
	r.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: v.Number, Host: s.carrier.Host, Port: s.carrier.Port}})
	id := sip.CallIDHeader(sip.GenerateTagN(24))
	r.AppendHeader(&id)
	ip := rtpAddr.IP
	if a := net.ParseIP(s.cfg.AdvertiseHost); a != nil && (ip == nil || ip.IsUnspecified()) {
		ip = a
	}
	r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	r.SetBody([]byte(voiceOffer(ip, rtpAddr.Port)))
	s.setTransport(r, target)
	return r
}

func voiceOffer(ip net.IP, port int) string {
	fam := "IP4"
	if ip.To4() == nil {
		fam = "IP6"
	}
	sess := strconv.FormatUint(uint64(time.Now().Unix()), 10)
	return "v=0\r\no=sipdesk " + sess + " " + sess + " IN " + fam + " " + ip.String() + "\r\ns=sipdesk\r\nc=IN " + fam + " " + ip.String() +
		"\r\nt=0 0\r\nm=audio " + strconv.Itoa(port) + " RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendonly\r\n"
}

// answerMedia reads the callee's address and law from its SDP answer: the
// first of PCMU (0) and PCMA (8) on its audio line.
func answerMedia(sdp string) (netip.AddrPort, prompts.Law, uint8, error) {
	var addr netip.Addr
	var port uint16
	var law prompts.Law
	var pt uint8
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "c=IN "):
			f := strings.Fields(line[len("c=IN "):])
			if len(f) == 2 {
				a, err := netip.ParseAddr(f[1])
				if err == nil && (!addr.IsValid() || port == 0) {
					addr = a
				}
			}
		case strings.HasPrefix(line, "m=audio ") && port == 0:
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			p, err := strconv.ParseUint(f[1], 10, 16)
			if err != nil || p == 0 {
				continue
			}
		formats:
			for _, fmtp := range f[3:] {
				switch fmtp {
				case "0":
					law, pt = prompts.ULaw, 0
				case "8":
					law, pt = prompts.ALaw, 8
				default:
					continue
				}
				port = uint16(p)
				break formats
			}
		}
	}
	if !addr.IsValid() || port == 0 || law == "" {
		return netip.AddrPort{}, "", 0, errors.New("the answer offers no PCMU or PCMA audio")
	}
	return netip.AddrPortFrom(addr, port), law, pt, nil
}

// playCode sends the code's prompts to the callee, one 20 ms frame per
// packet on a steady clock, after a short lead.
func (s *B2BUA) playCode(ctx context.Context, conn *net.UDPConn, answer *sip.Response, code string, bye <-chan struct{}) error {
	if answer == nil {
		return errors.New("no answer")
	}
	dest, law, pt, err := answerMedia(string(answer.Body()))
	if err != nil {
		return err
	}
	audio, err := prompts.Code(law, code)
	if err != nil {
		return err
	}
	var seed [10]byte
	_, _ = rand.Read(seed[:])
	h := rtp.Header{Version: 2, PayloadType: pt, Marker: true, SequenceNumber: binary.BigEndian.Uint16(seed[0:]),
		Timestamp: binary.BigEndian.Uint32(seed[2:]), SSRC: binary.BigEndian.Uint32(seed[6:])}
	to := net.UDPAddrFromAddrPort(dest)
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bye:
			return ErrCalleeBye
		case <-t.C:
			return nil
		}
	}
	if err := wait(voiceLead); err != nil {
		return err
	}
	start := time.Now()
	pkt := rtp.Packet{}
	for i := 0; i*prompts.FrameSize < len(audio); i++ {
		pkt.Header = h
		pkt.Payload = audio[i*prompts.FrameSize : (i+1)*prompts.FrameSize]
		b, err := pkt.Marshal()
		if err != nil {
			return err
		}
		if _, err := conn.WriteToUDP(b, to); err != nil {
			return fmt.Errorf("rtp: %w", err)
		}
		h.Marker = false
		h.SequenceNumber++
		h.Timestamp += prompts.FrameSize
		// Pace on the start time, not on each sleep, so the clock does not drift.
		if err := wait(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond))); err != nil {
			return err
		}
	}
	return nil
}

// validNumber accepts "+" and 6 to 15 digits.
func validNumber(n string) bool {
	if len(n) < 7 || len(n) > 16 || n[0] != '+' {
		return false
	}
	for _, r := range n[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
