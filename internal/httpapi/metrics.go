package httpapi

import (
	"context"
	"net/http"

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
