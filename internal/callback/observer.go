package callback

import (
	"context"
	"strings"
)

// Observer is told how the [Server] answered each request, so that metrics
// need not re-read the request or the Server's logs: wxauth's metrics
// package implements it. It is set through [Config.Observer]; nil reports
// nothing and costs nothing. Each request is reported exactly once, by one
// method, before its answer is written. Methods run on the request's
// goroutine, must return quickly and must be safe for concurrent use.
type Observer interface {
	// Verified reports a URL verification (GET) answered with its echostr.
	// mode is "safe" when the query has encrypt_type=aes, else "plain".
	Verified(ctx context.Context, mode string)
	// Answered reports a message or event (POST) that passed every check,
	// and how WeChat was answered. m is read-only and valid only during
	// the call; m.Mode is "plain", "compat" or "safe".
	Answered(ctx context.Context, m *Message, outcome Outcome)
	// Refused reports a request answered with a 4xx status: reason is the
	// [Error] Reason ("signature", "timestamp", "xml", "plaintext_refused",
	// ...); mode is "safe" when the query has encrypt_type=aes, else
	// "plain" (nothing else is known of a refused request).
	Refused(ctx context.Context, status int, reason, mode string)
}

// Outcome is how the [Server] answered a message it accepted.
type Outcome string

// Outcomes reported to [Observer.Answered].
const (
	// OutcomeReplied: a passive reply was written.
	OutcomeReplied Outcome = "replied"
	// OutcomeSuccess: "success" was written: the handler had nothing to
	// say, failed, or outlived the budget.
	OutcomeSuccess Outcome = "success"
	// OutcomeDuplicate: a redelivery, answered from the record of its
	// first delivery without calling the handler again.
	OutcomeDuplicate Outcome = "duplicate"
)

// redelivered is the answer of withDedup to a redelivery: the reply
// recorded for the first delivery (nil for "success"). The Server unwraps
// it and reports [OutcomeDuplicate].
type redelivered struct{ reply Reply }

// MsgType returns "" (a redelivered is never encoded itself).
func (redelivered) MsgType() string { return "" }

func (redelivered) appendBody(b []byte) []byte { return b }

// queryMode is the mode a request's query claims, for [Observer] reports
// of requests whose body was not (or could not be) decrypted.
func queryMode(q query) string {
	if strings.EqualFold(q.encryptType, "aes") {
		return "safe"
	}
	return "plain"
}
