package callback

import (
	"context"
	"errors"
	"strings"
)

// Handler answers one callback message. ServeMessage returns the passive
// reply, or a nil Reply for "success" (nothing to say). It returns
// [ErrNotHandled] to let [First] try the next handler; any other error is
// logged by the [Server] (without message contents) and answered "success".
//
// ctx ends when the Server's budget is spent (4 s by default, below WeChat's
// 5 s); a handler still running then is answered "success" and its reply,
// when it comes, is kept for WeChat's redelivery. A Handler is called
// concurrently and must not modify m.
type Handler interface {
	ServeMessage(ctx context.Context, m *Message) (Reply, error)
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, m *Message) (Reply, error)

// ServeMessage calls f(ctx, m).
func (f HandlerFunc) ServeMessage(ctx context.Context, m *Message) (Reply, error) {
	return f(ctx, m)
}

// First returns a Handler that calls hs in order and returns the first
// result whose error is not [ErrNotHandled] (compared with errors.Is). When
// every handler passes, or hs is empty, it returns nil, ErrNotHandled. Nil
// handlers are skipped.
func First(hs ...Handler) Handler {
	hs = append([]Handler(nil), hs...)
	return HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		for _, h := range hs {
			if h == nil {
				continue
			}
			r, err := h.ServeMessage(ctx, m)
			if !errors.Is(err, ErrNotHandled) {
				return r, err
			}
		}
		return nil, ErrNotHandled
	})
}

// Mux routes messages by MsgType and events (MsgType "event") by Event,
// like [net/http.ServeMux] routes paths. Keys are case-insensitive, so
// HandleEvent("SCAN", h) also receives "scan". A message without a route
// goes to the default handler, or returns [ErrNotHandled] when there is
// none. Register every route before serving: the Mux is not safe for
// registration concurrent with ServeMessage.
type Mux struct {
	messages map[string]Handler
	events   map[string]Handler
	def      Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	return &Mux{messages: map[string]Handler{}, events: map[string]Handler{}}
}

// HandleMessage routes messages of msgType (text, image, voice, video,
// shortvideo, location, link, or any other) to h. It panics, at setup time
// like net/http, when h is nil, msgType is empty or "event", or msgType is
// already registered.
func (m *Mux) HandleMessage(msgType string, h Handler) {
	key := strings.ToLower(msgType)
	if key == "event" {
		panic("callback: Mux.HandleMessage(\"event\"): use HandleEvent")
	}
	register(m.messages, "HandleMessage", key, h)
}

// HandleEvent routes events named event (subscribe, unsubscribe, SCAN,
// LOCATION, CLICK, VIEW, scancode_push, ...) to h. It panics when h is nil,
// event is empty, or event is already registered.
func (m *Mux) HandleEvent(event string, h Handler) {
	register(m.events, "HandleEvent", strings.ToLower(event), h)
}

// HandleDefault sets the handler of messages and events without a route. It
// panics when h is nil or a default is already set.
func (m *Mux) HandleDefault(h Handler) {
	if h == nil {
		panic("callback: Mux.HandleDefault: nil handler")
	}
	if m.def != nil {
		panic("callback: Mux.HandleDefault: default already set")
	}
	m.def = h
}

func register(routes map[string]Handler, method, key string, h Handler) {
	switch {
	case h == nil:
		panic("callback: Mux." + method + "(" + key + "): nil handler")
	case key == "":
		panic("callback: Mux." + method + ": empty key")
	case routes[key] != nil:
		panic("callback: Mux." + method + "(" + key + "): already registered")
	}
	routes[key] = h
}

// ServeMessage dispatches m to the handler of its Event (events) or
// MsgType, else to the default; without either it returns nil,
// [ErrNotHandled].
func (m *Mux) ServeMessage(ctx context.Context, msg *Message) (Reply, error) {
	var h Handler
	if msg.IsEvent() {
		h = lookup(m.events, msg.Event)
	} else {
		h = lookup(m.messages, msg.MsgType)
	}
	if h == nil {
		h = m.def
	}
	if h == nil {
		return nil, ErrNotHandled
	}
	return h.ServeMessage(ctx, msg)
}

// lookup finds key case-insensitively without allocating for keys that are
// already lower case.
func lookup(routes map[string]Handler, key string) Handler {
	if h, ok := routes[key]; ok {
		return h
	}
	return routes[strings.ToLower(key)]
}

// Compile-time checks of the package's Handlers.
var (
	_ Handler = HandlerFunc(nil)
	_ Handler = (*Mux)(nil)
	_ Handler = (*Rules)(nil)
	_ Handler = (*Reloader)(nil)
	_ Handler = (*forwarder)(nil)
)
