package wechat

import (
	"net/http"
	"time"
)

// MaxIdleConnsPerHost is how many idle keep-alive connections to one host
// (api.weixin.qq.com) the client of [NewHTTPClient] keeps. net/http's
// default of 2 closes every connection beyond the second once a burst of
// concurrent logins is over, so the next burst dials (and in production
// completes a TLS handshake) again: on loopback that was 4 % of the
// service's CPU per login and 16,000 sockets in TIME_WAIT after one
// benchmark round.
const MaxIdleConnsPerHost = 64

// NewHTTPClient returns an http.Client for WeChat's API (or another
// upstream called on a request's path, such as the callback forwarder):
// timeout bounds each attempt (it must be > 0, as [Config.HTTPClient]
// requires); the transport is net/http's default one (proxy from the
// environment, dial and TLS handshake timeouts, HTTP/2) keeping up to
// MaxIdleConnsPerHost idle connections per host, 90 s each.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: NewTransport()}
}

// NewTransport returns net/http's default transport (proxy from the
// environment, dial and TLS handshake timeouts, HTTP/2) keeping up to
// MaxIdleConnsPerHost idle connections per host, 90 s each: the transport
// of [NewHTTPClient], for a caller that sets its own timeouts (the WeChat
// API proxy).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.MaxIdleConns = 4 * MaxIdleConnsPerHost
	return t
}
