package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// apiError is every error a client can meet: an HTTP status, an OAuth-style
// code for JSON clients, and a bilingual title and message for the H5 page.
type apiError struct {
	Status    int
	Code      string // JSON "error"
	Title     string
	TitleZh   string
	Message   string // JSON "error_description"
	MessageZh string
	RetryURL  string // H5 page: a "try again" link, when one helps
	// Confirm makes the H5 page a question answered by a form's button
	// (the logout confirmation); JSON clients get the rest.
	Confirm *login.Confirm
}

func (e apiError) withMessage(en, zh string) apiError {
	e.Message, e.MessageZh = en, zh
	return e
}

func (e apiError) withRetry(u string) apiError {
	e.RetryURL = u
	return e
}

var (
	errInternal = apiError{Status: http.StatusInternalServerError, Code: "server_error",
		Title: "Something went wrong", TitleZh: "出错了",
		Message: "An internal error occurred. Please try again; if it persists, quote the id below.", MessageZh: "服务内部错误，请稍后重试；如果一直出现，请提供下方编号。"}
	errUnavailable = apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Title: "Service busy", TitleZh: "服务繁忙",
		Message: "The service cannot reach its storage right now. Please try again in a moment.", MessageZh: "服务暂时无法访问存储，请稍后重试。"}
	errWeChatBusy = apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Title: "WeChat is busy", TitleZh: "微信繁忙",
		Message: "WeChat did not answer in time. Please try again.", MessageZh: "微信服务暂时繁忙，请重试。"}
	errBadRequest = apiError{Status: http.StatusBadRequest, Code: "invalid_request",
		Title: "Invalid request", TitleZh: "请求无效"}
	errLoginExpired = apiError(login.ProblemExpired)
	errNotFound     = apiError{Status: http.StatusNotFound, Code: "not_found",
		Title: "Not found", TitleZh: "页面不存在", Message: "There is nothing at this address.", MessageZh: "该地址不存在。"}
	errMethod = apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Title: "Method not allowed", TitleZh: "不支持的请求方法", Message: "This endpoint does not accept that method.", MessageZh: "该接口不支持此请求方法。"}
	errTooLarge = apiError{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request",
		Title: "Request too large", TitleZh: "请求过大", Message: "The request body is too large.", MessageZh: "请求内容过大。"}
)

// fromError maps an internal error to what the client sees: WeChat's
// code-expired errors to "login expired", WeChat's transient failures and
// unreachable stores to 503, anything else to 500 (the detail goes to the
// log only, with the request id).
func (p *pages) fromError(ctx context.Context, step string, err error) apiError {
	switch {
	case wechat.IsCode(err, wechat.CodeInvalidCode, wechat.CodeCodeUsed, wechat.CodeCodeExpired):
		return errLoginExpired
	case wechat.Temporary(err), errors.Is(err, context.DeadlineExceeded):
		p.logger.WarnContext(ctx, "wechat unavailable", "step", step, "err", err, "request_id", RequestID(ctx))
		return errWeChatBusy
	case errors.Is(err, store.ErrUnavailable):
		p.logger.WarnContext(ctx, "store unavailable", "step", step, "err", err, "request_id", RequestID(ctx))
		return errUnavailable
	}
	var we *wechat.Error
	if errors.As(err, &we) && we.Code == wechat.CodeIPWhitelist {
		p.logger.ErrorContext(ctx, "wechat refused this server's IP", "step", step, "api", we.API, "errcode", we.Code, "request_id", RequestID(ctx))
		return apiError{Status: http.StatusBadGateway, Code: "wechat_ip_whitelist", Title: "Server not whitelisted", TitleZh: "服务器 IP 不在白名单中",
			Message:   "WeChat refused this server's IP address (40164): add it to the IP whitelist in the Official Account console.",
			MessageZh: "微信拒绝了本服务器的 IP（40164）：请在公众号后台将其加入 IP 白名单。"}
	}
	if errors.As(err, &we) {
		p.logger.ErrorContext(ctx, "wechat refused", "step", step, "api", we.API, "errcode", we.Code, "request_id", RequestID(ctx))
		return apiError{Status: http.StatusBadGateway, Code: "wechat_error", Title: "WeChat refused the request", TitleZh: "微信拒绝了请求",
			Message:   "WeChat answered with error " + strconv.Itoa(we.Code) + ". Please try again later.",
			MessageZh: "微信返回错误 " + strconv.Itoa(we.Code) + "，请稍后重试。"}
	}
	p.logger.ErrorContext(ctx, "request failed", "step", step, "err", err, "request_id", RequestID(ctx))
	return errInternal
}

// wantsPage reports whether the client is a browser navigating (the login
// pages) rather than an API client.
func wantsPage(r *http.Request) bool {
	switch r.URL.Path {
	case "/login", "/login/qr", "/oauth/callback", "/logout", "/qr/login", "/":
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/json")
}

// error writes e as the H5 page or as JSON {"error","error_description"}.
func (p *pages) error(w http.ResponseWriter, r *http.Request, e apiError) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if wantsPage(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(e.Status)
		if err := p.tmpl.ExecuteTemplate(w, "error.html", errorPageFor(r, e)); err != nil { // pages.go
			p.logger.Error("render error page", "err", err)
		}
		return
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		// DescriptionZh is the same in Chinese, for pages that show it.
		DescriptionZh string `json:"error_description_zh,omitempty"`
		RequestID     string `json:"request_id,omitempty"`
	}{e.Code, e.Message, e.MessageZh, RequestID(r.Context())})
}

func handleNotFound(p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.error(w, r, errNotFound) })
}

func handleMethodNotAllowed(p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.error(w, r, errMethod) })
}
