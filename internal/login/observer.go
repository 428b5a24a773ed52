package login

// Outcome is how the WeChat leg of a login ended, as an [Observer] is told.
type Outcome string

// The outcomes of a login's WeChat leg.
const (
	OutcomeSuccess     Outcome = "success"      // a session was issued (or a code, for an OpenID client)
	OutcomeDenied      Outcome = "denied"       // the user refused consent (callback without code)
	OutcomeSnapshot    Outcome = "snapshot"     // is_snapshotuser=1: no session
	OutcomeExpiredCode Outcome = "expired_code" // WeChat's 40029, 40163 or 42003 for the code
	OutcomeWeChatBusy  Outcome = "wechat_busy"  // -1, 45011, 5xx or a timeout after the retries
	OutcomeError       Outcome = "error"        // anything else
)

// Observer is told how each login's WeChat leg ended, by the scope asked
// of WeChat (snsapi_base or snsapi_userinfo). Package metrics implements it
// (wxauth_logins_total{scope,outcome}); it must be cheap and safe for
// concurrent use.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
type Observer interface {
	LoginEnded(scope string, outcome Outcome)
}
