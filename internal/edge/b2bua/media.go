package b2bua

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/media"
)

// Media for calls with a WebRTC leg (the browser softphone). The carrier
// speaks plain RTP, the browser ICE + DTLS-SRTP: internal/media bridges the
// two in process. Outbound, a browser INVITE whose SDP is WebRTC
// (UDP/TLS/RTP/SAVPF) gets a bridge: the carrier is offered plain RTP/AVP
// and the carrier's answer (183 or 200) becomes the browser's answer.
// Inbound, each forked leg toward a WebSocket binding gets its own bridge
// with a WebRTC offer; the browser that answers keeps its bridge and the
// others are closed. Every way out of a call (finish) closes its bridges,
// freeing the ports.

// callMedia are the bridges of one call.
type callMedia struct {
	mu     sync.Mutex
	out    *media.Bridge            // outbound: the browser called
	in     map[string]*media.Bridge // inbound: by the Call-ID of the leg to a browser
	closed bool
}

func (m *callMedia) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.out != nil {
		m.out.Close()
	}
	for _, b := range m.in {
		b.Close()
	}
}

// isWebRTC reports whether an SDP offers a WebRTC (DTLS-SRTP) stream.
func isWebRTC(body []byte) bool {
	return bytes.Contains(body, []byte("RTP/SAVPF")) || bytes.Contains(body, []byte("a=fingerprint:"))
}

// mediaError is the SIP answer to a bridge that could not be set up.
func mediaError(err error) (int, string) {
	if errors.Is(err, media.ErrNoPorts) {
		return 503, "Service Unavailable"
	}
	return 488, "Not Acceptable Here"
}

// mediaOutbound puts a bridge between a browser caller and the carrier
// leg; it reports whether the call may go on (else it answered and
// finished the attempt).
func (s *B2BUA) mediaOutbound(tx sip.ServerTransaction, req *sip.Request, at *attempt, leg *sip.Request, lg *slog.Logger) bool {
	if !isWebRTC(req.Body()) {
		return true
	}
	if s.media == nil {
		s.respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 sipdesk "WebRTC media relay not configured"`))
		s.finish(at, 488, sipdesk.DispFailed, "media")
		lg.Warn("call", "result", "media", "error", "no media relay")
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	br, offer, err := s.media.FromBrowser(ctx, string(req.Body()))
	if err != nil {
		code, reason := mediaError(err)
		s.respond(tx, req, code, reason)
		s.finish(at, code, sipdesk.DispFailed, "media")
		lg.Info("call", "result", "media", "sip_code", code, "error", err)
		return false
	}
	at.media = &callMedia{out: br}
	br.OnClose(func(reason error) { s.mediaDied(at, reason) })
	leg.RemoveHeader("Content-Type")
	leg.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	leg.SetBody([]byte(offer))
	return true
}

// mediaInbound gives each leg toward a WebSocket binding a bridge and a
// WebRTC offer made from the carrier's SDP. Legs whose bridge fails are
// dropped; it returns the legs left.
func (s *B2BUA) mediaInbound(req *sip.Request, at *attempt, legs []*sip.Request, lg *slog.Logger) ([]*sip.Request, int, string) {
	out := legs[:0:0]
	code, reason := 0, ""
	for _, leg := range legs {
		if !sipmsg.IsWS(leg) {
			out = append(out, leg)
			continue
		}
		if s.media == nil {
			out = append(out, leg) // no relay: SDP as sent (non-WebRTC WS clients)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		br, offer, err := s.media.ToBrowser(ctx, string(req.Body()))
		cancel()
		if err != nil {
			code, reason = mediaError(err)
			lg.Info("inbound leg to browser", "result", "media", "error", err)
			continue
		}
		if leg.CallID() == nil {
			id := sip.CallIDHeader(sip.GenerateTagN(24))
			leg.AppendHeader(&id)
		}
		if at.media == nil {
			at.media = &callMedia{in: map[string]*media.Bridge{}}
		}
		at.media.in[leg.CallID().Value()] = br
		br.OnClose(func(reason error) { s.mediaDied(at, reason) })
		leg.RemoveHeader("Content-Type")
		leg.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		leg.SetBody([]byte(offer))
		out = append(out, leg)
	}
	return out, code, reason
}

// callerBody is the body (and its Content-Type) of a response from the
// called leg as relayed to the caller: the bridge's answer on WebRTC calls.
func (s *B2BUA) callerBody(at *attempt, r *sip.Response) ([]byte, []sip.Header, error) {
	body := r.Body()
	ct := r.ContentType()
	if m := at.media; m != nil && len(body) > 0 {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return nil, nil, media.ErrClosed
		}
		var answer string
		var err error
		switch {
		case m.out != nil:
			answer, err = m.out.CarrierAnswered(string(body))
		case r.IsSuccess():
			id := ""
			if h := r.CallID(); h != nil {
				id = h.Value()
			}
			for k, o := range m.in { // the other browsers lost the race
				if k != id {
					o.Close()
					delete(m.in, k)
				}
			}
			if br := m.in[id]; br != nil {
				answer, err = br.BrowserAnswered(string(body))
			} // else a leg to a plain SIP device: its SDP passes
		default:
			// Early SDP from a browser: not relayed (the carrier gets the
			// answer with the 200).
			if m.in[callIDOf(r)] != nil {
				return nil, nil, nil
			}
		}
		if err != nil {
			return nil, nil, err
		}
		if answer != "" {
			return []byte(answer), []sip.Header{sip.NewHeader("Content-Type", "application/sdp")}, nil
		}
	}
	var hs []sip.Header
	if ct != nil && len(body) > 0 {
		hs = append(hs, sip.NewHeader("Content-Type", ct.Value()))
	}
	return body, hs, nil
}

func callIDOf(r *sip.Response) string {
	if h := r.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// mediaDied ends the call of an attempt whose bridge closed by itself (the
// browser's connection failed or never came up).
func (s *B2BUA) mediaDied(at *attempt, reason error) {
	s.calls.mu.Lock()
	var c *call
	for _, x := range s.calls.m {
		if x.at == at {
			c = x
			break
		}
	}
	s.calls.mu.Unlock()
	if c != nil {
		s.log.Info("media closed", "call_id", at.info.CallID, "reason", reason)
		s.endCall(c, "", endMediaFailed)
	}
}

var endMediaFailed = ending{"media_failed", "Media failed"}
