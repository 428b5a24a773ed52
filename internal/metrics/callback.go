package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/wxauth/wxauth/internal/callback"
)

// callbackObservation is what the three callback adapters learn about one
// /wx request; it travels in the request context.
type callbackObservation struct {
	mu      sync.Mutex
	started bool // the chain was called
	handled bool // the chain returned
	typ     string
	mode    string
	outcome string
	reason  string
}

type callbackKey struct{}

func observation(ctx context.Context) *callbackObservation {
	o, _ := ctx.Value(callbackKey{}).(*callbackObservation)
	return o
}

// Callback wraps the /wx handler (a *callback.Server) and counts each
// request once in wxauth_callback_messages_total{type,mode,outcome}:
//
//   - a message the handler chain saw (through [Metrics.CallbackHandler]):
//     type is MsgType, or "event:<Event>" lower-cased; mode is plain,
//     compat or safe; outcome "replied" or "success";
//   - a message whose chain outlived the Server's budget: outcome "success"
//     (what WeChat got), type and mode as above;
//   - a POST answered 200 without reaching the chain: a redelivery answered
//     from the de-duplication record, outcome "duplicate", type "unknown"
//     (nothing is parsed here);
//   - any 4xx: outcome "refused_<reason>", where reason is the
//     callback.Error reason the Server logged (through
//     [CallbackReasons]: "signature", "timestamp", "xml", ...) or, failing
//     that, "status_<code>"; type "unknown";
//   - GET (URL verification): type "url_verification", outcome "replied".
//
// For requests not reaching the chain, mode is "safe" when the query has
// encrypt_type=aes (compat is not told apart without parsing), else "plain".
// With a nil m, h is returned unchanged.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
func (m *Metrics) Callback(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &callbackObservation{}
		sw := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), callbackKey{}, o)))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		mode := "plain"
		if strings.Contains(r.URL.RawQuery, "encrypt_type=aes") {
			mode = "safe"
		}
		switch {
		case status >= 400:
			reason := o.reason
			if reason == "" {
				reason = "status_" + strconv.Itoa(status)
			}
			m.CallbackMessage("unknown", mode, "refused_"+reason)
		case r.Method == http.MethodGet:
			m.CallbackMessage("url_verification", mode, "replied")
		case o.handled:
			m.CallbackMessage(o.typ, o.mode, o.outcome)
		case o.started:
			// The chain outlived the Server's budget: WeChat got "success".
			m.CallbackMessage(o.typ, o.mode, "success")
		default:
			m.CallbackMessage("unknown", mode, "duplicate")
		}
	})
}

// CallbackHandler wraps the callback handler chain h: it records the type,
// mode and outcome of each message it handles for [Metrics.Callback]. A
// nil reply, or an error, is outcome "success" (the Server answers
// "success"); any other reply is "replied". Errors are returned unchanged.
func (m *Metrics) CallbackHandler(h callback.Handler) callback.Handler {
	if m == nil {
		return h
	}
	return callback.HandlerFunc(func(ctx context.Context, msg *callback.Message) (callback.Reply, error) {
		o := observation(ctx)
		if o != nil {
			typ := strings.ToLower(msg.MsgType)
			if typ == "event" {
				typ = "event:" + strings.ToLower(msg.Event)
			}
			if len(typ) > 40 || !isLabel(typ) {
				typ = "other"
			}
			o.mu.Lock()
			o.started, o.typ, o.mode = true, typ, msg.Mode
			o.mu.Unlock()
		}
		reply, err := h.ServeMessage(ctx, msg)
		if o != nil {
			outcome := "replied"
			if reply == nil || err != nil {
				outcome = "success"
			}
			o.mu.Lock()
			o.handled, o.outcome = true, outcome
			o.mu.Unlock()
		}
		return reply, err
	})
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

// CallbackReasons wraps the slog.Handler of the callback Server's logger:
// when the Server logs a refusal with a "reason" attribute in a request's
// context, the reason is kept for [Metrics.Callback]. Every record still
// reaches next unchanged.
func CallbackReasons(next slog.Handler) slog.Handler { return reasonTap{next} }

type reasonTap struct{ next slog.Handler }

func (t reasonTap) Enabled(ctx context.Context, l slog.Level) bool {
	// Refusals are logged at warn: they must reach Handle even when the
	// log level hides them.
	return l >= slog.LevelWarn && observation(ctx) != nil || t.next.Enabled(ctx, l)
}

func (t reasonTap) Handle(ctx context.Context, r slog.Record) error {
	if o := observation(ctx); o != nil && r.Level >= slog.LevelWarn {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				if v := a.Value.String(); isLabel(v) && len(v) <= 40 {
					o.mu.Lock()
					o.reason = v
					o.mu.Unlock()
				}
				return false
			}
			return true
		})
	}
	if !t.next.Enabled(ctx, r.Level) {
		return nil
	}
	return t.next.Handle(ctx, r)
}

func (t reasonTap) WithAttrs(as []slog.Attr) slog.Handler { return reasonTap{t.next.WithAttrs(as)} }
func (t reasonTap) WithGroup(name string) slog.Handler    { return reasonTap{t.next.WithGroup(name)} }

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
