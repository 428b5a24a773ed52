// Package redirect decides which URLs wxauth may send a browser to after a
// login (the post-login redirect, the JS-SDK page URL). An Allowlist holds
// exact origins (scheme://host[:port]) and https wildcard domains
// (https://*.example.com). Check rejects everything that is not a plain
// absolute http(s) URL on a listed origin: userinfo, backslashes, control
// characters and white space, protocol-relative and scheme-less tricks,
// non-ASCII or percent-encoded hosts, numeric-IP spellings that are not
// listed. The hostile corpus of oauth2-proxy (testdata/openredirects.txt) is
// its test. It imports the standard library only.
package redirect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the longest URL Check accepts, in bytes.
const MaxLength = 2048

// ErrNotAllowed is returned (wrapped, with the reason) by [Allowlist.Check]
// for any URL it refuses.
var ErrNotAllowed = errors.New("redirect not allowed")

// Allowlist is an immutable set of allowed origins; safe for concurrent use.
type Allowlist struct {
	exact    map[string]struct{} // "https://h5.example.com:8443"
	wildcard []string            // ".example.com" (https only)
	origins  []string            // as configured, for CORS and display
}

// Parse builds an Allowlist from entries of the form scheme://host[:port]
// (scheme http or https, no path, query or userinfo) or https://*.domain.
// Errors name the offending entry.
func Parse(entries []string) (*Allowlist, error) {
	a := &Allowlist{exact: map[string]struct{}{}}
	for _, e := range entries {
		e = strings.TrimRight(strings.TrimSpace(e), "/")
		if e == "" {
			continue
		}
		low := strings.ToLower(e)
		if rest, ok := strings.CutPrefix(low, "https://*."); ok {
			if !validHost(rest) || strings.Contains(rest, ":") {
				return nil, fmt.Errorf("entry %q: the wildcard domain is not a valid host name", e)
			}
			a.wildcard = append(a.wildcard, "."+rest)
			a.origins = append(a.origins, low)
			continue
		}
		u, err := url.Parse(low)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || !validHostPort(u.Host) {
			return nil, fmt.Errorf("entry %q: want scheme://host[:port] or https://*.domain", e)
		}
		a.exact[u.Scheme+"://"+u.Host] = struct{}{}
		a.origins = append(a.origins, u.Scheme+"://"+u.Host)
	}
	if len(a.exact)+len(a.wildcard) == 0 {
		return nil, errors.New("no entries")
	}
	return a, nil
}

// Origins returns the configured entries, normalised to lower case.
func (a *Allowlist) Origins() []string { return append([]string(nil), a.origins...) }

// Check parses raw and returns it if it is an absolute http(s) URL whose
// origin is allowed. The returned URL has no fragment when stripFragment is
// true. Errors wrap [ErrNotAllowed] with a reason fit for an error page.
func (a *Allowlist) Check(raw string, stripFragment bool) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrNotAllowed)
	}
	if len(raw) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrNotAllowed, MaxLength)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return nil, fmt.Errorf("%w: contains a space, control, backslash or non-ASCII character", ErrNotAllowed)
		}
	}
	// Scheme and authority are checked by hand before url.Parse, which is
	// lenient (it accepts "http:host", "http:/host" and opaque forms).
	var scheme, rest string
	switch {
	case hasPrefixFold(raw, "https://"):
		scheme, rest = "https", raw[len("https://"):]
	case hasPrefixFold(raw, "http://"):
		scheme, rest = "http", raw[len("http://"):]
	default:
		return nil, fmt.Errorf("%w: not an absolute http or https URL", ErrNotAllowed)
	}
	end := strings.IndexAny(rest, "/?#")
	authority := rest
	if end >= 0 {
		authority = rest[:end]
	}
	if authority == "" || strings.ContainsAny(authority, "@%;,[]") {
		return nil, fmt.Errorf("%w: the host part is empty or carries userinfo, escapes or an IP literal", ErrNotAllowed)
	}
	host := strings.ToLower(authority)
	if !validHostPort(host) {
		return nil, fmt.Errorf("%w: invalid host", ErrNotAllowed)
	}
	if !a.allowed(scheme, host) {
		// Not the setting's name: the reason may reach an end user's page.
		return nil, fmt.Errorf("%w: %s://%s is not an allowed origin", ErrNotAllowed, scheme, host)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || !strings.EqualFold(u.Host, authority) {
		return nil, fmt.Errorf("%w: malformed URL", ErrNotAllowed)
	}
	parts := []string{u.EscapedPath(), u.RawQuery}
	if stripFragment {
		u.Fragment, u.RawFragment = "", ""
	} else {
		parts = append(parts, u.EscapedFragment())
	}
	for _, part := range parts {
		if err := checkDecoded(part); err != nil {
			return nil, err
		}
	}
	u.Scheme, u.Host = scheme, host
	return u, nil
}

// checkDecoded refuses a URL part whose percent-decoded form (decoded
// once, "+" kept) is not valid UTF-8 or contains a control character
// (C0, DEL, C1), whitespace of any kind (U+0085, U+00A0, U+2028, ...) or an
// invisible format character (bidi overrides, zero-width): "/a%0d%0aSet-
// Cookie:" or "/%E2%80%AEfdp.exe" would otherwise reach the page and
// whatever logs, headers or HTML it lands in.
func checkDecoded(part string) error {
	if part == "" {
		return nil
	}
	dec, err := url.PathUnescape(part)
	if err != nil {
		return fmt.Errorf("%w: malformed percent-encoding", ErrNotAllowed)
	}
	if !utf8.ValidString(dec) {
		return fmt.Errorf("%w: percent-encoding that is not UTF-8", ErrNotAllowed)
	}
	for _, r := range dec {
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: an encoded control, whitespace or format character (%U)", ErrNotAllowed, r)
		}
	}
	return nil
}

// AllowedOrigin reports whether origin (an Origin request header value,
// scheme://host[:port]) is allowed; used for CORS.
func (a *Allowlist) AllowedOrigin(origin string) bool {
	scheme, host, ok := strings.Cut(strings.ToLower(origin), "://")
	if !ok || (scheme != "http" && scheme != "https") || !validHostPort(host) {
		return false
	}
	return a.allowed(scheme, host)
}

func (a *Allowlist) allowed(scheme, hostport string) bool {
	if _, ok := a.exact[scheme+"://"+hostport]; ok {
		return true
	}
	if scheme != "https" || strings.Contains(hostport, ":") {
		return false
	}
	for _, w := range a.wildcard {
		if len(hostport) > len(w) && strings.HasSuffix(hostport, w) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// validHostPort accepts host or host:port with a DNS name of [a-z0-9-.]
// labels (no empty label, no leading or trailing hyphen or dot) and a
// decimal port 1..65535. IP literals in brackets are refused; dotted IPv4 is
// a DNS-shaped name and passes only if listed exactly.
func validHostPort(hp string) bool {
	host, port, hasPort := strings.Cut(hp, ":")
	if hasPort {
		if port == "" || len(port) > 5 || port[0] == '0' {
			return false
		}
		n := 0
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
			n = n*10 + int(port[i]-'0')
		}
		if n < 1 || n > 65535 {
			return false
		}
	}
	return validHost(host)
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
