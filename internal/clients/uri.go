package clients

import (
	"net"
	"net/url"
	"strings"
)

// checkRedirect returns why u cannot be a registered redirect URI, or "".
func checkRedirect(u string) string {
	p, err := url.Parse(u)
	switch {
	case err != nil || !p.IsAbs() || p.Host == "":
		return "must be an absolute URL"
	case p.Fragment != "" || strings.Contains(u, "#"):
		return "must not have a #fragment"
	case p.User != nil:
		return "must not carry user:password@"
	case p.Scheme == "https":
		return ""
	case p.Scheme == "http" && isLoopback(p.Hostname()):
		return ""
	case p.Scheme == "http":
		return "http is allowed only on 127.0.0.1, [::1] or localhost; use https"
	default:
		return "scheme must be https (or http on a loopback host)"
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// originOf returns scheme://host[:port] of an absolute URL, or "".
func originOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
}
