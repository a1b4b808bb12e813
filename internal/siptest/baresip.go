package siptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Baresip is a baresip process driven over its ctrl_tcp interface
// (netstring-framed JSON commands and events).
type Baresip struct {
	t      testing.TB
	cmd    *exec.Cmd
	conn   net.Conn
	out    LockedBuffer
	events chan map[string]any
	resps  chan map[string]any
	done   chan struct{}
}

// BaresipConfig describes one baresip user agent.
type BaresipConfig struct {
	IP         string // local address, e.g. 127.0.0.5
	SIPPort    int
	CtrlPort   int
	AOR        string // sip:user@realm
	Password   string
	Outbound   string // sip:127.0.0.1:5060; "" : no registration (a callee reached directly)
	AnswerMode string // manual or auto
	Codecs     string // audio_codecs: "" : PCMU
	Extra      string // more config lines (modules and their settings)
}

// StartBaresip writes a config folder and starts baresip with it.
func StartBaresip(t testing.TB, c BaresipConfig) *Baresip {
	t.Helper()
	bin := Need(t, "baresip")
	dir := t.TempDir()
	modpath := "/usr/lib/baresip/modules"
	if _, err := os.Stat(modpath); err != nil {
		if m, _ := filepath.Glob("/usr/lib/*/baresip/modules"); len(m) > 0 {
			modpath = m[0]
		}
	}
	if c.Codecs == "" {
		c.Codecs = "PCMU"
	}
	if c.AnswerMode == "" {
		c.AnswerMode = "manual"
	}
	cfg := fmt.Sprintf(`poll_method epoll
sip_listen %s:%d
sip_trans_def udp
audio_player aubridge,nil
audio_source aubridge,nil
audio_alert aubridge,nil
rtp_ports 30000-30200
module_path %s
module g711.so
module aubridge.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen %s:%d
%s`, c.IP, c.SIPPort, modpath, c.IP, c.CtrlPort, c.Extra)
	acc := fmt.Sprintf("<%s;transport=udp>;auth_pass=%s;outbound=\"%s\";regint=600;answermode=%s;audio_codecs=%s\n", c.AOR, c.Password, c.Outbound, c.AnswerMode, c.Codecs)
	if c.Outbound == "" {
		acc = fmt.Sprintf("<%s;transport=udp>;regint=0;answermode=%s;audio_codecs=%s\n", c.AOR, c.AnswerMode, c.Codecs)
	}
	os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600)
	os.WriteFile(filepath.Join(dir, "accounts"), []byte(acc), 0o600)
	os.WriteFile(filepath.Join(dir, "contacts"), nil, 0o600)
	b := &Baresip{t: t, events: make(chan map[string]any, 100), resps: make(chan map[string]any, 10), done: make(chan struct{})}
	b.cmd = exec.Command(bin, "-f", dir)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	b.cmd.Stdin = nil
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	addr := net.JoinHostPort(c.IP, strconv.Itoa(c.CtrlPort))
	var err error
	for range 50 {
		b.conn, err = net.Dial("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("baresip ctrl_tcp: %v\n%s", err, b.Output())
	}
	go b.read()
	return b
}

// Output is what baresip printed.
func (b *Baresip) Output() string { return b.out.String() }

func (b *Baresip) read() {
	defer close(b.done)
	r := bufio.NewReader(b.conn)
	for {
		ls, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(ls[:len(ls)-1]))
		if err != nil {
			return
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf[:n], &m) != nil {
			continue
		}
		if os.Getenv("SIPTEST_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "baresip ctrl: %s\n", buf[:n])
		}
		if m["event"] == true {
			select {
			case b.events <- m:
			default:
			}
		} else {
			select {
			case b.resps <- m:
			default:
			}
		}
	}
}

// Cmd sends a command (e.g. "dial", "sip:…") and returns its response data.
func (b *Baresip) Cmd(command, params string) (string, error) {
	j, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": "t"})
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(j), j); err != nil {
		return "", err
	}
	select {
	case m := <-b.resps:
		d, _ := m["data"].(string)
		if ok, _ := m["ok"].(bool); !ok {
			return d, fmt.Errorf("baresip %s: %s", command, d)
		}
		return d, nil
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("baresip %s: no response", command)
	}
}

// WaitEvent waits for an event of the type (e.g. REGISTER_OK,
// CALL_ESTABLISHED, CALL_CLOSED) and returns it.
func (b *Baresip) WaitEvent(typ string, d time.Duration) (map[string]any, error) {
	end := time.After(d)
	for {
		select {
		case m := <-b.events:
			if m["type"] == typ {
				return m, nil
			}
		case <-end:
			return nil, fmt.Errorf("baresip: no %s event within %v", typ, d)
		}
	}
}

// Stop ends the process.
func (b *Baresip) Stop() {
	if b.cmd.ProcessState != nil || b.cmd.Process == nil {
		return
	}
	if b.conn != nil {
		b.Cmd("quit", "")
		b.conn.Close()
	}
	ch := make(chan struct{})
	go func() { b.cmd.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(3 * time.Second):
		b.cmd.Process.Kill()
		<-ch
	}
}

// LockedBuffer is a bytes.Buffer safe for concurrent writers and readers:
// a child process's stdout and stderr, or a server's log, read by the test.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
