package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/wechat"
)

// The way to WeChat and back: sending the call with the access_token,
// reading the answer's errcode for the 40001 retry, copying it back.

// forward sends the call to WeChat and copies the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, c *call) {
	ctx, cancel := context.WithTimeout(r.Context(), p.streamTimeout)
	defer cancel()
	// The server's own read and write timeouts are sized for small
	// requests; a media upload or download gets the call's bound.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(p.streamTimeout + 5*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	b, ref := p.readBody(w, r)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	defer b.release()

	tok, err := p.tokens.AccessToken(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "proxy: no access_token", "error", err.Error())
		c.refuse(w, refuseUnavailable("token_unavailable", "cannot get the access_token"))
		return
	}
	resp, ref := p.send(ctx, r, b, tok)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	ans := peek(resp)
	if ans.complete && ans.hasCode && wechat.StaleToken(ans.code) {
		// compare-and-refresh: one refresh for every caller that used tok,
		// in every instance. A streamed body cannot be sent again: its
		// caller gets WeChat's answer, and its next call the new token.
		if err := p.tokens.Invalidate(ctx, tok); err != nil {
			p.log.WarnContext(ctx, "proxy: refresh the access_token", "error", err.Error())
		}
		if b.replayable() {
			if tok2, err := p.tokens.AccessToken(ctx); err == nil && tok2 != tok {
				if resp2, ref := p.send(ctx, r, b, tok2); ref == nil {
					resp.Body.Close()
					resp, ans = resp2, peek(resp2)
					c.retried = true
				}
			}
		}
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode
	switch {
	case resp.StatusCode != http.StatusOK:
		c.errcode = "http_" + strconv.Itoa(resp.StatusCode)
	case ans.hasCode:
		c.errcode = strconv.Itoa(ans.code)
	default:
		c.errcode = "0"
	}
	copyHeaders(w.Header(), resp.Header)
	if ans.complete {
		w.Header().Set("Content-Length", strconv.Itoa(len(ans.head)))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(ans.head); err != nil {
		return
	}
	if !ans.complete {
		buf := make([]byte, 32<<10)
		_, _ = io.CopyBuffer(w, resp.Body, buf)
	}
}

// send makes one call to WeChat with token tok. A connection refused
// before anything was sent is tried once more when the body can be sent
// again.
func (p *Proxy) send(ctx context.Context, r *http.Request, b *body, tok string) (*http.Response, *Refusal) {
	target := p.base + "/cgi-bin/" + strings.TrimPrefix(r.URL.Path, "/cgi-bin/") + "?" + withToken(r.URL.RawQuery, tok)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.Method, target, b.reader())
		if err != nil {
			return nil, refuseBadRequest(40097, "invalid args")
		}
		req.ContentLength = b.length
		if b.length == 0 {
			req.Body = nil
		}
		for _, k := range forwardRequestHeaders {
			if v := r.Header.Values(k); len(v) > 0 {
				req.Header[k] = v
			}
		}
		req.Header.Set("User-Agent", "wxauth-proxy")
		resp, err := p.rt.RoundTrip(req)
		if err == nil {
			return resp, nil
		}
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, refuseTooLarge(p.maxBody)
		case r.Context().Err() != nil:
			return nil, &Refusal{Status: 499, Code: -1, Reason: "canceled", Msg: "system error (wxauth: the caller went away)"}
		case attempt == 0 && dialRefused(err) && b.replayable():
			select {
			case <-ctx.Done():
				return nil, refuseUpstream(true)
			case <-time.After(dialRetryPause):
			}
			continue
		}
		var ne net.Error
		return nil, refuseUpstream(errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout())
	}
}

// dialRefused reports whether err is a failure to connect: the request
// cannot have reached WeChat.
func dialRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// withToken returns the raw query without any access_token parameter and
// with access_token=tok appended; the other parameters keep their order and
// encoding.
func withToken(raw, tok string) string {
	var sb strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == "access_token" || key == "access_token" {
			continue
		}
		sb.WriteString(part)
		sb.WriteByte('&')
	}
	sb.WriteString("access_token=")
	sb.WriteString(url.QueryEscape(tok))
	return sb.String()
}

// forwardRequestHeaders are the caller's headers sent on to WeChat; its
// Authorization, cookies and anything else stay here.
var forwardRequestHeaders = []string{"Content-Type", "Accept", "Accept-Language"}

// forwardResponseHeaders are WeChat's headers returned to the caller.
var forwardResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Disposition", "Content-Encoding",
	"Cache-Control", "Expires", "Last-Modified", "Etag", "Date"}

func copyHeaders(dst, src http.Header) {
	for _, k := range forwardResponseHeaders {
		if v := src.Values(k); len(v) > 0 {
			dst[k] = v
		}
	}
}

// answer is WeChat's answer with its head read.
type answer struct {
	head     []byte // what was read; the whole body when complete
	complete bool
	hasCode  bool
	code     int // errcode, when hasCode
}

// peek reads the body of a small JSON or text answer whole (at most
// peekLimit bytes) and finds its errcode; media and large answers are not
// read.
func peek(resp *http.Response) answer {
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if !(strings.Contains(ct, "json") || strings.HasPrefix(ct, "text/") || ct == "") || resp.ContentLength > peekLimit {
		return answer{}
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, peekLimit+1))
	if err != nil || len(head) > peekLimit {
		// keep what was read; the rest streams after it
		return answer{head: head}
	}
	a := answer{head: head, complete: true}
	trimmed := bytes.TrimSpace(head)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, []byte(`"errcode"`)) {
		return a
	}
	var env struct {
		ErrCode *int `json:"errcode"`
	}
	if json.Unmarshal(trimmed, &env) == nil && env.ErrCode != nil {
		a.hasCode, a.code = true, *env.ErrCode
	}
	return a
}

// body is a request body on its way to WeChat: kept whole in memory (buf,
// replayable) or streamed once (stream).
type body struct {
	buf     []byte
	stream  io.Reader
	length  int64 // -1 unknown
	sent    bool
	release func()
}

func (b *body) replayable() bool { return b.stream == nil }

// reader returns the body to send; a streamed body can be sent once (a
// second attempt then sends nothing more, and fails).
func (b *body) reader() io.Reader {
	if b.stream == nil {
		if len(b.buf) == 0 {
			return nil
		}
		return bytes.NewReader(b.buf)
	}
	if b.sent {
		return strings.NewReader("")
	}
	b.sent = true
	return b.stream
}

// readBody bounds r's body at p.maxBody and keeps it in memory when it is
// at most p.maxReplay bytes and the replay budget allows.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) (*body, *Refusal) {
	noop := func() {}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &body{length: 0, release: noop}, nil
	}
	if r.ContentLength > p.maxBody {
		return nil, refuseTooLarge(p.maxBody)
	}
	in := http.MaxBytesReader(w, r.Body, p.maxBody)
	want := r.ContentLength // the exact size, or -1
	if want < 0 || want > p.maxReplay {
		want = p.maxReplay + 1 // read at most this much to learn whether it fits
	}
	if r.ContentLength > p.maxReplay || !p.replay.TryAcquire(want) {
		return &body{stream: in, length: r.ContentLength, release: noop}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(in, want))
	if err != nil {
		p.replay.Release(want)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuseTooLarge(p.maxBody)
		}
		return nil, &Refusal{Status: http.StatusBadRequest, Code: -1, Reason: "canceled", Msg: "system error (wxauth: the request body could not be read)"}
	}
	if int64(len(buf)) > p.maxReplay {
		// Unknown length, larger than the replay bound: stream what was
		// read, then the rest.
		release := func() { p.replay.Release(want) }
		return &body{stream: io.MultiReader(bytes.NewReader(buf), in), length: -1, release: release}, nil
	}
	if extra := want - int64(len(buf)); extra > 0 {
		p.replay.Release(extra)
	}
	kept := int64(len(buf))
	return &body{buf: buf, length: kept, release: func() {
		if kept > 0 {
			p.replay.Release(kept)
		}
	}}, nil
}
