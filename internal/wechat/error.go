package wechat

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Error is returned when WeChat answers HTTP 200 with a non-zero errcode,
// that is a body of the shape {"errcode":N,"errmsg":"..."}. Match on Code
// (see [IsCode] and the Code constants): Msg is for people and carries a
// suffix such as " rid: 6650a1b2-1c2d3e4f-5a6b7c8d" (older answers: "hints:
// [ req_id: ... ]") that changes with every request.
//
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
type Error struct {
	// API is the path of the call, such as "sns/oauth2/access_token"; never
	// its query, which may hold secrets.
	API string
	// Code is WeChat's errcode.
	Code int
	// Msg is WeChat's errmsg, verbatim.
	Msg string
}

// Error returns "wechat: API: errcode N: errmsg".
func (e *Error) Error() string {
	return "wechat: " + e.API + ": errcode " + strconv.Itoa(e.Code) + ": " + e.Msg
}

// WeChat return codes the package and its callers match on. The meaning of
// each is on
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
// and on the page of the API that returns it.
const (
	CodeBusy                 = -1    // system busy: retry with backoff
	CodeOK                   = 0     // success
	CodeInvalidCredential    = 40001 // invalid credential / access_token not the latest
	CodeInvalidGrantType     = 40002 // invalid grant_type
	CodeInvalidOpenID        = 40003 // invalid openid
	CodeInvalidAppID         = 40013 // invalid appid
	CodeInvalidAccessToken   = 40014 // illegal access_token
	CodeInvalidButtonCount   = 40016 // menu: invalid number of top-level buttons
	CodeInvalidButtonType    = 40017 // menu: invalid button type
	CodeInvalidButtonName    = 40018 // menu: invalid button name length
	CodeInvalidButtonKey     = 40019 // menu: invalid button key length
	CodeInvalidButtonURL     = 40020 // menu: invalid button url length
	CodeInvalidSubButtonCnt  = 40023 // menu: invalid number of sub-buttons
	CodeInvalidSubButtonType = 40024 // menu: invalid sub-button type
	CodeInvalidSubButtonName = 40025 // menu: invalid sub-button name length
	CodeInvalidSubButtonKey  = 40026 // menu: invalid sub-button key length
	CodeInvalidSubButtonURL  = 40027 // menu: invalid sub-button url length
	CodeInvalidCode          = 40029 // invalid (or, in practice, expired) web-authorization code
	CodeInvalidRefreshToken  = 40030 // invalid web refresh_token
	CodeAppSecret            = 40125 // invalid appsecret
	CodeCodeUsed             = 40163 // web-authorization code already used
	CodeIPWhitelist          = 40164 // caller IP not in the API IP whitelist
	CodeAppSecretFrozen      = 40243 // AppSecret frozen
	CodeMissingAccessToken   = 41001 // access_token missing
	CodeAccessTokenExpired   = 42001 // access_token expired
	CodeRefreshTokenExpired  = 42002 // web refresh_token expired (30 days)
	CodeCodeExpired          = 42003 // web-authorization code expired (5 minutes)
	CodeTokenVoided          = 42007 // user's tokens voided after a password change
	CodeQuota                = 45009 // daily API quota reached
	CodeTooFrequent          = 45011 // calls too frequent
	CodeNoMenu               = 46003 // no menu exists
	CodeParse                = 47001 // JSON/XML body cannot be parsed
	CodeUnauthorized         = 48001 // API unauthorized (e.g. sns/userinfo with a snsapi_base or a snapshot user's token)
	CodeIPPending            = 89501 // caller IP awaits the administrator's confirmation (IP risk control)
	CodeIPConfirm            = 89503 // caller IP needs the administrator's confirmation (IP risk control)
	CodeIPRefusedTwice       = 89506 // caller IP refused twice by the administrator: blocked for 24 hours
	CodeIPRefused            = 89507 // caller IP refused by the administrator: blocked for 1 hour
)

// ErrAnswerLost is wrapped by the error of [Client.Exchange] when the
// request may have reached WeChat but no answer of WeChat's came back: a
// timeout or a dropped connection after the request was written, an HTTP
// 5xx from a gateway, an unreadable body. WeChat has then most likely
// consumed the code, so the exchange is not tried again (a second try could
// only get 40163); the caller should start a new authorization, as for
// [IsDeadCode]. The error also wraps the failure itself ([*url.Error],
// [*StatusError]), so [Temporary] and errors.As still see it.
var ErrAnswerLost = errors.New("wechat: the answer was lost after the request was sent")

// answerLostError is ErrAnswerLost joined with the failure that caused it.
type answerLostError struct {
	api string
	err error
}

func (e *answerLostError) Error() string {
	return "wechat: " + e.api + ": no answer after the request was sent (not repeated): " + e.err.Error()
}

func (e *answerLostError) Unwrap() []error { return []error{ErrAnswerLost, e.err} }

// IsDeadCode reports whether err says that a web-authorization code can no
// longer be exchanged: an [*Error] with Code 40163 ([CodeCodeUsed]: used
// already, for instance by the first of WeChat's two redirects or by an
// exchange whose answer was lost), 40029 ([CodeInvalidCode]: unknown, expired
// or of another appid; what WeChat answers in practice for an expired code)
// or 42003 ([CodeCodeExpired]). Such a code is not a dead end: the login
// should send the browser through a new authorization once (silent for
// snsapi_base and for followers opening the page from the account), with a
// guard so that a second dead code ends in an error page instead of a loop.
// An exchange that failed with [ErrAnswerLost] most likely consumed its code
// as well and deserves the same single restart; IsDeadCode does not include
// it because it is also what a WeChat outage looks like.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func IsDeadCode(err error) bool {
	return IsCode(err, CodeCodeUsed, CodeInvalidCode, CodeCodeExpired)
}

// NeedsReauthorization reports whether err, from [Client.Refresh],
// [Client.UserInfo] or [Client.CheckToken], says the user's web tokens are
// gone for good and only a new authorization helps: 40030 (invalid
// refresh_token, also once a later authorization of the same user replaced
// it), 42002 (refresh_token expired after 30 days) or 42007 (tokens voided
// after the user changed the WeChat password or the AppSecret was reset).
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func NeedsReauthorization(err error) bool {
	return IsCode(err, CodeInvalidRefreshToken, CodeRefreshTokenExpired, CodeTokenVoided)
}

// IsCode reports whether err, or an error it wraps, is an [*Error] whose Code
// is one of codes.
func IsCode(err error, codes ...int) bool {
	var we *Error
	if !errors.As(err, &we) {
		return false
	}
	for _, c := range codes {
		if we.Code == c {
			return true
		}
	}
	return false
}

// StaleToken reports whether code is WeChat's refusal of the access_token a
// call carried: 40001 (not the latest), 40014 (illegal) or 42001 (expired).
// A caller invalidates that token and sends the call again once.
//
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
func StaleToken(code int) bool {
	switch code {
	case CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired:
		return true
	}
	return false
}

// isStaleToken reports whether err is a *Error whose code is StaleToken's.
func isStaleToken(err error) bool {
	var we *Error
	return errors.As(err, &we) && StaleToken(we.Code)
}

// maxErrorBody is how much of a non-200 body a [StatusError] keeps, in bytes.
const maxErrorBody = 1 << 10

// StatusError is returned when WeChat (or a proxy in front of it) answers
// with an HTTP status other than 200.
type StatusError struct {
	// API is the path of the call, never its query.
	API string
	// StatusCode is the HTTP status code, e.g. 502.
	StatusCode int
	// Body is the start of the response body, at most 1 KiB (1024 bytes).
	Body string
}

// Error returns "wechat: API: HTTP status N: body".
func (e *StatusError) Error() string {
	s := "wechat: " + e.API + ": HTTP status " + strconv.Itoa(e.StatusCode)
	if b := strings.TrimSpace(e.Body); b != "" {
		s += ": " + b
	}
	return s
}

// Temporary reports whether err is a failure that may go away by itself and
// that the HTTP layer shows as "WeChat is busy, retry": errcode -1
// ([CodeBusy]) or 45011 ([CodeTooFrequent]), [ErrCircuitOpen], a [*StatusError] with a 5xx
// status, a timeout (a net.Error whose Timeout() is true, or
// context.DeadlineExceeded), or [ErrAnswerLost] (a new attempt, with a new
// code, may well succeed). The package has already retried such failures
// with backoff before returning them, when it was safe to.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	if IsCode(err, CodeBusy, CodeTooFrequent) || errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrAnswerLost) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode >= 500 {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// secretParam reports whether the value of query parameter k must never
// leave the package in an error or a log line.
func secretParam(k string) bool {
	switch k {
	case "secret", "appsecret", "code", "access_token", "refresh_token", "ticket":
		return true
	}
	return false
}

// redactURL returns raw with the values of the secret query parameters
// replaced by REDACTED. A URL that cannot be parsed is replaced whole.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "REDACTED"
	}
	u.User = nil
	if u.RawQuery == "" {
		return u.String()
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		u.RawQuery = "REDACTED"
		return u.String()
	}
	changed := false
	for k := range q {
		if secretParam(k) {
			q[k] = []string{"REDACTED"}
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redact returns err with the URL of a *url.Error (as returned by
// http.Client.Do) redacted; the type is kept so callers can still use
// Timeout().
func redact(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	cp := *ue
	cp.URL = redactURL(ue.URL)
	cp.Err = redact(ue.Err)
	return &cp
}
