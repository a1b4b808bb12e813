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

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
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
	var stored []*sipdesk.Registration
	st.View(context.Background(), func(tx sipdesk.Tx) error { stored, err = tx.Registrations(0); return err })
	if len(stored) != 1000 {
		t.Fatalf("stored registrations: %d", len(stored))
	}
	t.Logf("1000/1000 registered (200 OK) in %v", el.Round(time.Millisecond))
}
