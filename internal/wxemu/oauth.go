package wxemu

import (
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

// Web authorization (网页授权): the authorize pages of open.weixin.qq.com and
// the sns APIs of api.weixin.qq.com.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html

const (
	scopeBase     = "snsapi_base"
	scopeUserInfo = "snsapi_userinfo"
)

var (
	statePattern    = regexp.MustCompile(`^[A-Za-z0-9]{0,128}$`)
	snsTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,512}$`)
)

type authCode struct {
	openID, scope string
	issued        time.Time
	used          bool
	snapshot      bool // issued on a snapshot page (snsapi_userinfo, snapshot user)
}

type webToken struct {
	openID, scope string
	expires       time.Time
	snapshot      bool // sns/userinfo answers 48001
	voided        bool // 42007 (password change, AppSecret reset)
}

type refreshGrant struct {
	openID, scope string
	issued        time.Time // of the first authorization: refreshing does not extend it
	snapshot      bool
	voided        bool // 42007
	replaced      bool // a later authorization of the user issued another: 40030
}

// handleSNSAccessToken serves GET sns/oauth2/access_token.
func (e *Emulator) handleSNSAccessToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code, msg := e.checkApp(q.Get("appid"), q.Get("secret"), true); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	if q.Get("code") == "" {
		e.wxError(w, 41008, "missing code")
		return
	}
	if q.Get("grant_type") != "authorization_code" {
		e.wxError(w, 40002, "invalid grant_type")
		return
	}
	ctx := r.Context()
	access, refresh := e.randomString(64), e.randomString(64)
	e.mu.Lock()
	now := e.now()
	c := e.codes[q.Get("code")]
	switch {
	case c == nil || now.Sub(c.issued) >= codeTTL:
		e.mu.Unlock()
		e.behaviour(ctx, "code_invalid", "code exchange: unknown or expired code, 40029")
		e.wxError(w, 40029, "invalid code")
		return
	case c.used:
		e.mu.Unlock()
		e.behaviour(ctx, "code_used", "code exchange: the code was used already, 40163", slog.String("openid", c.openID))
		e.wxError(w, 40163, "code been used")
		return
	}
	c.used = true
	e.webTokens[access] = &webToken{openID: c.openID, scope: c.scope, expires: now.Add(webTokenTTL), snapshot: c.snapshot}
	e.refreshes[refresh] = &refreshGrant{openID: c.openID, scope: c.scope, issued: now, snapshot: c.snapshot}
	replaced := false
	if old := e.refreshes[e.userRefresh[c.openID]]; old != nil {
		old.replaced, replaced = true, true
	}
	e.userRefresh[c.openID] = refresh
	u := e.users[c.openID]
	e.mu.Unlock()
	e.behaviour(ctx, "code_exchanged", "code exchanged for a web access_token (7200 s) and refresh_token (30 days)", slog.String("openid", c.openID), slog.String("scope", c.scope))
	if replaced {
		e.behaviour(ctx, "refresh_replaced", "the user's earlier refresh_token is invalid from now on (40030)", slog.String("openid", c.openID))
	}
	resp := map[string]any{
		"access_token":  access,
		"expires_in":    int(webTokenTTL / time.Second),
		"refresh_token": refresh,
		"openid":        c.openID,
		"scope":         c.scope,
	}
	if c.scope == scopeUserInfo && u.UnionID != "" {
		resp["unionid"] = u.UnionID
	}
	if c.snapshot {
		if faultOf(r).OmitSnapshot {
			e.fault(ctx, "omit_snapshot", "a snapshot user's exchange without is_snapshotuser", slog.String("openid", c.openID))
		} else {
			resp["is_snapshotuser"] = 1
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// checkApp checks appid and, when withSecret, the appsecret; it returns the
// errcode and errmsg WeChat gives, or 0.
func (e *Emulator) checkApp(appID, secret string, withSecret bool) (int, string) {
	switch {
	case appID == "":
		return 41002, "appid missing"
	case appID != e.appID:
		return 40013, "invalid appid"
	case !withSecret:
		return 0, ""
	case secret == "":
		return 41004, "appsecret missing"
	case secret != e.appSecret:
		return 40125, "invalid appsecret"
	}
	return 0, ""
}

// handleSNSRefresh serves GET sns/oauth2/refresh_token.
func (e *Emulator) handleSNSRefresh(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code, msg := e.checkApp(q.Get("appid"), "", false); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	if q.Get("grant_type") != "refresh_token" {
		e.wxError(w, 40002, "invalid grant_type")
		return
	}
	rt := q.Get("refresh_token")
	if rt == "" {
		e.wxError(w, 41003, "refresh_token missing")
		return
	}
	ctx := r.Context()
	access := e.randomString(64)
	e.mu.Lock()
	now := e.now()
	g := e.refreshes[rt]
	var code int
	var msg, name, why string
	switch {
	case g == nil:
		code, msg, name, why = 40030, "invalid refresh_token", "refresh_invalid", "unknown refresh_token, 40030"
	case g.voided:
		code, msg, name, why = 42007, errMsgs[42007], "tokens_voided", "refresh_token voided (password change or AppSecret reset), 42007"
	case now.Sub(g.issued) >= refreshTTL:
		code, msg, name, why = 42002, errMsgs[42002], "refresh_expired", "refresh_token older than 30 days, 42002"
	case g.replaced:
		code, msg, name, why = 40030, "invalid refresh_token", "refresh_replaced", "refresh_token replaced by a later authorization of the user, 40030"
	}
	if code != 0 {
		e.mu.Unlock()
		e.behaviour(ctx, name, "refresh: "+why)
		e.wxError(w, code, msg)
		return
	}
	e.webTokens[access] = &webToken{openID: g.openID, scope: g.scope, expires: now.Add(webTokenTTL), snapshot: g.snapshot}
	openID, scope := g.openID, g.scope
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"expires_in":    int(webTokenTTL / time.Second),
		"refresh_token": rt,
		"openid":        openID,
		"scope":         scope,
	})
}

// webTokenLocked finds a web access_token; e.mu held. It returns the token
// or WeChat's errcode and errmsg.
func (e *Emulator) webTokenLocked(tok string, now time.Time) (*webToken, int, string) {
	switch {
	case tok == "":
		return nil, 41001, "access_token missing"
	case !snsTokenPattern.MatchString(tok):
		return nil, 40014, "invalid access_token"
	}
	t := e.webTokens[tok]
	switch {
	case t == nil:
		return nil, 40001, msgInvalidCredential
	case t.voided:
		return nil, 42007, errMsgs[42007]
	case !now.Before(t.expires):
		return nil, 42001, "access_token expired"
	}
	return t, 0, ""
}

// handleSNSUserInfo serves GET sns/userinfo.
func (e *Emulator) handleSNSUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e.mu.Lock()
	t, code, msg := e.webTokenLocked(q.Get("access_token"), e.now())
	var u User
	var known bool
	var avatar string
	if t != nil {
		switch {
		case q.Get("openid") == "":
			code, msg = 41009, "missing openid"
		case q.Get("openid") != t.openID:
			code, msg = 40003, "invalid openid"
		case t.snapshot:
			code, msg = 48001, "api unauthorized"
			e.behaviour(r.Context(), "snapshot_userinfo", "sns/userinfo with a snapshot user's token: 48001", slog.String("openid", t.openID))
		case t.scope != scopeUserInfo:
			code, msg = 48001, "api unauthorized"
		}
		u, known = e.users[t.openID]
		avatar = e.avatarLocked(u)
	}
	e.mu.Unlock()
	if code != 0 {
		e.wxError(w, code, msg)
		return
	}
	if !known {
		e.wxError(w, 40003, "invalid openid")
		return
	}
	resp := map[string]any{
		"openid":     u.OpenID,
		"nickname":   u.Nickname,
		"sex":        u.Sex,
		"province":   u.Province,
		"city":       u.City,
		"country":    u.Country,
		"headimgurl": avatar,
		"privilege":  u.Privilege,
	}
	if u.UnionID != "" {
		resp["unionid"] = u.UnionID
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleSNSAuth serves GET sns/auth.
func (e *Emulator) handleSNSAuth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e.mu.Lock()
	t, code, msg := e.webTokenLocked(q.Get("access_token"), e.now())
	if t != nil && q.Get("openid") != t.openID {
		code, msg = 40003, "invalid openid"
	}
	e.mu.Unlock()
	if code != 0 {
		e.wxError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
}
