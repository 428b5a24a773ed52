package callback_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/store"
)

// records is a minimal in-memory store.Records (ttl ignored) for the
// example; services use the store packages.
type records struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (r *records) PutIfAbsent(_ context.Context, k string, v []byte, _ time.Duration) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[k]; ok {
		return false, nil
	}
	r.m[k] = append([]byte(nil), v...)
	return true, nil
}

func (r *records) Put(_ context.Context, k string, v []byte, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[k] = append([]byte(nil), v...)
	return nil
}

func (r *records) Get(_ context.Context, k string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (r *records) Take(ctx context.Context, k string) ([]byte, error) {
	v, err := r.Get(ctx, k)
	if err == nil {
		err = r.Delete(ctx, k)
	}
	return v, err
}

func (r *records) Delete(_ context.Context, k string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, k)
	return nil
}

// ExampleServer answers a user's "hi" with the sample rules, falling back
// to a Mux for voice messages.
func ExampleServer() {
	rules, err := callback.ParseRules(callback.SampleRules)
	if err != nil {
		panic(err)
	}
	mux := callback.NewMux()
	mux.HandleMessage("voice", callback.HandlerFunc(func(ctx context.Context, m *callback.Message) (callback.Reply, error) {
		return callback.TextReply{Content: "Nice voice!"}, nil
	}))
	srv, err := callback.NewServer(callback.Config{
		Token:      "AAAAA",
		OriginalID: "gh_97417a04a28d",
		Mode:       "plain",
		MaxSkew:    300 * time.Second,
		Records:    &records{m: map[string][]byte{}},
		Now:        func() time.Time { return time.Unix(1714037059, 0) },
	}, callback.First(rules, mux))
	if err != nil {
		panic(err)
	}

	// What WeChat posts to /wx when the user sends "hi".
	q := url.Values{
		"signature": {callback.Sign("AAAAA", "1714037059", "486452656")},
		"timestamp": {"1714037059"},
		"nonce":     {"486452656"},
		"openid":    {"o9AgO5Kd5ggOC-bXrbNODIiE3bGY"},
	}
	body := `<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>` +
		`<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>` +
		`<CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType>` +
		`<Content><![CDATA[hi]]></Content><MsgId>24571564473133312</MsgId></xml>`
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/wx?"+q.Encode(), strings.NewReader(body)))
	fmt.Println(w.Code)
	fmt.Println(w.Body.String())
	// Output:
	// 200
	// <xml><ToUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></ToUserName><FromUserName><![CDATA[gh_97417a04a28d]]></FromUserName><CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[Hello! 你好！This account is served by wxauth.]]></Content></xml>
}

// ExampleSign computes the signature of WeChat's URL verification.
func ExampleSign() {
	fmt.Println(callback.Sign("AAAAA", "1714036504", "1514711492"))
	// Output: f464b24fc39322e44b38aa78f5edd27bd1441696
}
