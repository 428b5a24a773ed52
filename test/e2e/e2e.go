// Package e2e runs the authsvc binary for end-to-end tests: it builds it
// once, starts it as real processes on loopback ports, reads the
// "listening on http://ADDR" lines, and stops them when the test ends.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/authsvc (relative to the module root, found from
// dir) into a temporary directory and returns the binary's path and a
// cleanup function. It is meant for TestMain.
func Build(moduleRoot string) (binary string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "wxauth-e2e-")
	if err != nil {
		return "", nil, err
	}
	binary = filepath.Join(dir, "authsvc")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/authsvc")
	cmd.Dir = moduleRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building authsvc: %w", err)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}

// Main builds authsvc (see [Build]) into *binary, runs the tests of m,
// removes the build and exits with the tests' code; a failed build exits
// with 1. It is meant for TestMain.
func Main(m *testing.M, moduleRoot string, binary *string) {
	b, cleanup, err := Build(moduleRoot)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// Proc is a running process: authsvc, or another server a test runs.
type Proc struct {
	Cmd    *exec.Cmd     // the started command
	Exited chan struct{} // closed when the process has exited
	mu     sync.Mutex
	out    bytes.Buffer
	tail   int
	urls   map[string]string
}

var listeningRE = regexp.MustCompile(`(?:(\w+)\s+)?listening on (http://\S+)`)

// Spec is what [Launch] runs.
type Spec struct {
	Binary string   // the program
	Args   []string // its arguments
	Dir    string   // the working directory
	Env    []string // NAME=value; nothing is inherited but PATH and HOME
	Want   int      // how many "listening on" lines to wait for
	Tail   int      // when not 0, about the last Tail bytes of output are kept, not all
}

// Launch starts s and waits until it printed s.Want "listening on" lines.
// When it exits first, or does not print them within 60 s, or ctx ends,
// Launch stops it and returns an error (with its output).
func Launch(ctx context.Context, s Spec) (*Proc, error) {
	p := &Proc{Cmd: exec.Command(s.Binary, s.Args...), urls: map[string]string{}, Exited: make(chan struct{}), tail: s.Tail}
	p.Cmd.Dir = s.Dir
	p.Cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, s.Env...)
	stdout, err := p.Cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.Cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan struct{})
	var once sync.Once
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.write(line)
			// Only until every listener is known: a process logging on
			// every request (the emulator) is not run through the regexp.
			if len(p.urls) < s.Want {
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					p.urls[m[1]] = m[2]
					if len(p.urls) == s.Want {
						once.Do(func() { close(found) })
					}
				}
			}
			p.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); scan(stdout) }()
	go func() { defer wg.Done(); scan(stderr) }()
	go func() { wg.Wait(); p.Cmd.Wait(); close(p.Exited) }()
	select {
	case <-found:
		return p, nil
	case <-p.Exited:
		return nil, fmt.Errorf("exited before listening:\n%s", p.Output())
	case <-time.After(60 * time.Second):
		p.Stop()
		return nil, fmt.Errorf("did not print its listening lines within 60s:\n%s", p.Output())
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// write adds line to the output, dropping the older half of the kept
// output when it is over p.tail bytes. p.mu must be held.
func (p *Proc) write(line string) {
	if p.tail > 0 && p.out.Len() > p.tail {
		rest := append([]byte(nil), p.out.Bytes()[p.out.Len()-p.tail/2:]...)
		p.out.Reset()
		p.out.Write(rest)
	}
	p.out.WriteString(line + "\n")
}

// Start runs binary with args and env (nothing inherited but PATH and HOME),
// waits until it printed want "listening on" lines (see [Launch]), and stops
// it in the test's Cleanup. Its output is logged when the test fails.
func Start(t testing.TB, binary string, env map[string]string, want int, args ...string) *Proc {
	t.Helper()
	s := Spec{Binary: binary, Args: args, Dir: t.TempDir(), Want: want}
	for k, v := range env {
		s.Env = append(s.Env, k+"="+v)
	}
	p, err := Launch(context.Background(), s)
	if err != nil {
		t.Fatalf("authsvc %s: %v", strings.Join(args, " "), err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("authsvc %s output:\n%s", strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Stop ends the process gracefully (SIGINT), killing it after 15 s. It
// does nothing when the process has exited.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.Exited:
	case <-time.After(15 * time.Second):
		p.Cmd.Process.Kill()
		<-p.Exited
	}
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Proc) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Exited
}

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.Exited:
		return false
	default:
		return true
	}
}

// Output is everything the process printed so far (its tail, with
// [Spec.Tail]).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// URL returns the URL printed on the "NAME listening on URL" line ("" for a
// line without a name).
func (p *Proc) URL(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls[name]
}

// FreeAddr returns a loopback address whose port was free at the call, for
// processes that must know each other's address before they start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitReady polls base + /healthz until it answers 200 (20 s at most).
func WaitReady(t testing.TB, base string) {
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

// DoJSON sends req with [http.DefaultClient], decodes the JSON answer into
// v (an answer that is not JSON leaves v as it was) and returns the HTTP
// status. It fails t when the request gets no answer.
func DoJSON(t testing.TB, req *http.Request, v any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// GetJSON is [DoJSON] for a GET of u.
func GetJSON(t testing.TB, u string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return DoJSON(t, req, v)
}

// AdminJSON is [DoJSON] for a call of the internal API: method u with body
// (sent as JSON when not empty) and token as the admin bearer token.
func AdminJSON(t testing.TB, token, method, u, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return DoJSON(t, req, v)
}

// EmuCalls returns how many times each path of the emulator at emu was
// called (its /emu/calls).
func EmuCalls(t testing.TB, emu string) map[string]float64 {
	t.Helper()
	var calls map[string]float64
	GetJSON(t, emu+"/emu/calls", &calls)
	return calls
}

// WeChatUA is the user agent of WeChat's in-app browser on an iPhone.
const WeChatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50"

// Browser is an HTTP client with a cookie jar that does not follow
// redirects, so that each hop of a login can be checked.
type Browser struct {
	T      testing.TB   // failed when a request gets no answer
	Client *http.Client // with the jar; no timeout unless one is set
	UA     string       // the User-Agent of every request
}

// NewBrowser returns a Browser for t that presents itself as ua.
func NewBrowser(t testing.TB, ua string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, UA: ua, Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Do sends method u with body and headers (name, value pairs; a header
// with an empty value is left out) and returns the response with its body
// read.
func (b *Browser) Do(method, u, body string, headers ...string) (*http.Response, string) {
	b.T.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("User-Agent", b.UA)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(out)
}

// Get is [Browser.Do] for a GET of u.
func (b *Browser) Get(u string, headers ...string) (*http.Response, string) {
	b.T.Helper()
	return b.Do(http.MethodGet, u, "", headers...)
}

// Post is [Browser.Do] for a POST of body, of type contentType when it is
// not empty.
func (b *Browser) Post(u, contentType, body string) (*http.Response, string) {
	b.T.Helper()
	return b.Do(http.MethodPost, u, body, "Content-Type", contentType)
}

// Authorize runs svc's /login for a return to redirect with scope, then the
// emulator's authorize page as user with the scripted consent ("allow" or
// "deny"). It returns the /oauth/callback URL WeChat sends the browser to,
// or "" with the emulator's response when it does not redirect.
func (b *Browser) Authorize(svc, redirect, scope, user, consent string) (string, *http.Response) {
	b.T.Helper()
	resp, body := b.Get(svc + "/login?redirect=" + url.QueryEscape(redirect) + "&scope=" + scope)
	if resp.StatusCode != http.StatusFound {
		b.T.Fatalf("/login: %d %s", resp.StatusCode, body)
	}
	resp, _ = b.Get(resp.Header.Get("Location"), "X-Wxemu-User", user, "X-Wxemu-Consent", consent)
	if resp.StatusCode != http.StatusFound {
		return "", resp
	}
	return resp.Header.Get("Location"), resp
}

// SessionJWT returns an access JWT of the browser's cookie login at svc:
// POST /session/refresh with the refresh cookie answers it in the JSON
// body (the way a same-site page gets one without a token in any URL).
func (b *Browser) SessionJWT(svc string) string {
	b.T.Helper()
	resp, body := b.Post(svc+"/session/refresh", "", "")
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &out); resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		b.T.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
	}
	return out.AccessToken
}

// InvalidateAtOnce has n callers report the access_token old as invalid to
// the internal API at the same time, caller i to bases[i%len(bases)], with
// the admin token; it returns the access_token each got back ("" for an
// answer other than 200).
func InvalidateAtOnce(t testing.TB, token, old string, n int, bases ...string) []string {
	t.Helper()
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range got {
		// No t.Fatal off the test's goroutine: errors are reported after.
		wg.Go(func() {
			u := bases[i%len(bases)] + "/internal/access-token/invalidate"
			req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"access_token":"`+old+`"}`))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var out struct {
				AccessToken string `json:"access_token"`
			}
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil {
				got[i] = out.AccessToken
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("invalidate: %v", err)
	}
	return got
}
