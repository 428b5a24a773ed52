// Package session issues and verifies wxauth's session tokens: short-lived
// access JWTs signed with rotating keys published as a JWKS, opaque refresh
// tokens that rotate on every use and revoke their whole login family when a
// used one comes back, and the signed, encrypted cookies that carry the
// refresh token, the login state binding and the session JWT.
//
// A login family (JWT "sid") starts at [Manager.Issue] after WeChat web
// authorization or QR login, lives at most [Config.RefreshTTL] however often
// it is refreshed, and ends at [Manager.Logout], [Manager.RevokeSession] or
// on refresh-token reuse. Revocation reaches the JWTs of the family through a
// store record "revoked:<sid>" that [Manager.Verify] reads on every call.
//
// Signing keys rotate dex-style: a new key is published in the JWKS before it
// signs, and a retired key stays published until every token it signed has
// expired. Private keys are PKCS#8 DER sealed with a [secret.Box]; public
// keys are PKIX DER.
//
// The package imports golang-jwt/jwt/v5, gorilla/securecookie, store and
// secret; it knows no routes and no WeChat API. Claims follow RFC 7519 and
// the JWKS RFC 7517/7518/8037. The identities in the claims (openid, unionid,
// appid, scope) come from WeChat web authorization:
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
package session
