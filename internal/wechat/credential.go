package wechat

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Credential is a global credential as WeChat returns it: an access_token
// or a jsapi_ticket and its life.
type Credential struct {
	// Value is the token or ticket; WeChat reserves up to 512 bytes.
	Value string
	// ExpiresIn is its life in seconds from the answer (7200, or less from
	// stable_token when near expiry, never under 300 there).
	ExpiresIn int64
}

// StableToken fetches the global access_token from POST cgi-bin/stable_token
// with body {"grant_type":"client_credential","appid":...,"secret":...,
// "force_refresh":bool}. Without forceRefresh WeChat returns the same token
// until 5 minutes before its expiry; forceRefresh issues a new one (at most
// 20 times a day, 30 s apart). Callers should use a [TokenManager] instead,
// which owns the token for every process of the appid.
//
// Errors: [*Error] with Code 40013 (invalid appid), 40125 (invalid
// appsecret), 40164 (IP not whitelisted), 45009 (daily quota), 45011 (too
// frequent, retried only without forceRefresh); [*StatusError]; a redacted
// [*url.Error]; ctx.Err().
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
func (c *Client) StableToken(ctx context.Context, forceRefresh bool) (Credential, error) {
	body, err := marshalJSON(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", c.appID, c.secret, forceRefresh})
	if err != nil {
		return Credential{}, fmt.Errorf("wechat: cgi-bin/stable_token: encode request: %w", err)
	}
	return c.credential(ctx, request{
		api: "cgi-bin/stable_token", base: c.api, method: "POST", body: body,
		retryTooFrequent: !forceRefresh,
	}, "access_token")
}

// ClassicToken fetches a new global access_token from GET cgi-bin/token
// (grant_type=client_credential). Every fetch voids the previous token after
// a 5-minute overlap, and the daily limit is 2,000: use a [TokenManager].
//
// Errors: as [Client.StableToken], with secret redacted.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
func (c *Client) ClassicToken(ctx context.Context) (Credential, error) {
	return c.credential(ctx, request{
		api: "cgi-bin/token", base: c.api, method: "GET",
		query: url.Values{"grant_type": {"client_credential"}, "appid": {c.appID}, "secret": {c.secret}},
	}, "access_token")
}

// Ticket fetches a JS-SDK ticket (GET cgi-bin/ticket/getticket?type=jsapi)
// with the global accessToken. Use [TokenManager.JSAPITicket], which caches
// it.
//
// Errors: [*Error] with Code 40001/40014/42001 when accessToken is invalid
// or expired; otherwise as [Client.StableToken], with access_token redacted.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func (c *Client) Ticket(ctx context.Context, accessToken string) (Credential, error) {
	if accessToken == "" {
		return Credential{}, fmt.Errorf("%w: empty access_token", ErrInvalidArgument)
	}
	return c.credential(ctx, request{
		api: "cgi-bin/ticket/getticket", base: c.api, method: "GET", retryTooFrequent: true,
		query: url.Values{"access_token": {accessToken}, "type": {"jsapi"}},
	}, "ticket")
}

// credential runs r and reads field and expires_in from the answer.
func (c *Client) credential(ctx context.Context, r request, field string) (Credential, error) {
	body, err := c.do(ctx, r)
	if err != nil {
		return Credential{}, err
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return Credential{}, fmt.Errorf("wechat: %s: decode response: %w", r.api, err)
	}
	var cr Credential
	if err := json.Unmarshal(v[field], &cr.Value); err != nil || cr.Value == "" {
		return Credential{}, fmt.Errorf("wechat: %s: response has no %s", r.api, field)
	}
	exp := strings.Trim(string(v["expires_in"]), `"`)
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || n <= 0 {
		return Credential{}, fmt.Errorf("wechat: %s: response has no valid expires_in", r.api)
	}
	cr.ExpiresIn = n
	return cr, nil
}

// SignJSSDK returns the JS-SDK config signature for pageURL: the lowercase
// hex SHA-1 of
//
//	jsapi_ticket=TICKET&noncestr=NONCE&timestamp=TS&url=URL
//
// (keys sorted, values raw, not escaped), where URL is pageURL without its
// #fragment. timestamp is in Unix seconds. pageURL must be the exact URL of
// the page as the browser shows it (behind a proxy, rebuild its scheme and
// host faithfully; an iOS single-page app signs its landing URL).
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html (附录1)
func SignJSSDK(ticket, nonceStr string, timestamp int64, pageURL string) string {
	if i := strings.IndexByte(pageURL, '#'); i >= 0 {
		pageURL = pageURL[:i]
	}
	var ts [20]byte
	var buf [256]byte
	b := buf[:0]
	b = append(b, "jsapi_ticket="...)
	b = append(b, ticket...)
	b = append(b, "&noncestr="...)
	b = append(b, nonceStr...)
	b = append(b, "&timestamp="...)
	b = append(b, strconv.AppendInt(ts[:0], timestamp, 10)...)
	b = append(b, "&url="...)
	b = append(b, pageURL...)
	sum := sha1.Sum(b)
	var out [2 * sha1.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}
