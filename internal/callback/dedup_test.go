package callback

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store/memory"
)

func TestServer_ServeHTTP_Dedup(t *testing.T) {
	ts := strconv.FormatInt(testNow, 10)
	t.Run("Sequential", func(t *testing.T) {
		calls := 0
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			calls++
			return TextReply{Content: "call " + strconv.FormatInt(int64(calls), 10)}, nil
		}), func(c *Config) {
			now := time.Unix(testNow, 0)
			c.Now = func() time.Time { now = now.Add(time.Second); return now } // a later reply would differ
		})
		var replies []string
		for i := 0; i < 3; i++ {
			w := e.serve(plainRequest(textXML(42, "x"), ts))
			replies = append(replies, w.Body.String())
		}
		if calls != 1 {
			t.Fatalf("handler called %d times", calls)
		}
		if replies[0] != replies[1] || replies[1] != replies[2] || parseReply(t, replies[0]).Content != "call 1" {
			t.Errorf("replies differ: %q", replies)
		}
	})
	t.Run("ConcurrentEncrypted", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		release := make(chan struct{})
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			<-release
			return TextReply{Content: "once"}, nil
		}), func(c *Config) { c.Mode = "safe" })
		var wg sync.WaitGroup
		replies := make([]string, 3)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := e.serve(safeRequest(t, testKey, eventXML("CLICK", "V1001_TODAY_MUSIC"), ts, false))
				replies[i] = w.Body.String()
			}()
		}
		// Release the first delivery once both others are polling.
		for e.records.gets.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		if calls != 1 {
			t.Fatalf("handler called %d times", calls)
		}
		var plain []string
		for _, r := range replies {
			plain = append(plain, openReply(t, testKey, []byte(r)))
		}
		if plain[0] != plain[1] || plain[1] != plain[2] || parseReply(t, plain[0]).Content != "once" {
			t.Errorf("plaintext replies differ: %q", plain)
		}
	})
	t.Run("EventKeyDistinguishes", func(t *testing.T) {
		calls := 0
		e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) { calls++; return nil, nil }), nil)
		e.serve(plainRequest(eventXML("CLICK", "A"), ts))
		e.serve(plainRequest(eventXML("CLICK", "B"), ts))
		e.serve(plainRequest(eventXML("VIEW", "A"), ts))
		e.serve(plainRequest(eventXML("CLICK", "A"), ts))
		if calls != 3 {
			t.Errorf("handler called %d times, want 3", calls)
		}
	})
	t.Run("RecordsDownStillAnswers", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "ok"}), nil)
		e.records.failPut = errors.New("redis: connection refused")
		w := e.serve(plainRequest(textXML(1, "x"), ts))
		if parseReply(t, w.Body.String()).Content != "ok" {
			t.Errorf("got %q", w.Body)
		}
	})
	t.Run("PendingPastBudgetIsSuccess", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "never"}), func(c *Config) { c.Budget = 30 * time.Millisecond })
		key := dedupKey(&Message{ToUserName: testGhID, MsgID: 5, MsgType: "text"})
		e.records.m[key] = []byte{recPending}
		w := e.serve(plainRequest(textXML(5, "x"), ts))
		if w.Body.String() != "success" {
			t.Errorf("got %q", w.Body)
		}
	})
}

func TestServer_LateReplyServesRedelivery(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		<-release // past the budget
		return TextReply{Content: "late"}, nil
	}), func(c *Config) { c.Budget = 30 * time.Millisecond })
	if w := e.serve(plainRequest(textXML(77, "x"), strconv.FormatInt(testNow, 10))); w.Body.String() != "success" {
		t.Fatalf("first delivery: %q", w.Body)
	}
	close(release)
	for e.records.puts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	w := e.serve(plainRequest(textXML(77, "x"), strconv.FormatInt(testNow, 10)))
	if r := parseReply(t, w.Body.String()); r.Content != "late" {
		t.Errorf("redelivery: %q", w.Body)
	}
}

func TestServer_DedupWithMemoryStore(t *testing.T) {
	calls := 0
	mem := memory.New(time.Now)
	e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) {
		calls++
		return TextReply{Content: "once"}, nil
	}), func(c *Config) { c.Records = mem; c.Mode = "safe" })
	var plain []string
	for i := 0; i < 3; i++ {
		w := e.serve(safeRequest(t, testKey, eventXML("subscribe", "qrscene_42"), strconv.FormatInt(testNow, 10), false))
		plain = append(plain, openReply(t, testKey, w.Body.Bytes()))
	}
	if calls != 1 || plain[0] != plain[1] || plain[1] != plain[2] {
		t.Errorf("calls %d, replies %q", calls, plain)
	}
}

// deadlineRecords records, for each Put, how long its context had left.
type deadlineRecords struct {
	*fakeRecords
	left chan time.Duration
}

func (d deadlineRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	left := time.Duration(-1) // no deadline
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	d.left <- left
	return d.fakeRecords.Put(ctx, key, val, ttl)
}

// TestServer_DedupRecordOutlivesTheBudget: a handler that returns just
// before the budget ends still leaves its reply's record storeTimeout to be
// written, as one past the budget does; with only the budget's remainder a
// slow store would leave the record pending and WeChat's redeliveries
// handled again.
func TestServer_DedupRecordOutlivesTheBudget(t *testing.T) {
	const budget = 300 * time.Millisecond
	for _, inline := range []bool{true, false} {
		recs := deadlineRecords{newFakeRecords(), make(chan time.Duration, 1)}
		e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
			dl, _ := ctx.Deadline()
			time.Sleep(time.Until(dl) - 100*time.Millisecond) // return with 100 ms of the budget left
			return TextReply{Content: "just in time"}, nil
		}), func(c *Config) { c.Budget, c.Inline, c.Records = budget, inline, recs })
		e.serve(plainRequest(textXML(78, "x"), strconv.FormatInt(testNow, 10)))
		if left := <-recs.left; left >= 0 && left < storeTimeout/2 {
			t.Errorf("inline %v: the record's write had %v, want about %v", inline, left, storeTimeout)
		}
	}
}
