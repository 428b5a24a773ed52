package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// rssResult is the peak-RSS phase: a fresh service loaded with every
// target at concurrency c, then its VmHWM.
type rssResult struct {
	c        int
	hwm, rss int64
	rates    []string // "slug rate/s" per target, for the notes
}

func measureRSS(ctx context.Context, o options, startSvc func(name, mode, pprof string) (*proc, error), client *http.Client, stderr io.Writer) (*rssResult, error) {
	p, err := startSvc("rss", "safe", "")
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	setup := &worker{client: client}
	tok, err := login(ctx, setup, p.url)
	if err != nil {
		return nil, err
	}
	jwt := tok.AccessToken
	wx, err := newWXSender(p.url, true)
	if err != nil {
		return nil, err
	}
	res := &rssResult{c: o.rssC}
	if _, idle, err := memStatus(p.pid()); err == nil {
		res.rates = append(res.rates, fmt.Sprintf("idle after one login %.1f MiB", float64(idle)/(1<<20)))
	}
	for _, t := range []struct {
		slug string
		fn   op
	}{
		{"wx-safe", wx.send}, {"verify", opVerify(p.url, jwt)}, {"login", opLogin(p.url)},
		{"jssdk", opJSSDK(p.url)}, {"full-login", opFullLogin(p.url)},
	} {
		r := load(ctx, client, o.rssC, o.warmup, o.d, nil, nil, t.fn)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		hwm, _, _ := memStatus(p.pid())
		fmt.Fprintf(stderr, "rss   c=%d %-12s %9.0f/s  p99 %-9v errors %d  VmHWM %.1f MiB\n", o.rssC, t.slug, r.rate(),
			r.p99.Round(10*time.Microsecond), r.errs, float64(hwm)/(1<<20))
		res.rates = append(res.rates, fmt.Sprintf("%s %.0f/s (VmHWM after it %.1f MiB)", t.slug, r.rate(), float64(hwm)/(1<<20)))
	}
	if !p.Alive() {
		return nil, fmt.Errorf("the service exited:\n%s", p.Output())
	}
	res.hwm, res.rss, err = memStatus(p.pid())
	return res, err
}

// stormResult is the cold storm: n concurrent /jssdk/config on a service
// that has no access token or ticket yet.
type stormResult struct {
	n, ok           int
	p50, p99        time.Duration
	calls           map[string]int
	stable, classic int
	getticket       int
	firstErr        string
}

func coldStorm(ctx context.Context, n int, startSvc func(name, mode, pprof string) (*proc, error), client *http.Client, emu string) (*stormResult, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, emu+"/emu/calls/reset", nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	drain(resp)
	p, err := startSvc("storm", "safe", "")
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	sc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	u := p.url + "/jssdk/config?url=" + url.QueryEscape(benchPage+"?from=storm#x")
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{client: sc}
			<-start
			t0 := time.Now()
			_, errs[i] = w.get(ctx, u, http.StatusOK)
			lat[i] = time.Since(t0)
		}()
	}
	close(start)
	wg.Wait()
	res := &stormResult{n: n}
	var okLat []time.Duration
	for i, err := range errs {
		if err != nil {
			if res.firstErr == "" {
				res.firstErr = err.Error()
			}
			continue
		}
		res.ok++
		okLat = append(okLat, lat[i])
	}
	slices.Sort(okLat)
	res.p50, res.p99 = percentile(okLat, 0.5), percentile(okLat, 0.99)
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, emu+"/emu/calls", nil)
	w := &worker{client: client}
	if _, err := w.do(req, http.StatusOK); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(w.buf.Bytes(), &res.calls); err != nil {
		return nil, fmt.Errorf("/emu/calls: %w", err)
	}
	res.stable, res.classic, res.getticket = res.calls["/cgi-bin/stable_token"], res.calls["/cgi-bin/token"], res.calls["/cgi-bin/ticket/getticket"]
	return res, nil
}
