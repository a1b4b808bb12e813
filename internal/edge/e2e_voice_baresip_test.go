//go:build e2e

package edge

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/media/prompts"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestBaresipVoiceCallee: "Call me instead" through an edge request, with
// baresip as the callee behind the carrier trunk (reached through
// sipRelay, which works around a baresip 1.0 bug). baresip answers by
// itself and its sndfile module writes the audio it decoded from the RTP
// it received to a WAV file (baresip 1.0's aufile module only plays files;
// sndfile is its recorder). That recording holds, sample for sample, the
// G.711 decode of the intro and the code's digits, twice, in order. The
// call record is a system call, answered, "played", and no channel lease
// is taken while the code is read out.
func TestBaresipVoiceCallee(t *testing.T) {
	siptest.Need(t, "baresip")
	for _, tc := range []struct {
		codec string
		law   prompts.Law
		code  string
	}{{"PCMU", prompts.ULaw, "905172"}, {"PCMA", prompts.ALaw, "3864"}} {
		t.Run(tc.codec, func(t *testing.T) {
			rec := t.TempDir()
			const ip = "127.0.0.6"
			sipPort := siptest.FreePort(t, ip)
			relay := newSIPRelay(t, &net.UDPAddr{IP: net.ParseIP(ip), Port: sipPort})
			e := newCallEnv(t, 1, nil, func(c *Config) {
				c.Carrier = "sip:" + relay.conn.LocalAddr().String()
				c.VoiceCalls = true
			})
			relay.edge.Store(e.s.UDPAddr())
			// The INVITE's user is the number called: baresip takes the call
			// for the account whose AOR has that user. Without a jitter
			// buffer (0-0) every packet is decoded as it arrives; baresip's
			// buffer would keep the last frames of the call undecoded.
			b := siptest.StartBaresip(t, siptest.BaresipConfig{IP: ip, SIPPort: sipPort, CtrlPort: siptest.FreePort(t, ip),
				AOR: "sip:+15557654321@" + ip, AnswerMode: "auto", Codecs: tc.codec,
				Extra: "module sndfile.so\nsnd_path " + rec + "\njitter_buffer_delay 0-0\n"})

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			type result struct {
				r   *sipdesk.EdgeRequest
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := e.svc.PlaceVoiceCall(ctx, sipdesk.VoiceCallRequest{CustomerID: e.cust, Number: "+15557654321", Code: tc.code, From: "+15550009999"})
				done <- result{r, err}
			}()
			if _, err := b.WaitEvent("CALL_ESTABLISHED", 20*time.Second); err != nil {
				t.Fatalf("%v\n%s", err, tail(b.Output(), 3000))
			}
			// While the code is read out, the customer's channels are free.
			time.Sleep(time.Second)
			if n := e.live(); n != 0 {
				t.Fatalf("live leases during the voice call: %d, want 0", n)
			}
			res := <-done
			if res.err != nil || res.r.State != sipdesk.EdgeDone {
				t.Fatalf("voice call request: %+v, %v\n%s", res.r, res.err, tail(b.Output(), 3000))
			}
			if _, err := b.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
				t.Fatalf("%v\n%s", err, tail(b.Output(), 3000))
			}
			b.Stop() // sndfile closes its file with the call; stopping makes sure

			got := readWAV(t, rec, b.Output())
			g711, err := prompts.Code(tc.law, tc.code)
			if err != nil {
				t.Fatal(err)
			}
			want := decodeG711(tc.law, g711)
			// G.711 has two μ-law zeros, 0xFF and 0x7F: the ITU decode is 0,
			// baresip's (librem 0.6's table) is +2 and -2. Every other code
			// of both laws decodes alike.
			for i, c := range g711 {
				if tc.law == prompts.ULaw && c&0x7f == 0x7f {
					want[i] = map[byte]int16{0xff: 2, 0x7f: -2}[c]
				}
			}
			at := findRun(got, want)
			if at < 0 {
				t.Fatalf("baresip's recording (%d samples) does not hold the %s prompts for %s (%d samples): %s",
					len(got), tc.codec, tc.code, len(want), explainMismatch(got, want, tc.law, tc.code))
			}
			t.Logf("baresip recorded %d samples; the %d samples of the prompts for %s start at sample %d, the rest is silence: %v",
				len(got), len(want), tc.code, at, silent(got[:at]) && silent(got[at+len(want):]))
			if !silent(got[:at]) || !silent(got[at+len(want):]) {
				t.Fatalf("baresip recorded sound outside the prompts: %d samples before, %d after", len(got[:at]), len(got[at+len(want):]))
			}

			e.s.FlushRecords(3 * time.Second)
			var r *sipdesk.CallRecord
			for _, x := range e.records() {
				if x.Direction == sipdesk.DirSystem {
					r = x
				}
			}
			if r == nil || r.Reason != "played" || r.Disposition != sipdesk.DispAnswered || r.CustomerID != e.cust ||
				r.SIPAccountID != 0 || r.AnsweredAt.IsZero() || !strings.Contains(r.To, "+15557654321") {
				t.Fatalf("call record: %+v", r)
			}
			if n := e.live(); n != 0 {
				t.Fatalf("live leases after: %d", n)
			}
		})
	}
}

// sipRelay passes SIP datagrams between the edge and baresip and turns
// the voice offer's a=sendonly into a=sendrecv on the way (same length, so
// Content-Length holds). baresip 1.0 drops its receive filters, the
// recorder among them, once a stream is not sendrecv (src/audio.c,
// audio_decoder_set: a reset flushes rx->filtl and aufilt_setup does not
// rebuild it while the tx filters exist); it still plays what it receives.
// The RTP goes from the edge to baresip directly, not through the relay.
type sipRelay struct {
	conn *net.UDPConn
	peer *net.UDPAddr
	edge atomic.Pointer[net.UDPAddr]
}

func newSIPRelay(t *testing.T, peer *net.UDPAddr) *sipRelay {
	t.Helper()
	// On the edge's address: baresip answers to the Via's host, the edge's.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &sipRelay{conn: c, peer: peer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			to, msg := r.peer, buf[:n]
			if from.String() == peer.String() {
				to = r.edge.Load()
			} else if i := bytes.Index(msg, []byte("a=sendonly")); i >= 0 {
				copy(msg[i:], "a=sendrecv")
			}
			if to != nil {
				c.WriteToUDP(msg, to)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

// readWAV reads the one received-audio recording sndfile wrote in dir
// (dump-<time>-dec.wav): 16-bit mono PCM at 8 kHz.
func readWAV(t *testing.T, dir, out string) []int16 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*-dec.wav"))
	if len(files) != 1 {
		t.Fatalf("baresip recordings of received audio: %v, want one\n%s", files, tail(out, 3000))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s is no WAV file", files[0])
	}
	var pcm []byte
	for p := b[12:]; len(p) >= 8; {
		id, n := string(p[:4]), int(binary.LittleEndian.Uint32(p[4:8]))
		p = p[8:]
		n = min(n, len(p))
		switch id {
		case "fmt ":
			format, ch, rate, bits := binary.LittleEndian.Uint16(p), binary.LittleEndian.Uint16(p[2:]), binary.LittleEndian.Uint32(p[4:]), binary.LittleEndian.Uint16(p[14:])
			if format != 1 || ch != 1 || rate != 8000 || bits != 16 {
				t.Fatalf("recording format %d, %d channels, %d Hz, %d bits; want PCM mono 8 kHz 16 bits", format, ch, rate, bits)
			}
		case "data":
			pcm = p[:n]
		}
		p = p[n+n%2:]
	}
	s := make([]int16, len(pcm)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(pcm[2*i:]))
	}
	return s
}

// decodeG711 is the ITU-T G.711 decode (Sun's public domain g711.c, the
// tables baresip's g711 module uses too).
func decodeG711(law prompts.Law, b []byte) []int16 {
	out := make([]int16, len(b))
	for i, c := range b {
		if law == prompts.ULaw {
			u := ^c
			v := (int(u&0x0f)<<3 + 0x84) << ((u & 0x70) >> 4)
			if u&0x80 != 0 {
				out[i] = int16(0x84 - v)
			} else {
				out[i] = int16(v - 0x84)
			}
			continue
		}
		a := c ^ 0x55
		v := int(a&0x0f)<<4 + 8
		if seg := int(a&0x70) >> 4; seg > 0 {
			v = (v + 0x100) << (seg - 1)
		}
		if a&0x80 == 0 {
			v = -v
		}
		out[i] = int16(v)
	}
	return out
}

// findRun is where want starts as a contiguous run in got, or -1.
func findRun(got, want []int16) int {
	for at := 0; at+len(want) <= len(got); at++ {
		if equalSamples(got[at:at+len(want)], want) {
			return at
		}
	}
	return -1
}

func equalSamples(a, b []int16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// silent: nothing louder than the smallest G.711 steps (the decode of
// silence, or the zeros of an empty jitter buffer).
func silent(s []int16) bool {
	for _, v := range s {
		if v > 8 || v < -8 {
			return false
		}
	}
	return true
}

// explainMismatch aligns the recording on the first 20 ms frame of the
// prompts that is not silence and says where, and in which prompt, the
// two first differ.
func explainMismatch(got, want []int16, law prompts.Law, code string) string {
	const frame = prompts.FrameSize
	first := 0
	for first+frame <= len(want) && silent(want[first:first+frame]) {
		first += frame
	}
	if first+frame > len(want) {
		return "the prompts are silent"
	}
	at := findRun(got, want[first:first+frame])
	if at < 0 {
		return fmt.Sprintf("not even its first sounding 20 ms frame (at sample %d) is in the recording", first)
	}
	at -= first
	n, diff := 0, -1
	for i := range want {
		j := at + i
		if j < 0 || j >= len(got) || got[j] != want[i] {
			n++
			if diff < 0 {
				diff = i
			}
		}
	}
	// name the prompt the first difference falls in
	names := []string{}
	for range 2 {
		names = append(names, "intro")
		for _, d := range code {
			names = append(names, string(d))
		}
	}
	where, off := "", 0
	for _, name := range names {
		p, _ := prompts.Prompt(law, name)
		if diff < off+len(p) {
			where = fmt.Sprintf("prompt %q, its sample %d", name, diff-off)
			break
		}
		off += len(p)
	}
	return fmt.Sprintf("aligned at recording sample %d, %d of %d samples differ, the first at prompt sample %d (%s)", at, n, len(want), diff, where)
}
