package wxemu

import (
	"log/slog"
	"net/http"
	"time"
)

// The global credentials of api.weixin.qq.com/cgi-bin: access_token,
// stable_token, jsapi_ticket, and user/info.
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html

type globalToken struct {
	expires time.Time
	voidAt  time.Time // zero = not voided; from then on the token answers 40001
}

// issueTokenLocked creates a global access_token valid for 7200 s; e.mu held.
func (e *Emulator) issueTokenLocked(tok string, now time.Time) {
	e.sweepLocked(now)
	e.tokens[tok] = &globalToken{expires: now.Add(globalTokenTTL)}
}

// voidLocked makes tok answer 40001 from at, unless it is voided earlier
// already; e.mu held.
func (e *Emulator) voidLocked(tok string, at time.Time) {
	t := e.tokens[tok]
	if t == nil {
		return
	}
	if t.voidAt.IsZero() || at.Before(t.voidAt) {
		t.voidAt = at
	}
}

// checkToken checks a global access_token for a cgi-bin call; it returns
// WeChat's errcode and errmsg, or 0.
func (e *Emulator) checkToken(tok string) (int, string) {
	if tok == "" {
		return 41001, "access_token missing"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	t := e.tokens[tok]
	switch {
	case t == nil:
		return 40001, msgInvalidCredential
	case !now.Before(t.expires):
		return 42001, "access_token expired"
	case !t.voidAt.IsZero() && !now.Before(t.voidAt):
		return 40001, msgInvalidCredential
	}
	return 0, ""
}

// withToken wraps a cgi-bin handler with the access_token check (41001,
// 40001, 42001).
func (e *Emulator) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if code, msg := e.checkToken(r.URL.Query().Get("access_token")); code != 0 {
			e.wxError(w, code, msg)
			return
		}
		h(w, r)
	}
}

// postOnly answers WeChat's 43002 to anything but POST.
func (e *Emulator) postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			e.wxError(w, 43002, "require POST method")
			return
		}
		h(w, r)
	}
}

// handleToken serves GET cgi-bin/token: a new token on every call, the
// previous one voided 5 minutes later, 2000 calls per (Beijing) day.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		e.wxError(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := e.checkApp(q.Get("appid"), q.Get("secret"), true); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	if code, msg := e.checkIP(r); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	tok := e.randomString(120)
	e.mu.Lock()
	now := e.now()
	if day := beijingDay(now); day != e.quotaDay {
		e.quotaDay, e.tokenCount = day, 0
	}
	if e.tokenCount >= tokenDailyQuota {
		e.mu.Unlock()
		e.behaviour(r.Context(), "token_quota", "cgi-bin/token over 2000 calls a day, 45009")
		e.wxError(w, 45009, "reach max api daily quota limit")
		return
	}
	e.tokenCount++
	if e.current != "" {
		e.voidLocked(e.current, now.Add(tokenOverlap))
	}
	e.issueTokenLocked(tok, now)
	e.current = tok
	e.mu.Unlock()
	e.behaviour(r.Context(), "token_issued", "cgi-bin/token: a new token; the previous one stays valid 5 minutes")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(globalTokenTTL / time.Second)})
}

// handleStableToken serves POST cgi-bin/stable_token.
func (e *Emulator) handleStableToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if !e.readAPI(w, r, &req) {
		return
	}
	if req.GrantType != "client_credential" {
		e.wxError(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := e.checkApp(req.AppID, req.Secret, true); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	if code, msg := e.checkIP(r); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	ctx := r.Context()
	fresh := e.randomString(120)
	e.mu.Lock()
	now := e.now()
	cur := e.tokens[e.stable]
	live := cur != nil && now.Before(cur.expires) && (cur.voidAt.IsZero() || now.Before(cur.voidAt))
	usable := live && now.Before(cur.expires.Add(-stableRenewAhead))
	played, why := "stable_token_reused", "stable_token: the same token until 5 minutes before expiry"
	if !usable {
		played, why = "stable_token_issued", "stable_token: a new token"
	}
	if req.ForceRefresh {
		if day := beijingDay(now); day != e.forceDay {
			e.forceDay, e.forceCount = day, 0
		}
		switch {
		case live && !e.lastForce.IsZero() && now.Sub(e.lastForce) < forceSpacing:
			// "两次强制刷新需间隔30秒，否则不会刷新": answered, not refreshed.
			played, why = "stable_token_force_too_soon", "stable_token force_refresh within 30 s of the previous one: not refreshed, the current token again"
			usable = true
		case e.forceCount >= forceDailyQuota:
			e.mu.Unlock()
			e.behaviour(ctx, "stable_token_force_quota", "stable_token force_refresh over 20 a day, 45009")
			e.wxError(w, 45009, errMsgs[45009])
			return
		default:
			e.forceCount++
			e.lastForce = now
			if cur != nil {
				e.voidLocked(e.stable, now) // the previous token fails at once
			}
			usable = false
			played, why = "stable_token_forced", "stable_token force_refresh: a new token, the previous one invalid at once"
		}
	}
	if !usable {
		e.issueTokenLocked(fresh, now)
		e.stable = fresh
		cur = e.tokens[fresh]
	}
	tok, remaining := e.stable, int(cur.expires.Sub(now)/time.Second)
	e.mu.Unlock()
	e.behaviour(ctx, played, why, slog.Int("expires_in", remaining))
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": remaining})
}

// handleTicket serves GET cgi-bin/ticket/getticket?type=jsapi: a jsapi_ticket
// valid 7200 s; earlier tickets stay valid until they expire.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func (e *Emulator) handleTicket(w http.ResponseWriter, r *http.Request) {
	if t := r.URL.Query().Get("type"); t != "jsapi" && t != "wx_card" {
		e.wxError(w, 40097, "invalid args")
		return
	}
	ticket := e.randomString(64)
	e.mu.Lock()
	now := e.now()
	e.sweepLocked(now)
	e.tickets[ticket] = now.Add(ticketTTL)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": int(ticketTTL / time.Second),
	})
}

// handleUserInfo serves GET cgi-bin/user/info: subscription facts, no
// nickname or headimgurl (since 2021-12-27).
// https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
func (e *Emulator) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	openID := r.URL.Query().Get("openid")
	if openID == "" {
		e.wxError(w, 41009, "missing openid")
		return
	}
	e.mu.Lock()
	u, ok := e.users[openID]
	sub, follows := e.subs[openID]
	e.mu.Unlock()
	if !ok {
		e.wxError(w, 40003, "invalid openid")
		return
	}
	if !follows {
		resp := map[string]any{"subscribe": 0, "openid": u.OpenID}
		if u.UnionID != "" {
			resp["unionid"] = u.UnionID
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp := map[string]any{
		"subscribe":       1,
		"openid":          u.OpenID,
		"language":        "zh_CN",
		"subscribe_time":  sub.time,
		"remark":          "",
		"groupid":         0,
		"tagid_list":      []int{},
		"subscribe_scene": sub.scene,
		"qr_scene":        sub.qrScene,
		"qr_scene_str":    sub.qrStr,
	}
	if u.UnionID != "" {
		resp["unionid"] = u.UnionID
	}
	writeJSON(w, http.StatusOK, resp)
}
