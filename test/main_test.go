// Package test holds wxauth's end-to-end tests: they build the authsvc
// binary, run it as a real process (`authsvc dev`, `authsvc serve`,
// `authsvc emulate`) on loopback ports, and drive whole flows over HTTP and
// in a headless Chromium.
package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the authsvc built once for the package by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wxauth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "authsvc")
	build := exec.Command("go", "build", "-o", binary, "../cmd/authsvc")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building authsvc:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running authsvc process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder // stdout and stderr, for failure messages
	urls   map[string]string
	exited chan struct{}
}

var listeningRE = regexp.MustCompile(`(?:(\w+)\s+)?listening on (http://\S+)`)

// start runs authsvc with args and env (nothing inherited but PATH and
// HOME), waits until it printed want "listening on" lines, and stops it in
// Cleanup. The URLs are keyed by the word before "listening" ("service",
// "emulator", "h5"), or "" for a single-listener command.
func start(t testing.TB, env map[string]string, want int, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), urls: map[string]string{}, exited: make(chan struct{})}
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan struct{})
	var once sync.Once
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				p.urls[m[1]] = m[2]
				if len(p.urls) == want {
					once.Do(func() { close(found) })
				}
			}
			p.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); scan(stdout) }()
	go func() { defer wg.Done(); scan(stderr) }()
	go func() { wg.Wait(); p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("authsvc %s output:\n%s", strings.Join(args, " "), p.output())
		}
	})
	select {
	case <-found:
	case <-p.exited:
		t.Fatalf("authsvc %s exited early:\n%s", strings.Join(args, " "), p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("authsvc %s did not start listening:\n%s", strings.Join(args, " "), p.output())
	}
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) url(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls[name]
}

// startDev runs `authsvc dev` on free loopback ports and returns it with the
// service, emulator and h5 URLs.
func startDev(t testing.TB) *proc {
	t.Helper()
	return start(t, nil, 3, "dev", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--h5-listen", "127.0.0.1:0", "--dir", t.TempDir(), "--log-level", "warn")
}

// waitReady polls url + /healthz until it answers 200.
func waitReady(t testing.TB, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/healthz never answered 200", base)
}
