package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// API calls the cgi-bin endpoints that take the global access_token. A call
// refused with 40001, 40014 or 42001 invalidates the token it used (see
// [TokenSource.Invalidate]) and is made once more with the new one. It is
// safe for concurrent use.
type API struct {
	c  *Client
	ts TokenSource
}

// NewAPI returns an API calling through c with tokens from ts (usually a
// [*TokenManager]).
func NewAPI(c *Client, ts TokenSource) *API {
	return &API{c: c, ts: ts}
}

// withToken runs r with access_token set, retrying once with a new token
// when WeChat refuses the one used.
func (a *API) withToken(ctx context.Context, r request, out any) error {
	for try := 0; ; try++ {
		tok, err := a.ts.AccessToken(ctx)
		if err != nil {
			return fmt.Errorf("wechat: %s: access_token: %w", r.api, err)
		}
		q := url.Values{}
		for k, v := range r.query {
			q[k] = v
		}
		q.Set("access_token", tok)
		rr := r
		rr.query = q
		err = a.c.getJSON(ctx, rr, out)
		if try == 0 && isStaleToken(err) {
			if ierr := a.ts.Invalidate(ctx, tok); ierr != nil {
				return fmt.Errorf("%w (and invalidating the token failed: %w)", err, ierr)
			}
			continue
		}
		return err
	}
}

// ErrInvalidQRCode is wrapped by the errors of [API.CreateQRCode] for a
// request outside WeChat's limits, found before any call.
var ErrInvalidQRCode = errors.New("wechat: invalid QR code request")

// QR code action names of [QRCodeRequest].
const (
	QRScene         = "QR_SCENE"           // temporary, integer scene
	QRStrScene      = "QR_STR_SCENE"       // temporary, string scene
	QRLimitScene    = "QR_LIMIT_SCENE"     // permanent, integer scene 1..100000
	QRLimitStrScene = "QR_LIMIT_STR_SCENE" // permanent, string scene
)

// Limits of QR codes with parameters.
const (
	MaxQRExpireSeconds = 2592000 // 30 days, the longest life of a temporary code, in seconds
	MaxQRLimitSceneID  = 100000  // largest scene_id of a permanent code
	MaxQRSceneStrLen   = 64      // longest scene_str, in bytes
)

// QRCodeRequest asks for a QR code with parameters. The JSON sent is
// {"expire_seconds":N,"action_name":"...","action_info":{"scene":{"scene_id":N}}}
// or with "scene_str".
type QRCodeRequest struct {
	// ActionName is QR_SCENE or QR_STR_SCENE (temporary), QR_LIMIT_SCENE or
	// QR_LIMIT_STR_SCENE (permanent; at most 100,000 per account).
	ActionName string
	// ExpireSeconds is the life of a temporary code in seconds, 1 to
	// 2,592,000; 0 lets WeChat choose (60 s: "此字段如果不填，则默认有效期为60秒";
	// older pages said 30). Must be 0 for permanent codes.
	ExpireSeconds int
	// SceneID is the integer scene: non-zero for QR_SCENE, 1..100000 for
	// QR_LIMIT_SCENE; 0 for the string actions.
	SceneID uint32
	// SceneStr is the string scene of the *_STR_SCENE actions, 1 to 64
	// bytes; empty for the integer actions.
	SceneStr string
}

// Validate checks q against WeChat's limits. Errors wrap
// [ErrInvalidQRCode] and name the field.
func (q QRCodeRequest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidQRCode}, args...)...)
	}
	temporary := false
	switch q.ActionName {
	case QRScene, QRStrScene:
		temporary = true
	case QRLimitScene, QRLimitStrScene:
	default:
		return bad("action_name %q: want QR_SCENE, QR_STR_SCENE, QR_LIMIT_SCENE or QR_LIMIT_STR_SCENE", q.ActionName)
	}
	switch {
	case q.ExpireSeconds < 0:
		return bad("expire_seconds %d is negative", q.ExpireSeconds)
	case q.ExpireSeconds > MaxQRExpireSeconds:
		return bad("expire_seconds %d is more than %d (30 days)", q.ExpireSeconds, MaxQRExpireSeconds)
	case !temporary && q.ExpireSeconds != 0:
		return bad("expire_seconds is for temporary codes, not %s", q.ActionName)
	}
	switch q.ActionName {
	case QRScene:
		if q.SceneID == 0 {
			return bad("scene_id must be non-zero for QR_SCENE")
		}
	case QRLimitScene:
		if q.SceneID == 0 || q.SceneID > MaxQRLimitSceneID {
			return bad("scene_id %d: must be 1 to %d for QR_LIMIT_SCENE", q.SceneID, MaxQRLimitSceneID)
		}
	default: // string scenes
		if q.SceneID != 0 {
			return bad("scene_id is for integer scenes, not %s", q.ActionName)
		}
		if n := len(q.SceneStr); n == 0 || n > MaxQRSceneStrLen {
			return bad("scene_str is %d bytes: must be 1 to %d", n, MaxQRSceneStrLen)
		}
		return nil
	}
	if q.SceneStr != "" {
		return bad("scene_str is for string scenes, not %s", q.ActionName)
	}
	return nil
}

// QRCode is WeChat's answer to qrcode/create.
type QRCode struct {
	// Ticket exchanges for the image at [API.ShowQRCodeURL]; it is also
	// in the scan event (Ticket).
	Ticket string `json:"ticket"`
	// ExpireSeconds is the life of a temporary code in seconds; 0 for a
	// permanent one.
	ExpireSeconds int `json:"expire_seconds"`
	// URL is the content of the QR code, to render it oneself.
	URL string `json:"url"`
}

// CreateQRCode creates a QR code with parameters (POST
// cgi-bin/qrcode/create). Scanning it pushes Event=subscribe with
// EventKey=qrscene_<scene> (non-followers) or Event=SCAN with
// EventKey=<scene> (followers), both with the Ticket.
//
// Errors: an [ErrInvalidQRCode] error before any call when req is outside
// the limits (see [QRCodeRequest.Validate]); [*Error] (e.g. 45009 quota);
// otherwise as [TokenManager.AccessToken] and [Client.Exchange], with
// access_token redacted.
//
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
func (a *API) CreateQRCode(ctx context.Context, req QRCodeRequest) (*QRCode, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	type scene struct {
		SceneID  uint32 `json:"scene_id,omitempty"`
		SceneStr string `json:"scene_str,omitempty"`
	}
	type actionInfo struct {
		Scene scene `json:"scene"`
	}
	body, err := marshalJSON(struct {
		ExpireSeconds int        `json:"expire_seconds,omitempty"`
		ActionName    string     `json:"action_name"`
		ActionInfo    actionInfo `json:"action_info"`
	}{req.ExpireSeconds, req.ActionName, actionInfo{scene{req.SceneID, req.SceneStr}}})
	if err != nil {
		return nil, fmt.Errorf("wechat: cgi-bin/qrcode/create: encode request: %w", err)
	}
	var q QRCode
	err = a.withToken(ctx, request{api: "cgi-bin/qrcode/create", base: a.c.api, method: "POST", body: body, retryTooFrequent: true}, &q)
	if err != nil {
		return nil, err
	}
	if q.Ticket == "" {
		return nil, errors.New("wechat: cgi-bin/qrcode/create: response has no ticket")
	}
	return &q, nil
}

// ShowQRCodeURL returns the URL of the image of the QR code of ticket:
// MPBase + "/cgi-bin/showqrcode?ticket=" + the URL-encoded ticket. No
// access_token is needed.
//
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
func (a *API) ShowQRCodeURL(ticket string) string {
	return a.c.mp.String() + "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(ticket)
}

// ShowQRCode fetches the image (JPEG, at most 1 MiB) of the QR code of
// ticket from GET cgi-bin/showqrcode on MPBase.
//
// Errors: [*StatusError] with 404 for an unknown or expired ticket;
// [*Error] when WeChat answers JSON with an errcode; [ErrInvalidArgument]
// for an empty ticket; otherwise as [Client.Exchange].
//
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
func (a *API) ShowQRCode(ctx context.Context, ticket string) ([]byte, error) {
	if ticket == "" {
		return nil, fmt.Errorf("%w: empty ticket", ErrInvalidArgument)
	}
	return a.c.do(ctx, request{
		api: "cgi-bin/showqrcode", base: a.c.mp, method: "GET", raw: true,
		query: url.Values{"ticket": {ticket}},
	})
}

// Follower is a follower's record from cgi-bin/user/info. Since 2021-12-27
// it has no nickname or avatar (only sns/userinfo has them).
type Follower struct {
	// Subscribe is 1 when the user follows the account; 0 otherwise, and
	// then only OpenID (and UnionID) are set.
	Subscribe int `json:"subscribe"`
	// OpenID is the user's openid under this account.
	OpenID string `json:"openid"`
	// Language is the user's WeChat language, e.g. "zh_CN".
	Language string `json:"language"`
	// SubscribeTime is when the user last followed, in Unix seconds.
	SubscribeTime int64 `json:"subscribe_time"`
	// UnionID is present when the account is bound to an Open Platform
	// account.
	UnionID string `json:"unionid,omitempty"`
	// Remark is the account operator's note on the follower.
	Remark string `json:"remark"`
	// GroupID is the legacy group id (tags replaced groups).
	GroupID int `json:"groupid"`
	// TagIDs are the ids of the follower's tags.
	TagIDs []int `json:"tagid_list"`
	// SubscribeScene is how the user came, e.g. ADD_SCENE_QR_CODE,
	// ADD_SCENE_SEARCH, ADD_SCENE_OTHERS.
	SubscribeScene string `json:"subscribe_scene"`
	// QRScene and QRSceneStr are the scene of the QR code the user
	// followed through, if any.
	QRScene    int64  `json:"qr_scene"`     // integer scene, 0 when none
	QRSceneStr string `json:"qr_scene_str"` // string scene, "" when none
}

// Follower fetches the record of the user openID (GET cgi-bin/user/info).
// lang is "zh_CN", "zh_TW" or "en"; "" means "zh_CN".
//
// Errors: [ErrInvalidArgument] for an empty openID or another lang;
// [*Error] with Code 40003 (invalid openid); otherwise as
// [API.CreateQRCode].
//
// https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
func (a *API) Follower(ctx context.Context, openID, lang string) (*Follower, error) {
	if lang == "" {
		lang = "zh_CN"
	}
	if openID == "" {
		return nil, fmt.Errorf("%w: empty openid", ErrInvalidArgument)
	}
	if !validLang(lang) {
		return nil, fmt.Errorf("%w: lang must be zh_CN, zh_TW or en", ErrInvalidArgument)
	}
	var f Follower
	err := a.withToken(ctx, request{
		api: "cgi-bin/user/info", base: a.c.api, method: "GET", retryTooFrequent: true,
		query: url.Values{"openid": {openID}, "lang": {lang}},
	}, &f)
	if err != nil {
		return nil, err
	}
	return &f, nil
}
