package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

const (
	// startTimeout bounds how long a service may take to answer /readyz.
	startTimeout = 60 * time.Second
	// stopTimeout is how long the hello server gets to shut down.
	stopTimeout = 10 * time.Second
	// clockTicks is the unit of utime and stime in /proc/PID/stat
	// (USER_HZ, 100 on every Linux this runs on).
	clockTicks = 100
)

// proc is a child process that serves HTTP on loopback.
type proc struct {
	*e2e.Proc
	name string
	url  string // http://host:port from its "listening on" line
}

// startProc runs bin with args and env (only PATH and HOME inherited),
// waits for its "listening on http://ADDR" line and returns it running.
// Of its output, about the last 64 KiB are kept.
func startProc(ctx context.Context, name, dir, bin string, env []string, args ...string) (*proc, error) {
	p, err := e2e.Launch(ctx, e2e.Spec{Binary: bin, Args: args, Dir: dir, Env: env, Want: 1, Tail: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{Proc: p, name: name, url: p.URL("")}, nil
}

// pid is the child's process id.
func (p *proc) pid() int { return p.Cmd.Process.Pid }

// cpuTime returns the user+system CPU time consumed so far by process pid
// (0 = this process), from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// busyTime returns the CPU time all processors have spent in processes
// since boot (user, nice, system, steal), from /proc/stat. Interrupt and
// softirq time is left out: loopback networking of the measured processes
// is accounted there.
func busyTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// memStatus returns VmHWM (peak resident set) and VmRSS of pid in bytes,
// from /proc/PID/status.
func memStatus(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmHWM":
			dst = &hwm
		case "VmRSS":
			dst = &rss
		default:
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %q", pid, name, val)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		*dst = n << 10
	}
	if hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return hwm, rss, nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildBinary builds cmd/authsvc of the module containing the working
// directory into dir and returns the binary's path.
func buildBinary(ctx context.Context, dir string) (string, error) {
	return goBuild(ctx, filepath.Join(dir, "authsvc"), ".", "./cmd/authsvc")
}

// buildPeer builds the peer (silenceper/wechat's callback server, the
// module in test/bench/peer of the module containing the working
// directory) into dir and returns the binary's path.
func buildPeer(ctx context.Context, dir string) (string, error) {
	return goBuild(ctx, filepath.Join(dir, "peer"), filepath.Join("test", "bench", "peer"), ".")
}

// goBuild runs `go build -o bin pkg` in sub, a directory relative to the root
// of the module containing the working directory, and returns bin.
func goBuild(ctx context.Context, bin, sub, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the wxauth module (go env GOMOD is empty)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join(filepath.Dir(gomod), sub)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", pkg, cmd.Dir, err, stderr.String())
	}
	return bin, nil
}

// helloEnv names the variable that makes this program serve the "hello"
// ceiling on the address it holds instead of running the benchmark.
const helloEnv = "WXAUTH_BENCH_HELLO_LISTEN"

// runHello is the ceiling: a bare net/http handler answering "hello", run
// as a child process of the benchmark so that it meets the same conditions
// (its own process, its own Go runtime) as authsvc.
func runHello(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hello: listen %s: %w", addr, err)
	}
	hello := []byte("hello")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metrics" {
				writeMallocs(w)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(hello)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}

// writeMallocs answers the one line of Prometheus text the benchmark reads
// from every process: its cumulative count of heap allocations.
func writeMallocs(w http.ResponseWriter) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", ms.Mallocs)
}
