package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxauth/wxauth/internal/metrics"
)

// routeInfo is filled while a request is served: the gorilla/mux route
// template that matched and its metric series (set by the handler
// [labelRoutes] wrapped around each route) and the WeChat errcodes of the
// calls made for it (filled by metrics.WeChat). It lives in the request
// context for the access log and the metrics.
type routeInfo struct {
	id    string // request id
	route string
	rm    *metrics.RouteMetrics // the route's series; nil until a route matched
	trace *metrics.Trace
}

const routeInfoKey ctxKey = 0

func infoOf(ctx context.Context) *routeInfo {
	ri, _ := ctx.Value(routeInfoKey).(*routeInfo)
	return ri
}

// qrTracker counts, for wxauth_qr_login_attempts_active, the QR login
// attempts of this instance that started and have not yet completed or
// outlived their life (the scanning TTL plus qrlogin.CompleteWindow). The
// QR handlers call start when they create an attempt and end when it
// completes; a nil *qrTracker (no metrics, no QR login) does nothing.
type qrTracker struct {
	m    *metrics.Metrics
	life time.Duration

	mu     sync.Mutex
	active map[string]*time.Timer
}

func (q *qrTracker) start(id string) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active[id]; ok {
		return
	}
	q.active[id] = time.AfterFunc(q.life, func() { q.end(id) })
	q.m.QRAttemptStarted()
}

func (q *qrTracker) end(id string) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.active[id]
	if !ok {
		return
	}
	t.Stop()
	delete(q.active, id)
	q.m.QRAttemptEnded()
}

// labelRoutes wraps the handler of every route of r (after addRoutes) in
// one that records the route's path template and its metric series in the
// request's routeInfo: both are found once here, not on every request
// (gorilla/mux would otherwise rebuild a middleware chain per request, and
// the template and the label lookups with it).
func labelRoutes(r *mux.Router, m *metrics.Metrics) {
	r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		h := route.GetHandler()
		tpl, err := route.GetPathTemplate()
		if h == nil || err != nil {
			return nil
		}
		rm := m.HTTPRoute(tpl)
		route.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ri := infoOf(r.Context()); ri != nil {
				ri.route, ri.rm = tpl, rm
			}
			h.ServeHTTP(w, r)
		}))
		return nil
	})
}

// countLogin counts one login outcome (metrics.LoginSuccess, ...) for the
