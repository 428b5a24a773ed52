package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Refusal is an answer of the proxy itself, in WeChat's shape: HTTP Status
// and the body {"errcode":Code,"errmsg":Msg}. Refusals of the caller (bad
// credential, API not allowed, rate, body size) use HTTP 200 like WeChat,
// because SDKs read errcode only from a 200 answer (silenceper/wechat returns
// a bare "statusCode=401" error otherwise, and WxJava skips its 40001
// handling); failures of the way to WeChat use 502, 503 or 504 with errcode
// -1 (system busy), which SDKs treat as retryable.
//
// The codes, and why each:
//
//   - 40001 (invalid credential): a proxy token that is unknown, expired or
//     bound to a client no longer registered, or a Bearer JWT that does not
//     verify. SDKs treat 40001 as "my access_token is stale" and fetch a new
//     one, here a new proxy token.
//   - 41001 (access_token missing): no credential at all.
//   - 40125 (invalid appsecret): a wrong client_id or client_secret at
//     cgi-bin/token, cgi-bin/stable_token or in HTTP Basic. Unknown client
//     and wrong secret share the code: a response must not tell them apart.
//   - 40002 (invalid grant_type), 41002 (appid missing), 41004 (secret
//     missing), 47001 (body not JSON), 43002 (require POST): as WeChat's
//     token endpoints answer them.
//   - 48001 (api unauthorized): the path is not in the client's allowlist
//     (apis in WXAUTH_CLIENTS), is not a WeChat API path, or the client is
//     not registered for client_credentials.
//   - 45011 (API calls too frequent): the client is over its rate_limit;
//     Retry-After says when to try again, in seconds.
//   - 40006 (invalid file size): the request body is over the proxy's bound
//     (20 MiB by default, above WeChat's largest media limit).
//   - -1 with HTTP 503: wxauth cannot get the access_token or read a proxy
//     token (its store is down); with 502: WeChat could not be reached; with
//     504: WeChat did not answer in time.
type Refusal struct {
	Status int    // HTTP status
	Code   int    // errcode
	Msg    string // errmsg, for people; never carries a secret
	// Reason is the metric and log label: invalid_token, no_credential,
	// invalid_client, not_allowed, rate_limited, too_large, bad_request,
	// token_unavailable, store_unavailable, upstream_unreachable,
	// upstream_timeout, canceled.
	Reason     string
	RetryAfter int // seconds, sent as Retry-After when > 0
}

// Error returns "proxy: <reason>: <errcode> <errmsg>".
func (r *Refusal) Error() string {
	return "proxy: " + r.Reason + ": " + strconv.Itoa(r.Code) + " " + r.Msg
}

// write sends the refusal.
func (r *Refusal) write(w http.ResponseWriter) {
	b, _ := json.Marshal(struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}{r.Code, r.Msg})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(b)
}

// The refusals; msg suffixes name wxauth so that people reading an SDK's
// error know who refused.
func refuseInvalidToken() *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 40001, Reason: "invalid_token",
		Msg: "invalid credential, access_token is invalid or not latest (wxauth proxy token: fetch a new one)"}
}

func refuseNoCredential() *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 41001, Reason: "no_credential",
		Msg: "access_token missing (wxauth: send a proxy token, a client_credentials Bearer token or HTTP Basic client credentials)"}
}

func refuseInvalidClient() *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 40125, Reason: "invalid_client",
		Msg: "invalid appid or appsecret (wxauth: unknown client_id or wrong client_secret)"}
}

func refuseNotAllowed(msg string) *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 48001, Reason: "not_allowed", Msg: "api unauthorized (wxauth: " + msg + ")"}
}

func refuseRateLimited(retryAfter int) *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 45011, Reason: "rate_limited", RetryAfter: retryAfter,
		Msg: "api minute-quota reach limit, mustslower, retry later (wxauth: client over its rate_limit)"}
}

func refuseTooLarge(limit int64) *Refusal {
	return &Refusal{Status: http.StatusOK, Code: 40006, Reason: "too_large",
		Msg: "invalid file size (wxauth: request body over " + strconv.FormatInt(limit, 10) + " bytes)"}
}

func refuseBadRequest(code int, msg string) *Refusal {
	return &Refusal{Status: http.StatusOK, Code: code, Reason: "bad_request", Msg: msg}
}

func refuseUnavailable(reason, msg string) *Refusal {
	return &Refusal{Status: http.StatusServiceUnavailable, Code: -1, Reason: reason, Msg: "system error (wxauth: " + msg + ")"}
}

func refuseUpstream(timeout bool) *Refusal {
	if timeout {
		return &Refusal{Status: http.StatusGatewayTimeout, Code: -1, Reason: "upstream_timeout",
			Msg: "system error (wxauth: WeChat did not answer in time)"}
	}
	return &Refusal{Status: http.StatusBadGateway, Code: -1, Reason: "upstream_unreachable",
		Msg: "system error (wxauth: WeChat could not be reached)"}
}
