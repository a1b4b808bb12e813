//go:build hostile

package edge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// The real password of the account SIPVicious attacks (the flood tests'
// legit() device logs in with it from another address).
const (
	svUser = "alice0001"
	svPass = "Secret-pass-1"
)

// svEdge runs an edge on 127.0.0.1 with its log captured at debug level,
// metrics on a private registry and the carrier set by mod.
func svEdge(t *testing.T, st sipdesk.Store, mod func(*Config)) (*Server, *siptest.LockedBuffer) {
	t.Helper()
	buf := &siptest.LockedBuffer{}
	cfg := Config{Addr: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")), NonceKey: testKey, PollInterval: 50 * time.Millisecond,
		Carrier: "sip:127.0.0.9:5090", MinExpires: 60 * time.Second, Registry: prometheus.NewRegistry()}
	if mod != nil {
		mod(&cfg)
	}
	s := runEdge(t, st, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), cfg)
	waitApplied(t, s, st)
	return s, buf
}

// runTool runs a command bounded by d (and by its own options) and returns
// its combined output. HOME is a temporary folder (SIPVicious keeps its
// sessions in ~/.sipvicious).
func runTool(t *testing.T, d time.Duration, bin string, args ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v:\n%s", filepath.Base(bin), args, d, tail(out.String(), 3000))
	}
	if err != nil {
		t.Logf("%s exited: %v", filepath.Base(bin), err)
	}
	return out.String(), el
}

func writeLines(t *testing.T, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logCount counts the log lines containing every one of parts.
func logCount(log string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			n++
		}
	}
	return n
}

var svTable = regexp.MustCompile(`(?m)^\|\s*Extension\s*\|`)

// svRun runs a SIPVicious tool from ip. SIPVicious 0.3.3 ignores its own
// -b (bind address) option (main never passes it on) and binds every
// address; a small Python preamble makes that bind use ip, and -x puts ip
// in the Via. The run is bounded by d and by --maximumtime.
func svRun(t *testing.T, d time.Duration, tool, ip string, args ...string) (string, time.Duration) {
	t.Helper()
	bin := siptest.Need(t, tool)
	// The tool's own interpreter (its #! line): another python3 on PATH
	// may not see the sipvicious package.
	py := "python3"
	if b, err := os.ReadFile(bin); err == nil && bytes.HasPrefix(b, []byte("#!")) {
		if f := strings.Fields(string(b[2:bytes.IndexByte(b, '\n')])); len(f) > 0 {
			py = f[0]
		}
	}
	pre := `import os, runpy, socket, sys
ip, tool = sys.argv[1], os.path.realpath(sys.argv[2])
sys.path.insert(0, os.path.dirname(tool))
_bind = socket.socket.bind
def bind(self, addr):
    if isinstance(addr, tuple) and addr[0] in ("", "0.0.0.0"):
        addr = (ip,) + tuple(addr[1:])
    return _bind(self, addr)
socket.socket.bind = bind
sys.argv = [tool] + sys.argv[3:]
runpy.run_path(tool, run_name="__main__")
`
	wrapper := writeLines(t, "svbind.py", []string{pre})
	return runTool(t, d, py, append([]string{wrapper, ip, bin, "-x", ip, "-P", fmt.Sprint(siptest.FreePort(t, ip))}, args...)...)
}

// TestSIPViciousSvwar: svwar scans a dictionary whose first entry is the
// real extension (then 300 numbers), with REGISTER and INVITE, with and
// without --force: it finds no extension. Without --force it gives up at
// once: a random extension is challenged like a real one. With --force it
// learns that answer, gets the very same status line for the real
// extension and stops ("unknown response"), listing nothing.
func TestSIPViciousSvwar(t *testing.T) {
	siptest.Need(t, "svwar")
	s, _ := svEdge(t, floodStore(t), nil)
	dict := []string{svUser}
	for i := 100; i < 400; i++ {
		dict = append(dict, fmt.Sprint(i))
	}
	dictFile := writeLines(t, "ext.txt", dict)
	port := fmt.Sprint(s.UDPAddr().Port)
	for i, run := range []struct {
		method string
		force  bool
	}{{"REGISTER", false}, {"REGISTER", true}, {"INVITE", false}, {"INVITE", true}} {
		name := run.method
		if run.force {
			name += " --force"
		}
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			ip := fmt.Sprintf("127.0.0.%d", 110+i)
			before := counterValue(s.met.Registers.WithLabelValues("401"))
			args := []string{"-v", "--debug", "-m", run.method, "-d", dictFile, "--domain", testRealm, "--maximumtime", "3", "-p", port, "127.0.0.1"}
			if run.force {
				args = append([]string{"--force"}, args...)
			}
			out, el := svRun(t, 90*time.Second, "svwar", ip, args...)
			regs := counterValue(s.met.Registers.WithLabelValues("401")) - before
			probed := strings.Contains(out, "sip:"+svUser+"@")
			t.Logf("svwar %s from %s: %v, REGISTERs challenged %v, real extension probed and answered: %v; svwar: %q",
				name, ip, el.Round(time.Millisecond), regs, probed, svLast(out))
			if !strings.Contains(out, "('"+ip+"', ") && !strings.Contains(out, "received="+ip) {
				t.Fatalf("svwar did not send from %s:\n%s", ip, tail(out, 3000))
			}
			if strings.Contains(out, "exists") || svTable.MatchString(out) || strings.Contains(out, "we have") || !strings.Contains(out, "found nothing") {
				t.Fatalf("svwar found extensions:\n%s", tail(out, 4000))
			}
			if !run.force {
				if !strings.Contains(out, "authentication request for an unknown extension") {
					t.Fatalf("svwar without --force did not stop on the challenge of an unknown extension:\n%s", tail(out, 3000))
				}
				return
			}
			if !strings.Contains(out, "Ok SIP device found") || !probed {
				t.Fatalf("svwar --force did not probe the real extension:\n%s", tail(out, 3000))
			}
			if strings.Contains(out, "Protocol / interopability error") {
				t.Fatalf("svwar could not talk to the edge:\n%s", tail(out, 3000))
			}
			if run.method == "REGISTER" && regs < 2 {
				t.Fatalf("the edge challenged %v REGISTERs, want >= 2", regs)
			}
		})
	}
}

// svLast is the last log line of a SIPVicious run that is not a packet.
func svLast(out string) string {
	var last []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "WARNING:") || strings.HasPrefix(l, "ERROR:") {
			if len(l) > 100 {
				l = l[:100] + "…"
			}
			if !slices.Contains(last, l) {
				last = append(last, l)
			}
		}
	}
	return strings.Join(last, " | ")
}

// counterValue reads a counter of the edge's metrics.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func floodStore(t *testing.T) sipdesk.Store {
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), svUser, svPass)
	return st
}

// svSipp is a sipp process bounded by its -timeout and by d.
type svSipp struct {
	out  bytes.Buffer
	done chan error
}

func startSvSipp(t *testing.T, d time.Duration, args ...string) *svSipp {
	t.Helper()
	bin := siptest.Need(t, "sipp")
	ctx, cancel := context.WithTimeout(context.Background(), d)
	p := &svSipp{done: make(chan error, 1)}
	cmd := exec.CommandContext(ctx, bin, append(args, "-nostdin")...)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		cancel()
		err := <-p.done
		p.done <- err
	})
	return p
}

func (p *svSipp) wait(t *testing.T) error {
	t.Helper()
	err := <-p.done
	p.done <- err
	return err
}

func sippScenario(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", "sipp", name))
	return p
}

// logTimes returns the times of the log lines containing every one of parts.
func logTimes(t *testing.T, log string, parts ...string) []time.Time {
	t.Helper()
	var ts []time.Time
	for _, l := range strings.Split(log, "\n") {
		if logCount(l, parts...) == 0 || !strings.HasPrefix(l, "time=") {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		tm, err := time.Parse(time.RFC3339Nano, f)
		if err != nil {
			t.Fatalf("log time %q: %v", f, err)
		}
		ts = append(ts, tm)
	}
	return ts
}

// TestSIPViciousSvcrack: svcrack guesses the real user's password with a
// 10,000-word dictionary (the right password last) from 127.0.0.80. The
// edge bans the address after 5 failed answers, well within 60 s, then
// drops its packets unanswered: no success, svcrack gives up. Meanwhile the
// real user's device on 127.0.0.81 keeps registering every 10 ms and
// places 6 calls through the edge to a sipp carrier on 127.0.0.89. A
// control run against an edge without bans shows that svcrack does find a
// password this edge accepts when nothing stops it (no bans, no failure
// budget per SIP account).
func TestSIPViciousSvcrack(t *testing.T) {
	siptest.Need(t, "svcrack")
	siptest.Need(t, "sipp")

	t.Run("control without bans", func(t *testing.T) {
		s, _ := svEdge(t, floodStore(t), func(c *Config) { c.BanFailures, c.AccountGuard.Failures = -1, -1 })
		var dict []string
		for i := range 20 {
			dict = append(dict, fmt.Sprintf("guess%02d", i))
		}
		dict = append(dict, svPass)
		out, el := svRun(t, 60*time.Second, "svcrack", "127.0.0.79", "-v", "-u", svUser, "-d", writeLines(t, "pw.txt", dict),
			"--domain", testRealm, "--maximumtime", "3", "-p", fmt.Sprint(s.UDPAddr().Port), "127.0.0.1")
		t.Logf("svcrack, 21 guesses, no bans: %v; %q", el.Round(time.Millisecond), svLast(out))
		if !strings.Contains(out, "The password for "+svUser+" is "+svPass) {
			t.Fatalf("svcrack did not find the password with bans off: the test below would prove nothing\n%s", tail(out, 3000))
		}
	})

	const attacker, device, carrier = "127.0.0.80", "127.0.0.81", "127.0.0.89"
	const calls = 6
	carrierPort := siptest.FreePort(t, carrier)
	s, logs := svEdge(t, floodStore(t), func(c *Config) { c.Carrier = fmt.Sprintf("sip:%s:%d", carrier, carrierPort) })
	uas := startSvSipp(t, 90*time.Second, "-sf", sippScenario("uas_b2bua.xml"), "-i", carrier, "-p", fmt.Sprint(carrierPort), "-bind_local",
		"-m", fmt.Sprint(calls), "-timeout", "60s", "-mp", "25000")
	time.Sleep(300 * time.Millisecond)

	dict := make([]string, 0, 10000)
	for i := range 9999 {
		dict = append(dict, fmt.Sprintf("Guess-%05d", i))
	}
	dict = append(dict, svPass)
	dictFile := writeLines(t, "passwords.txt", dict)
	csv := writeLines(t, "device.csv", []string{"SEQUENTIAL",
		fmt.Sprintf("%s;%s;+15550000001;acct;[authentication username=%s password=%s]", svUser, svPass, svUser, svPass)})

	stop := make(chan struct{})
	regs := legit(t, s, device, stop)
	uac := startSvSipp(t, 90*time.Second, "-sf", sippScenario("invite_auth.xml"), "-inf", csv, "-key", "domain", testRealm, "-s", "+15551234567",
		"-i", device, "-p", fmt.Sprint(siptest.FreePort(t, device)), "-bind_local", "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls), "-r", "2", "-d", "1000",
		"-timeout", "60s", "-recv_timeout", "5000", "-mp", "25500", s.UDPAddr().String())
	start := time.Now()
	out, el := svRun(t, 120*time.Second, "svcrack", attacker, "-v", "-u", svUser, "-d", dictFile,
		"--domain", testRealm, "--maximumtime", "3", "-p", fmt.Sprint(s.UDPAddr().Port), "127.0.0.1")
	uacErr := uac.wait(t)
	close(stop)
	lat := regs()
	uasErr := uas.wait(t)

	log := logs.String()
	// A failed answer is logged ("auth failed") and challenged again, or,
	// the third on one Call-ID, refused with 403 (not logged; only the
	// attacker gets 403s here).
	fails := logTimes(t, log, "auth failed", "src="+attacker+":")
	refused := int(counterValue(s.met.Registers.WithLabelValues("403")))
	nfails := len(fails) + refused
	bans := logTimes(t, log, "source banned", "src="+attacker+" ")
	dropped := s.dropped.Load()
	var window time.Duration
	if len(fails) > 0 && len(bans) > 0 {
		window = bans[0].Sub(fails[0])
	}
	t.Logf("svcrack (%d guesses in the dictionary, the right one last) from %s: ran %v; failed answers seen by the edge: %d (%d of them 403); banned %v after its first failure (%v after svcrack started); ban log lines: %d; packets dropped unanswered: %d; svcrack: %q",
		len(dict), attacker, el.Round(time.Millisecond), nfails, refused, window.Round(time.Millisecond), func() time.Duration {
			if len(bans) == 0 {
				return 0
			}
			return bans[0].Sub(start).Round(time.Millisecond)
		}(), len(bans), dropped, svLast(out))
	t.Logf("device on %s meanwhile: %d REGISTER round trips, p99 %v; %d calls to the carrier on %s: uac %v, carrier %v",
		device, len(lat), p99(lat), calls, carrier, uacErr, uasErr)

	if strings.Contains(out, "The password for") || strings.Contains(out, "cracked users") || !strings.Contains(out, "found nothing") {
		t.Fatalf("svcrack found a password:\n%s", tail(out, 3000))
	}
	if !s.shield.Banned(mustAddr(attacker)) {
		t.Fatalf("%s is not banned", attacker)
	}
	if len(fails) == 0 || nfails > 5 {
		t.Fatalf("%d failed answers from %s reached the edge, want 1..5", nfails, attacker)
	}
	if len(bans) != 1 || window > 60*time.Second {
		t.Fatalf("ban log lines %d, first failure to ban %v (want one, within 60 s)", len(bans), window)
	}
	if dropped == 0 || !strings.Contains(out, "since we last received a response") {
		t.Fatalf("svcrack's packets after the ban: %d dropped; svcrack did not run out of answers:\n%s", dropped, tail(out, 2000))
	}
	if len(lat) == 0 || s.shield.Banned(mustAddr(device)) {
		t.Fatalf("the device on %s: %d REGISTER round trips, banned %v", device, len(lat), s.shield.Banned(mustAddr(device)))
	}
	if uacErr != nil || uasErr != nil {
		t.Fatalf("the device's calls: uac %v, carrier %v\nuac:\n%s\ncarrier:\n%s", uacErr, uasErr, tail(uac.out.String(), 2000), tail(uas.out.String(), 2000))
	}
}
