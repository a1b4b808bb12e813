package media

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rewriter gives one outgoing stream a continuous sequence number and
// timestamp space whatever the source does: a source that changes its SSRC
// (a carrier switching media servers, a browser replacing its track) continues
// where the previous one stopped instead of jumping.
type rewriter struct {
	started bool
	src     uint32
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16 // highest sequence number sent
	lastTS  uint32 // timestamp of lastSeq
}

func (r *rewriter) rewrite(h *rtp.Header) {
	if !r.started || h.SSRC != r.src {
		nextSeq, nextTS := uint16(rand.Uint32()), rand.Uint32()
		if r.started {
			nextSeq, nextTS = r.lastSeq+1, r.lastTS+160
		}
		r.seqOff = nextSeq - h.SequenceNumber
		r.tsOff = nextTS - h.Timestamp
		r.src = h.SSRC
		r.started = true
		r.lastSeq, r.lastTS = nextSeq-1, nextTS
		h.Marker = true // start of a talkspurt: lets the receiver resync its jitter buffer
	}
	h.SequenceNumber += r.seqOff
	h.Timestamp += r.tsOff
	if int16(h.SequenceNumber-r.lastSeq) > 0 {
		r.lastSeq, r.lastTS = h.SequenceNumber, h.Timestamp
	}
}

// stripHeader removes what is meaningful only on the leg a packet came from:
// RFC 8285 header extensions (ids are negotiated per leg), CSRCs and padding.
func stripHeader(h *rtp.Header) {
	h.Version = 2
	h.Extension = false
	h.Extensions = h.Extensions[:0]
	h.ExtensionProfile = 0
	h.CSRC = h.CSRC[:0]
	h.Padding = false
	h.PaddingSize = 0
}

func kindOfMime(mime string) codecKind {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypePCMU):
		return kindPCMU
	case strings.EqualFold(mime, webrtc.MimeTypePCMA):
		return kindPCMA
	case strings.EqualFold(mime, mimeTelephoneEvent):
		return kindDTMF
	}
	return kindNone
}

const mimeTelephoneEvent = "audio/telephone-event"

var errNotBound = errors.New("browser track not bound yet")

// browserTrack is the TrackLocal that carries the carrier's audio to the
// browser. Unlike TrackLocalStaticRTP it may send several negotiated payload
// types on one SSRC (the audio codec and telephone-event).
type browserTrack struct {
	mu    sync.RWMutex
	w     webrtc.TrackLocalWriter
	ssrc  uint32
	pt    [numKinds]int16 // negotiated payload type per kind, -1 if none
	audio codecKind       // the audio codec bound
}

func (t *browserTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var chosen *webrtc.RTPCodecParameters
	pt := [numKinds]int16{-1, -1, -1, -1}
	codecs := ctx.CodecParameters()
	for i, c := range codecs {
		k := kindOfMime(c.MimeType)
		if k == kindNone || pt[k] >= 0 {
			continue
		}
		pt[k] = int16(c.PayloadType)
		if chosen == nil && k.audio() {
			chosen = &codecs[i]
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	t.w, t.ssrc, t.pt, t.audio = ctx.WriteStream(), uint32(ctx.SSRC()), pt, kindOfMime(chosen.MimeType)
	t.mu.Unlock()
	return *chosen, nil
}

func (t *browserTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.w = nil
	t.mu.Unlock()
	return nil
}

func (t *browserTrack) ID() string                { return "audio" }
func (t *browserTrack) RID() string               { return "" }
func (t *browserTrack) StreamID() string          { return "sipdesk" }
func (t *browserTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// write sends one packet of the given kind; audio is transcoded in place
// between PCMU and PCMA when the browser was bound to the other one.
func (t *browserTrack) write(kind codecKind, h *rtp.Header, payload []byte) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.w == nil {
		return errNotBound
	}
	if kind.audio() && kind != t.audio {
		transcode(kind, t.audio, payload)
		kind = t.audio
	}
	if t.pt[kind] < 0 {
		return nil // e.g. telephone-event the browser did not accept: drop
	}
	h.SSRC = t.ssrc
	h.PayloadType = uint8(t.pt[kind])
	_, err := t.w.WriteRTP(h, payload)
	return err
}

// G.711: PCMU and PCMA map one byte to one byte, so transcoding between them
// is a table lookup (about as cheap as copying).
var ulawToAlaw, alawToUlaw [256]byte

func init() {
	for i := range 256 {
		ulawToAlaw[i] = linearToAlaw(ulawToLinear(byte(i)))
		alawToUlaw[i] = linearToUlaw(alawToLinear(byte(i)))
	}
}

func transcode(from, to codecKind, p []byte) {
	var tab *[256]byte
	switch {
	case from == kindPCMU && to == kindPCMA:
		tab = &ulawToAlaw
	case from == kindPCMA && to == kindPCMU:
		tab = &alawToUlaw
	default:
		return
	}
	for i, b := range p {
		p[i] = tab[b]
	}
}

// The classic ITU-T G.711 conversions (as in Sun's public domain g711.c).

func ulawToLinear(u byte) int {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

func alawToLinear(a byte) int {
	a ^= 0x55
	t := int(a&0x0f) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return t
	}
	return -t
}

func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

var alawSegEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
var ulawSegEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}

func linearToAlaw(pcm int) byte {
	pcm >>= 3
	var mask byte = 0xD5
	if pcm < 0 {
		mask = 0x55
		pcm = -pcm - 1
	}
	seg := segment(pcm, &alawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte(pcm>>1) & 0x0f
	} else {
		a |= byte(pcm>>seg) & 0x0f
	}
	return a ^ mask
}

func linearToUlaw(pcm int) byte {
	pcm >>= 2
	var mask byte = 0xFF
	if pcm < 0 {
		pcm = -pcm
		mask = 0x7F
	}
	if pcm > 8159 {
		pcm = 8159
	}
	pcm += 0x84 >> 2
	seg := segment(pcm, &ulawSegEnd)
	if seg >= 8 {
		return 0x7F ^ mask
	}
	u := byte(seg<<4) | byte(pcm>>(seg+1))&0x0f
	return u ^ mask
}
