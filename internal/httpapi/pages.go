package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// The H5 error page's view: what happened (zh, then en), the next action,
// and the request id small for support. The detail of a failure (a Go
// error, a configuration variable's name) never reaches it: it goes to the
// operator's log line with the same request id.

// errorPage is the data of web/templates/error.html.
type errorPage struct {
	apiError
	RequestID string
	// Retry repeats what failed ("重试 · Try again"): set for busy and
	// unavailable errors (409, 429, 503), from apiError.RetryURL or the
	// current GET request; empty when nothing can be retried.
	Retry string
	// Start is where the user starts again: the login the error belongs to
	// (RetryURL, when the error is not a busy one), else the page that
	// started it (RetryURL's redirect), else the service's root. Never
	// empty, so no error page is a dead end.
	Start string
	// StartLabel and StartLabelZh name Start: log in again, back to the
	// page, or the service's home.
	StartLabel, StartLabelZh string
}

// errorPageFor builds the page of e for r.
func errorPageFor(r *http.Request, e apiError) errorPage {
	pg := errorPage{apiError: e, RequestID: RequestID(r.Context())}
	busy := e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests || e.Status == http.StatusConflict
	if busy {
		pg.Retry = e.RetryURL
		if pg.Retry == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path != "/oauth/callback" {
			// A callback's code works once: retrying its URL cannot help.
			pg.Retry = r.URL.RequestURI()
		}
	}
	origin := loginOrigin(e.RetryURL)
	switch {
	case e.Confirm != nil:
		pg.Start, pg.StartLabelZh, pg.StartLabel = "/", "取消", "Cancel"
	case !busy && e.RetryURL != "":
		pg.Start, pg.StartLabelZh, pg.StartLabel = e.RetryURL, "重新登录", "Log in again"
	case origin != "":
		pg.Start, pg.StartLabelZh, pg.StartLabel = origin, "返回网页", "Back to the page"
	default:
		pg.Start, pg.StartLabelZh, pg.StartLabel = "/", "返回首页", "Start again from the home page"
	}
	return pg
}

// loginOrigin returns the page a login returns to, read from the redirect
// parameter of a restart URL that the handlers built (/login?redirect=...
// or /qr/login?redirect=...) from an already checked redirect; "" when u is
// not such a URL.
func loginOrigin(u string) string {
	if !strings.HasPrefix(u, "/login?") && !strings.HasPrefix(u, "/qr/login?") {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	target := p.Query().Get("redirect")
	if !strings.HasPrefix(target, "https://") && !strings.HasPrefix(target, "http://") {
		return ""
	}
	return target
}

// redirectRefused is the error for a redirect (or page URL) that the
// allowlist refuses, raw being what the client sent. The user reads, in
// plain words, that the page cannot be returned to; the reason (the refused
// origin) and the setting that lists the allowed ones go to the log at Warn
// with the request id, for the operator.
func (p *pages) redirectRefused(ctx context.Context, raw string, err error) apiError {
	p.logRefused(ctx, "redirect refused", err)
	if raw == "" {
		return errBadRequest.withMessage(
			"This login link does not say which page to return to. Please open the login from the web page again.",
			"登录链接缺少返回地址，请从原网页重新进入登录。")
	}
	return errBadRequest.withMessage(
		"The page that started this login is not one this service may return to, so the login cannot go on. If this keeps happening, give the site's support the request id below.",
		"发起登录的网页不在本服务允许返回的范围内，无法继续登录。如果一直出现，请将下方的请求编号告知网站客服。")
}

// logRefused writes the operator's line for a URL the allowlist refused:
// the reason and the setting that lists the allowed origins, with the
// request id (never on the client's page).
func (p *pages) logRefused(ctx context.Context, msg string, err error) {
	p.logger.WarnContext(ctx, msg, "err", err, "setting", "WXAUTH_ALLOWED_REDIRECTS", "request_id", RequestID(ctx))
}
