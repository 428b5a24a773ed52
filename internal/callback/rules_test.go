package callback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/logtest"
)

func msgText(content string) *Message {
	return &Message{ToUserName: testGhID, FromUserName: testOpenID, MsgType: "text", Content: content, MsgID: 1}
}

func msgEvent(event, key string) *Message {
	return &Message{ToUserName: testGhID, FromUserName: testOpenID, MsgType: "event", Event: event, EventKey: key}
}

func TestRules_ServeMessage(t *testing.T) {
	r, err := ParseRules([]byte(`
keywords:
  - exact: ["hi", "你好"]
    reply: {type: text, content: "hello"}
  - exact: CaseKey
    case_sensitive: true
    reply: {type: text, content: "exact case"}
  - prefix: "order "
    reply: {type: text, content: "order lookup"}
  - regex: '^\d{6}$'
    reply: {type: text, content: "a code"}
  - regex: 'agent'
    reply: {type: transfer_customer_service}
  - exact: pic
    reply: {type: image, media_id: M1}
  - exact: quiet
    reply: {type: success}
events:
  - event: subscribe
    reply: {type: text, content: "welcome"}
  - event: subscribe
    scene: promo
    reply: {type: text, content: "welcome promo"}
  - event: subscribe
    scene: "*"
    reply: {type: text, content: "welcome qr"}
  - event: click
    key: V1001_TODAY_MUSIC
    reply: {type: music, title: T, music_url: "https://m"}
  - event: SCAN
    scene: login
    reply: {type: text, content: "scanned login"}
  - event: SCAN
    reply: {type: text, content: "scanned"}
  - event: LOCATION
    reply: {type: success}
default: {type: text, content: "default"}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		m    *Message
		want Reply
		err  error
	}{
		{"Exact", msgText("hi"), TextReply{Content: "hello"}, nil},
		{"ExactList", msgText("你好"), TextReply{Content: "hello"}, nil},
		{"ExactFoldsCase", msgText("HI"), TextReply{Content: "hello"}, nil},
		{"ExactTrimsSpace", msgText("  hi\n"), TextReply{Content: "hello"}, nil},
		{"ExactIsNotPrefix", msgText("hi there"), TextReply{Content: "default"}, nil},
		{"CaseSensitive", msgText("CaseKey"), TextReply{Content: "exact case"}, nil},
		{"CaseSensitiveMiss", msgText("casekey"), TextReply{Content: "default"}, nil},
		{"Prefix", msgText("order 1234"), TextReply{Content: "order lookup"}, nil},
		{"PrefixFolds", msgText("ORDER 1"), TextReply{Content: "order lookup"}, nil},
		{"Regex", msgText("123456"), TextReply{Content: "a code"}, nil},
		{"RegexMiss", msgText("1234567"), TextReply{Content: "default"}, nil},
		{"RegexFolds", msgText("AGENT please"), TransferReply{}, nil},
		{"Image", msgText("pic"), ImageReply{MediaID: "M1"}, nil},
		{"ExplicitSuccess", msgText("quiet"), nil, nil},
		{"DefaultForImage", &Message{MsgType: "image", MsgID: 3}, TextReply{Content: "default"}, nil},
		{"Subscribe", msgEvent("subscribe", ""), TextReply{Content: "welcome"}, nil},
		{"SubscribeScene", msgEvent("subscribe", "qrscene_promo"), TextReply{Content: "welcome promo"}, nil},
		{"SubscribeAnyScene", msgEvent("subscribe", "qrscene_other"), TextReply{Content: "welcome qr"}, nil},
		{"ClickKey", msgEvent("CLICK", "V1001_TODAY_MUSIC"), MusicReply{Title: "T", MusicURL: "https://m"}, nil},
		{"ClickOtherKey", msgEvent("CLICK", "OTHER"), nil, ErrNotHandled},
		{"ScanScene", msgEvent("SCAN", "login"), TextReply{Content: "scanned login"}, nil},
		{"ScanAny", msgEvent("scan", "x"), TextReply{Content: "scanned"}, nil},
		{"AnyEventByName", msgEvent("LOCATION", ""), nil, nil},
		{"EventWithoutRuleNoDefault", msgEvent("unsubscribe", ""), nil, ErrNotHandled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.ServeMessage(context.Background(), tt.m)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	t.Run("SceneNone", func(t *testing.T) {
		r, err := ParseRules([]byte("events:\n  - event: subscribe\n    scene: \"\"\n    reply: {type: text, content: plain}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := r.ServeMessage(context.Background(), msgEvent("subscribe", "")); got != (TextReply{Content: "plain"}) {
			t.Errorf("plain follow: %v", got)
		}
		if _, err := r.ServeMessage(context.Background(), msgEvent("subscribe", "qrscene_x")); !errors.Is(err, ErrNotHandled) {
			t.Errorf("QR follow matched a no-scene rule: %v", err)
		}
	})
	t.Run("NoDefault", func(t *testing.T) {
		r, _ := ParseRules([]byte("keywords:\n  - exact: a\n    reply: {type: text, content: b}\n"))
		if _, err := r.ServeMessage(context.Background(), msgText("zzz")); !errors.Is(err, ErrNotHandled) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		r, err := ParseRules(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.ServeMessage(context.Background(), msgText("x")); !errors.Is(err, ErrNotHandled) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestParseRules_Errors(t *testing.T) {
	tests := map[string]struct{ yaml, want string }{
		"UnknownField":    {"keywords:\n  - exakt: hi\n    reply: {type: text, content: x}\n", "exakt"},
		"NoMatcher":       {"keywords:\n  - reply: {type: text, content: x}\n", "keywords[0]: needs exactly one"},
		"TwoMatchers":     {"keywords:\n  - exact: a\n    prefix: b\n    reply: {type: text, content: x}\n", "keywords[0]: needs exactly one"},
		"BadRegex":        {"keywords:\n  - regex: '('\n    reply: {type: text, content: x}\n", "keywords[0]: regex"},
		"EmptyKeyword":    {"keywords:\n  - exact: ' '\n    reply: {type: text, content: x}\n", "empty keyword"},
		"NoReply":         {"keywords:\n  - exact: a\n", "reply is missing"},
		"UnknownType":     {"default: {type: sticker}\n", "unknown type"},
		"NoType":          {"default: {content: x}\n", "type is missing"},
		"TextNoContent":   {"default: {type: text}\n", "needs content"},
		"ImageNoMedia":    {"default: {type: image}\n", "needs media_id"},
		"MusicNoURL":      {"default: {type: music, title: x}\n", "music_url"},
		"NewsNone":        {"default: {type: news}\n", "1 to 8 articles"},
		"NewsNine":        {"default: {type: news, articles: [" + strings.Repeat("{title: a},", 8) + "{title: a}]}\n", "1 to 8 articles"},
		"NewsNoTitle":     {"default: {type: news, articles: [{url: x}]}\n", "articles[0] needs title"},
		"EventMissing":    {"events:\n  - reply: {type: success}\n", "events[0]: event is missing"},
		"SceneOnClick":    {"events:\n  - event: CLICK\n    scene: x\n    reply: {type: success}\n", "scene applies"},
		"KeyAndScene":     {"events:\n  - event: SCAN\n    key: a\n    scene: b\n    reply: {type: success}\n", "not both"},
		"NotYAML":         {"keywords: [", "callback: rules"},
		"ExactWrongShape": {"keywords:\n  - exact: {a: b}\n    reply: {type: success}\n", "string"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSampleRules(t *testing.T) {
	r, err := ParseRules(SampleRules)
	if err != nil {
		t.Fatal(err)
	}
	file, err := LoadRules(filepath.Join("testdata", "rules.yaml"))
	if err != nil || !reflect.DeepEqual(file, r) {
		t.Fatalf("testdata/rules.yaml and SampleRules differ: %v", err)
	}
	ctx := context.Background()
	for _, hi := range []string{"hi", "你好"} {
		if got, _ := r.ServeMessage(ctx, msgText(hi)); reflect.TypeOf(got) != reflect.TypeOf(TextReply{}) {
			t.Errorf("%s: %#v", hi, got)
		}
	}
	if got, _ := r.ServeMessage(ctx, msgText("news")); got == nil || len(got.(NewsReply).Articles) != 1 {
		t.Errorf("news: %#v", got)
	}
	if got, _ := r.ServeMessage(ctx, msgEvent("CLICK", "V1001_TODAY_MUSIC")); reflect.TypeOf(got) != reflect.TypeOf(MusicReply{}) {
		t.Errorf("click: %#v", got)
	}
	if got, _ := r.ServeMessage(ctx, msgEvent("subscribe", "")); got == nil || !strings.Contains(got.(TextReply).Content, "following") {
		t.Errorf("subscribe: %#v", got)
	}
}

func writeFile(tb testing.TB, path, s string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	rulesA := "default: {type: text, content: A}\n"
	rulesB := "default: {type: text, content: B}\n"
	writeFile(t, path, rulesA)
	logs := &logtest.Buffer{}
	r, err := NewReloader(path, newJSONLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	ask := func() Reply {
		got, err := r.ServeMessage(context.Background(), msgText("x"))
		if err != nil {
			t.Error(err)
		}
		return got
	}
	if got := ask(); got != (TextReply{Content: "A"}) {
		t.Fatalf("got %v", got)
	}
	t.Run("BadFileKeepsRules", func(t *testing.T) {
		writeFile(t, path, "default: {type: sticker}\n")
		if err := r.Reload(); err == nil {
			t.Fatal("no error")
		}
		if got := ask(); got != (TextReply{Content: "A"}) {
			t.Errorf("got %v", got)
		}
		if !strings.Contains(logs.String(), "keeping the previous") || !strings.Contains(logs.String(), "sticker") {
			t.Errorf("not logged: %s", logs)
		}
	})
	t.Run("ServesDuringSwap", func(t *testing.T) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		var bad atomic.Int64
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					got, err := r.ServeMessage(context.Background(), msgText("x"))
					if err != nil || (got != TextReply{Content: "A"} && got != TextReply{Content: "B"}) {
						bad.Add(1)
					}
				}
			}()
		}
		for i := 0; i < 50; i++ {
			writeFile(t, path, []string{rulesA, rulesB}[i%2])
			if err := r.Reload(); err != nil {
				t.Error(err)
			}
		}
		stop.Store(true)
		wg.Wait()
		if bad.Load() != 0 {
			t.Errorf("%d answers were neither A nor B", bad.Load())
		}
	})
	t.Run("Watch", func(t *testing.T) {
		writeFile(t, path, rulesA)
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
		r.every = 5 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Watch(ctx) }()
		writeFile(t, path, rulesB+"# a longer file, so the size changes\n")
		for ask() != (TextReply{Content: "B"}) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v", err)
		}
	})
	t.Run("MissingFile", func(t *testing.T) {
		if _, err := NewReloader(filepath.Join(dir, "none.yaml"), nil); err == nil {
			t.Error("no error")
		}
	})
}

func TestRules_Warnings(t *testing.T) {
	long := strings.Repeat("字", 683) // 2049 bytes
	fits := strings.Repeat("字", 682) + "ab"
	news := "{type: news, articles: [{title: a, url: 'https://a'}, {title: b, url: 'https://b'}]}"
	r, err := ParseRules([]byte("keywords:\n" +
		"  - exact: ok\n    reply: {type: text, content: '" + fits + "'}\n" +
		"  - exact: long\n    reply: {type: text, content: '" + long + "'}\n" +
		"  - exact: news\n    reply: " + news + "\n" +
		"events:\n" +
		"  - event: subscribe\n    reply: " + news + "\n" +
		"  - event: CLICK\n    key: k\n    reply: {type: text, content: '" + long + "'}\n" +
		"default: {type: text, content: '" + long + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Warnings()
	want := []string{"keywords[1]: reply: text content is 2049 bytes", "keywords[2]: reply: news with 2 articles", "events[1]: reply: text content is 2049 bytes", "default: reply: text content is 2049 bytes"}
	if len(got) != len(want) {
		t.Fatalf("warnings %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("warning %d = %q, want %q", i, got[i], w)
		}
	}
	if r, _ := ParseRules(SampleRules); len(r.Warnings()) != 0 {
		t.Errorf("sample rules: %q", r.Warnings())
	}

	t.Run("ReloaderLogs", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rules.yaml")
		writeFile(t, path, "default: {type: text, content: '"+long+"'}\n")
		logs := &logtest.Buffer{}
		if _, err := NewReloader(path, newJSONLogger(logs)); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, l := range logs.JSONLines(t) {
			if l["level"] == "WARN" && strings.Contains(l["problem"].(string), "2049 bytes") {
				found = true
			}
		}
		if !found {
			t.Errorf("no warning logged at load: %s", logs)
		}
	})
}
