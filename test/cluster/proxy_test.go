package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// svcSecret is the secret of client svc (clientsYAML), the owner's service
// that calls WeChat through the proxy.
const svcSecret = "cluster-svc-secret-0123456789"

// TestCluster_Proxy: a proxy token issued by one instance works on all;
// when WeChat voids the access_token while the three instances serve 30
// concurrent proxied calls, the cluster refreshes it exactly once and every
// call succeeds.
func TestCluster_Proxy(t *testing.T) {
	cl := newCluster(t)
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	call := func(i int, tok string) (int, string, error) {
		var req *http.Request
		if i%2 == 0 {
			req, _ = http.NewRequest(http.MethodPost, cl.urls[i%3]+"/cgi-bin/message/custom/send?access_token="+tok,
				strings.NewReader(fmt.Sprintf(`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"call %d"}}`, i)))
			req.Header.Set("Content-Type", "application/json")
		} else {
			req, _ = http.NewRequest(http.MethodGet, cl.urls[i%3]+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+tok, nil)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			ErrCode int    `json:"errcode"`
			OpenID  string `json:"openid"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return resp.StatusCode, string(b), err
		}
		if resp.StatusCode != http.StatusOK || r.ErrCode != 0 || (i%2 == 1 && r.OpenID != "oWXEMU_alice") {
			return resp.StatusCode, string(b), fmt.Errorf("errcode %d", r.ErrCode)
		}
		return resp.StatusCode, string(b), nil
	}

	// An SDK on instance A fetches its proxy token; B and C accept it.
	resp, err := hc.Get(cl.urls[0] + "/cgi-bin/token?grant_type=client_credential&appid=svc&secret=" + svcSecret)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if !strings.HasPrefix(tr.AccessToken, "wxp_") || tr.ExpiresIn != 7200 {
		t.Fatalf("cgi-bin/token on A: %+v", tr)
	}
	for i := range 6 { // every instance holds the access_token now
		if status, body, err := call(i, tr.AccessToken); err != nil {
			t.Fatalf("warm-up call %d on instance %d: %d %s: %v", i, i%3, status, body, err)
		}
	}
	before := e2e.EmuCalls(t, cl.emu)
	resp, err = http.Post(cl.emu+"/emu/void-token", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	const n = 30
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			status, body, err := call(i, tr.AccessToken)
			if err != nil {
				errs[i] = fmt.Errorf("call %d on instance %d: %d %s: %w", i, i%3, status, body, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	after := e2e.EmuCalls(t, cl.emu)
	refreshes := after["/cgi-bin/stable_token"] + after["/cgi-bin/token"] - before["/cgi-bin/stable_token"] - before["/cgi-bin/token"]
	sent := after["/cgi-bin/message/custom/send"] + after["/cgi-bin/user/info"] - before["/cgi-bin/message/custom/send"] - before["/cgi-bin/user/info"]
	t.Logf("after the void: %v token fetches, %v proxied calls reached WeChat for %d callers", refreshes, sent, n)
	if refreshes != 1 {
		t.Errorf("token fetches after the void: %v, want exactly 1 for the cluster", refreshes)
	}
	// Each instance held the voided token, so each met 40001 at least once
	// and retried; no call was sent more than twice.
	if sent < n+3 || sent > 2*n {
		t.Errorf("calls that reached WeChat: %v, want between %d and %d", sent, n+3, 2*n)
	}
}
