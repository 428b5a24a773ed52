package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/test/e2e"
)

// The account every process of the benchmark shares.
const (
	benchAppID      = "wx5e0a1b2c3d4e5f61"
	benchAppSecret  = "bench-appsecret-0123456789abcdef"
	benchToken      = "benchCallbackToken"
	benchAESKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	benchSecretKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	benchAdminToken = "bench-admin-token-0123456789"
	benchOriginalID = "gh_wxemu00000000"
	benchPage       = "https://h5.example.com/app/"
	benchUser       = "oWXEMU_alice" // an emulator built-in user with a unionid and a profile
	keywordReply    = "Hello from the benchmark"
)

// benchBackendSecret is the client_secret of bench-backend, the
// confidential client of the client_credentials target.
const benchBackendSecret = "bench-backend-secret-0123456789"

// rulesYAML is the callback rules file of the benchmark: the text "hi" meets
// a keyword rule with a text reply.
const rulesYAML = `keywords:
  - exact: ["hi", "hello"]
    reply:
      type: text
      content: "` + keywordReply + `"
default:
  type: text
  content: "Send hi."
`

// wxSender builds /wx requests as WeChat does: every one with a fresh
// timestamp, nonce, MsgId and signature, and in safe mode encrypted with the
// EncodingAESKey.
type wxSender struct {
	base    string            // http://host:port of the service
	crypter *callback.Crypter // nil for plaintext
	msgBase uint64            // high bits of MsgId, random per run, below 2^62 (MsgId fits an int64)
	msgSeq  atomic.Uint64     // low bits of MsgId: unique across workers and rounds, so no message is a redelivery
}

func newWXSender(base string, safe bool) (*wxSender, error) {
	s := &wxSender{base: base}
	var b [4]byte
	if _, err := crand.Read(b[:]); err != nil {
		return nil, err
	}
	s.msgBase = uint64(b[0]&0x3f)<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32
	if safe {
		c, err := callback.NewCrypter(benchAESKey, benchAppID)
		if err != nil {
			return nil, err
		}
		s.crypter = c
	}
	return s, nil
}

// textXML appends the plaintext XML of a user's text message.
func textXML(dst []byte, from string, createTime int64, msgID uint64, content string) []byte {
	dst = append(dst, "<xml><ToUserName><![CDATA["+benchOriginalID+"]]></ToUserName><FromUserName><![CDATA["...)
	dst = append(dst, from...)
	dst = append(dst, "]]></FromUserName><CreateTime>"...)
	dst = strconv.AppendInt(dst, createTime, 10)
	dst = append(dst, "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA["...)
	dst = append(dst, content...)
	dst = append(dst, "]]></Content><MsgId>"...)
	dst = strconv.AppendUint(dst, msgID, 10)
	dst = append(dst, "</MsgId></xml>"...)
	return dst
}

// send posts one new text message "hi" and checks the reply: a plaintext
// reply naming keywordReply, or an encrypted envelope whose msg_signature
// and content are checked on the worker's first request of each period.
func (s *wxSender) send(ctx context.Context, w *worker) error {
	w.seq++
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	var nb [8]byte
	crand.Read(nb[:])
	nonce := strconv.FormatUint(uint64(nb[0])|uint64(nb[1])<<8|uint64(nb[2])<<16|uint64(nb[3])<<24|uint64(nb[4])<<32, 10)
	msgID := s.msgBase | s.msgSeq.Add(1)&(1<<32-1)
	from := "oBENCH_" + strconv.Itoa(w.id)
	plain := textXML(make([]byte, 0, 320), from, now, msgID, "hi")

	q := make([]byte, 0, 256)
	q = append(q, "/wx?signature="...)
	q = append(q, callback.Sign(benchToken, ts, nonce)...)
	q = append(q, "&timestamp="+ts+"&nonce="+nonce+"&openid="+from...)
	var body []byte
	if s.crypter == nil {
		body = plain
	} else {
		var random [16]byte
		crand.Read(random[:])
		enc, err := s.crypter.Encrypt(random[:], plain)
		if err != nil {
			return err
		}
		q = append(q, "&encrypt_type=aes&msg_signature="...)
		q = append(q, callback.Sign(benchToken, ts, nonce, enc)...)
		body = make([]byte, 0, len(enc)+120)
		body = append(body, "<xml><ToUserName><![CDATA["+benchOriginalID+"]]></ToUserName><Encrypt><![CDATA["...)
		body = append(body, enc...)
		body = append(body, "]]></Encrypt></xml>"...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+string(q), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/xml")
	if _, err := w.do(req, http.StatusOK); err != nil {
		return err
	}
	reply := w.buf.Bytes()
	if s.crypter == nil {
		if !bytes.Contains(reply, []byte(keywordReply)) {
			return fmt.Errorf("/wx: plaintext reply without the keyword answer: %.200s", reply)
		}
		return nil
	}
	if !bytes.Contains(reply, []byte("<Encrypt>")) {
		return fmt.Errorf("/wx: safe-mode reply is not encrypted: %.200s", reply)
	}
	if w.seq == 1 {
		return s.checkEnvelope(reply, nonce)
	}
	return nil
}

// checkEnvelope verifies an encrypted reply: its MsgSignature over the
// token, its TimeStamp, the request's nonce and the Encrypt value, and the
// keyword answer inside.
func (s *wxSender) checkEnvelope(reply []byte, nonce string) error {
	field := func(name string) string {
		v := string(reply)
		_, v, _ = strings.Cut(v, "<"+name+">")
		v, _, _ = strings.Cut(v, "</"+name+">")
		v = strings.TrimPrefix(v, "<![CDATA[")
		return strings.TrimSuffix(v, "]]>")
	}
	enc, sig, ts, n := field("Encrypt"), field("MsgSignature"), field("TimeStamp"), field("Nonce")
	if n != nonce || sig != callback.Sign(benchToken, ts, n, enc) {
		return fmt.Errorf("/wx: reply MsgSignature or Nonce does not verify: %.300s", reply)
	}
	msg, appID, err := s.crypter.Decrypt(enc)
	if err != nil || appID != benchAppID || !bytes.Contains(msg, []byte(keywordReply)) {
		return fmt.Errorf("/wx: reply does not decrypt to the keyword answer (appid %q, err %v)", appID, err)
	}
	return nil
}

// benchClient is the public client (an H5 page) the benchmark logs in as,
// registered in clientsYAML with benchPage as its redirect_uri.
const benchClient = "bench-page"

// clientsYAML is the WXAUTH_CLIENTS file of every `authsvc serve`.
const clientsYAML = `clients:
  - client_id: ` + benchClient + `
    public: true
    redirect_uris: ["` + benchPage + `"]
  - client_id: bench-backend
    client_secret: ` + benchBackendSecret + `
    grant_types: [client_credentials]
`

// tokens is the token endpoint's answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// login is one whole login of benchUser through the OIDC code flow, as the
// page's wxauth.js and WeChat's in-app browser do it: the authorization
// request (GET /login with client_id, redirect_uri, scope openid profile
// offline_access, state, nonce and an S256 code_challenge, followed on the
// service until it sends the browser to WeChat), the emulator's authorize
// with scripted consent (302 to /oauth/callback with WeChat's code), the
// callback with the browser's cookies (which exchanges WeChat's code,
// fetches sns/userinfo, upserts the user, and sends the browser back to the
// page with an authorization code), and the token request with the
// code_verifier. It checks the state and the ID token's nonce, and returns
// the tokens.
func login(ctx context.Context, w *worker, svc string) (tokens, error) {
	var tok tokens
	state, nonce, verifier := randomB64(16), randomB64(16), randomB64(32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {benchClient}, "redirect_uri": {benchPage},
		"scope": {"openid profile offline_access"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	jar := cookies{}
	loc, err := followService(ctx, w, svc, svc+"/login?"+q.Encode(), jar)
	if err != nil {
		return tok, err
	}
	resp, err := w.get(ctx, loc, http.StatusFound, "User-Agent", e2e.WeChatUA, "X-Wxemu-User", benchUser, "X-Wxemu-Consent", "allow")
	if err != nil {
		return tok, fmt.Errorf("WeChat's authorize at %.80q: %w", loc, err)
	}
	cbURL := resp.Header.Get("Location")
	if !strings.HasPrefix(cbURL, svc+"/") {
		return tok, fmt.Errorf("authorize redirected to %.120q, not to the service", cbURL)
	}
	if loc, err = followService(ctx, w, svc, cbURL, jar); err != nil {
		return tok, err
	}
	page, query, _ := strings.Cut(loc, "?")
	back, err := url.ParseQuery(query)
	if page != benchPage || err != nil || back.Get("state") != state || back.Get("code") == "" {
		return tok, fmt.Errorf("the login ended at %.160q, not at the page with a code and this state", loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "redirect_uri": {benchPage},
		"client_id": {benchClient}, "code_verifier": {verifier}}
	if tok, err = tokenRequest(ctx, w, svc, form); err != nil {
		return tok, err
	}
	if tok.IDToken == "" || tok.RefreshToken == "" {
		return tok, errors.New("token endpoint: no id_token or refresh_token")
	}
	var claims struct {
		Nonce string `json:"nonce"`
	}
	if _, payload, ok := strings.Cut(tok.IDToken, "."); ok {
		payload, _, _ = strings.Cut(payload, ".")
		b, _ := base64.RawURLEncoding.DecodeString(payload)
		json.Unmarshal(b, &claims)
	}
	if claims.Nonce != nonce {
		return tok, errors.New("the ID token does not carry this login's nonce")
	}
	return tok, nil
}

// followService GETs u with the browser's cookies and follows the
// service's redirects among its own pages; it returns the first Location
// that leaves the service (WeChat's authorize URL, or the page).
func followService(ctx context.Context, w *worker, svc, u string, jar cookies) (string, error) {
	for range 5 {
		resp, err := w.get(ctx, u, http.StatusFound, "User-Agent", e2e.WeChatUA, "Cookie", jar.header())
		if err != nil {
			return "", err
		}
		jar.keep(resp)
		loc := resp.Header.Get("Location")
		if strings.HasPrefix(loc, "/") {
			loc = svc + loc
		}
		if !strings.HasPrefix(loc, svc+"/") {
			return loc, nil
		}
		u = loc
	}
	return "", fmt.Errorf("more than 5 redirects within the service from %.80q", u)
}

// tokenRequest posts form to the token endpoint and decodes the tokens.
func tokenRequest(ctx context.Context, w *worker, svc string, form url.Values) (tokens, error) {
	var tok tokens
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, svc+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return tok, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := w.do(req, http.StatusOK); err != nil {
		return tok, err
	}
	if err := json.Unmarshal(w.buf.Bytes(), &tok); err != nil || tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
		return tok, fmt.Errorf("token endpoint: %.200s", w.buf.Bytes())
	}
	return tok, nil
}

// cookies is one browser's cookies for the service (one host, so names
// are enough).
type cookies map[string]string

func (c cookies) keep(resp *http.Response) {
	for _, k := range resp.Cookies() {
		if k.MaxAge < 0 || k.Value == "" {
			delete(c, k.Name)
		} else {
			c[k.Name] = k.Value
		}
	}
}

func (c cookies) header() string {
	var b strings.Builder
	for name, value := range c {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name + "=" + value)
	}
	return b.String()
}

// randomB64 is n random bytes, base64url without padding.
func randomB64(n int) string {
	b := make([]byte, n)
	crand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func opHello(base string) op {
	u := base + "/"
	return func(ctx context.Context, w *worker) error {
		_, err := w.get(ctx, u, http.StatusOK)
		return err
	}
}

func opVerify(base, jwt string) op {
	u, auth := base+"/verify", "Bearer "+jwt
	return func(ctx context.Context, w *worker) error {
		resp, err := w.get(ctx, u, http.StatusOK, "Authorization", auth)
		if err == nil && resp.Header.Get("X-Auth-Request-Openid") != benchUser {
			return errors.New("/verify: no X-Auth-Request-Openid")
		}
		return err
	}
}

func opLogin(base string) op {
	u := base + "/login?redirect=" + url.QueryEscape(benchPage) + "&scope=snsapi_base"
	return func(ctx context.Context, w *worker) error {
		resp, err := w.get(ctx, u, http.StatusFound, "User-Agent", e2e.WeChatUA)
		if err == nil && !strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize?appid="+benchAppID) {
			return fmt.Errorf("/login: redirected to %.120q", resp.Header.Get("Location"))
		}
		return err
	}
}

func opJSSDK(base string) op {
	u := base + "/jssdk/config?url=" + url.QueryEscape(benchPage+"?from=menu#top")
	return func(ctx context.Context, w *worker) error {
		if _, err := w.get(ctx, u, http.StatusOK); err != nil {
			return err
		}
		if !bytes.Contains(w.buf.Bytes(), []byte(`"signature":"`)) {
			return fmt.Errorf("/jssdk/config: %.200s", w.buf.Bytes())
		}
		return nil
	}
}

// opToken is one client_credentials token request of bench-backend
// (client_secret_basic): the token endpoint's parsing, client
// authentication and an ES256 access JWT.
func opToken(base string) op {
	u, body := base+"/oauth/token", "grant_type=client_credentials"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench-backend:"+benchBackendSecret))
	return func(ctx context.Context, w *worker) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		if _, err := w.do(req, http.StatusOK); err != nil {
			return err
		}
		if !bytes.Contains(w.buf.Bytes(), []byte(`"access_token":"`)) {
			return fmt.Errorf("/oauth/token: %.200s", w.buf.Bytes())
		}
		return nil
	}
}

func opFullLogin(base string) op {
	return func(ctx context.Context, w *worker) error {
		_, err := login(ctx, w, base)
		return err
	}
}

// opRefresh is the token endpoint's refresh grant: each operation spends
// one refresh token from a pool and puts back the one that replaces it
// (rotation), so every request is a valid, first use. The pool starts with
// size logins; a token lost to an error is replaced by a new login.
func opRefresh(ctx context.Context, base string, size int) (op, error) {
	pool := make(chan string, size)
	setup := &worker{client: newClient(1)}
	for range size {
		tok, err := login(ctx, setup, base)
		if err != nil {
			return nil, fmt.Errorf("logins for the refresh pool: %w", err)
		}
		pool <- tok.RefreshToken
	}
	return func(ctx context.Context, w *worker) error {
		var refresh string
		select {
		case refresh = <-pool:
		default:
			tok, err := login(ctx, w, base)
			if err != nil {
				return fmt.Errorf("replacing a lost refresh token: %w", err)
			}
			refresh = tok.RefreshToken
		}
		tok, err := tokenRequest(ctx, w, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {benchClient}})
		if err != nil {
			return err
		}
		if tok.RefreshToken == "" || tok.RefreshToken == refresh {
			return errors.New("token endpoint: the refresh token was not rotated")
		}
		pool <- tok.RefreshToken
		return nil
	}, nil
}
