package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/wxauth/wxauth/internal/metrics"
)

// routeInfo is filled while a request is served: the gorilla/mux route
// template that matched (set by [routeLabel] inside the router) and the
// WeChat errcodes of the calls made for it (filled by metrics.WeChat).
// It lives in the request context for the access log and the metrics.
type routeInfo struct {
	id    string // request id
	route string
	trace *metrics.Trace
}

const routeInfoKey ctxKey = 0

func infoOf(ctx context.Context) *routeInfo {
	ri, _ := ctx.Value(routeInfoKey).(*routeInfo)
	return ri
}

// routeOf returns the route template of the request being served: "/login",
// "/qr/sessions/{id}"; "unmatched" for 404 and 405 answers, so that a scan of
// random paths cannot create label values.
func routeOf(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil && ri.route != "" {
		return ri.route
	}
	return "unmatched"
}

// routeLabel is router middleware (mux.Router.Use): it runs after a route
// matched and records the route's path template.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri := infoOf(r.Context()); ri != nil {
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					ri.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// method bounds the method label to the methods the service knows.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "other"
}

// countLogin counts one login outcome (metrics.LoginSuccess, ...) for the
