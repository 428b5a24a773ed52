package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// op performs one operation of a target (one request, or the several
// requests of a whole login) with the worker's scratch space, and returns
// an error describing any unexpected answer.
type op func(ctx context.Context, w *worker) error

// worker is one closed-loop client: it starts its next operation when the
// previous one has finished.
type worker struct {
	id     int
	client *http.Client
	buf    bytes.Buffer // response body scratch
	seq    uint64       // per-worker sequence, for unique messages
	lat    []time.Duration
}

// do sends req and reads the whole body into w.buf; it fails unless the
// status is want.
func (w *worker) do(req *http.Request, want int) (*http.Response, error) {
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return resp, &statusError{path: req.URL.Path, got: resp.StatusCode, want: want, body: w.buf.String()}
	}
	return resp, nil
}

// get is do for a GET of u with header pairs.
func (w *worker) get(ctx context.Context, u string, want int, headers ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return w.do(req, want)
}

// statusError is an answer with an unexpected status.
type statusError struct {
	path      string
	got, want int
	body      string
}

func (e *statusError) Error() string {
	body := e.body
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	return fmt.Sprintf("%s: status %d, want %d: %s", e.path, e.got, e.want, strings.TrimSpace(body))
}

// result is the outcome of loading one target for one period.
type result struct {
	ops      int                      // operations completed inside the measured window
	errs     int                      // operations that failed inside the window
	window   time.Duration            // measured window (duration minus warm-up)
	p50, p99 time.Duration            // latency of the successful operations
	statuses map[int]int              // unexpected statuses seen, by code
	firstErr string                   // the first error, for the report
	cpu      map[string]time.Duration // CPU time by process name over the window
	others   time.Duration            // CPU time of every other process of the machine over the window
	mallocs  int64                    // heap allocations of the serving process over the window; -1 = unknown
}

// rate is successful operations per second.
func (r result) rate() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.ops) / r.window.Seconds()
}

// newClient returns the one client of the run: keep-alive, a Transport with
// room for conns idle connections per host, no compression, no redirects
// followed (the login flow checks each hop), and a timeout per request.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        4 * conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// load runs op from c closed-loop workers for warmup+d. Operations that
// complete during the warm-up are not counted; the window is d. pids names
// the processes whose CPU time is measured over the window (0 = this one);
// mallocs, when not nil, reads the serving process's cumulative count of
// heap allocations at both ends of the window.
func load(ctx context.Context, client *http.Client, c int, warmup, d time.Duration, pids map[string]int, mallocs func(context.Context) (uint64, error), fn op) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	workers := make([]*worker, c)
	type tally struct {
		errs     int
		statuses map[int]int
		firstErr error
	}
	tallies := make([]tally, c)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, client: client, lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := fn(ctx, w)
				t1 := time.Now()
				if t1.Before(measureFrom) || !t1.Before(end) {
					continue
				}
				if err != nil {
					t.errs++
					if t.firstErr == nil {
						t.firstErr = err
					}
					var se *statusError
					if errors.As(err, &se) {
						if t.statuses == nil {
							t.statuses = map[int]int{}
						}
						t.statuses[se.got]++
					}
					continue
				}
				w.lat = append(w.lat, t1.Sub(t0))
			}
		}()
	}
	// CPU time of each process over the measured window.
	cpu0 := map[string]time.Duration{}
	cpu := map[string]time.Duration{}
	sleepUntil(ctx, measureFrom)
	var m0, m1 uint64
	mallocErr := errors.New("not measured")
	if mallocs != nil {
		m0, mallocErr = mallocs(ctx)
	}
	busy0, busyErr := busyTime()
	for name, pid := range pids {
		cpu0[name], _ = cpuTime(pid)
	}
	sleepUntil(ctx, end)
	busy1, err := busyTime()
	var ours time.Duration
	for name, pid := range pids {
		if t, err := cpuTime(pid); err == nil {
			cpu[name] = t - cpu0[name]
			ours += cpu[name]
		}
	}
	if mallocErr == nil {
		m1, mallocErr = mallocs(ctx)
	}
	wg.Wait()

	r := result{window: d, statuses: map[int]int{}, cpu: cpu, mallocs: -1}
	if mallocErr == nil && m1 >= m0 {
		r.mallocs = int64(m1 - m0)
	}
	if busyErr == nil && err == nil && len(pids) > 0 {
		r.others = max(0, busy1-busy0-ours)
	}
	var all []time.Duration
	for i, w := range workers {
		all = append(all, w.lat...)
		r.errs += tallies[i].errs
		for code, n := range tallies[i].statuses {
			r.statuses[code] += n
		}
		if r.firstErr == "" && tallies[i].firstErr != nil {
			r.firstErr = tallies[i].firstErr.Error()
		}
	}
	r.ops = len(all)
	slices.Sort(all)
	r.p50, r.p99 = percentile(all, 0.50), percentile(all, 0.99)
	return r
}

// percentile returns the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// mallocsOf returns a reader of the cumulative heap allocation count of a
// process from the go_memstats_mallocs_total line of its Prometheus text at
// u (authsvc's /metrics; the hello and peer children answer the same line
// at /metrics). One scrape allocates a few thousand objects of its own,
// small against the tens of thousands of operations of a window.
func mallocsOf(client *http.Client, u string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		w := &worker{client: client}
		if _, err := w.get(ctx, u, http.StatusOK); err != nil {
			return 0, err
		}
		for line := range strings.Lines(w.buf.String()) {
			if v, ok := strings.CutPrefix(line, "go_memstats_mallocs_total "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return uint64(f), err
			}
		}
		return 0, fmt.Errorf("%s: no go_memstats_mallocs_total", u)
	}
}

// drain reads and closes a response body so its connection is reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
