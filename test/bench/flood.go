package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodResult is the flood phase: a fresh service with the production
// limits (not raised), behind loopback as a trusted proxy, loaded at
// concurrency c with requests that each come from another client address
// (X-Forwarded-For), on every endpoint that creates state or costs a
// WeChat call; RSS before, at its peak during, and after.
type floodResult struct {
	c, addrs            int
	requests            int
	before, peak, after int64 // VmRSS, bytes
	hwm                 int64 // VmHWM at the end, bytes
	statuses            map[string]map[int]int
	qrCalls             int // cgi-bin/qrcode/create calls the emulator counted
}

// floodPaths are the requests of the flood, in turn.
var floodPaths = []struct {
	name, method, path, body string
}{
	{"/login", http.MethodGet, "/login?redirect=" + url.QueryEscape(benchPage) + "&scope=snsapi_base", ""},
	{"/qr/login", http.MethodGet, "/qr/login?redirect=" + url.QueryEscape(benchPage), ""},
	{"/qr/sessions", http.MethodPost, "/qr/sessions", `{"redirect":"` + benchPage + `"}`},
	{"/session/refresh", http.MethodPost, "/session/refresh", `{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`},
	{"/oauth/callback", http.MethodGet, "/oauth/callback?code=x&state=0123456789abcdefghijkl", ""},
}

// flood runs the flood phase for warmup+d on the service started by
// startSvc with extra environment.
func flood(ctx context.Context, o options, startSvc func(name, mode, pprof string, extra ...string) (*proc, error), client *http.Client, emu string, stderr io.Writer) (*floodResult, error) {
	p, err := startSvc("flood", "safe", "", "WXAUTH_TRUSTED_PROXIES=127.0.0.1/32",
		"WXAUTH_RATE_LIMIT=10", "WXAUTH_RATE_BURST=40")
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	callsBefore, err := emuCount(ctx, client, emu, "/cgi-bin/qrcode/create")
	if err != nil {
		return nil, err
	}
	res := &floodResult{c: o.rssC, addrs: o.floodAddrs, statuses: map[string]map[int]int{}}
	_, res.before, _ = memStatus(p.pid())

	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.d)
	defer cancel()
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if _, rss, err := memStatus(p.pid()); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range res.c {
		wg.Go(func() {
			counts := map[string]map[int]int{}
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				fp := floodPaths[i%len(floodPaths)]
				a := i % res.addrs
				var body io.Reader
				if fp.body != "" {
					body = strings.NewReader(fp.body)
				}
				req, _ := http.NewRequestWithContext(ctx, fp.method, p.url+fp.path, body)
				req.Header.Set("X-Forwarded-For", "10."+strconv.Itoa(a>>16&255)+"."+strconv.Itoa(a>>8&255)+"."+strconv.Itoa(a&255))
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				status := -1
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				} else if ctx.Err() != nil {
					break
				}
				if counts[fp.name] == nil {
					counts[fp.name] = map[int]int{}
				}
				counts[fp.name][status]++
			}
			mu.Lock()
			defer mu.Unlock()
			for path, m := range counts {
				if res.statuses[path] == nil {
					res.statuses[path] = map[int]int{}
				}
				for s, n := range m {
					res.statuses[path][s] += n
					res.requests += n
				}
			}
		})
	}
	wg.Wait()
	<-sampled
	res.peak = peak.Load()
	if !p.Alive() {
		return nil, fmt.Errorf("the service exited during the flood:\n%s", p.Output())
	}
	// After: the flood over, a second for the sweeps and the GC to run.
	time.Sleep(time.Second)
	res.hwm, res.after, err = memStatus(p.pid())
	if err != nil {
		return nil, err
	}
	callsAfter, err := emuCount(context.Background(), client, emu, "/cgi-bin/qrcode/create")
	if err != nil {
		return nil, err
	}
	res.qrCalls = callsAfter - callsBefore
	fmt.Fprintf(stderr, "flood c=%d from %d addresses: %d requests, VmRSS %.1f -> peak %.1f -> %.1f MiB, qrcode/create %d\n",
		res.c, res.addrs, res.requests, mib(res.before), mib(res.peak), mib(res.after), res.qrCalls)
	return res, nil
}

// emuCount returns the emulator's count of calls to path (GET /emu/calls).
func emuCount(ctx context.Context, client *http.Client, emu, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, emu+"/emu/calls", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("emulator calls: %w", err)
	}
	defer resp.Body.Close()
	var calls map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&calls); err != nil {
		return 0, fmt.Errorf("emulator calls: %w", err)
	}
	return calls[path], nil
}

// mib is bytes in MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// statusSummary formats per-path status counts as "path: 302 x N, 429 x M; ...".
func (r *floodResult) statusSummary() string {
	paths := make([]string, 0, len(r.statuses))
	for p := range r.statuses {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var parts []string
	for _, p := range paths {
		codes := make([]int, 0, len(r.statuses[p]))
		for c := range r.statuses[p] {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		var cs []string
		for _, c := range codes {
			name := strconv.Itoa(c)
			if c < 0 {
				name = "transport error"
			}
			cs = append(cs, fmt.Sprintf("%s x %d", name, r.statuses[p][c]))
		}
		parts = append(parts, p+": "+strings.Join(cs, ", "))
	}
	return strings.Join(parts, "; ")
}
