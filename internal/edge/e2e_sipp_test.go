//go:build e2e

package edge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// runSipp runs sipp bounded by -m and -timeout and returns its output.
func runSipp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := siptest.Need(t, "sipp")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "err.log"))...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if b, _ := os.ReadFile(filepath.Join(dir, "err.log")); len(b) > 0 && err != nil {
		t.Logf("sipp errors:\n%s", tail(string(b), 3000))
	}
	return out.String(), err
}

func scenario(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", "sipp", name))
	return p
}

// TestSippRegister1000 registers 1,000 distinct digest users from a CSV.
func TestSippRegister1000(t *testing.T) {
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	var csv strings.Builder
	csv.WriteString("SEQUENTIAL\n")
	f.update(func(tx sipdesk.Tx) error {
		for i := range 1000 {
			u, p := fmt.Sprintf("user%06d", i), fmt.Sprintf("Pass-word-%06d", i)
			a := &sipdesk.SIPAccount{CustomerID: cust, Name: u, AuthType: sipdesk.AuthPassword, Username: u,
				Digest: sipdesk.NewDigestHashes(u, testRealm, p), Status: sipdesk.StatusActive}
			if err := tx.InsertSIPAccount(a); err != nil {
				return err
			}
			fmt.Fprintf(&csv, "%s;%s;+1555%07d;acct;[authentication username=%s password=%s]\n", u, p, i, u, p)
		}
		return nil
	})
	s := startEdge(t, st, nil)
	inf := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(inf, []byte(csv.String()), 0o600)
	start := time.Now()
	out, err := runSipp(t, "-sf", scenario("register_auth.xml"), "-inf", inf, "-key", "domain", testRealm,
		"-i", "127.0.0.1", "-bind_local", "-m", "1000", "-r", "500", "-l", "200", "-timeout", "60s", "-recv_timeout", "5000",
		s.UDPAddr().String())
	el := time.Since(start)
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 4000))
	}
	if n := s.regs.Len(); n != 1000 {
		t.Fatalf("bindings: %d", n)
	}
	s.pol.SettleBindings(5 * time.Second) // the store write follows the 200 (write-behind)
	var stored []*sipdesk.Registration
	st.View(context.Background(), func(tx sipdesk.Tx) error { stored, err = tx.Registrations(0); return err })
	if len(stored) != 1000 {
		t.Fatalf("stored registrations: %d", len(stored))
	}
	t.Logf("1000/1000 registered (200 OK) in %v", el.Round(time.Millisecond))
}

// sippUAS is a sipp carrier answering calls on ip:port.
type sippUAS struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	dir  string
	done chan error
}

func startSippUAS(t *testing.T, ip string, port, calls int) *sippUAS {
	return startSippUASScenario(t, "uas_b2bua.xml", ip, port, calls)
}

func startSippUASScenario(t *testing.T, sf, ip string, port, calls int, extra ...string) *sippUAS {
	t.Helper()
	bin := siptest.Need(t, "sipp")
	u := &sippUAS{dir: t.TempDir(), done: make(chan error, 1)}
	if !filepath.IsAbs(sf) {
		sf = scenario(sf)
	}
	u.cmd = exec.Command(bin, "-sf", sf, "-i", ip, "-p", fmt.Sprint(port), "-bind_local",
		"-m", fmt.Sprint(calls), "-timeout", "60s", "-nostdin", "-trace_msg", "-message_file", filepath.Join(u.dir, "msg.log"),
		"-mp", fmt.Sprint(20000+port%1000*10))
	u.cmd.Args = append(u.cmd.Args, extra...)
	u.cmd.Dir = u.dir
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.done <- u.cmd.Wait() }()
	t.Cleanup(func() {
		if u.cmd.ProcessState == nil {
			u.cmd.Process.Kill()
			<-u.done
		}
	})
	time.Sleep(300 * time.Millisecond)
	return u
}

// wait waits for the UAS to finish its calls and returns its message log.
func (u *sippUAS) wait(t *testing.T) string {
	t.Helper()
	select {
	case err := <-u.done:
		if err != nil {
			t.Fatalf("sipp uas: %v\n%s", err, tail(u.out.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sipp uas did not finish\n%s", tail(u.out.String(), 3000))
	}
	b, _ := os.ReadFile(filepath.Join(u.dir, "msg.log"))
	return string(b)
}

// TestSippIPAccountCalls: an IP account calls from 127.0.0.2 through the
// B2BUA to a sipp carrier on 127.0.0.9; 127.0.0.3 is not allowed; two IP
// accounts on 127.0.0.4 are told apart by tech prefix.
func TestSippIPAccountCalls(t *testing.T) {
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	f.ipAccount(cust, "trunk", "", "127.0.0.2/32")
	a1 := f.ipAccount(cust, "shared one", "1111", "127.0.0.4/32")
	a2 := f.ipAccount(cust, "shared two", "2222", "127.0.0.4/32")
	f.modify(a1, func(a *sipdesk.SIPAccount) { a.CallerID.DefaultNumber = "+15550001111" })
	f.modify(a2, func(a *sipdesk.SIPAccount) { a.CallerID.DefaultNumber = "+15550002222" })
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	s := startEdge(t, st, func(c *Config) { c.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", carrierPort) })
	waitApplied(t, s, st)
	inf := filepath.Join(t.TempDir(), "trunks.csv")
	os.WriteFile(inf, []byte("SEQUENTIAL\n+15550000123;trunk\n"), 0o600)
	uac := func(ip, number string) (string, error) {
		return runSipp(t, "-sf", scenario("invite_ipauth.xml"), "-inf", inf, "-key", "domain", testRealm, "-s", number,
			"-i", ip, "-bind_local", "-m", "1", "-d", "300", "-timeout", "20s", "-recv_timeout", "5000", "-mp", "21000", s.UDPAddr().String())
	}

	t.Run("allowed address reaches the carrier", func(t *testing.T) {
		uas := startSippUAS(t, "127.0.0.9", carrierPort, 1)
		if out, err := uac("127.0.0.2", "+15551234567"); err != nil {
			t.Fatalf("uac: %v\n%s", err, tail(out, 3000))
		}
		log := uas.wait(t)
		if !strings.Contains(log, "INVITE sip:+15551234567@127.0.0.9") || !strings.Contains(log, "P-Asserted-Identity: <sip:+15550000002@") {
			t.Fatalf("carrier INVITE:\n%s", tail(log, 3000))
		}
	})
	t.Run("other address is refused", func(t *testing.T) {
		out, err := uac("127.0.0.3", "+15551234567")
		if err == nil || !strings.Contains(out, "407") {
			t.Fatalf("expected the call refused with a 407 challenge: %v\n%s", err, tail(out, 2000))
		}
	})
	t.Run("tech prefix picks the account", func(t *testing.T) {
		uas := startSippUAS(t, "127.0.0.9", carrierPort, 1)
		if out, err := uac("127.0.0.4", "2222441234567"); err != nil {
			t.Fatalf("uac: %v\n%s", err, tail(out, 3000))
		}
		log := uas.wait(t)
		if !strings.Contains(log, "INVITE sip:+441234567@") || !strings.Contains(log, "<sip:+15550002222@") {
			t.Fatalf("carrier INVITE:\n%s", tail(log, 3000))
		}
	})
	t.Run("shared address without prefix", func(t *testing.T) {
		raw := newUAC(t, "udp", "127.0.0.4", s)
		raw.c.Send(inviteMsg(raw, "441234567", ""))
		r, err := raw.c.RecvResponse(3*time.Second, 200)
		if err != nil || r.Code != 403 || r.Reason != "Tech prefix required" {
			t.Fatalf("%v %+v", err, r)
		}
	})
}
