package wxemu

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
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

// authRequest is a parsed, validated authorize query.
type authRequest struct {
	raw         string // the raw query, re-posted by the picker and consent forms
	appID       string
	redirectURI string
	scope       string
	state       string
	forcePopup  bool
}

// authProblem is what the authorize error page shows. Code 0 is WeChat's
// "该链接无法访问" page for a malformed link.
type authProblem struct {
	Code int
	Msg  string
}

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

// Where a user opens the authorized page from (X-Wxemu-Scene, or the
// picker's hidden field): a follower opening a snsapi_userinfo page from
// the account's chat or menu authorizes without a consent page.
const (
	sceneChat    = "chat"
	sceneMenu    = "menu"
	sceneMoments = "moments"
	sceneOther   = "other"
)

func validScene(s string) bool {
	switch s {
	case "", sceneChat, sceneMenu, sceneMoments, sceneOther:
		return true
	}
	return false
}

// outsideWeChatMsg is what WeChat's authorize page shows in a browser
// without MicroMessenger in its User-Agent.
const outsideWeChatMsg = "请在微信客户端打开链接"

// parseAuthorize checks an authorize query as WeChat does: the raw order of
// keys, empty values, the appid, the redirect_uri domain, the scope and the
// state, in that order.
func (e *Emulator) parseAuthorize(raw string) (authRequest, *authProblem) {
	bad := &authProblem{Msg: "该链接无法访问"}
	parts := strings.Split(raw, "&")
	keys := []string{"appid", "redirect_uri", "response_type", "scope", "state"}
	if len(parts) < len(keys) {
		return authRequest{}, bad
	}
	vals := make([]string, len(keys))
	for i, k := range keys {
		name, v, ok := strings.Cut(parts[i], "=")
		if !ok || name != k {
			return authRequest{}, bad
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return authRequest{}, bad
		}
		vals[i] = dv
	}
	req := authRequest{raw: raw, appID: vals[0], redirectURI: vals[1], scope: vals[3], state: vals[4]}
	seen := map[string]bool{}
	for _, p := range parts[len(keys):] {
		if (p != "connect_redirect=1" && p != "forcePopup=true") || seen[p] {
			return authRequest{}, bad
		}
		seen[p] = true
	}
	req.forcePopup = seen["forcePopup=true"]
	if vals[2] != "code" {
		return authRequest{}, bad
	}
	switch {
	case req.appID == "":
		return req, &authProblem{10012, "appid 不能为空"}
	case req.redirectURI == "":
		return req, &authProblem{10011, "redirect_uri 不能为空"}
	case req.scope == "":
		return req, &authProblem{10010, "scope 不能为空"}
	case req.state == "":
		return req, &authProblem{10013, "state 不能为空"}
	case req.appID != e.appID:
		return req, &authProblem{40013, "invalid appid"}
	}
	if !e.allowedRedirect(req.redirectURI) {
		return req, &authProblem{10003, "redirect_uri 域名与后台配置不一致"}
	}
	if req.scope != scopeBase && req.scope != scopeUserInfo {
		return req, &authProblem{10005, "此公众号并没有这些 scope 的权限"}
	}
	if !statePattern.MatchString(req.state) {
		return req, &authProblem{Msg: "state 参数错误"}
	}
	return req, nil
}

// allowedRedirect reports whether u is absolute http(s) on a configured
// OAuth domain (exact host[:port], case-insensitive, no userinfo).
func (e *Emulator) allowedRedirect(u string) bool {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.User != nil || p.Host == "" {
		return false
	}
	host := strings.ToLower(p.Host)
	for _, d := range e.domains {
		if host == d {
			return true
		}
	}
	return false
}

// withParams appends query parameters to redirectURI as WeChat does: before
// any #fragment, with & when the URI already has a query.
func withParams(redirectURI string, params string) string {
	base, frag, hasFrag := strings.Cut(redirectURI, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	out := base + sep + params
	if hasFrag {
		out += "#" + frag
	}
	return out
}

type pageUser struct {
	OpenID, Nickname, Avatar string
	Follows, Snapshot        bool
}

type authPageData struct {
	Scene    string
	Query    string
	AppID    string
	Scope    string
	Host     string
	Users    []pageUser
	User     pageUser
	Problem  *authProblem
	Redirect string
}

// handleAuthorize serves GET /connect/oauth2/authorize: the error page, the
// "open in WeChat" page for a browser outside WeChat, the user picker, or
// (scripted with X-Wxemu-User / X-Wxemu-Consent / X-Wxemu-Scene) the answer.
func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, prob := e.parseAuthorize(r.URL.RawQuery)
	scripted := r.Header.Get("X-Wxemu-User")
	if prob != nil {
		e.behaviour(ctx, "authorize_error", "the authorize page shows an error", slog.Int("errcode", prob.Code), slog.String("errmsg", prob.Msg))
		e.render(w, http.StatusOK, "error.html", authPageData{Problem: prob})
		return
	}
	if !e.allowOutside && !strings.Contains(r.UserAgent(), "MicroMessenger") {
		e.behaviour(ctx, "outside_wechat", "authorize page opened outside WeChat: "+outsideWeChatMsg, slog.String("user_agent", r.UserAgent()))
		e.render(w, http.StatusOK, "error.html", authPageData{Problem: &authProblem{Msg: outsideWeChatMsg}})
		return
	}
	scene := r.Header.Get("X-Wxemu-Scene")
	if !validScene(scene) {
		ctlError(w, http.StatusBadRequest, "X-Wxemu-Scene: want chat, menu, moments or other")
		return
	}
	if scripted != "" {
		decision := r.Header.Get("X-Wxemu-Consent")
		if decision == "" {
			decision = "allow"
		}
		if decision != "allow" && decision != "deny" {
			ctlError(w, http.StatusBadRequest, "X-Wxemu-Consent: want allow or deny")
			return
		}
		e.mu.Lock()
		_, ok := e.users[scripted]
		e.mu.Unlock()
		if !ok {
			ctlError(w, http.StatusBadRequest, "X-Wxemu-User: unknown openid %q", scripted)
			return
		}
		if req.scope == scopeBase || e.silentUserInfo(ctx, req, scripted, scene) {
			decision = "allow" // no consent page: nothing to decline
		}
		e.finishAuthorize(w, r, req, scripted, decision == "allow")
		return
	}
	data := authPageData{Query: req.raw, AppID: req.appID, Scope: req.scope, Host: hostOf(req.redirectURI), Scene: scene}
	e.mu.Lock()
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	e.render(w, http.StatusOK, "picker.html", data)
}

// handleConfirm serves POST /connect/oauth2/authorize/confirm (form fields q
// and openid): the picked user either gets a code at once (snsapi_base) or
// the consent page (snsapi_userinfo).
func (e *Emulator) handleConfirm(w http.ResponseWriter, r *http.Request) {
	req, user, ok := e.authForm(w, r)
	if !ok {
		return
	}
	scene := r.PostFormValue("scene")
	if req.scope == scopeBase || validScene(scene) && e.silentUserInfo(r.Context(), req, user.OpenID, scene) {
		e.finishAuthorize(w, r, req, user.OpenID, true)
		return
	}
	e.behaviour(r.Context(), "consent_page", "snsapi_userinfo: the consent page asks the user", slog.String("openid", user.OpenID))
	e.render(w, http.StatusOK, "consent.html", authPageData{
		Query: req.raw, AppID: req.appID, Scope: req.scope, Host: hostOf(req.redirectURI), User: user,
	})
}

// handleConsent serves POST /connect/oauth2/authorize/consent (form fields q,
// openid, decision=allow|deny).
func (e *Emulator) handleConsent(w http.ResponseWriter, r *http.Request) {
	req, user, ok := e.authForm(w, r)
	if !ok {
		return
	}
	switch r.PostFormValue("decision") {
	case "allow":
		e.finishAuthorize(w, r, req, user.OpenID, true)
	case "deny":
		e.finishAuthorize(w, r, req, user.OpenID, false)
	default:
		e.render(w, http.StatusOK, "error.html", authPageData{Problem: &authProblem{Msg: "该链接无法访问"}})
	}
}

// authForm re-validates the query and user posted by the picker or consent
// page; it writes the error page and returns false when they are bad.
func (e *Emulator) authForm(w http.ResponseWriter, r *http.Request) (authRequest, pageUser, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		e.render(w, http.StatusBadRequest, "error.html", authPageData{Problem: &authProblem{Msg: "该链接无法访问"}})
		return authRequest{}, pageUser{}, false
	}
	req, prob := e.parseAuthorize(r.PostFormValue("q"))
	if prob != nil {
		e.render(w, http.StatusOK, "error.html", authPageData{Problem: prob})
		return authRequest{}, pageUser{}, false
	}
	e.mu.Lock()
	u, ok := e.users[r.PostFormValue("openid")]
	pu := e.pageUserLocked(u)
	e.mu.Unlock()
	if !ok {
		e.render(w, http.StatusBadRequest, "error.html", authPageData{Problem: &authProblem{Msg: "unknown user"}})
		return authRequest{}, pageUser{}, false
	}
	return req, pu, true
}

// silentUserInfo reports whether a snsapi_userinfo authorization of openID
// skips the consent page: the user follows the account and opens the page
// from its chat or menu (documented: "对于已关注公众号的用户，如果用户从公众号的
// 会话或者自定义菜单进入本公众号的网页授权页，即使是scope为snsapi_userinfo，也是
// 静默授权"), unless forcePopup=true.
func (e *Emulator) silentUserInfo(ctx context.Context, req authRequest, openID, scene string) bool {
	if req.scope != scopeUserInfo || req.forcePopup || (scene != sceneChat && scene != sceneMenu) {
		return false
	}
	e.mu.Lock()
	_, follows := e.subs[openID]
	e.mu.Unlock()
	if follows {
		e.behaviour(ctx, "silent_userinfo", "snsapi_userinfo without a consent page: a follower from the account's "+scene, slog.String("openid", openID))
	}
	return follows
}

// finishAuthorize answers an allowed authorization with a 302 carrying a new
// code (or, with the double_redirect fault, two codes), and a denied one per
// Config.DenyRedirect.
func (e *Emulator) finishAuthorize(w http.ResponseWriter, r *http.Request, req authRequest, openID string, allow bool) {
	ctx := r.Context()
	if !allow {
		if e.denyRedirect {
			e.behaviour(ctx, "deny_redirect", "the user declined: 302 to redirect_uri with state only", slog.String("openid", openID))
			http.Redirect(w, r, withParams(req.redirectURI, "state="+req.state), http.StatusFound)
			return
		}
		e.behaviour(ctx, "deny_blank", "the user declined: no redirect, a blank page", slog.String("openid", openID))
		e.render(w, http.StatusOK, "blank.html", nil)
		return
	}
	code, first := e.randomString(24), e.randomString(24)
	e.mu.Lock()
	now := e.now()
	e.sweepLocked(now)
	snapshot := e.users[openID].Snapshot && req.scope == scopeUserInfo
	e.codes[code] = &authCode{openID: openID, scope: req.scope, issued: now, snapshot: snapshot}
	double := e.doubles != 0
	if double {
		if e.doubles > 0 {
			e.doubles--
		}
		e.codes[first] = &authCode{openID: openID, scope: req.scope, issued: now, snapshot: snapshot}
	}
	e.mu.Unlock()
	if snapshot {
		e.behaviour(ctx, "snapshot_page", "snsapi_userinfo for a snapshot-page virtual user: the code gives is_snapshotuser=1", slog.String("openid", openID))
	}
	e.behaviour(ctx, "code_issued", "authorized: 302 to redirect_uri with a code (single use, 5 minutes)", slog.String("openid", openID), slog.String("scope", req.scope))
	target := withParams(req.redirectURI, "code="+code+"&state="+req.state)
	if !double {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	firstURL := withParams(req.redirectURI, "code="+first+"&state="+req.state)
	e.fault(ctx, "double_redirect", "WeChat calls redirect_uri twice for one authorization, with two different codes", slog.String("openid", openID))
	w.Header().Set("X-Wxemu-First-Redirect", firstURL)
	if r.Header.Get("X-Wxemu-User") != "" {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	e.render(w, http.StatusOK, "double.html", struct{ First, Second string }{firstURL, target})
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return ""
}

// avatarLocked returns u's headimgurl; e.mu held.
func (e *Emulator) avatarLocked(u User) string {
	if u.HeadImgURL != "" {
		return u.HeadImgURL
	}
	return e.publicURL + "/emu/avatar/" + url.PathEscape(u.OpenID) + "/132"
}

func (e *Emulator) pageUserLocked(u User) pageUser {
	return pageUser{OpenID: u.OpenID, Nickname: u.Nickname, Avatar: e.avatarLocked(u), Follows: u.Follows, Snapshot: u.Snapshot}
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
