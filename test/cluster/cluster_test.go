// Package cluster tests wxauth as several instances: three `authsvc serve`
// processes on loopback sharing one PostgreSQL database, one Redis and one
// emulator, as behind a load balancer. It needs WXAUTH_TEST_POSTGRES_URL and
// WXAUTH_TEST_REDIS_URL and skips without them (.ci/run sets both).
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/test/e2e"
)

var binary string

func TestMain(m *testing.M) {
	if os.Getenv("WXAUTH_TEST_POSTGRES_URL") == "" || os.Getenv("WXAUTH_TEST_REDIS_URL") == "" {
		fmt.Println("skipping test/cluster: WXAUTH_TEST_POSTGRES_URL and WXAUTH_TEST_REDIS_URL are not both set")
		os.Exit(m.Run())
	}
	e2e.Main(m, "../..", &binary)
}

const (
	appID     = "wxc1a5e0000000c1a5"
	appSecret = "cluster-appsecret-0123456789abc"
	cbToken   = "clusterToken"
	secretKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	adminTok  = "cluster-admin-token-0123456789"
	page      = "https://h5.example.com/"
)

// clientsYAML registers a page as a public client, a back end as a
// confidential one, and the owner's service that calls WeChat through the
// proxy (svc).
const clientsYAML = `- client_id: page
  public: true
  redirect_uris: ["` + page + `"]
  scopes: [openid, profile, offline_access]
- client_id: backend
  client_secret: cluster-backend-secret-0123456789
  redirect_uris: ["https://backend.example.com/cb"]
- client_id: svc
  client_secret: ` + svcSecret + `
  apis: ["user/", "message/"]
`

// cluster is three instances (A, B, C) and the emulator.
type cluster struct {
	emu      string
	procs    [3]*e2e.Proc
	urls     [3]string
	env      map[string]string
	forwards atomic.Int64 // messages the owner's service received
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newCluster creates a fresh PostgreSQL database and Redis prefix, starts
// the emulator and three instances, and removes everything in Cleanup.
func newCluster(t *testing.T) *cluster {
	if binary == "" {
		t.Skip("WXAUTH_TEST_POSTGRES_URL and WXAUTH_TEST_REDIS_URL must both be set")
	}
	ctx := context.Background()
	pgURL, redisURL := os.Getenv("WXAUTH_TEST_POSTGRES_URL"), os.Getenv("WXAUTH_TEST_REDIS_URL")
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("WXAUTH_TEST_POSTGRES_URL: %v", err)
	}
	dbName := "wxauth_cluster_" + random(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, _ := url.Parse(pgURL)
	u.Path = "/" + dbName
	prefix := "wxauth_cluster_" + random(6) + ":"
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		rdb.Close()
	})

	c := &cluster{}
	forward := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.forwards.Add(1)
		time.Sleep(200 * time.Millisecond) // long enough for a concurrent redelivery to arrive meanwhile
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"type":"text","content":"handled as message %d"}`, n)
	}))
	t.Cleanup(forward.Close)

	var addrs [3]string
	for i := range addrs {
		addrs[i] = e2e.FreeAddr(t)
		c.urls[i] = "http://" + addrs[i]
	}
	emuAddr := e2e.FreeAddr(t)
	c.emu = "http://" + emuAddr
	// Behind a load balancer every instance has the same public URL: A's.
	// WeChat pushes the account's events to B, so QR logins started on A are confirmed on B.
	e2e.Start(t, binary, nil, 1, "emulate", "--listen", emuAddr, "--appid", appID, "--appsecret", appSecret,
		"--oauth-domain", addrs[0], "--callback-url", c.urls[1]+"/wx", "--callback-token", cbToken, "--mode", "plain")
	clientsFile := filepath.Join(t.TempDir(), "clients.yaml")
	if err := os.WriteFile(clientsFile, []byte(clientsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env = map[string]string{
		"WXAUTH_CLIENTS":    clientsFile,
		"WXAUTH_PUBLIC_URL": c.urls[0], "WXAUTH_APPID": appID, "WXAUTH_APPSECRET": appSecret,
		"WXAUTH_SECRET_KEY": secretKey, "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": u.String(), "WXAUTH_REDIS_URL": redisURL, "WXAUTH_REDIS_PREFIX": prefix,
		"WXAUTH_WECHAT_API_BASE": c.emu, "WXAUTH_WECHAT_OPEN_BASE": c.emu, "WXAUTH_WECHAT_MP_BASE": c.emu,
		"WXAUTH_CALLBACK_TOKEN": cbToken, "WXAUTH_CALLBACK_MODE": "plain", "WXAUTH_CALLBACK_FORWARD_URL": forward.URL,
		"WXAUTH_ADMIN_TOKEN": adminTok, "WXAUTH_LOG_LEVEL": "warn", "WXAUTH_RATE_LIMIT": "1000", "WXAUTH_RATE_BURST": "1000",
	}
	var wg sync.WaitGroup
	for i := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.procs[i] = c.start(t, addrs[i], nil)
		}()
	}
	wg.Wait()
	for _, u := range c.urls {
		e2e.WaitReady(t, u)
	}
	return c
}

// start runs an instance listening on addr with the cluster's settings
// and extra.
func (cl *cluster) start(t *testing.T, addr string, extra map[string]string) *e2e.Proc {
	env := map[string]string{"WXAUTH_LISTEN": addr}
	maps.Copy(env, cl.env)
	maps.Copy(env, extra)
	return e2e.Start(t, binary, env, 1, "serve")
}

// serve starts one more instance (see start) on a free port and returns
// its URL once it is ready.
func (cl *cluster) serve(t *testing.T, extra map[string]string) (string, *e2e.Proc) {
	addr := e2e.FreeAddr(t)
	p := cl.start(t, addr, extra)
	base := "http://" + addr
	e2e.WaitReady(t, base)
	return base, p
}

// newClient returns WeChat's in-app browser, giving up on a request after
// 20 s.
func newClient(t *testing.T) *e2e.Browser {
	c := e2e.NewBrowser(t, e2e.WeChatUA)
	c.Client.Timeout = 20 * time.Second
	return c
}

// onInstance rewrites u (an instance URL) to instance i.
func (cl *cluster) onInstance(u string, i int) string {
	for _, base := range cl.urls {
		if rest, ok := strings.CutPrefix(u, base); ok {
			return cl.urls[i] + rest
		}
	}
	return u
}

// startLogin runs /login on instance i and the emulator's consent; it
// returns the /oauth/callback URL (pointing at the public URL, A).
func (cl *cluster) startLogin(c *e2e.Browser, i int, user string) string {
	c.T.Helper()
	cb, resp := c.Authorize(cl.urls[i], page, "snsapi_userinfo", user, "allow")
	if cb == "" {
		c.T.Fatalf("authorize after /login on %d: %d", i, resp.StatusCode)
	}
	return cb
}

// tokenOf returns the access JWT a cookie login delivered: back to the
// page with nothing in the URL, the JWT in the HttpOnly wxauth_session
// cookie (opened here with the cluster's secret key).
func tokenOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	if loc := resp.Header.Get("Location"); loc != page {
		t.Fatalf("login: %d %q, want %s", resp.StatusCode, loc, page)
	}
	key, _ := base64.StdEncoding.DecodeString(secretKey)
	codec, err := session.NewCookies(session.CookieConfig{Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == session.SessionCookie {
			if jwt, ok := codec.Session(&http.Request{Header: http.Header{"Cookie": {ck.Name + "=" + ck.Value}}}); ok {
				return jwt
			}
		}
	}
	t.Fatalf("no session cookie in %d %v", resp.StatusCode, resp.Header)
	return ""
}

func TestCluster(t *testing.T) {
	cl := newCluster(t)

	t.Run("SessionAcrossInstances", func(t *testing.T) {
		c := newClient(t)
		cb := cl.startLogin(c, 0, "oWXEMU_alice")
		resp, _ := c.Do("GET", cb, "")
		jwt := tokenOf(t, resp)
		if resp, body := c.Do("GET", cl.urls[1]+"/me", "", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Alice") {
			t.Fatalf("/me on B: %d %s", resp.StatusCode, body)
		}
		if resp, body := c.Do("POST", cl.urls[2]+"/session/refresh", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh on C: %d %s", resp.StatusCode, body)
		}
		if resp, _ := c.Do("POST", cl.urls[0]+"/session/logout", ""); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("logout on A: %d", resp.StatusCode)
		}
		if resp, _ := c.Do("GET", cl.urls[1]+"/verify", "", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/verify on B after logout on A: %d", resp.StatusCode)
		}
	})

	t.Run("ColdJSSDKStorm", func(t *testing.T) {
		var wg sync.WaitGroup
		var failed atomic.Int64
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 30 * time.Second}
		for i := range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := hc.Get(cl.urls[i%3] + "/jssdk/config?url=" + url.QueryEscape(page))
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				if err == nil {
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		calls := e2e.EmuCalls(t, cl.emu)
		if failed.Load() != 0 || calls["/cgi-bin/stable_token"] != 1 || calls["/cgi-bin/ticket/getticket"] != 1 {
			t.Errorf("%d failures; upstream calls %v, want exactly one stable_token and one getticket", failed.Load(), calls)
		}
	})

	t.Run("CallbackOnTwoInstances", func(t *testing.T) {
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "4242"
		parts := []string{cbToken, ts, nonce}
		sort.Strings(parts)
		sum := sha1.Sum([]byte(strings.Join(parts, "")))
		q := "?signature=" + hex.EncodeToString(sum[:]) + "&timestamp=" + ts + "&nonce=" + nonce + "&openid=oWXEMU_bob"
		body := `<xml><ToUserName><![CDATA[gh_wxemu00000000]]></ToUserName><FromUserName><![CDATA[oWXEMU_bob]]></FromUserName>` +
			`<CreateTime>` + ts + `</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello cluster]]></Content>` +
			`<MsgId>` + strconv.FormatInt(time.Now().UnixNano(), 10) + `</MsgId></xml>`
		before := cl.forwards.Load()
		replies := make([]string, 2)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(cl.urls[i]+"/wx"+q, "text/xml", strings.NewReader(body))
				if err != nil {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				replies[i] = string(b)
			}()
		}
		wg.Wait()
		if n := cl.forwards.Load() - before; n != 1 {
			t.Errorf("the message was handled %d times, want once", n)
		}
		extract := func(s string) string {
			_, c, _ := strings.Cut(s, "<Content>")
			c, _, _ = strings.Cut(c, "</Content>")
			return c
		}
		if extract(replies[0]) == "" || extract(replies[0]) != extract(replies[1]) {
			t.Errorf("replies differ: %q / %q", replies[0], replies[1])
		}
	})

	t.Run("InstanceKilledMidLogin", func(t *testing.T) {
		// A dedicated instance D starts the login and dies; B completes it.
		dURL, d := cl.serve(t, nil)
		c := newClient(t)
		cb, _ := c.Authorize(dURL, page, "snsapi_base", "oWXEMU_bob", "allow")
		d.Kill()
		resp, body := c.Do("GET", cl.onInstance(cb, 1), "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("callback on B after D was killed: %d %s", resp.StatusCode, body)
		}
		tokenOf(t, resp)
	})

	t.Run("QRLoginAcrossInstances", func(t *testing.T) {
		c := newClient(t)
		resp, body := c.Do("POST", cl.urls[0]+"/qr/sessions", `{"redirect":"`+page+`"}`, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /qr/sessions on A: %d %s", resp.StatusCode, body)
		}
		var attempt struct{ ID, Ticket string }
		json.Unmarshal([]byte(body), &attempt)
		scan, _ := json.Marshal(map[string]string{"openid": "oWXEMU_alice", "ticket": attempt.Ticket})
		if resp, err := http.Post(cl.emu+"/emu/scan", "application/json", strings.NewReader(string(scan))); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/emu/scan: %v %v", err, resp)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := c.Do("GET", cl.urls[0]+"/qr/sessions/"+attempt.ID, "")
			if strings.Contains(body, `"confirmed"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("attempt on A never confirmed by the scan delivered to B: %s", body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		resp, body = c.Do("GET", cl.urls[0]+"/qr/sessions/"+attempt.ID+"/complete", "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("complete on A: %d %s", resp.StatusCode, body)
		}
		jwt := tokenOf(t, resp)
		if resp, body := c.Do("GET", cl.urls[2]+"/me", "", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusOK || !strings.Contains(body, "oWXEMU_alice") {
			t.Errorf("/me on C after a QR login: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("VoidedTokenOneRefresh", func(t *testing.T) {
		var out map[string]string
		e2e.AdminJSON(t, adminTok, http.MethodGet, cl.urls[0]+"/internal/access-token", "", &out)
		old := out["access_token"]
		if resp, err := http.Post(cl.emu+"/emu/void-token", "application/json", nil); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("void-token: %v", err)
		}
		before := e2e.EmuCalls(t, cl.emu)["/cgi-bin/stable_token"]
		got := e2e.InvalidateAtOnce(t, adminTok, old, 30, cl.urls[:]...)
		for i, g := range got {
			if g == "" || g == old || g != got[0] {
				t.Errorf("caller %d on instance %d got %q (old %q)", i, i%3, g, old)
			}
		}
		if n := e2e.EmuCalls(t, cl.emu)["/cgi-bin/stable_token"] - before; n != 1 {
			t.Errorf("%v stable_token calls after the void, want 1", n)
		}
	})
}
