// Package login is wxauth's OpenID Provider and its WeChat ways in.
//
// The protocol machinery (request parsing, client authentication parsing,
// redirect_uri, prompt, scope and PKCE-method validation, error responses,
// routing of the authorization, token, userinfo, revocation and
// introspection endpoints) is github.com/zitadel/oidc/v3's op package,
// through its [op.Server] interface: [Service] implements it. The tokens
// are wxauth's own, minted by [session.Manager] (the access JWT with the
// claims every downstream API already checks, refresh-token families with
// rotation and reuse detection, revocation by "sid"), and ID tokens are
// signed by the same key manager with the client's algorithm. The op
// package's Provider/Storage pair was not used because it mints tokens
// itself, with one signer for every client. ory/fosite was not chosen: its
// handlers own token generation and storage (its own session, code, PKCE
// and refresh stores) and would sit beside, not on, wxauth's store
// interfaces and session manager; op.Server leaves both to us.
//
// WeChat is this package's own work: an authorization request becomes a
// short-lived record ("state:<state>", store.Records) bound to the browser
// by a securecookie; a browser inside WeChat goes through web
// authorization (网页授权: snsapi_base, or snsapi_userinfo for the profile
// scope), a desktop browser through the QR login of package qrlogin; the
// WeChat callback (/oauth/callback) exchanges the code once, upserts the
// user and answers the client's redirect_uri with a one-time
// authorization code (or, for a first-party /login?redirect=R, sets the
// wxauth_session cookie). Every record goes through the store interfaces,
// so several instances share the flow.
//
// It imports session, clients, wechat, store, secret, redirect and metrics;
// httpapi mounts its handlers. It knows nothing of routes beyond its own
// endpoint paths.
//
// Protocols: OpenID Connect Core 1.0, RFC 6749, RFC 7636 (PKCE), RFC 7009,
// RFC 7662, RFC 8414, OpenID Connect RP-Initiated Logout 1.0; WeChat:
// developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
package login
