package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProxyCalls is the metric families of the WeChat API proxy (/cgi-bin/),
// fed through the proxy's Observer hook. A nil *ProxyCalls records nothing.
type ProxyCalls struct {
	// Calls is wxauth_proxy_calls_total{client,api,errcode}: calls answered
	// by WeChat (and proxy tokens issued, api "token" or "stable_token"),
	// by client_id, path below /cgi-bin/ ("other" past the proxy's bound of
	// distinct paths) and WeChat's errcode ("0" for success, "http_<status>"
	// for a non-200 answer).
	Calls *prometheus.CounterVec
	// Duration is wxauth_proxy_call_duration_seconds{client,api}, in
	// seconds, body streaming included.
	Duration *prometheus.HistogramVec
	// Retries is wxauth_proxy_retries_total{client,api}: calls sent again
	// after WeChat refused the access_token (40001, 40014, 42001).
	Retries *prometheus.CounterVec
	// Refusals is wxauth_proxy_refusals_total{client,reason}: requests the
	// proxy answered itself (client "-" when unknown; reasons such as
	// invalid_token, invalid_client, not_allowed, rate_limited, too_large,
	// upstream_unreachable).
	Refusals *prometheus.CounterVec
}

// NewProxyCalls creates the proxy's families and registers them on reg (nil
// leaves them unregistered). Registering twice on one registry panics, at
// startup.
func NewProxyCalls(reg prometheus.Registerer) *ProxyCalls {
	m := &ProxyCalls{
		Calls: counterVec("wxauth_proxy_calls_total",
			"WeChat API calls through the proxy by client, API path and errcode.", "client", "api", "errcode"),
		Duration: histogramVec("wxauth_proxy_call_duration_seconds",
			"Duration of proxied WeChat API calls, in seconds.",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120}, "client", "api"),
		Retries: counterVec("wxauth_proxy_retries_total",
			"Proxied calls sent again after WeChat refused the access_token.", "client", "api"),
		Refusals: counterVec("wxauth_proxy_refusals_total",
			"Proxy requests refused by wxauth, by client and reason.", "client", "reason"),
	}
	if reg != nil {
		reg.MustRegister(m.Calls, m.Duration, m.Retries, m.Refusals)
	}
	return m
}

// ProxyCall records one call answered by WeChat.
func (m *ProxyCalls) ProxyCall(client, api, errcode string, retried bool, d time.Duration) {
	if m == nil {
		return
	}
	m.Calls.WithLabelValues(client, api, errcode).Inc()
	m.Duration.WithLabelValues(client, api).Observe(d.Seconds())
	if retried {
		m.Retries.WithLabelValues(client, api).Inc()
	}
}

// ProxyRefusal records one request refused by the proxy.
func (m *ProxyCalls) ProxyRefusal(client, reason string) {
	if m == nil {
		return
	}
	m.Refusals.WithLabelValues(client, reason).Inc()
}
