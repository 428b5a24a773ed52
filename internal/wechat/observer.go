package wechat

import (
	"context"
	"errors"
	"time"
)

// Observer is told what a [Client] and its [TokenManager] do, so that
// metrics need not re-read WeChat's traffic: wxauth's metrics package
// implements it. It is set through [Config.Observer]; nil reports nothing
// and costs nothing. Methods run synchronously on the caller's goroutine,
// must return quickly and must be safe for concurrent use. ctx is the
// context of the call (it carries the values of the request being served,
// if any); it may already be done.
type Observer interface {
	// Call reports one HTTP attempt to WeChat: a call that is retried
	// reports each attempt.
	Call(ctx context.Context, c Call)
	// CredentialRefreshed reports a global credential fetched from WeChat
	// by a [TokenManager]: name is "access_token" or "jsapi_ticket"; forced
	// is true for a stable_token fetch with force_refresh=true (after a
	// caller reported the token refused).
	CredentialRefreshed(ctx context.Context, name string, forced bool)
}

// Call is one HTTP attempt to WeChat as an [Observer] sees it. It holds no
// query, body or secret.
type Call struct {
	// API is the URL path without its leading slash or query, e.g.
	// "sns/oauth2/access_token".
	API string
	// StatusCode is the HTTP status of a complete answer; 0 when no
	// complete answer came (connection failure, timeout, a body that broke
	// off or was over 1 MiB).
	StatusCode int
	// ErrCode is WeChat's errcode from a 200 JSON answer ({"errcode":N,
	// "errmsg":"..."}); 0 for success and for answers without one.
	ErrCode int
	// Duration is the time from sending the request to reading the answer.
	Duration time.Duration
	// Err is why the attempt failed: [*Error] (ErrCode is then its Code),
	// [*StatusError], a redacted [*url.Error] or a read or decode error;
	// nil when it succeeded.
	Err error
}

// observeCall reports one attempt at api to the Client's Observer, if any:
// answered says a complete answer with status was read; err is the
// attempt's failure (nil on success).
func (c *Client) observeCall(ctx context.Context, api string, answered bool, status int, took time.Duration, err error) {
	if c.obs == nil {
		return
	}
	call := Call{API: api, Duration: took, Err: err}
	if answered {
		call.StatusCode = status
	}
	var we *Error
	if errors.As(err, &we) {
		call.ErrCode = we.Code
	}
	c.obs.Call(ctx, call)
}
