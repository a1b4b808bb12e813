//go:build hostile

package edge

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// tortureWant is the expected answer to one torture message: a status code
// or "drop" (no answer within the wait), per transport when they differ;
// "a|b" when either may come.
type tortureWant struct{ udp, tcp string }

func both(w string) tortureWant { return tortureWant{w, w} }

// tortureTable holds the expected answer of the edge to every RFC 4475
// message shipped with sipgo (valid/, invalid/) and every RFC 5118 message
// (testdata/rfc5118). docs/SECURITY.md lists the same table with the
// reasons. Requests come from an address without an account, so
// authentication comes before content checks: a REGISTER the edge can
// parse and validate is challenged (401), an INVITE too (407).
var tortureTable = map[string]tortureWant{
	// RFC 4475 3.1.1: valid messages.
	"valid/wsinv.dat":   both("400"), // valid, but sipgo's transaction layer finds no From tag in "tag = 98asjd8" for its RFC 2543 key
	"valid/intmeth.dat": both("501"), // unknown method
	"valid/esc01.dat":   both("407"),
	"valid/escnull.dat": both("401"),
	"valid/esc02.dat":   both("501"),  // RE%47IST%45R is not REGISTER
	"valid/lwsdisp.dat": both("200"),  // OPTIONS
	"valid/longreq.dat": both("drop"), // valid; top Via is TCP without a branch: sipgo routes no answer
	// TCP: the REGISTER and the INVITE parse, but the INVITE's body runs
	// past its Content-Length; the rest is a framing error that closes the
	// connection, racing their answers (401, 407) on it.
	"valid/dblreq.dat":     {udp: "401", tcp: "drop|401|407"},
	"valid/semiuri.dat":    both("200"),
	"valid/transports.dat": both("200"),
	"valid/mpart01.dat":    both("501"),  // MESSAGE is not served
	"valid/unreason.dat":   both("drop"), // responses matching no transaction
	"valid/noreason.dat":   both("drop"),
	// RFC 4475 3.1.2: invalid messages.
	"invalid/badinv01.dat":   both("drop"), // parser refuses it
	"invalid/clerr.dat":      both("drop"), // UDP: body shorter than Content-Length, parser refuses; TCP: waits for 9999 bytes
	"invalid/scalar02.dat":   both("drop"), // CSeq out of range: parser refuses it
	"invalid/scalarlg.dat":   both("drop"), // a response
	"invalid/quotbal.dat":    both("drop"),
	"invalid/ltgtruri.dat":   both("drop"), // parser refuses it
	"invalid/lwsruri.dat":    both("drop"),
	"invalid/lwsstart.dat":   both("drop"),
	"invalid/trws.dat":       both("drop"),
	"invalid/escruri.dat":    both("400"),
	"invalid/baddate.dat":    both("400"),
	"invalid/regbadct.dat":   both("400"),
	"invalid/badaspec.dat":   both("drop"), // sipgo's parser refuses it: no Via to answer to
	"invalid/baddn.dat":      both("drop"), // parser refuses it
	"invalid/badvers.dat":    both("drop"), // parser refuses SIP/7.0 in the Via (505 when only the request line has it)
	"invalid/mismatch01.dat": both("400"),
	"invalid/mismatch02.dat": both("501"), // unknown method: 501 whatever the CSeq (RFC 4475 prefers 501)
	"invalid/bigcode.dat":    both("drop"),
	"invalid/ncl.dat":        both("drop"), // negative Content-Length: parser refuses it
	// RFC 4475 3.2, 3.3, 3.4: transaction and application layer.
	"invalid/badbranch.dat": {udp: "200", tcp: "200"}, // the bare cookie is a valid branch (RFC 3261 §8.1.1.7 only asks for the prefix); the UDP pass's transaction has ended (5 s linger) before the TCP pass
	"invalid/insuf.dat":     both("400"),
	"invalid/unkscm.dat":    both("416"),
	"invalid/novelsc.dat":   both("drop"), // parser refuses the soap.beep scheme
	"invalid/unksm2.dat":    both("400"),  // a REGISTER's To must be a SIP URI
	"invalid/bext01.dat":    both("420"),
	"invalid/invut.dat":     both("407"), // challenged before the body is looked at
	"invalid/regaut01.dat":  both("401"),
	"invalid/multi01.dat":   both("400"),
	"invalid/mcl01.dat":     {udp: "400", tcp: "drop"}, // TCP: no framing with two Content-Lengths
	"invalid/bcast.dat":     both("drop"),
	"invalid/zeromf.dat":    both("200"), // we are the UAS: Max-Forwards 0 is fine
	"invalid/cparam01.dat":  both("401"),
	"invalid/cparam02.dat":  both("401"),
	"invalid/regescrt.dat":  both("400"), // contacts with URI headers are refused (they would be copied into requests)
	"invalid/sdp01.dat":     both("407"),
	"invalid/inv2543.dat":   {udp: "400", tcp: "drop"}, // no Contact (400); TCP: no Content-Length, no framing
	"invalid/test.dat":      both("drop"),              // no SIP version: not a SIP message
	// RFC 5118 (IPv6).
	"rfc5118/ipv6-good.dat":                     both("401"),
	"rfc5118/ipv6-bad.dat":                      both("drop"), // parser refuses the unbracketed IPv6 host
	"rfc5118/port-ambiguous.dat":                both("401"),
	"rfc5118/port-unambiguous.dat":              both("401"),
	"rfc5118/via-received-param-with-delim.dat": both("481"), // BYE outside a dialog
	"rfc5118/via-received-param-no-delim.dat":   both("200"),
	"rfc5118/ipv6-in-sdp.dat":                   both("407"),
	"rfc5118/mult-ip-in-header.dat":             both("481"),
	"rfc5118/mult-ip-in-sdp.dat":                both("407"),
	"rfc5118/ipv4-mapped-ipv6.dat":              both("407"),
	"rfc5118/ipv6-bug-abnf-3-colons.dat":        both("200"),
	"rfc5118/ipv6-correct-abnf-2-colons.dat":    both("200"),
}

var callIDRE = regexp.MustCompile(`(?mi)^(?:Call-ID|i)\s*:\s*(\S+)`)

var branchRE = regexp.MustCompile(`(?i)(branch\s*=\s*)([^;,\s]+)`)

// uniqueBranch makes every branch longer than the bare magic cookie unique
// per send, so that the transaction layer takes each message as new (many
// torture messages share a branch); badbranch.dat keeps its bare cookie.
func uniqueBranch(b []byte, n int) []byte {
	head, body, ok := strings.Cut(string(b), "\r\n\r\n")
	head = branchRE.ReplaceAllStringFunc(head, func(m string) string {
		sub := branchRE.FindStringSubmatch(m)
		if strings.EqualFold(sub[2], "z9hG4bK") {
			return m
		}
		return sub[1] + sub[2] + ".t" + strconv.Itoa(n) + "x"
	})
	if !ok {
		return []byte(head)
	}
	return []byte(head + "\r\n\r\n" + body)
}

func tortureFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := filepath.Join(sipgoDir(t), "sip", "testdata", "torture")
	for _, sub := range []string{"valid", "invalid"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*.dat"))
		for _, f := range m {
			out[sub+"/"+filepath.Base(f)] = f
		}
	}
	m, _ := filepath.Glob(filepath.Join("testdata", "rfc5118", "*.dat"))
	for _, f := range m {
		out["rfc5118/"+filepath.Base(f)] = f
	}
	if len(out) < 50 {
		t.Fatalf("torture messages not found (%d) in %s and testdata/rfc5118", len(out), dir)
	}
	return out
}

// waitGoroutines polls until the goroutine count is at most limit.
func waitGoroutines(limit int, d time.Duration) int {
	end := time.Now().Add(d)
	n := runtime.NumGoroutine()
	for n > limit && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestTortureAnswers sends every RFC 4475 and RFC 5118 message over UDP and
// TCP to a running edge and checks each answer against tortureTable; the
// edge then still registers a device, and the goroutine count returns to
// its baseline.
func TestTortureAnswers(t *testing.T) {
	files := tortureFiles(t)
	for name := range files {
		if _, ok := tortureTable[name]; !ok {
			t.Errorf("%s: no expectation in tortureTable", name)
		}
	}
	for name := range tortureTable {
		if _, ok := files[name]; !ok {
			t.Errorf("%s: in tortureTable but not found", name)
		}
	}
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	seq := 0
	for _, network := range []string{"udp", "tcp"} {
		var got []string
		for _, name := range names {
			b, err := os.ReadFile(files[name])
			if err != nil {
				t.Fatal(err)
			}
			seq++
			ans := sendTorture(t, network, s, uniqueBranch(b, seq), ".t"+strconv.Itoa(seq)+"x")
			want := tortureTable[name].udp
			if network == "tcp" {
				want = tortureTable[name].tcp
			}
			if !slices.Contains(strings.Split(want, "|"), ans) {
				t.Errorf("%s %s: got %s, want %s", network, name, ans, want)
			}
			got = append(got, fmt.Sprintf("%s=%s", strings.TrimSuffix(name, ".dat"), ans))
		}
		t.Logf("%s: %d messages: %s", network, len(names), strings.Join(got, " "))
		u := newUAC(t, network, "127.0.0.8", s)
		if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("%s: REGISTER after torture: %d", network, r.Code)
		}
	}
	// Server transactions end (timer J/H, 32 s at most); TCP connections
	// close. Tolerance: the registrations' group commit and timers.
	n := waitGoroutines(base+5, 45*time.Second)
	t.Logf("goroutines: %d before, %d after", base, n)
	if n > base+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines did not return to baseline: %d before, %d after\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}

// udpViaPorts are the ports of the torture messages' Via sent-by: over UDP
// without rport an answer goes to the source address and the Via port
// (RFC 3261 18.2.2), so the test listens on all of them on 127.0.0.7.
var udpViaPorts = []int{5060, 5050, 5070, 6050, 19823}

// sendTorture sends one message and returns the final answer's code or
// "drop" when none came within 400 ms.
func sendTorture(t *testing.T, network string, s *Server, msg []byte, marker string) string {
	callID := ""
	if !strings.Contains(string(msg), marker) {
		marker = ""
		if m := callIDRE.FindSubmatch(msg); m != nil {
			callID = string(m[1])
		}
	}
	t.Helper()
	if network == "tcp" {
		c, err := siptest.Dial("tcp", "127.0.0.7:0", s.UDPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SendRaw(msg)
		if m, err := c.RecvResponse(400*time.Millisecond, 200); err == nil {
			if testing.Verbose() {
				t.Logf("%d %s", m.Code, m.Reason)
			}
			return strconv.Itoa(m.Code)
		}
		return "drop"
	}
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, p := range udpViaPorts {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 7), Port: p})
		if err != nil {
			t.Skipf("UDP port 127.0.0.7:%d busy: %v", p, err)
		}
		conns = append(conns, c)
	}
	if _, err := conns[0].WriteToUDP(msg, s.UDPAddr()); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, len(conns))
	for _, c := range conns {
		go func() {
			buf := make([]byte, 65535)
			c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					got <- ""
					return
				}
				m, err := siptest.Parse(buf[:n])
				// Earlier INVITEs' final answers are retransmitted to
				// 5060 until their timer H fires: match the branch.
				if err == nil && m.Code >= 200 && strings.Contains(m.Get("Via"), marker) && (callID == "" || m.Get("Call-ID") == callID) {
					got <- strconv.Itoa(m.Code)
					return
				}
			}
		}()
	}
	ans := "drop"
	for range conns {
		if r := <-got; r != "" && ans == "drop" {
			ans = r
		}
	}
	return ans
}
