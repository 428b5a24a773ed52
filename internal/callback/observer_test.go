package callback

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// observed is an Observer keeping one line per report.
type observed struct {
	mu    sync.Mutex
	lines []string
}

func (o *observed) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, s)
}

func (o *observed) Verified(_ context.Context, mode string) { o.add("verified " + mode) }

func (o *observed) Answered(_ context.Context, m *Message, outcome Outcome) {
	o.add("answered " + m.MsgType + "/" + m.Event + " " + m.Mode + " " + string(outcome))
}

func (o *observed) Refused(_ context.Context, status int, reason, mode string) {
	o.add("refused " + http.StatusText(status) + " " + reason + " " + mode)
}

func (o *observed) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines
	o.lines = nil
	return l
}

func TestServer_Observer(t *testing.T) {
	obs := &observed{}
	release := make(chan struct{})
	defer close(release)
	e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		switch m.Content {
		case "hi":
			return TextReply{Content: "hello"}, nil
		case "slow":
			<-release
		}
		return nil, nil
	}), func(c *Config) { c.Observer = obs; c.Budget = 30 * time.Millisecond })
	ts := strconv.FormatInt(testNow, 10)
	for _, tc := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"Replied", safeRequest(t, testKey, textXML(1, "hi"), ts, true), "answered text/ compat replied"},
		{"Redelivery", safeRequest(t, testKey, textXML(1, "hi"), ts, true), "answered text/ compat duplicate"},
		{"NothingToSay", safeRequest(t, testKey, eventXML("subscribe", ""), ts, false), "answered event/subscribe safe success"},
		{"PastBudget", safeRequest(t, testKey, textXML(2, "slow"), ts, true), "answered text/ compat success"},
		{"PlainRefused", plainRequest(textXML(3, "hi"), "1"), "refused Forbidden timestamp plain"},
		{"BadBase64", encryptedRequest("x", ts, false), "refused Bad Request base64 safe"},
		{"Verify", newGet(t, "echo"), "verified plain"},
		{"Method", newMethod(http.MethodPut), "refused Method Not Allowed method_not_allowed plain"},
	} {
		e.serve(tc.req)
		if got := obs.take(); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s: observed %q, want %q", tc.name, got, tc.want)
		}
	}
}

// newGet is a signed URL verification.
func newGet(tb testing.TB, echo string) *http.Request {
	tb.Helper()
	ts := strconv.FormatInt(testNow, 10)
	r, err := http.NewRequest(http.MethodGet, "/wx?signature="+Sign(testToken, ts, testNonce)+"&timestamp="+ts+"&nonce="+testNonce+"&echostr="+echo, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// newMethod is a request with another method.
func newMethod(method string) *http.Request {
	r, _ := http.NewRequest(method, "/wx", nil)
	return r
}
