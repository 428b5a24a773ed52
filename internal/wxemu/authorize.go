package wxemu

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// The web-authorization pages of open.weixin.qq.com: the authorize link's
// checks, the user picker, the consent page, and the redirect with a code.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html

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
	if !e.allowOutside && !strings.Contains(r.UserAgent(), "MicroMessenger") && !e.insideByCookie(r) {
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

// handleConfirm serves POST /connect/oauth2/authorize/confirm (form fields q,
// openid and scene): the picked user either gets a code at once
// (snsapi_base, or snsapi_userinfo for a follower from the chat or menu) or
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
// Config.DenyRedirect: a 302 with state only, or the declined page (status
// 200, no redirect) standing in for WeChat's blank page, with a link to
// redirect_uri?state=STATE and a form back to the consent page.
func (e *Emulator) finishAuthorize(w http.ResponseWriter, r *http.Request, req authRequest, openID string, allow bool) {
	ctx := r.Context()
	if !allow {
		if e.denyRedirect {
			e.behaviour(ctx, "deny_redirect", "the user declined: 302 to redirect_uri with state only", slog.String("openid", openID))
			http.Redirect(w, r, withParams(req.redirectURI, "state="+req.state), http.StatusFound)
			return
		}
		e.behaviour(ctx, "deny_blank", "the user declined: no redirect (the declined page stands in for WeChat's blank page)", slog.String("openid", openID))
		e.mu.Lock()
		user := e.pageUserLocked(e.users[openID])
		e.mu.Unlock()
		e.render(w, http.StatusOK, "declined.html", authPageData{
			Query: req.raw, AppID: req.appID, Scope: req.scope, Host: hostOf(req.redirectURI), User: user,
			Redirect: withParams(req.redirectURI, "state="+req.state),
		})
		return
	}
	code, first := e.randomString(24), ""
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
		first = e.randomString(24)
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

// insideByCookie reports whether r carries Config.InsideWeChatCookie set to
// "1" (authsvc dev's "as inside WeChat" switch).
func (e *Emulator) insideByCookie(r *http.Request) bool {
	if e.insideCookie == "" {
		return false
	}
	c, err := r.Cookie(e.insideCookie)
	return err == nil && c.Value == "1"
}
