package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/redirect"
)

// A loader reads one variable at a time from the environment, then the
// file, and records what is wrong with each in problems.
type loader struct {
	getenv   func(string) string
	file     map[string]string
	problems Problems
}

func (l *loader) raw(name string) (string, bool) {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v, true
	}
	v, ok := l.file[name]
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (l *loader) str(name, def string) string {
	if v, ok := l.raw(name); ok {
		return v
	}
	return def
}

func (l *loader) float(name string, def float64) float64 {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		l.problems[name] = "must be a number >= 0 (requests per second; 0 turns the limit off)"
		return def
	}
	return f
}

func (l *loader) positiveInt(name string, def int) int {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		l.problems[name] = "must be a whole number >= 1"
		return def
	}
	return n
}

// prefixes parses comma-separated CIDRs; a bare IP is a /32 or /128.
func (l *loader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range l.list(name) {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				l.problems[name] = "must be comma-separated CIDRs such as 10.0.0.0/8,127.0.0.1/32 (bad entry " + strconv.Quote(e) + ")"
				return nil
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (l *loader) list(name string) []string {
	v, _ := l.raw(name)
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	l.problems[name] = "must be one of " + strings.Join(allowed, ", ")
	return def
}

func (l *loader) duration(name string, def time.Duration, zeroOK bool) time.Duration {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && !zeroOK) {
		l.problems[name] = "must be a positive duration such as 300s, 15m or 720h (a bare number means seconds)"
		return def
	}
	return d
}

func (l *loader) key(name string, required bool) []byte {
	v, ok := l.raw(name)
	if !ok {
		if required {
			l.problems[name] = "required: 32 random bytes, base64 (openssl rand -base64 32)"
		}
		return nil
	}
	k, err := DecodeKey(v)
	if err != nil {
		l.problems[name] = err.Error()
		return nil
	}
	return k
}

// DecodeKey decodes a 32-byte key given in standard or URL-safe base64,
// padded or not. Errors name the decoded length.
func DecodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("must be base64 of 32 bytes (openssl rand -base64 32)")
}

// ParseDuration accepts a Go duration ("15m", "720h") or a whole number of
// seconds ("300").
func ParseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ParseAllowlist validates WXAUTH_ALLOWED_REDIRECTS entries; see
// [redirect.Parse].
func ParseAllowlist(entries []string) (*redirect.Allowlist, error) { return redirect.Parse(entries) }
