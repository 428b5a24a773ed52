package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxauth/wxauth/internal/metrics"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

const (
	// callbackBudget bounds the whole /oauth/callback (code exchange,
	// userinfo, store, session): past it the user sees "WeChat is busy"
	// instead of a hanging page.
	callbackBudget = 8 * time.Second
	// resultTTL keeps a completed callback's result so that WeChat's
	// duplicate redirect for the same state lands on the same session.
	resultTTL = 30 * time.Second
	// duplicatePoll is how often a duplicate callback looks for the result
	// of the first one while it is still running.
	duplicatePoll = 25 * time.Millisecond
)

var (
	errLoginMismatch = apiError{Status: http.StatusBadRequest, Code: "invalid_request",
		Title: "Login started elsewhere", TitleZh: "登录状态不匹配",
		Message:   "This login was started in another browser or tab. Please start again here.",
		MessageZh: "该登录请求来自其他浏览器或页面，请在此处重新登录。"}
	errLoginInProgress = apiError{Status: http.StatusConflict, Code: "temporarily_unavailable",
		Title: "Login in progress", TitleZh: "正在登录",
		Message: "This login is still being completed. Please try again.", MessageZh: "登录仍在处理中，请重试。"}
)

// stateRecord is what a login state names, kept server-side under
// "state:<state>" for Options.StateTTL.
type stateRecord struct {
	Scope    string
	Redirect string
}

// encode is "scope\nredirect"; a validated redirect has no control characters.
func (s stateRecord) encode() []byte { return []byte(s.Scope + "\n" + s.Redirect) }

func decodeStateRecord(b []byte) (stateRecord, bool) {
	scope, redirect, ok := strings.Cut(string(b), "\n")
	return stateRecord{Scope: scope, Redirect: redirect}, ok
}

// handleLogin starts web authorization: GET /login?redirect=R&scope=S.
// R must pass the allowlist; S is snsapi_base, snsapi_userinfo or empty
// (snsapi_base for a returning user whose profile is fresh, else
// snsapi_userinfo). It stores the state record, binds it to the browser
// with a cookie and answers 302 to WeChat's order-exact authorize URL.
func handleLogin(p *pages, o Options) http.Handler {
	callbackURL := o.PublicURL + "/oauth/callback"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		target, err := o.Allow.Check(q.Get("redirect"), true)
		if err != nil {
			p.error(w, r, errBadRequest.withMessage(
				"The redirect address is not allowed ("+err.Error()+").",
				"跳转地址不在允许列表中，无法登录。"))
			return
		}
		if o.QR != nil && !strings.Contains(r.UserAgent(), "MicroMessenger") {
			// Web authorization works only inside WeChat: a desktop
			// browser logs in by scanning a QR code instead.
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/qr/login?redirect="+url.QueryEscape(target.String()), http.StatusFound)
			return
		}
		scope := q.Get("scope")
		switch scope {
		case wechat.ScopeBase, wechat.ScopeUserInfo:
		case "":
			scope = chooseScope(r, o)
		default:
			p.error(w, r, errBadRequest.withMessage("scope must be snsapi_base or snsapi_userinfo.", "scope 只能是 snsapi_base 或 snsapi_userinfo。"))
			return
		}
		state := randomString(22)
		if err := o.Stores.Records.Put(r.Context(), "state:"+state, stateRecord{scope, target.String()}.encode(), o.StateTTL); err != nil {
			p.error(w, r, p.fromError(r.Context(), "save state", err))
			return
		}
		authURL, err := o.WeChat.AuthCodeURL(callbackURL, scope, state)
		if err != nil {
			p.error(w, r, p.fromError(r.Context(), "authorize url", err))
			return
		}
		o.Cookies.SetState(w, state, o.StateTTL)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Location", authURL)
		w.WriteHeader(http.StatusFound)
	})
}

// chooseScope picks the scope of a /login without one: snsapi_base when the
// browser has a valid session whose user's profile is younger than
// ProfileMaxAge, else snsapi_userinfo.
func chooseScope(r *http.Request, o Options) string {
	raw, ok := o.Cookies.Session(r)
	if !ok {
		return wechat.ScopeUserInfo
	}
	claims, err := o.Sessions.Verify(r.Context(), raw)
	if err != nil {
		return wechat.ScopeUserInfo
	}
	u, err := o.Stores.Users.GetUser(r.Context(), claims.Subject)
	if err != nil || u.ProfileUpdatedAt.IsZero() || o.Now().Sub(u.ProfileUpdatedAt) > o.ProfileMaxAge {
		return wechat.ScopeUserInfo
	}
	return wechat.ScopeBase
}

// callbackResult is the outcome of one /oauth/callback, kept sealed under
// "done:<state>" for resultTTL so a duplicate callback replays it.
type callbackResult struct {
	Location   string    `json:"location,omitempty"`
	Refresh    string    `json:"refresh,omitempty"`
	RefreshExp time.Time `json:"refresh_exp,omitzero"`
	Session    string    `json:"session,omitempty"`
	SessionExp time.Time `json:"session_exp,omitzero"`
	Err        *apiError `json:"err,omitempty"`
}

// handleOAuthCallback completes web authorization: GET
// /oauth/callback?code=CODE&state=STATE (or ?state=STATE alone when the user
// denied). It exchanges the code once, fetches sns/userinfo for the userinfo
// scope, upserts the user, issues the session and answers 302 to the page
// with #access_token=...&token_type=Bearer&expires_in=N. A duplicate
// callback for the same state replays the first one's result.
func handleOAuthCallback(p *pages, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), callbackBudget)
		defer cancel()
		q := r.URL.Query()
		state, code := q.Get("state"), q.Get("code")
		if !wechat.ValidState(state) {
			p.error(w, r, errBadRequest.withMessage("The login callback has no valid state.", "登录回调缺少有效的 state 参数。"))
			return
		}
		if !stateBound(r, o.Cookies, state) {
			p.error(w, r, errLoginMismatch)
			return
		}
		if res, ok := loadResult(ctx, o, state); ok {
			writeResult(w, r, p, o.Cookies, res)
			return
		}
		raw, err := o.Stores.Records.Get(ctx, "state:"+state)
		if errors.Is(err, store.ErrNotFound) {
			p.error(w, r, errLoginExpired)
			return
		} else if err != nil {
			p.error(w, r, p.fromError(ctx, "load state", err))
			return
		}
		rec, ok := decodeStateRecord(raw)
		if !ok {
			p.error(w, r, errLoginExpired)
			return
		}
		first, err := o.Stores.Records.PutIfAbsent(ctx, "cb:"+state, []byte{1}, o.StateTTL)
		if err != nil {
			p.error(w, r, p.fromError(ctx, "claim callback", err))
			return
		}
		if !first {
			res, ok := waitResult(ctx, o, state)
			if !ok {
				p.error(w, r, errLoginInProgress.withRetry(loginURL(rec)))
				return
			}
			writeResult(w, r, p, o.Cookies, res)
			return
		}
		res := completeLogin(ctx, p, o, rec, code)
		if b, err := json.Marshal(res); err == nil {
			// A failure here only loses the duplicate-callback replay.
			if err := o.Stores.Records.Put(context.WithoutCancel(ctx), "done:"+state, o.Box.Seal(b, []byte("callback:"+state)), resultTTL); err != nil {
				p.logger.WarnContext(ctx, "keep callback result", "err", err, "request_id", RequestID(ctx))
			}
		}
		o.Stores.Records.Delete(context.WithoutCancel(ctx), "state:"+state)
		writeResult(w, r, p, o.Cookies, res)
	})
}

// stateBound checks the browser binding: when the state cookie came back it
// must name this state. WeChat's webview sometimes drops cookies on the
// redirect: then the server-side record alone limits the damage.
func stateBound(r *http.Request, c *session.Cookies, state string) bool {
	bound, ok := c.State(r)
	return !ok || subtle.ConstantTimeCompare([]byte(bound), []byte(state)) == 1
}

func loginURL(rec stateRecord) string {
	return "/login?redirect=" + url.QueryEscape(rec.Redirect) + "&scope=" + rec.Scope
}

// completeLogin runs the first callback of a state to its result.
func completeLogin(ctx context.Context, p *pages, o Options, rec stateRecord, code string) callbackResult {
	fail := func(e apiError) callbackResult { return callbackResult{Err: &e} }
	if code == "" { // the user denied: WeChat redirects with state only
		countLogin(o, rec, metrics.LoginDenied)
		return callbackResult{Location: withFragment(rec.Redirect, "error=access_denied")}
	}
	tok, err := o.WeChat.Exchange(ctx, code)
	if err != nil {
		countLoginErr(o, rec, err)
		e := p.fromError(ctx, "exchange code", err)
		if e.Status != http.StatusInternalServerError {
			e.RetryURL = loginURL(rec)
		}
		return fail(e)
	}
	if wechat.IsSnapshotUser(tok) {
		// A snapshot-page virtual user: no session; the page asks the user
		// to tap 「使用完整服务」 and authorize for real.
		countLogin(o, rec, metrics.LoginSnapshot)
		return callbackResult{Location: withFragment(rec.Redirect, "error=snapshot_user")}
	}
	openID, scope := wechat.OpenID(tok), wechat.Scope(tok)
	if scope == "" {
		scope = rec.Scope
	}
	u := store.User{AppID: o.AppID, OpenID: openID, UnionID: wechat.UnionID(tok), Scope: scope}
	if strings.Contains(scope, wechat.ScopeUserInfo) {
		info, err := o.WeChat.UserInfo(ctx, tok.AccessToken, openID, "zh_CN")
		switch {
		case err == nil:
			u.Nickname, u.HeadImgURL, u.Sex = info.Nickname, info.HeadImgURL, info.Sex
			u.Province, u.City, u.Country, u.Privilege = info.Province, info.City, info.Country, info.Privilege
			u.ProfileUpdatedAt = o.Now()
			if info.UnionID != "" {
				u.UnionID = info.UnionID
			}
		case wechat.IsCode(err, wechat.CodeUnauthorized):
			// Only base scope was granted after all: log in without a profile.
		default:
			countLoginErr(o, rec, err)
			e := p.fromError(ctx, "userinfo", err)
			e.RetryURL = loginURL(rec)
			return fail(e)
		}
	}
	u.WebToken = sealWebToken(o, openID, tok)
	user, err := o.Stores.Users.UpsertUser(ctx, u, o.Now())
	if err != nil {
		countLoginErr(o, rec, err)
		return fail(p.fromError(ctx, "upsert user", err))
	}
	tokens, err := o.Sessions.Issue(ctx, session.Subject{UserID: user.ID, OpenID: openID, UnionID: user.UnionID, AppID: o.AppID, Scope: scope})
	if err != nil {
		countLoginErr(o, rec, err)
		return fail(p.fromError(ctx, "issue session", err))
	}
	countLogin(o, rec, metrics.LoginSuccess)
	return callbackResult{
		Location:   withFragment(rec.Redirect, tokenFragment(tokens)),
		Refresh:    tokens.RefreshToken,
		RefreshExp: tokens.RefreshExpires,
		Session:    tokens.AccessToken,
		SessionExp: o.Now().Add(time.Duration(tokens.ExpiresIn) * time.Second),
	}
}

func tokenFragment(t session.Tokens) string {
	return "access_token=" + t.AccessToken + "&token_type=Bearer&expires_in=" + strconv.Itoa(t.ExpiresIn)
}

// withFragment replaces any fragment of u with frag.
func withFragment(u, frag string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	return u + "#" + frag
}

// sealWebToken seals the user's web access_token and refresh_token for the
// store (aad binds it to this appid and openid).
func sealWebToken(o Options, openID string, tok *oauth2.Token) []byte {
	b, _ := json.Marshal(struct {
		AccessToken  string    `json:"access_token"`
		RefreshToken string    `json:"refresh_token"`
		Expiry       time.Time `json:"expiry"`
	}{tok.AccessToken, tok.RefreshToken, tok.Expiry})
	return o.Box.Seal(b, []byte("webtoken:"+o.AppID+":"+openID))
}

func loadResult(ctx context.Context, o Options, state string) (callbackResult, bool) {
	var res callbackResult
	sealed, err := o.Stores.Records.Get(ctx, "done:"+state)
	if err != nil {
		return res, false
	}
	b, err := o.Box.Open(sealed, []byte("callback:"+state))
	if err != nil || json.Unmarshal(b, &res) != nil {
		return res, false
	}
	return res, true
}

// waitResult waits for the first callback of state to finish, until ctx ends.
func waitResult(ctx context.Context, o Options, state string) (callbackResult, bool) {
	t := time.NewTicker(duplicatePoll)
	defer t.Stop()
	for {
		if res, ok := loadResult(ctx, o, state); ok {
			return res, true
		}
		select {
		case <-ctx.Done():
			return callbackResult{}, false
		case <-t.C:
		}
	}
}

func writeResult(w http.ResponseWriter, r *http.Request, p *pages, c *session.Cookies, res callbackResult) {
	c.ClearState(w)
	if res.Err != nil {
		p.error(w, r, *res.Err)
		return
	}
	if res.Refresh != "" {
		c.SetRefresh(w, res.Refresh, res.RefreshExp)
		c.SetSession(w, res.Session, res.SessionExp)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Location", res.Location)
	w.WriteHeader(http.StatusFound)
}
