// Package logx is the redaction layer of wxauth's logs: a [slog.Handler]
// wrapper that keeps secrets (the AppSecret, access and refresh tokens,
// web-authorization codes, JWTs, cookies, the EncodingAESKey, tickets and
// message contents) out of every log line, whatever a package below passes
// to its logger. cmd/authsvc installs it around the JSON or text handler.
//
// It imports the standard library only.
package logx

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces every secret value.
const Redacted = "REDACTED"

// secretKeys are attribute keys (compared lower-case) whose values are
// always replaced.
var secretKeys = map[string]bool{
	"secret": true, "appsecret": true, "app_secret": true, "token": true, "access_token": true,
	"refresh_token": true, "code": true, "jwt": true, "cookie": true, "set-cookie": true,
	"authorization": true, "aes_key": true, "encoding_aes_key": true, "encodingaeskey": true,
	"password": true, "ticket": true, "jsapi_ticket": true, "content": true, "echostr": true,
	"secret_key": true, "admin_token": true, "id_token": true, "session": true,
}

// secretSuffixes extend secretKeys to keys such as "callback_token" or
// "forward_secret".
var secretSuffixes = [...]string{"_secret", "_token", "_password", "_ticket", "_cookie", "_aes_key"}

// IsSecretKey reports whether an attribute named key has its value
// replaced by [Redacted]: the keys secret, appsecret, token, access_token,
// refresh_token, code, jwt, cookie, authorization, aes_key,
// encoding_aes_key, password, ticket, content, echostr (any case), and keys
// ending in _secret, _token, _password, _ticket, _cookie or _aes_key.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	if secretKeys[k] {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

var (
	// jwtRE matches a JWT-shaped run: three base64url segments, the
	// first being a JSON header ("eyJ" is base64 of `{"`).
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// wholeJWT matches a value that is entirely three base64url segments.
	wholeJWT = regexp.MustCompile(`^[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}$`)
	// queryRE matches secret query parameters (also inside URLs quoted in
	// errors) up to the next separator.
	queryRE = regexp.MustCompile(`(?i)(^|[?&\s;,"'(])(secret|appsecret|code|access_token|refresh_token|ticket|echostr)=([^&\s"',;)#]*)`)
)

// Scrub returns s with JWT-shaped runs and the values of secret=, code=,
// access_token=, refresh_token=, ticket= and echostr= parameters replaced
// by [Redacted]. A string that is entirely three base64url segments is
// replaced whole.
func Scrub(s string) string {
	if strings.Count(s, ".") == 2 && wholeJWT.MatchString(s) {
		return Redacted
	}
	if strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllString(s, Redacted)
	}
	if strings.IndexByte(s, '=') >= 0 {
		s = queryRE.ReplaceAllString(s, "${1}${2}="+Redacted)
	}
	return s
}

// Handler wraps a slog.Handler and redacts every record before it reaches
// it: values of secret keys (see [IsSecretKey]) become [Redacted]; other
// string values, error values (formatted with Error()), the message and
// groups are passed through [Scrub]. Values of other kinds (numbers, times,
// booleans) pass unchanged; other Any values are formatted with
// fmt-like %v by slog itself and are not inspected, so callers must not
// log structs holding secrets.
type Handler struct {
	next slog.Handler
}

// New returns next wrapped in the redaction layer.
func New(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled reports whether next handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts r and passes the copy to next; next's error is returned.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts as once and passes them to next.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return &Handler{next: h.next.WithAttrs(red)}
}

// WithGroup opens a group on next.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	}
	if IsSecretKey(a.Key) {
		if v.Kind() == slog.KindString && v.String() == "" {
			return slog.String(a.Key, "")
		}
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(x.Error()))
		case []byte:
			return slog.String(a.Key, Scrub(string(x)))
		case interface{ String() string }:
			return slog.String(a.Key, Scrub(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

var _ slog.Handler = (*Handler)(nil)
