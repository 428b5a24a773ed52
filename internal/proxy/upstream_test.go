package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustReq(method, u, body string) *http.Request {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}

// TestProxy_Media uploads a 3 MiB image (streamed: over the replay bound)
// and downloads it again.
func TestProxy_Media(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.proxyToken(t, "svc", svcSecret)
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("media", "big.jpg")
		_, _ = fw.Write(data)
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/media/upload?type=image&access_token="+tok, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	_, a, b := do(t, req) // chunked: length unknown to the proxy
	if a.MediaID == "" {
		t.Fatalf("upload: %s", b)
	}
	_, _, lb := get(t, e.emu.URL+"/emu/media")
	sum := sha256.Sum256(data)
	if !bytes.Contains(lb, []byte(hex.EncodeToString(sum[:]))) {
		t.Fatalf("emulator media %s lacks the upload's digest", lb)
	}
	resp, err := http.Get(e.srv.URL + "/cgi-bin/media/get?media_id=" + a.MediaID + "&access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if n != int64(len(data)) || resp.Header.Get("Content-Type") != "image/jpeg" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d bytes, headers %v", n, resp.Header)
	}
	t.Run("TooLarge", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxBody = 1 << 20 })
		tok := e.proxyToken(t, "svc", svcSecret)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/media/upload?type=image&access_token="+tok, bytes.NewReader(data))
		_, a, b := do(t, req)
		if a.code() != 40006 {
			t.Fatalf("want 40006: %s", b)
		}
	})
}

func TestProxy_Upstream(t *testing.T) {
	// The token owner reaches the emulator; the proxy's API base is a
	// closed port.
	e := newEnv(t, func(c *Config) { c.APIBase = "http://127.0.0.1:1" })
	tok := e.proxyToken(t, "svc", svcSecret)
	resp, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+tok)
	if resp.StatusCode != http.StatusBadGateway || a.code() != -1 {
		t.Fatalf("unreachable WeChat: %d %s", resp.StatusCode, b)
	}
}

// TestProxy_Timeout: WeChat slower than Timeout gives the caller -1 with
// HTTP 504, and the call is not sent again.
func TestProxy_Timeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	tok := e.proxyToken(t, "svc", svcSecret)
	do(t, mustReq(http.MethodPost, e.emu.URL+"/emu/faults", `{"path":"/cgi-bin/user/info","delay_ms":2000}`))
	before := e.emuCalls(t, "/cgi-bin/user/info")
	resp, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+tok)
	if resp.StatusCode != http.StatusGatewayTimeout || a.code() != -1 {
		t.Fatalf("slow WeChat: %d %s, want 504 errcode -1", resp.StatusCode, b)
	}
	if n := e.emuCalls(t, "/cgi-bin/user/info") - before; n != 1 {
		t.Fatalf("user/info reached WeChat %d times, want 1", n)
	}
}

// refuseFirstDial fails its first round trip as a refused connection.
type refuseFirstDial struct {
	mu    sync.Mutex
	tries int
}

func (r *refuseFirstDial) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.tries++
	first := r.tries == 1
	r.mu.Unlock()
	if first {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestProxy_DialRefused: a call whose connection was refused cannot have
// reached WeChat, so it is sent once more.
func TestProxy_DialRefused(t *testing.T) {
	rt := &refuseFirstDial{}
	e := newEnv(t, func(c *Config) { c.Transport = rt })
	tok := e.proxyToken(t, "svc", svcSecret)
	req := mustReq(http.MethodPost, e.srv.URL+"/cgi-bin/message/custom/send?access_token="+tok,
		`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"hi"}}`)
	if _, a, b := do(t, req); a.ErrCode == nil || a.code() != 0 || rt.tries != 2 {
		t.Fatalf("after a refused connection: %s, %d tries", b, rt.tries)
	}
}

// TestProxy_TooLargeChunked: a body without a length is cut at MaxBody.
func TestProxy_TooLargeChunked(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBody = 1 << 20 })
	tok := e.proxyToken(t, "svc", svcSecret)
	body := io.MultiReader(bytes.NewReader(make([]byte, 2<<20))) // no Content-Length
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/media/upload?type=image&access_token="+tok, body)
	if _, a, b := do(t, req); a.code() != 40006 {
		t.Fatalf("2 MiB chunked body over a 1 MiB bound: %s, want 40006", b)
	}
}
