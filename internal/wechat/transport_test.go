package wechat

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNewHTTPClient_KeepsConnections: bursts of 32 concurrent calls reuse
// the connections of the first burst instead of dialing again (net/http's
// default transport keeps 2 idle connections per host and dials about 30
// per burst).
func TestNewHTTPClient_KeepsConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // keep the burst's calls in flight together
		io.WriteString(w, `{"errcode":0}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	hc := NewHTTPClient(5 * time.Second)
	if hc.Timeout != 5*time.Second {
		t.Fatalf("Timeout %v", hc.Timeout)
	}
	const burst, bursts = 32, 5
	for range bursts {
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				resp, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	if n := dials.Load(); n > burst {
		t.Errorf("%d connections for %d bursts of %d calls, want at most %d", n, bursts, burst, burst)
	}
}
