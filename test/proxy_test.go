package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

// Clients of the proxy tests: svc may call user/, message/, media/ and
// ticket/ APIs; slow is limited to a burst of 2; raw may read the raw
// access_token; nocc has no client_credentials grant.
const (
	proxySvcSecret  = "svc-secret-0123456789abcdef"
	proxySlowSecret = "slow-secret-0123456789abcdef"
	proxyRawSecret  = "raw-secret-0123456789abcdef"
	proxyClients    = `clients:
  - client_id: svc
    client_secret: ` + proxySvcSecret + `
    apis: ["user/", "message/", "media/", "ticket/"]
  - client_id: slow
    client_secret: ` + proxySlowSecret + `
    apis: ["*"]
    rate_limit: 0.01
    rate_burst: 2
  - client_id: raw
    client_secret: ` + proxyRawSecret + `
    raw_access_token: true
`
)

// startProxyPair runs the emulator and one `authsvc serve` with the proxy's
// clients; it returns their URLs and the service's process.
func startProxyPair(t *testing.T) (svc, emu string, proc *e2e.Proc) {
	t.Helper()
	svcAddr, emuAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu = "http://"+svcAddr, "http://"+emuAddr
	file := filepath.Join(t.TempDir(), "clients.yaml")
	if err := os.WriteFile(file, []byte(proxyClients), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret,
		"--oauth-domain", svcAddr)
	proc = start(t, map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": e2eAppID, "WXAUTH_APPSECRET": e2eAppSecret,
		"WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_ADMIN_TOKEN": e2eAdminToken,
		"WXAUTH_CLIENTS": file, "WXAUTH_LOG_LEVEL": "info",
	}, 1, "serve")
	e2e.WaitReady(t, svc)
	return svc, emu, proc
}

// wxResult is the union of the WeChat answers the proxy tests read.
type wxResult struct {
	ErrCode     *int   `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	OpenID      string `json:"openid"`
	MediaID     string `json:"media_id"`
	Ticket      string `json:"ticket"`
}

func (r wxResult) code() int {
	if r.ErrCode == nil {
		return 0
	}
	return *r.ErrCode
}

func wxDo(t *testing.T, req *http.Request) (*http.Response, wxResult, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r wxResult
	_ = json.Unmarshal(b, &r)
	return resp, r, string(b)
}

func wxGet(t *testing.T, u string) (*http.Response, wxResult, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return wxDo(t, req)
}

// proxyTokenFor fetches a proxy token as an SDK does (GET cgi-bin/token).
func proxyTokenFor(t *testing.T, svc, id, secret string) string {
	t.Helper()
	_, r, body := wxGet(t, svc+"/cgi-bin/token?grant_type=client_credential&appid="+id+"&secret="+url.QueryEscape(secret))
	if r.AccessToken == "" || r.ExpiresIn != 7200 {
		t.Fatalf("cgi-bin/token for %s: %s", id, body)
	}
	return r.AccessToken
}

// TestProxy_Calls: proxied calls succeed without the caller ever seeing the
// real access_token, the caller's access_token is ignored, every refusal is
// WeChat-shaped, the raw token is only for the admin and raw clients, and
// no token or secret reaches the log.
func TestProxy_Calls(t *testing.T) {
	t.Parallel()
	svc, _, proc := startProxyPair(t)
	tok := proxyTokenFor(t, svc, "svc", proxySvcSecret)
	status, out := adminRequest(t, http.MethodGet, svc+"/internal/access-token", "")
	real, _ := out["access_token"].(string)
	if status != http.StatusOK || real == "" {
		t.Fatalf("admin /internal/access-token: %d %v", status, out)
	}
	if tok == real || !strings.HasPrefix(tok, "wxp_") {
		t.Fatalf("cgi-bin/token gave %q: want an opaque proxy token", tok)
	}

	t.Run("ProxiedCall", func(t *testing.T) {
		resp, r, body := wxGet(t, svc+"/cgi-bin/user/info?access_token="+tok+"&openid=oWXEMU_alice&lang=zh_CN")
		if resp.StatusCode != http.StatusOK || r.code() != 0 || r.OpenID != "oWXEMU_alice" {
			t.Fatalf("user/info: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, real) {
			t.Fatal("the answer carries the real access_token")
		}
		req, _ := http.NewRequest(http.MethodPost, svc+"/cgi-bin/message/custom/send?access_token="+tok,
			strings.NewReader(`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"你好"}}`))
		req.Header.Set("Content-Type", "application/json")
		if _, r, body := wxDo(t, req); r.ErrCode == nil || r.code() != 0 {
			t.Fatalf("message/custom/send: %s", body)
		}
		if _, r, body := wxGet(t, svc+"/cgi-bin/ticket/getticket?type=jsapi&access_token="+tok); r.code() != 0 || r.Ticket == "" {
			t.Fatalf("ticket/getticket: %s", body)
		}
	})

	t.Run("CallersTokenIgnored", func(t *testing.T) {
		// HTTP Basic authenticates; the access_token sent along (here a
		// made-up one) is removed and the current one injected.
		req, _ := http.NewRequest(http.MethodGet, svc+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token=not-a-wechat-token", nil)
		req.SetBasicAuth("svc", proxySvcSecret)
		if _, r, body := wxDo(t, req); r.code() != 0 || r.OpenID != "oWXEMU_alice" {
			t.Fatalf("Basic with a bogus access_token: %s", body)
		}
		// The real token itself is no credential of the proxy.
		if _, r, body := wxGet(t, svc+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+url.QueryEscape(real)); r.code() != 40001 {
			t.Fatalf("the real access_token as credential: %s, want 40001", body)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, id, secret string
			code                   int
		}{
			{"UnknownClient", "/cgi-bin/token?grant_type=client_credential&appid=nobody&secret=" + proxySvcSecret, "", "", 40125},
			{"WrongSecret", "/cgi-bin/token?grant_type=client_credential&appid=svc&secret=wrong-0123456789abcdef", "", "", 40125},
			{"UnknownClientBasic", "/cgi-bin/user/info?openid=oWXEMU_alice", "nobody", proxySvcSecret, 40125},
			{"WrongSecretBasic", "/cgi-bin/user/info?openid=oWXEMU_alice", "svc", "wrong-0123456789abcdef", 40125},
			{"UnknownProxyToken", "/cgi-bin/user/info?openid=oWXEMU_alice&access_token=wxp_unknown", "", "", 40001},
			{"OutsideAllowlist", "/cgi-bin/menu/get?access_token=" + tok, "", "", 48001},
			{"OutsideAllowlist2", "/cgi-bin/qrcode/create?access_token=" + tok, "", "", 48001},
		} {
			req, _ := http.NewRequest(http.MethodGet, svc+tc.path, nil)
			if tc.id != "" {
				req.SetBasicAuth(tc.id, tc.secret)
			}
			resp, r, body := wxDo(t, req)
			if resp.StatusCode != http.StatusOK || r.code() != tc.code || r.ErrMsg == "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: %d %s, want HTTP 200 errcode %d", tc.name, resp.StatusCode, body, tc.code)
			}
		}
		slow := proxyTokenFor(t, svc, "slow", proxySlowSecret) // 1 of its burst of 2
		if _, r, body := wxGet(t, svc+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+slow); r.code() != 0 {
			t.Fatalf("slow's first call: %s", body)
		}
		resp, r, body := wxGet(t, svc+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+slow)
		if r.code() != 45011 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("over the rate: %d %s, want 45011 and Retry-After", resp.StatusCode, body)
		}
	})

	t.Run("RawAccessToken", func(t *testing.T) {
		for _, tc := range []struct {
			id, secret string
			want       int
		}{{"raw", proxyRawSecret, http.StatusOK}, {"svc", proxySvcSecret, http.StatusUnauthorized}, {"raw", "wrong-0123456789abcdef", http.StatusUnauthorized}} {
			req, _ := http.NewRequest(http.MethodGet, svc+"/internal/access-token", nil)
			req.SetBasicAuth(tc.id, tc.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || (tc.want == http.StatusOK) != strings.Contains(string(b), real) {
				t.Errorf("%s: %d %s, want %d", tc.id, resp.StatusCode, b, tc.want)
			}
		}
	})

	t.Run("MetricsAndLog", func(t *testing.T) {
		m := scrape(t, svc+"/metrics")
		for _, want := range [][]string{
			{"wxauth_proxy_calls_total", "client", "svc", "api", "user/info", "errcode", "0"},
			{"wxauth_proxy_calls_total", "client", "svc", "api", "token", "errcode", "0"},
			{"wxauth_proxy_refusals_total", "client", "svc", "reason", "not_allowed"},
			{"wxauth_proxy_refusals_total", "client", "slow", "reason", "rate_limited"},
			{"wxauth_proxy_refusals_total", "client", "-", "reason", "invalid_client"},
			{"wxauth_proxy_call_duration_seconds_count", "client", "svc", "api", "message/custom/send"},
		} {
			if v, ok := m(want[0], want[1:]...); !ok || v < 1 {
				t.Errorf("/metrics: %v = %v", want, v)
			}
		}
		logs := proc.Output()
		for _, secret := range []string{tok, real, proxySvcSecret, proxySlowSecret, proxyRawSecret, e2eAppSecret} {
			if strings.Contains(logs, secret) {
				t.Fatalf("a token or secret reached the log:\n%s", logs)
			}
		}
		if !strings.Contains(logs, `"msg":"wechat proxy","client":"svc","api":"cgi-bin/user/info","method":"GET","errcode":"0"`) {
			t.Errorf("no access line for the proxied user/info:\n%s", logs)
		}
	})
}

// vmKiB reads a "Name:   N kB" line of /proc/PID/status.
func vmKiB(t *testing.T, pid int, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// TestProxy_MediaStreams uploads a 10 MB image through the proxy twice (with
// a Content-Length, then chunked) and downloads it, and checks that the
// service's peak RSS (VmHWM) grows by less than 16 MiB: bodies stream.
func TestProxy_MediaStreams(t *testing.T) {
	t.Parallel()
	svc, emu, proc := startProxyPair(t)
	pid := proc.Cmd.Process.Pid
	tok := proxyTokenFor(t, svc, "svc", proxySvcSecret)
	// Warm up: the access_token, connections, the code paths.
	if _, r, body := wxGet(t, svc+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+tok); r.code() != 0 {
		t.Fatalf("warm-up: %s", body)
	}
	const size = 10_000_000 // 10 MB, WeChat's image limit
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("media", "big.jpg")
	fw.Write(data)
	mw.Close()

	hwm0, rss0 := vmKiB(t, pid, "VmHWM"), vmKiB(t, pid, "VmRSS")
	upload := func(name string, body io.Reader) string {
		req, _ := http.NewRequest(http.MethodPost, svc+"/cgi-bin/media/upload?type=image&access_token="+tok, body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, r, out := wxDo(t, req)
		if r.MediaID == "" {
			t.Fatalf("%s upload: %d %s", name, resp.StatusCode, out)
		}
		return r.MediaID
	}
	id := upload("sized", bytes.NewReader(form.Bytes()))
	upload("chunked", io.MultiReader(bytes.NewReader(form.Bytes()))) // no Content-Length
	resp, err := http.Get(svc + "/cgi-bin/media/get?media_id=" + id + "&access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != size || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("download: %d bytes, %v", n, resp.Header)
	}
	hwm1, rss1 := vmKiB(t, pid, "VmHWM"), vmKiB(t, pid, "VmRSS")
	t.Logf("service RSS: VmHWM %d -> %d KiB (+%.1f MiB), VmRSS %d -> %d KiB, over two 10 MB uploads and one download",
		hwm0, hwm1, float64(hwm1-hwm0)/1024, rss0, rss1)
	if grow := hwm1 - hwm0; grow >= 16<<10 {
		t.Errorf("peak RSS grew by %.1f MiB, want < 16 MiB", float64(grow)/1024)
	}

	mresp, err := http.Get(emu + "/emu/media")
	if err != nil {
		t.Fatal(err)
	}
	var media []struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	json.NewDecoder(mresp.Body).Decode(&media)
	mresp.Body.Close()
	if len(media) != 2 {
		t.Fatalf("emulator received %d media, want 2", len(media))
	}
	for i, m := range media {
		if m.Size != size || m.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("medium %d: %d bytes %s, want %d bytes %x", i, m.Size, m.SHA256, size, sum)
		}
	}
}
