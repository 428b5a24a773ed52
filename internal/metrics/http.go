package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMethods are the method labels of wxauth_http_requests_total and
// wxauth_http_request_duration_seconds: the methods the service knows,
// anything else "other".
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other"}

// RouteMetrics records the requests of one route template into the same
// series as [Metrics.HTTPRequest], with the label lookups done once per
// method and status instead of on every request: the series are looked up
// on first use and kept. Get one per route from [Metrics.HTTPRoute] when
// the routes are built. A nil *RouteMetrics records nothing. It is safe
// for concurrent use.
type RouteMetrics struct {
	m       *Metrics
	route   string
	methods [len(httpMethods)]routeMethod
}

// routeMethod holds the series of one route and method.
type routeMethod struct {
	dur    atomic.Pointer[prometheus.Observer]
	counts atomic.Pointer[[]statusCounter] // copied on write, a handful of statuses
	mu     sync.Mutex                      // serialises writers of counts
}

type statusCounter struct {
	status int
	c      prometheus.Counter
}

// HTTPRoute returns the recorder of route (a gorilla/mux path template, or
// "unmatched"); nil when m is nil.
func (m *Metrics) HTTPRoute(route string) *RouteMetrics {
	if m == nil {
		return nil
	}
	return &RouteMetrics{m: m, route: route}
}

// Request records one served request of the route: its method (bounded to
// the known methods, else "other"), status and duration in seconds.
func (r *RouteMetrics) Request(method string, status int, seconds float64) {
	if r == nil {
		return
	}
	i := methodIndex(method)
	rm := &r.methods[i]
	obs := rm.dur.Load()
	if obs == nil {
		o := r.m.HTTPDuration.WithLabelValues(r.route, httpMethods[i])
		rm.dur.Store(&o)
		obs = &o
	}
	(*obs).Observe(seconds)
	r.counter(rm, httpMethods[i], status).Inc()
}

// counter returns the counter of status in rm, looking it up on first use.
func (r *RouteMetrics) counter(rm *routeMethod, method string, status int) prometheus.Counter {
	if cs := rm.counts.Load(); cs != nil {
		for _, sc := range *cs {
			if sc.status == status {
				return sc.c
			}
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var old []statusCounter
	if cs := rm.counts.Load(); cs != nil {
		old = *cs
		for _, sc := range old {
			if sc.status == status {
				return sc.c
			}
		}
	}
	c := r.m.HTTPRequests.WithLabelValues(r.route, method, strconv.Itoa(status))
	cs := append(append(make([]statusCounter, 0, len(old)+1), old...), statusCounter{status, c})
	rm.counts.Store(&cs)
	return c
}

// methodIndex is the index in httpMethods of m's label.
func methodIndex(m string) int {
	for i, k := range httpMethods[:len(httpMethods)-1] {
		if m == k {
			return i
		}
	}
	return len(httpMethods) - 1
}
