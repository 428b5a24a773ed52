package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestRouteMetrics_Request(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	r := m.HTTPRoute("/verify")
	for range 3 {
		r.Request("GET", 200, 0.001)
	}
	r.Request("GET", 401, 0.001)
	r.Request("BREW", 200, 0.001)
	m.HTTPRequest("/verify", "GET", 200, 0.001) // the same series
	for _, c := range []struct {
		method, status string
		want           float64
	}{{"GET", "200", 4}, {"GET", "401", 1}, {"other", "200", 1}} {
		var got dto.Metric
		if err := m.HTTPRequests.WithLabelValues("/verify", c.method, c.status).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got := got.GetCounter().GetValue(); got != c.want {
			t.Errorf("%s %s: %v requests, want %v", c.method, c.status, got, c.want)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "wxauth_http_request_duration_seconds" && len(f.GetMetric()) != 2 {
			t.Errorf("%d duration series, want 2 (GET and other)", len(f.GetMetric()))
		}
	}
	var nilRoute *RouteMetrics
	nilRoute.Request("GET", 200, 0)
	if (*Metrics)(nil).HTTPRoute("/x") != nil {
		t.Error("a nil Metrics gave a recorder")
	}
}

// BenchmarkRouteMetrics_Request is one request recorded through the
// route's kept series; BenchmarkMetrics_HTTPRequest the same through the
// label lookups of every request.
func BenchmarkRouteMetrics_Request(b *testing.B) {
	r := New(nil).HTTPRoute("/verify")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request("GET", 200, 0.001)
		}
	})
}

func BenchmarkMetrics_HTTPRequest(b *testing.B) {
	m := New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.HTTPRequest("/verify", "GET", 200, 0.001)
		}
	})
}
