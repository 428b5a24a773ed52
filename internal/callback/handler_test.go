package callback

import (
	"context"
	"errors"
	"testing"
)

func named(s string) Handler { return static(TextReply{Content: s}) }

func TestMux_ServeMessage(t *testing.T) {
	mux := NewMux()
	mux.HandleMessage("text", named("text"))
	mux.HandleMessage("Image", named("image"))
	mux.HandleEvent("subscribe", named("subscribe"))
	mux.HandleEvent("SCAN", named("scan"))
	mux.HandleEvent("click", named("click"))
	tests := []struct {
		name string
		m    *Message
		want string
	}{
		{"Text", &Message{MsgType: "text"}, "text"},
		{"ImageCaseInsensitive", &Message{MsgType: "image"}, "image"},
		{"Subscribe", &Message{MsgType: "event", Event: "subscribe"}, "subscribe"},
		{"ScanLowerCase", &Message{MsgType: "event", Event: "scan"}, "scan"},
		{"ClickUpperCase", &Message{MsgType: "event", Event: "CLICK"}, "click"},
		{"EventTypeUpperCase", &Message{MsgType: "EVENT", Event: "CLICK"}, "click"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mux.ServeMessage(context.Background(), tt.m)
			if err != nil || got != (TextReply{Content: tt.want}) {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	t.Run("NoRouteNoDefault", func(t *testing.T) {
		if _, err := mux.ServeMessage(context.Background(), &Message{MsgType: "voice"}); !errors.Is(err, ErrNotHandled) {
			t.Errorf("err = %v", err)
		}
		if _, err := mux.ServeMessage(context.Background(), &Message{MsgType: "event", Event: "text"}); !errors.Is(err, ErrNotHandled) {
			t.Errorf("an event named like a message type was routed: %v", err)
		}
	})
	t.Run("Default", func(t *testing.T) {
		mux.HandleDefault(named("default"))
		got, err := mux.ServeMessage(context.Background(), &Message{MsgType: "event", Event: "TEMPLATESENDJOBFINISH"})
		if err != nil || got != (TextReply{Content: "default"}) {
			t.Errorf("got %v, %v", got, err)
		}
	})
}

func TestMux_RegistrationPanics(t *testing.T) {
	tests := map[string]func(m *Mux){
		"NilMessage":       func(m *Mux) { m.HandleMessage("text", nil) },
		"NilEvent":         func(m *Mux) { m.HandleEvent("CLICK", nil) },
		"NilDefault":       func(m *Mux) { m.HandleDefault(nil) },
		"EmptyKey":         func(m *Mux) { m.HandleMessage("", named("x")) },
		"EventAsMessage":   func(m *Mux) { m.HandleMessage("Event", named("x")) },
		"DuplicateMessage": func(m *Mux) { m.HandleMessage("text", named("a")); m.HandleMessage("TEXT", named("b")) },
		"DuplicateEvent":   func(m *Mux) { m.HandleEvent("SCAN", named("a")); m.HandleEvent("scan", named("b")) },
		"DuplicateDefault": func(m *Mux) { m.HandleDefault(named("a")); m.HandleDefault(named("b")) },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f(NewMux())
		})
	}
}

func TestFirst(t *testing.T) {
	pass := HandlerFunc(func(context.Context, *Message) (Reply, error) { return TextReply{Content: "ignored"}, ErrNotHandled })
	wrappedPass := HandlerFunc(func(context.Context, *Message) (Reply, error) {
		return nil, errors.Join(errors.New("rules"), ErrNotHandled)
	})
	fail := HandlerFunc(func(context.Context, *Message) (Reply, error) { return nil, errors.New("boom") })
	ctx := context.Background()
	if got, err := First(pass, nil, wrappedPass, named("b"), named("c")).ServeMessage(ctx, &Message{}); err != nil || got != (TextReply{Content: "b"}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := First(pass, fail, named("c")).ServeMessage(ctx, &Message{}); err == nil || errors.Is(err, ErrNotHandled) {
		t.Errorf("an error other than ErrNotHandled did not stop the chain: %v", err)
	}
	if _, err := First(pass).ServeMessage(ctx, &Message{}); !errors.Is(err, ErrNotHandled) {
		t.Errorf("err = %v", err)
	}
	if _, err := First().ServeMessage(ctx, &Message{}); !errors.Is(err, ErrNotHandled) {
		t.Errorf("empty: err = %v", err)
	}
}
