package metrics

import (
	"context"
	"strings"

	"github.com/wxauth/wxauth/internal/callback"
)

// Callback returns the [callback.Observer] that counts each /wx request
// once in wxauth_callback_messages_total{type,mode,outcome}:
//
//   - a message or event that passed the checks: type is MsgType, or
//     "event:<Event>", lower-cased ("other" when it is not a short
//     [a-z0-9_:] word, so that a hostile MsgType creates no label); mode is
//     plain, compat or safe; outcome is "replied", "success" (nothing to
//     say, a failed handler, or one past the budget: what WeChat got) or
//     "duplicate" (a redelivery answered from the first delivery's record);
//   - a refused request: type "unknown", outcome "refused_<reason>" with
//     the callback.Error reason ("signature", "timestamp", "xml", ...);
//   - GET (URL verification): type "url_verification", outcome "replied".
//
// For refused requests and URL verification, mode is "safe" when the query
// has encrypt_type=aes, else "plain". A nil m returns nil (the Server then
// reports nothing).
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
func (m *Metrics) Callback() callback.Observer {
	if m == nil {
		return nil
	}
	return callbackObserver{m}
}

type callbackObserver struct{ m *Metrics }

var _ callback.Observer = callbackObserver{}

// Verified implements [callback.Observer].
func (o callbackObserver) Verified(_ context.Context, mode string) {
	o.m.CallbackMessage("url_verification", mode, "replied")
}

// Answered implements [callback.Observer].
func (o callbackObserver) Answered(_ context.Context, msg *callback.Message, outcome callback.Outcome) {
	o.m.CallbackMessage(messageType(msg), msg.Mode, string(outcome))
}

// Refused implements [callback.Observer].
func (o callbackObserver) Refused(_ context.Context, _ int, reason, mode string) {
	if !isLabel(reason) || len(reason) > 40 {
		reason = "other"
	}
	o.m.CallbackMessage("unknown", mode, "refused_"+reason)
}

// messageType is the type label of msg: MsgType, or "event:<Event>",
// lower-cased; "other" when that is not a short label.
func messageType(msg *callback.Message) string {
	typ := strings.ToLower(msg.MsgType)
	if typ == "event" {
		typ = "event:" + strings.ToLower(msg.Event)
	}
	if len(typ) > 40 || !isLabel(typ) {
		return "other"
	}
	return typ
}

// isLabel reports whether s has only [a-z0-9_:] characters, so that a
// hostile MsgType cannot create arbitrary label values.
func isLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			return false
		}
	}
	return s != ""
}
