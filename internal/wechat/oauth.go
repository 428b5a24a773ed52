package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Scopes of web authorization (网页授权).
const (
	// ScopeBase is the silent scope: the openid only.
	ScopeBase = "snsapi_base"
	// ScopeUserInfo shows a consent page and allows sns/userinfo.
	ScopeUserInfo = "snsapi_userinfo"
)

// Errors of [Client.AuthCodeURL] and argument checks; compare with errors.Is.
var (
	// ErrInvalidScope is returned for a scope other than [ScopeBase] and
	// [ScopeUserInfo] (WeChat would show error 10005).
	ErrInvalidScope = errors.New("wechat: scope must be snsapi_base or snsapi_userinfo")
	// ErrInvalidState is returned for a state that fails [ValidState].
	ErrInvalidState = errors.New("wechat: state must be 1 to 128 characters [A-Za-z0-9]")
	// ErrInvalidRedirectURI is returned for a redirect_uri that is not an
	// absolute http(s) URL with a host.
	ErrInvalidRedirectURI = errors.New("wechat: redirect_uri must be an absolute http(s) URL")
	// ErrInvalidArgument is wrapped by errors for an empty code, token,
	// openid or an unknown lang, found before any call.
	ErrInvalidArgument = errors.New("wechat: invalid argument")
)

// maxStateLen is the longest state WeChat accepts, in bytes.
const maxStateLen = 128

// ValidState reports whether s is a state WeChat accepts: 1 to 128
// characters, each in [A-Za-z0-9].
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func ValidState(s string) bool {
	if len(s) == 0 || len(s) > maxStateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}

// AuthCodeURL returns the web-authorization URL to send the user's browser
// to, with the parameters in the order WeChat enforces:
//
//	AUTHORIZE?appid=APPID&redirect_uri=ENCODED&response_type=code&scope=SCOPE&state=STATE&connect_redirect=1#wechat_redirect
//
// redirectURI is URL-encoded exactly once (url.QueryEscape). After consent
// WeChat redirects to redirectURI?code=CODE&state=STATE.
//
// Errors: [ErrInvalidScope], [ErrInvalidState], [ErrInvalidRedirectURI].
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) AuthCodeURL(redirectURI, scope, state string) (string, error) {
	if scope != ScopeBase && scope != ScopeUserInfo {
		return "", ErrInvalidScope
	}
	if !ValidState(state) {
		return "", ErrInvalidState
	}
	if !validRedirect(redirectURI) {
		return "", ErrInvalidRedirectURI
	}
	const (
		p1 = "&response_type=code&scope="
		p2 = "&state="
		p3 = "&connect_redirect=1#wechat_redirect"
	)
	var b strings.Builder
	b.Grow(len(c.authPrefix) + queryEscapedLen(redirectURI) + len(p1) + len(scope) + len(p2) + len(state) + len(p3))
	b.WriteString(c.authPrefix)
	writeQueryEscaped(&b, redirectURI)
	b.WriteString(p1)
	b.WriteString(scope)
	b.WriteString(p2)
	b.WriteString(state)
	b.WriteString(p3)
	return b.String(), nil
}

// queryUnreserved reports whether url.QueryEscape leaves b as is.
func queryUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '_' || b == '.' || b == '~'
}

// queryEscapedLen is len(url.QueryEscape(s)).
func queryEscapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !queryUnreserved(s[i]) && s[i] != ' ' {
			n += 2
		}
	}
	return n
}

// writeQueryEscaped writes url.QueryEscape(s) to b without allocating,
// copying runs of unreserved bytes at once.
func writeQueryEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if queryUnreserved(c) {
			continue
		}
		b.WriteString(s[start:i])
		start = i + 1
		if c == ' ' {
			b.WriteByte('+')
			continue
		}
		esc := [3]byte{'%', hex[c>>4], hex[c&15]}
		b.Write(esc[:])
	}
	b.WriteString(s[start:])
}

// validRedirect reports whether s is an absolute http(s) URL with a host and
// no control characters, spaces or backslashes.
func validRedirect(s string) bool {
	var rest string
	switch {
	case strings.HasPrefix(s, "https://"):
		rest = s[len("https://"):]
	case strings.HasPrefix(s, "http://"):
		rest = s[len("http://"):]
	default:
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b == 0x7f || b == '\\' {
			return false
		}
	}
	host := rest
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if host == "" || strings.Contains(host, "@") || host[0] == ':' {
		return false
	}
	return true
}

// tokenResponse is the JSON of sns/oauth2/access_token and
// sns/oauth2/refresh_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
}

// defaultWebTokenLife is the web access_token's life when WeChat gives no
// expires_in, in seconds.
const defaultWebTokenLife = 7200

// Exchange trades a web-authorization code for the user's web access_token
// (GET sns/oauth2/access_token). A code works once, within 5 minutes. The
// token's Expiry is now + expires_in (7200 s); openid, scope, unionid and
// is_snapshotuser are in [oauth2.Token.Extra] (read them with [OpenID],
// [Scope], [UnionID], [IsSnapshotUser]); access_token and refresh_token are
// not repeated there. is_snapshotuser is absent for anyone but a snapshot
// user, and may be absent on a snapshot user's first exchange too (then
// [Client.UserInfo] answers 48001).
//
// The code is sent to WeChat at most once: a code works once, so the
// exchange is never repeated after the request may have reached WeChat. It
// is retried (with backoff, while ctx allows) only when WeChat answered -1
// (busy) or 45011 (too frequent), which are answers, or when the request
// provably was not sent (a dial error or a refused connection: no request
// header was written). A timeout, a dropped connection or an HTTP status
// after sending returns at once, wrapped in [ErrAnswerLost].
//
// Errors: [*Error] with Code 40029 (invalid or expired code), 40163 (code
// already used), 42003 (code expired) — see [IsDeadCode] — and 40013,
// 40125, 40164 (configuration); an error wrapping [ErrAnswerLost] and a
// [*StatusError] or a [*url.Error]; [*url.Error] with secret and code
// redacted when the request was not sent; ctx.Err() when ctx ends first.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) Exchange(ctx context.Context, code string) (*oauth2.Token, error) {
	if code == "" {
		return nil, fmt.Errorf("%w: empty code", ErrInvalidArgument)
	}
	return c.webToken(ctx, request{
		api: "sns/oauth2/access_token", base: c.api, method: "GET", retryTooFrequent: true, sendOnce: true,
		query: url.Values{
			"appid": {c.appID}, "secret": {c.secret}, "code": {code}, "grant_type": {"authorization_code"},
		},
	}, "")
}

// Refresh renews a web access_token with its refresh_token (GET
// sns/oauth2/refresh_token). The refresh_token lives 30 days from the
// authorization; refreshing does not extend it. The returned token carries
// the refresh_token WeChat answered (or refreshToken when it answered none)
// and openid and scope in Extra.
//
// Errors: [*Error] with Code 40030 (invalid refresh_token; also once a
// later authorization of the same user issued a new one), 42002
// (refresh_token expired) or 42007 (voided after a password change): the
// user must authorize again, see [NeedsReauthorization]; otherwise as
// [Client.Exchange] (but a refresh is retried after 5xx and timeouts too:
// it consumes nothing), with refresh_token redacted.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: empty refresh_token", ErrInvalidArgument)
	}
	return c.webToken(ctx, request{
		api: "sns/oauth2/refresh_token", base: c.api, method: "GET", retryTooFrequent: true,
		query: url.Values{
			"appid": {c.appID}, "grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		},
	}, refreshToken)
}

// webToken runs an access_token or refresh_token call and builds the token.
func (c *Client) webToken(ctx context.Context, r request, oldRefresh string) (*oauth2.Token, error) {
	body, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("wechat: %s: decode response: %w", r.api, err)
	}
	if tr.AccessToken == "" || tr.OpenID == "" {
		return nil, fmt.Errorf("wechat: %s: response has no access_token or openid", r.api)
	}
	var extra map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&extra); err != nil {
		return nil, fmt.Errorf("wechat: %s: decode response: %w", r.api, err)
	}
	delete(extra, "access_token")
	delete(extra, "refresh_token")
	life := tr.ExpiresIn
	if life <= 0 {
		life = defaultWebTokenLife
	}
	t := &oauth2.Token{
		AccessToken:  tr.AccessToken,
		RefreshToken: tr.RefreshToken,
		Expiry:       c.now().Add(time.Duration(life) * time.Second),
		ExpiresIn:    life,
	}
	if t.RefreshToken == "" {
		t.RefreshToken = oldRefresh
	}
	return t.WithExtra(extra), nil
}

// TokenSource returns an [oauth2.TokenSource] that returns t until it
// expires (less oauth2's 10 s margin), then renews it with [Client.Refresh]
// using the latest refresh_token, with ctx for every renewal. It is safe for
// concurrent use. Errors of Token() are those of [Client.Refresh]; t without
// a refresh_token yields an [ErrInvalidArgument] error once t expires.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) TokenSource(ctx context.Context, t *oauth2.Token) oauth2.TokenSource {
	rt := ""
	if t != nil {
		rt = t.RefreshToken
	}
	return oauth2.ReuseTokenSource(t, &refresher{ctx: ctx, c: c, refresh: rt})
}

// refresher renews a web token with the latest refresh_token.
type refresher struct {
	ctx     context.Context
	c       *Client
	mu      sync.Mutex
	refresh string
}

// Token implements oauth2.TokenSource.
func (r *refresher) Token() (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.c.Refresh(r.ctx, r.refresh)
	if err != nil {
		return nil, err
	}
	r.refresh = t.RefreshToken
	return t, nil
}

// OpenID returns the openid in t's Extra, or "" when t is nil or has none.
func OpenID(t *oauth2.Token) string { return extraString(t, "openid") }

// UnionID returns the unionid in t's Extra (present with snsapi_userinfo and
// an Open Platform binding), or "".
func UnionID(t *oauth2.Token) string { return extraString(t, "unionid") }

// Scope returns the scope in t's Extra ("snsapi_base" or "snsapi_userinfo";
// WeChat may list several separated by commas), or "".
func Scope(t *oauth2.Token) string { return extraString(t, "scope") }

// IsSnapshotUser reports whether t's Extra has is_snapshotuser = 1: the user
// is a virtual account of a Moments snapshot page (since 2022-07-12); its
// openid and unionid are not the real user's, and the page must ask the user
// to tap 「使用完整服务」. Accepts 1, "1" and true.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func IsSnapshotUser(t *oauth2.Token) bool {
	if t == nil {
		return false
	}
	switch v := t.Extra("is_snapshotuser").(type) {
	case float64:
		return v == 1
	case json.Number:
		return v.String() == "1"
	case string:
		return v == "1"
	case bool:
		return v
	case int:
		return v == 1
	case int64:
		return v == 1
	}
	return false
}

// extraString returns t.Extra(key) when it is a string.
func extraString(t *oauth2.Token, key string) string {
	if t == nil {
		return ""
	}
	s, _ := t.Extra(key).(string)
	return s
}

// UserInfo is a user's profile from sns/userinfo. Since 2021-10-20 Sex is 0
// and Province, City, Country are empty for everyone.
type UserInfo struct {
	// OpenID is the user's openid under this account.
	OpenID string `json:"openid"`
	// Nickname is the user's WeChat nickname (UTF-8, may hold emoji).
	Nickname string `json:"nickname"`
	// Sex is 0 unknown, 1 male, 2 female; WeChat sends 1 or "1", both are
	// accepted.
	Sex      int    `json:"sex"`
	Province string `json:"province"` // empty since 2021-10-20
	City     string `json:"city"`     // empty since 2021-10-20
	Country  string `json:"country"`  // empty since 2021-10-20
	// HeadImgURL is the avatar; its last path segment picks the size (0 =
	// 640x640, 46, 64, 96, 132 pixels). Empty when none.
	HeadImgURL string `json:"headimgurl"`
	// Privilege lists the user's privileges (e.g. "chinaunicom").
	Privilege []string `json:"privilege"`
	// UnionID is present when the account is bound to an Open Platform
	// account.
	UnionID string `json:"unionid,omitempty"`
}

// UnmarshalJSON decodes WeChat's JSON, accepting sex as a number or a
// string of digits.
func (u *UserInfo) UnmarshalJSON(b []byte) error {
	type plain UserInfo
	var v struct {
		plain
		Sex json.RawMessage `json:"sex"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*u = UserInfo(v.plain)
	u.Sex = 0
	s := strings.Trim(string(bytes.TrimSpace(v.Sex)), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("wechat: sex %q is not a number", s)
	}
	u.Sex = n
	return nil
}

// validLang reports whether lang is a language sns/userinfo and
// cgi-bin/user/info accept.
func validLang(lang string) bool {
	return lang == "zh_CN" || lang == "zh_TW" || lang == "en"
}

// UserInfo fetches the profile of the user openID with a web access_token of
// scope snsapi_userinfo (GET sns/userinfo). lang is "zh_CN", "zh_TW" or "en";
// "" means "zh_CN".
//
// Errors: [ErrInvalidArgument] for an empty token or openid or another lang;
// [*Error] with Code 48001 (a snsapi_base token, or the token of a snapshot
// user: a virtual account of a Moments snapshot page has no profile),
// 40003 (invalid openid), 40001/40014/42001 (invalid or expired web token),
// 42007 (voided after a password change); otherwise as [Client.Refresh],
// with access_token redacted.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) UserInfo(ctx context.Context, accessToken, openID, lang string) (*UserInfo, error) {
	if lang == "" {
		lang = "zh_CN"
	}
	switch {
	case accessToken == "":
		return nil, fmt.Errorf("%w: empty access_token", ErrInvalidArgument)
	case openID == "":
		return nil, fmt.Errorf("%w: empty openid", ErrInvalidArgument)
	case !validLang(lang):
		return nil, fmt.Errorf("%w: lang must be zh_CN, zh_TW or en", ErrInvalidArgument)
	}
	var u UserInfo
	err := c.getJSON(ctx, request{
		api: "sns/userinfo", base: c.api, method: "GET", retryTooFrequent: true,
		query: url.Values{"access_token": {accessToken}, "openid": {openID}, "lang": {lang}},
	}, &u)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CheckToken reports whether a web access_token is still valid for openID
// (GET sns/auth): nil when WeChat answers errcode 0.
//
// Errors: [*Error] with Code 40003 (invalid openid), 40001/40014/42001
// (invalid or expired token); otherwise as [Client.Exchange].
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (c *Client) CheckToken(ctx context.Context, accessToken, openID string) error {
	if accessToken == "" || openID == "" {
		return fmt.Errorf("%w: empty access_token or openid", ErrInvalidArgument)
	}
	return c.getJSON(ctx, request{
		api: "sns/auth", base: c.api, method: "GET", retryTooFrequent: true,
		query: url.Values{"access_token": {accessToken}, "openid": {openID}},
	}, nil)
}
