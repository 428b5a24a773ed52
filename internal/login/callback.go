package login

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// Problems of the browser endpoints.
var (
	problemBadRequest = Problem{Status: http.StatusBadRequest, Code: "invalid_request", Title: "Invalid request", TitleZh: "请求无效"}
	// ProblemExpired is the page of a login link used already or past its
	// time (400 invalid_grant); httpapi shows it for its own expired links.
	ProblemExpired = Problem{Status: http.StatusBadRequest, Code: "invalid_grant",
		Title: "This login link has expired", TitleZh: "登录链接已失效",
		Message: "The login link was already used or has expired. Please start the login again.", MessageZh: "该登录链接已使用或已过期，请重新登录。"}
	problemUnbound = Problem{Status: http.StatusBadRequest, Code: "invalid_request",
		Title: "Login started elsewhere", TitleZh: "登录状态不匹配",
		Message:   "This login was not started in this browser, or the browser refuses cookies. Please start again here.",
		MessageZh: "该登录请求不是在此浏览器中发起的，或浏览器禁用了 Cookie，请在此处重新登录。"}
	problemInProgress = Problem{Status: http.StatusConflict, Code: "temporarily_unavailable",
		Title: "Login in progress", TitleZh: "正在登录",
		Message: "This login is still being completed. Please try again.", MessageZh: "登录仍在处理中，请重试。"}
)

// outcome is what a browser gets at the end of a WeChat leg, kept sealed
// under "done:<state>" for resultTTL so that WeChat's duplicate callback
// gets the same one.
type outcome struct {
	Location   string    `json:"location,omitempty"`
	State      string    `json:"state,omitempty"` // a restart: the new state to bind
	Browser    string    `json:"browser,omitempty"`
	BrowserExp time.Time `json:"browser_exp,omitzero"`
	Session    string    `json:"session,omitempty"`
	SessionExp time.Time `json:"session_exp,omitzero"`
	Refresh    string    `json:"refresh,omitempty"`
	RefreshExp time.Time `json:"refresh_exp,omitzero"`
	Problem    *Problem  `json:"problem,omitempty"`
}

// Callback serves GET /oauth/callback?code=CODE&state=STATE (state alone
// when the user declined): WeChat's redirect_uri. The state must name a
// live flow and be bound to this browser (cookie wxauth_state); a browser
// that did not start it is sent through a fresh, bound authorization
// (silent for snsapi_base) instead, once, and never logged in on the
// strength of the URL. The first callback of a state exchanges the code
// (once; a dead code, 40029, 40163 or 42003, restarts the authorization
// once),
// fetches sns/userinfo for snsapi_userinfo, upserts the user and answers:
// the client's redirect_uri with a one-time code, or, for a cookie login,
// the wxauth_session cookie and a 302 to the page. A duplicate callback of
// the same state in the same browser gets the first one's answer.
func (s *Service) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), callbackBudget)
		defer cancel()
		q := r.URL.Query()
		state, code := q.Get("state"), q.Get("code")
		if !wechat.ValidState(state) {
			p := problemBadRequest
			p.Message, p.MessageZh = "The login callback has no valid state.", "登录回调缺少有效的 state 参数。"
			s.cfg.Pages.Problem(w, r, p)
			return
		}
		raw, err := s.cfg.Records.Get(ctx, keyState+state)
		if errors.Is(err, store.ErrNotFound) {
			s.cfg.Pages.Problem(w, r, ProblemExpired)
			return
		} else if err != nil {
			s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(ctx, "load state", err))
			return
		}
		var f flow
		if json.Unmarshal(raw, &f) != nil {
			s.cfg.Pages.Problem(w, r, ProblemExpired)
			return
		}
		if bound, ok := s.cfg.Cookies.State(r); !ok || subtle.ConstantTimeCompare([]byte(bound), []byte(state)) != 1 {
			// Not this browser's login (a stolen or replayed callback
			// URL), or a webview that dropped the cookie: start over,
			// bound to this browser. Its own WeChat identity comes back.
			s.write(w, r, s.restart(ctx, f))
			return
		}
		if o, ok := s.loadOutcome(ctx, state); ok {
			s.write(w, r, o)
			return
		}
		started := s.now()
		first, err := s.cfg.Records.PutIfAbsent(ctx, keyClaim+state, []byte(started.Format(time.RFC3339Nano)), s.cfg.StateTTL)
		if err != nil {
			s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(ctx, "claim callback", err))
			return
		}
		if !first {
			if b, err := s.cfg.Records.Get(ctx, keyClaim+state); err == nil {
				if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil && started.Sub(t) > callbackBudget+resultTTL {
					// The first callback finished long ago and its
					// outcome is gone (the back button, a bookmark).
					s.cfg.Pages.Problem(w, r, ProblemExpired)
					return
				}
			}
			o, ok := s.waitOutcome(ctx, state)
			if !ok {
				s.cfg.Pages.Problem(w, r, problemInProgress)
				return
			}
			s.write(w, r, o)
			return
		}
		o := s.complete(ctx, f, code)
		if b, err := json.Marshal(o); err == nil {
			// A failure here only loses the duplicate-callback replay.
			if err := s.cfg.Records.Put(context.WithoutCancel(ctx), keyDone+state, s.cfg.Box.Seal(b, []byte("callback:"+state)), resultTTL); err != nil {
				s.log.WarnContext(ctx, "keep callback outcome", "err", err)
			}
		}
		s.write(w, r, o)
	})
}

// restart sends the browser through a fresh authorization of f bound to
// it, unless f has been restarted maxRestarts times already.
func (s *Service) restart(ctx context.Context, f flow) outcome {
	if f.Restarts >= maxRestarts {
		p := problemUnbound
		if !f.oidcMode() {
			p.RetryURL = PathAuthorize + "?redirect=" + url.QueryEscape(f.Redirect) + "&scope=" + f.WeChatScope
		}
		return outcome{Problem: &p}
	}
	f.Restarts++
	// The cookie goes out with the outcome (write), so that a duplicate
	// callback replaying it binds the same state.
	u, st, err := s.startWeChat(ctx, headerWriter{}, f)
	if err != nil {
		p := s.cfg.Pages.FromError(ctx, "restart login", err)
		return outcome{Problem: &p}
	}
	return outcome{Location: u, State: st}
}

// complete runs the first callback of a flow to its outcome.
func (s *Service) complete(ctx context.Context, f flow, code string) outcome {
	fail := func(p Problem) outcome {
		if f.oidcMode() {
			return outcome{Location: errorURL(f, p.Code, p.Message)}
		}
		if p.Status != http.StatusInternalServerError && p.RetryURL == "" {
			p.RetryURL = PathAuthorize + "?redirect=" + url.QueryEscape(f.Redirect) + "&scope=" + f.WeChatScope
		}
		return outcome{Problem: &p}
	}
	if code == "" { // the user declined: WeChat redirects with state only
		s.count(f.WeChatScope, OutcomeDenied)
		if f.oidcMode() {
			return outcome{Location: errorURL(f, "access_denied", "the user declined the WeChat authorization")}
		}
		return outcome{Location: withFragment(f.Redirect, "error=access_denied")}
	}
	tok, err := s.cfg.WeChat.Exchange(ctx, code)
	if err != nil {
		if (wechat.IsDeadCode(err) || answerDropped(ctx, err)) && f.Restarts < maxRestarts {
			// A dead code (used, unknown, expired), or an exchange that
			// reached WeChat and whose connection dropped before the answer
			// (the code is most likely consumed; sending it again would only
			// get 40163): ask WeChat for a new code, once (silent for
			// snsapi_base and for followers).
			s.count(f.WeChatScope, OutcomeExpiredCode)
			return s.restart(ctx, f)
		}
		s.countErr(f.WeChatScope, err)
		return fail(s.cfg.Pages.FromError(ctx, "exchange code", err))
	}
	if wechat.IsSnapshotUser(tok) {
		s.count(f.WeChatScope, OutcomeSnapshot)
		if f.oidcMode() {
			return outcome{Location: errorURL(f, "access_denied", SnapshotDescription)}
		}
		return outcome{Location: withFragment(f.Redirect, "error=snapshot_user")}
	}
	openID, scope := wechat.OpenID(tok), wechat.Scope(tok)
	if scope == "" {
		scope = f.WeChatScope
	}
	if f.AutoScope && !strings.Contains(scope, wechat.ScopeUserInfo) && !s.profileFresh(ctx, openID) {
		// A login without a scope for a user whose profile is missing or
		// stale: ask for snsapi_userinfo now (a consent page unless WeChat
		// spares followers it).
		f.AutoScope, f.WeChatScope = false, wechat.ScopeUserInfo
		u, st, err := s.startWeChat(ctx, headerWriter{}, f)
		if err != nil {
			return fail(s.cfg.Pages.FromError(ctx, "ask for the profile", err))
		}
		return outcome{Location: u, State: st}
	}
	u := store.User{AppID: s.cfg.AppID, OpenID: openID, UnionID: wechat.UnionID(tok), Scope: scope}
	if strings.Contains(scope, wechat.ScopeUserInfo) {
		info, err := s.cfg.WeChat.UserInfo(ctx, tok.AccessToken, openID, "zh_CN")
		switch {
		case err == nil:
			u.Nickname, u.HeadImgURL, u.Sex = info.Nickname, info.HeadImgURL, info.Sex
			u.Province, u.City, u.Country, u.Privilege = info.Province, info.City, info.Country, info.Privilege
			u.ProfileUpdatedAt = s.now()
			if info.UnionID != "" {
				u.UnionID = info.UnionID
			}
		case wechat.IsCode(err, wechat.CodeUnauthorized):
			// 48001 for an snsapi_userinfo token: a snapshot-page user whose
			// exchange did not say is_snapshotuser (WeChat leaves it out
			// at times); the openid is a virtual one, so no session.
			s.count(f.WeChatScope, OutcomeSnapshot)
			if f.oidcMode() {
				return outcome{Location: errorURL(f, "access_denied", SnapshotDescription)}
			}
			return outcome{Location: withFragment(f.Redirect, "error=snapshot_user")}
		default:
			s.countErr(f.WeChatScope, err)
			return fail(s.cfg.Pages.FromError(ctx, "userinfo", err))
		}
	}
	u.WebToken = s.sealWebToken(openID, tok)
	user, err := s.cfg.Users.UpsertUser(ctx, u, s.now())
	if err != nil {
		s.countErr(f.WeChatScope, err)
		return fail(s.cfg.Pages.FromError(ctx, "upsert user", err))
	}
	id := identity{UserID: user.ID, OpenID: openID, UnionID: user.UnionID, WeChatScope: scope, AuthTime: s.now().Unix(), AMR: AMRWeChatOAuth}
	o, err := s.finish(ctx, f, id)
	if err != nil {
		s.countErr(f.WeChatScope, err)
		return fail(s.cfg.Pages.FromError(ctx, "finish login", err))
	}
	s.count(f.WeChatScope, OutcomeSuccess)
	return o
}

// profileFresh reports whether the user of openID has a profile younger
// than ProfileMaxAge (a store error counts as no).
func (s *Service) profileFresh(ctx context.Context, openID string) bool {
	u, err := s.cfg.Users.FindUser(ctx, s.cfg.AppID, openID)
	return err == nil && !u.ProfileUpdatedAt.IsZero() && s.now().Sub(u.ProfileUpdatedAt) <= s.cfg.ProfileMaxAge
}

// answerDropped reports whether err is a code exchange whose request reached
// WeChat and whose connection then dropped without an answer
// ([wechat.ErrAnswerLost] without an HTTP status or a timeout). A timeout or
// a 5xx is what an outage looks like: those get the busy page, since a new
// authorization would meet the same outage and the callback's budget is
// spent.
func answerDropped(ctx context.Context, err error) bool {
	if !errors.Is(err, wechat.ErrAnswerLost) || ctx.Err() != nil {
		return false
	}
	var status *wechat.StatusError
	var netErr net.Error
	return !errors.As(err, &status) && !(errors.As(err, &netErr) && netErr.Timeout())
}

// finish ends a flow for id: a code on the client's redirect_uri (and the
// browser cookie), or the first-party session cookies and the page.
func (s *Service) finish(ctx context.Context, f flow, id identity) (outcome, error) {
	b, _ := json.Marshal(id)
	o := outcome{Browser: string(b), BrowserExp: s.now().Add(s.cfg.BrowserTTL)}
	if f.oidcMode() {
		u, err := s.issueCode(ctx, f, id)
		if err != nil {
			return outcome{}, err
		}
		o.Location = u
		return o, nil
	}
	t, err := s.cfg.Sessions.Issue(ctx, session.Subject{UserID: id.UserID, OpenID: id.OpenID, UnionID: id.UnionID, AppID: s.cfg.AppID, Scope: id.WeChatScope})
	if err != nil {
		return outcome{}, err
	}
	o.Location = f.Redirect
	o.Session, o.SessionExp = t.AccessToken, s.now().Add(time.Duration(t.ExpiresIn)*time.Second)
	o.Refresh, o.RefreshExp = t.RefreshToken, t.RefreshExpires
	return o, nil
}

// write answers the browser with o.
func (s *Service) write(w http.ResponseWriter, r *http.Request, o outcome) {
	c := s.cfg.Cookies
	if o.State != "" {
		c.SetState(w, o.State, s.cfg.StateTTL)
	}
	if o.Problem != nil {
		s.cfg.Pages.Problem(w, r, *o.Problem)
		return
	}
	if o.Browser != "" {
		c.SetBrowser(w, o.Browser, o.BrowserExp)
	}
	if o.Session != "" {
		c.SetSession(w, o.Session, o.SessionExp)
	}
	if o.Refresh != "" {
		c.SetRefresh(w, o.Refresh, o.RefreshExp)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Location", o.Location)
	w.WriteHeader(http.StatusFound)
}

func (s *Service) loadOutcome(ctx context.Context, state string) (outcome, bool) {
	var o outcome
	sealed, err := s.cfg.Records.Get(ctx, keyDone+state)
	if err != nil {
		return o, false
	}
	b, err := s.cfg.Box.Open(sealed, []byte("callback:"+state))
	if err != nil || json.Unmarshal(b, &o) != nil {
		return o, false
	}
	return o, true
}

// waitOutcome waits for the first callback of state to finish, until ctx
// ends.
func (s *Service) waitOutcome(ctx context.Context, state string) (outcome, bool) {
	t := time.NewTicker(duplicatePoll)
	defer t.Stop()
	for {
		if o, ok := s.loadOutcome(ctx, state); ok {
			return o, true
		}
		select {
		case <-ctx.Done():
			return outcome{}, false
		case <-t.C:
		}
	}
}

// sealWebToken seals the user's web access_token and refresh_token for the
// store (aad binds it to this appid and openid).
func (s *Service) sealWebToken(openID string, tok *oauth2.Token) []byte {
	b, _ := json.Marshal(struct {
		AccessToken  string    `json:"access_token"`
		RefreshToken string    `json:"refresh_token"`
		Expiry       time.Time `json:"expiry"`
	}{tok.AccessToken, tok.RefreshToken, tok.Expiry})
	return s.cfg.Box.Seal(b, []byte("webtoken:"+s.cfg.AppID+":"+openID))
}

// countErr counts a failed login by the kind of err.
func (s *Service) countErr(scope string, err error) {
	outcome := OutcomeError
	switch {
	case wechat.IsCode(err, wechat.CodeInvalidCode, wechat.CodeCodeUsed, wechat.CodeCodeExpired):
		outcome = OutcomeExpiredCode
	case wechat.Temporary(err), errors.Is(err, context.DeadlineExceeded):
		outcome = OutcomeWeChatBusy
	}
	s.count(scope, outcome)
}

// withFragment replaces any fragment of u with frag (cookie mode errors:
// "error=access_denied", "error=snapshot_user"; never a token).
func withFragment(u, frag string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	return u + "#" + frag
}
