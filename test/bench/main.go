// Command bench measures wxauth's hot paths against a ceiling, as real
// processes on loopback: it builds cmd/authsvc, starts a bare net/http
// "hello" server (the ceiling, a child process like the others), the WeChat
// emulator (`authsvc emulate`) and `authsvc serve` (safe-mode callback with
// a keyword rule; a second one in plaintext mode for the plaintext /wx
// target), then loads each target in turn, interleaved, for several rounds
// with a closed-loop load generator (keep-alive connections, one
// http.Client), and prints one table: requests/s (median of the rounds),
// p50 and p99 latency, the ratio to the hello ceiling of the same round, the
// goal and PASS or MISS. The targets: /wx (safe and plaintext), /verify,
// /login (cookie mode), /jssdk/config, the token endpoint's
// client_credentials grant and its refresh grant (rotating refresh tokens
// of a public client), and the full login through
// the OIDC code flow with PKCE via the emulator. It then measures the peak RSS (VmHWM) of a fresh
// service loaded at -rss-c concurrency and the cold storm (-storm concurrent
// /jssdk/config on a fresh service, counting the emulator's upstream token
// and ticket calls), then floods a fresh service that keeps the production
// rate limits from -flood client addresses (X-Forwarded-For from loopback,
// a trusted proxy) at -rss-c concurrency on every endpoint that creates
// state or costs a WeChat call, reporting VmRSS before, at its peak during,
// and after. It exits with status 1 when a goal is missed.
//
// Run it from the module root on an otherwise idle machine:
//
//	go run ./test/bench [-c 64] [-d 5s] [-rounds 3] [-profile DIR]
//
// It is a benchmark, not a test: CI does not run it. The goals are those of
// issue 17 (Performance round two). The peer is silenceper/wechat's
// callback server (test/bench/peer, a module of its own, built into the
// temp directory), loaded with the same freshly signed and encrypted
// messages in the same rounds, its replies checked like wxauth's: the /wx
// rows show wxauth's ratio to it beside the ratio to hello. Every target
// also reports the serving process's CPU and heap allocations per
// operation (go_memstats_mallocs_total before and after the window) and its
// p99 over hello's p99 of the same round.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the flags.
type options struct {
	c, loginC, rounds, rssC, storm int
	floodAddrs                     int // client addresses of the flood phase; 0 skips it
	d, warmup                      time.Duration
	profileDir, bin                string
	only                           string
	env                            []string // extra KEY=VALUE for every `authsvc serve`
}

// target is one line of the table.
type target struct {
	slug, name string
	goal       float64 // least ratio to hello; 0 = no ratio goal
	peer       string  // slug of the peer target it is compared with; "" = none
	peerGoal   float64 // least ratio to the peer; 0 = no goal
	fn         op
	server     *proc  // the process serving it (its CPU is measured)
	pprof      string // its pprof address, "" when off
	rounds     []result
	ratios     []float64 // throughput over hello's, per round
	p99Ratios  []float64 // p99 over hello's p99, per round
	peerRatios []float64 // throughput over the peer's, per round
}

// errMissed is returned when the run completed but missed a goal.
var errMissed = errors.New("a goal was missed")

// run is the whole program: the hello child when getenv(helloEnv) names an
// address, else the benchmark. It prints progress to stderr and the table to
// stdout, and returns an error wrapping errMissed when a goal was missed.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if addr := getenv(helloEnv); addr != "" {
		return runHello(ctx, addr, stdout)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.c, "c", 64, "concurrency: closed-loop workers per target")
	fs.IntVar(&o.loginC, "login-c", 16, "concurrency of the full-login target (0 = -c); by Little's law its mean latency is login-c / logins per second")
	fs.DurationVar(&o.d, "d", 5*time.Second, "measured duration per target per round")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each measured period")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each loads every target once, in turn")
	fs.IntVar(&o.rssC, "rss-c", 256, "concurrency of the peak-RSS phase (0 skips it)")
	fs.IntVar(&o.storm, "storm", 1000, "concurrent /jssdk/config of the cold storm (0 skips it)")
	fs.IntVar(&o.floodAddrs, "flood", 100000, "client addresses (X-Forwarded-For) of the flood phase at -rss-c concurrency, with the production limits (0 skips it)")
	fs.StringVar(&o.profileDir, "profile", "", "directory for CPU profiles of the services (WXAUTH_PPROF_LISTEN) and of the load generator (generator-SLUG.pprof) during the last round")
	fs.StringVar(&o.bin, "bin", "", "a prebuilt authsvc binary (default: go build ./cmd/authsvc)")
	fs.StringVar(&o.only, "only", "", "comma-separated target slugs to load (hello always; the peer with the /wx target it is compared with): wx-safe,wx-plain,verify,login,jssdk,token,token-refresh,full-login")
	fs.Func("env", "extra KEY=VALUE in the environment of every `authsvc serve` (repeatable), e.g. -env GOMEMLIMIT=48MiB", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		o.env = append(o.env, v)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.loginC == 0 {
		o.loginC = o.c
	}
	if o.c < 1 || o.loginC < 1 || o.rounds < 1 || o.d <= 0 || o.warmup < 0 || o.rssC < 0 || o.storm < 0 || o.floodAddrs < 0 {
		return errors.New("-c, -rounds and -d must be positive; -warmup, -rss-c, -storm and -flood not negative")
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "wxauth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "clients.yaml"), []byte(clientsYAML), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rulesYAML), 0o644); err != nil {
		return err
	}
	bin := o.bin
	if bin == "" {
		fmt.Fprintln(stderr, "building authsvc...")
		if bin, err = buildBinary(ctx, dir); err != nil {
			return err
		}
	}
	fmt.Fprintln(stderr, "building the peer (test/bench/peer)...")
	peerBin, err := buildPeer(ctx, dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// Processes. Every address is chosen before the emulator starts: its
	// 网页授权域名 list must name every service that logs users in.
	var procs []*proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()
	addrs := map[string]string{}
	for _, name := range []string{"svc", "plain", "rss", "storm", "flood", "emu", "pprof", "pprof-plain"} {
		if addrs[name], err = freeAddr(); err != nil {
			return err
		}
	}
	hello, err := startProc(ctx, "hello", dir, self, []string{helloEnv + "=127.0.0.1:0"})
	if err != nil {
		return err
	}
	procs = append(procs, hello)
	// The peer: silenceper/wechat's callback server with the account of
	// the safe-mode service (it picks the mode per request, by
	// encrypt_type, so one process serves both /wx peer targets).
	peer, err := startProc(ctx, "peer", dir, peerBin, nil, "-listen", "127.0.0.1:0",
		"-appid", benchAppID, "-token", benchToken, "-aes-key", benchAESKey, "-reply", keywordReply)
	if err != nil {
		return err
	}
	procs = append(procs, peer)
	emu, err := startProc(ctx, "emulator", dir, bin, nil, "emulate", "--listen", addrs["emu"],
		"--appid", benchAppID, "--appsecret", benchAppSecret, "--original-id", benchOriginalID,
		"--oauth-domain", addrs["svc"]+","+addrs["rss"]+","+addrs["storm"],
		"--callback-url", "http://"+addrs["svc"]+"/wx", "--callback-token", benchToken, "--aes-key", benchAESKey, "--mode", "safe")
	if err != nil {
		return err
	}
	procs = append(procs, emu)
	client := newClient(max(o.c, o.loginC, o.rssC) + 16)
	// extra comes last: os/exec keeps the last value of a duplicated key.
	startSvcEnv := func(name, mode, pprof string, extra ...string) (*proc, error) {
		env := append(append(serviceEnv(dir, name, addrs[name], emu.url, mode, pprof), o.env...), extra...)
		p, err := startProc(ctx, name, dir, bin, env, "serve")
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, waitReady(ctx, client, p.url)
	}
	startSvc := func(name, mode, pprof string) (*proc, error) { return startSvcEnv(name, mode, pprof) }
	pprofOf := func(name string) string {
		if o.profileDir == "" {
			return ""
		}
		return addrs[name]
	}
	svc, err := startSvc("svc", "safe", pprofOf("pprof"))
	if err != nil {
		return err
	}
	plain, err := startSvc("plain", "plain", pprofOf("pprof-plain"))
	if err != nil {
		return err
	}

	fmt.Fprintf(stderr, "hello %s (pid %d), emulator %s (pid %d), service %s (pid %d, pprof %q), plaintext service %s (pid %d, pprof %q)\n",
		hello.url, hello.pid(), emu.url, emu.pid(), svc.url, svc.pid(), pprofOf("pprof"), plain.url, plain.pid(), pprofOf("pprof-plain"))

	// A session JWT by one scripted login, and a warm jsapi_ticket.
	setup := &worker{client: client}
	tok, err := login(ctx, setup, svc.url)
	if err != nil {
		return fmt.Errorf("scripted login: %w\n%s", err, svc.Output())
	}
	jwt := tok.AccessToken
	fmt.Fprintf(stderr, "tokens of the scripted login: access %d bytes, ID %d bytes, refresh %d bytes\n",
		len(tok.AccessToken), len(tok.IDToken), len(tok.RefreshToken))
	if err := opJSSDK(svc.url)(ctx, setup); err != nil {
		return fmt.Errorf("warming /jssdk/config: %w", err)
	}
	safeWX, err := newWXSender(svc.url, true)
	if err != nil {
		return err
	}
	plainWX, err := newWXSender(plain.url, false)
	if err != nil {
		return err
	}
	peerSafeWX, err := newWXSender(peer.url, true)
	if err != nil {
		return err
	}
	peerPlainWX, err := newWXSender(peer.url, false)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		p  *proc
		wx *wxSender
	}{{svc, safeWX}, {plain, plainWX}, {peer, peerSafeWX}, {peer, peerPlainWX}} {
		if err := s.wx.send(ctx, &worker{client: client}); err != nil {
			return fmt.Errorf("first /wx message to %s: %w\n%s", s.p.name, err, s.p.Output())
		}
	}

	targets := []*target{
		{slug: "hello", name: "hello (ceiling)", fn: opHello(hello.url), server: hello},
		{slug: "peer-safe", name: "peer: silenceper/wechat /wx safe mode", fn: peerSafeWX.send, server: peer},
		{slug: "wx-safe", name: "/wx safe mode, text via keyword rule", goal: 0.75, peer: "peer-safe", peerGoal: 2.5, fn: safeWX.send, server: svc, pprof: pprofOf("pprof")},
		{slug: "peer-plain", name: "peer: silenceper/wechat /wx plaintext", fn: peerPlainWX.send, server: peer},
		{slug: "wx-plain", name: "/wx plaintext, text via keyword rule", goal: 0.85, peer: "peer-plain", fn: plainWX.send, server: plain, pprof: pprofOf("pprof-plain")},
		{slug: "verify", name: "/verify, ES256 JWT", goal: 0.9, fn: opVerify(svc.url, jwt), server: svc, pprof: pprofOf("pprof")},
		{slug: "login", name: "/login (302 + state record)", goal: 0.8, fn: opLogin(svc.url), server: svc, pprof: pprofOf("pprof")},
		{slug: "jssdk", name: "/jssdk/config, warm", goal: 0.6, fn: opJSSDK(svc.url), server: svc, pprof: pprofOf("pprof")},
		{slug: "token", name: "/oauth/token client_credentials, ES256", fn: opToken(svc.url), server: svc, pprof: pprofOf("pprof")},
		{slug: "token-refresh", name: "/oauth/token, refresh grant (rotation)", goal: 0.5, server: svc, pprof: pprofOf("pprof")},
		{slug: "full-login", name: "full login, OIDC code flow + PKCE via emulator", fn: opFullLogin(svc.url), server: svc, pprof: pprofOf("pprof")},
	}
	if o.only != "" {
		keep := strings.Split(o.only, ",")
		for _, t := range targets {
			if t.peer != "" && slices.Contains(keep, t.slug) {
				keep = append(keep, t.peer)
			}
		}
		targets = slices.DeleteFunc(targets, func(t *target) bool { return t.slug != "hello" && !slices.Contains(keep, t.slug) })
	}
	bySlug := map[string]*target{}
	for _, t := range targets {
		bySlug[t.slug] = t
	}
	for _, t := range targets {
		if t.slug == "token-refresh" {
			fmt.Fprintf(stderr, "%d logins for the refresh-token pool...\n", o.c)
			if t.fn, err = opRefresh(ctx, svc.url, o.c); err != nil {
				return err
			}
		}
	}

	for r := range o.rounds {
		for _, t := range targets {
			var wg sync.WaitGroup
			if o.profileDir != "" && r == o.rounds-1 && t.pprof != "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					path := filepath.Join(o.profileDir, t.slug+".pprof")
					if err := fetchProfile(ctx, t.pprof, o.warmup+o.d, path); err != nil {
						fmt.Fprintf(stderr, "profile of %s: %v\n", t.slug, err)
					}
				}()
			}
			pids := map[string]int{"server": t.server.pid(), "emulator": emu.pid(), "generator": 0}
			c := o.c
			if t.slug == "full-login" {
				c = o.loginC
			}
			stopGen := func() {}
			if o.profileDir != "" && r == o.rounds-1 {
				stopGen = profileSelf(filepath.Join(o.profileDir, "generator-"+t.slug+".pprof"), stderr)
			}
			res := load(ctx, client, c, o.warmup, o.d, pids, mallocsOf(client, t.server.url+"/metrics"), t.fn)
			stopGen()
			wg.Wait()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.rounds = append(t.rounds, res)
			h := targets[0].rounds[r]
			t.ratios = append(t.ratios, res.rate()/h.rate())
			t.p99Ratios = append(t.p99Ratios, float64(res.p99)/float64(max(h.p99, 1)))
			allocs := "?"
			if res.mallocs >= 0 && res.ops > 0 {
				allocs = fmt.Sprintf("%.0f", float64(res.mallocs)/float64(res.ops))
			}
			fmt.Fprintf(stderr, "round %d  %-40s %9.0f/s  p50 %-9v p99 %-9v x%.2f  allocs/op %s  errors %d  others %.2f cores %s\n", r+1, t.name, res.rate(),
				res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond), t.ratios[r], allocs, res.errs,
				res.others.Seconds()/res.window.Seconds(), firstLine(res.firstErr))
		}
		// The peer of each /wx target ran in the same round.
		for _, t := range targets {
			if p := bySlug[t.peer]; p != nil {
				t.peerRatios = append(t.peerRatios, t.rounds[r].rate()/max(p.rounds[r].rate(), 1e-9))
			}
		}
	}
	for _, p := range []*proc{svc, plain, emu, hello, peer} {
		if !p.Alive() {
			return fmt.Errorf("%s exited during the run:\n%s", p.name, p.Output())
		}
	}
	mainHWM, _, _ := memStatus(svc.pid())
	if o.profileDir != "" {
		if err := fetchPprof(ctx, pprofOf("pprof"), "heap", filepath.Join(o.profileDir, "heap.pprof")); err != nil {
			fmt.Fprintf(stderr, "heap profile: %v\n", err)
		}
	}

	var rss *rssResult
	if o.rssC > 0 {
		if rss, err = measureRSS(ctx, o, startSvc, client, stderr); err != nil {
			return fmt.Errorf("peak RSS phase: %w", err)
		}
	}
	var storm *stormResult
	if o.storm > 0 {
		if storm, err = coldStorm(ctx, o.storm, startSvc, client, emu.url); err != nil {
			return fmt.Errorf("cold storm: %w", err)
		}
	}

	var fl *floodResult
	if o.floodAddrs > 0 && o.rssC > 0 {
		if fl, err = flood(ctx, o, startSvcEnv, client, emu.url, stderr); err != nil {
			return fmt.Errorf("flood phase: %w", err)
		}
	}

	missed := report(stdout, o, targets, rss, storm, fl, mainHWM)
	if missed > 0 {
		return fmt.Errorf("%d goal(s) missed: %w", missed, errMissed)
	}
	return nil
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// environment describes the machine and build for the report.
func environment(o options) string {
	rev := "unknown"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
	}
	env := ""
	if len(o.env) > 0 {
		env = " -env " + strings.Join(o.env, " -env ")
	}
	return fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %d), %s, commit %s; -c %d -login-c %d -d %v -warmup %v -rounds %d -rss-c %d -storm %d%s",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), rev,
		o.c, o.loginC, o.d, o.warmup, o.rounds, o.rssC, o.storm, env)
}
