//go:build hostile

package main

// 500 parallel portal logins against the real binary: each password check
// is argon2id (19 MiB); before, every request ran its own at once (40
// parallel logins for unknown emails took the process from 42 MB to 822 MB
// RSS, and it stayed at 1.17 GB). Now the checks go through a gate sized to
// the machine, and the requests beyond it are answered 503 at once.

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vmKB reads a "VmHWM:"-style line of /proc/<pid>/status, in kB.
func vmKB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestHostileParallelLoginsMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sipdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr := freePort(t)
	logf, _ := os.Create(filepath.Join(dir, "serve.log"))
	defer logf.Close()
	// The requests come through a "load balancer" on 127.0.0.1 with one
	// client address each, so no per-source limit stops them first: the
	// gate alone bounds the memory.
	cmd := exec.Command(bin, "serve", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--role", "portal",
		"--node", "mem", "--log-level", "warn", "--trusted-proxies", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	base := "http://" + httpAddr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no /healthz within 15 s")
		}
	}
	pid := cmd.Process.Pid
	before := vmKB(t, pid, "VmHWM")

	const n = 500
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"email": {fmt.Sprintf("nobody%d@acme.example", i)}, "password": {"Wrong-Guess-123"}}
			req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255+1))
			<-start
			code := 0
			if res, err := client.Do(req); err == nil {
				code = res.StatusCode
				res.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	took := time.Since(t0)
	peak := vmKB(t, pid, "VmHWM")
	t.Logf("%d parallel logins in %v: answers %v; VmHWM %d MB before, %d MB peak (bound 200 MB); VmRSS now %d MB",
		n, took.Round(time.Millisecond), codes, before/1024, peak/1024, vmKB(t, pid, "VmRSS")/1024)
	if codes[0] > 0 {
		t.Fatalf("%d requests got no answer", codes[0])
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("answers %v: want some checked (401) and the excess refused at once (503)", codes)
	}
	if peak > 200*1024 {
		t.Fatalf("peak RSS %d MB, bound 200 MB", peak/1024)
	}
	// The node still serves a login afterwards.
	res, err := client.Get(base + "/login")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /login afterwards: %v %v", res, err)
	}
	res.Body.Close()
}
