//go:build e2e || hostile || cluster

package edge

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// Child processes of the end-to-end and hostile suites.

// tail is the last n bytes of s, for failure messages.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// buildSipdesk builds the sipdesk binary once per test.
func buildSipdesk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sipdesk")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sipdesk/sipdesk/cmd/sipdesk")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a child process the test owns; it is stopped (SIGTERM, SIGKILL
// after 10 s) when the test ends.
type proc struct {
	cmd  *exec.Cmd
	out  siptest.LockedBuffer
	done chan error
}

func startProc(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(10 * time.Second):
			p.kill(syscall.SIGKILL)
		}
	})
	return p
}

// kill sends sig and waits for the process to end.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	err := <-p.done
	p.done <- err
}

// waitSIP waits until an edge process answers OPTIONS at addr; it fails
// at once if the process exits.
func waitSIP(t *testing.T, addr string, p *proc) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		c, err := siptest.Dial("udp", "127.0.0.1:0", addr)
		if err == nil {
			c.Send(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\nFrom: <sip:probe@127.0.0.1>;tag=1\nTo: <sip:%s>\nCall-ID: %s\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
				addr, c.LocalAddr(), siptest.RandHex(4), addr, siptest.RandHex(6)))
			m, err := c.Recv(300 * time.Millisecond)
			c.Close()
			if err == nil && m.Code == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("edge exited: %v\n%s", err, tail(p.out.String(), 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("edge %s did not answer OPTIONS\n%s", addr, tail(p.out.String(), 3000))
}
