// Package proxy is wxauth's WeChat API proxy (the tutorials' API-Proxy
// beside the access_token 中控 server): the owner's services call WeChat's
// cgi-bin API at wxauth's /cgi-bin/... as registered clients, and never hold
// the Official Account's access_token.
//
// For each call the [Proxy] authenticates the caller (an OAuth 2.0
// client_credentials JWT as a Bearer token, an opaque proxy token in the
// access_token parameter or as a Bearer token, or HTTP Basic client_id and
// client_secret), checks the client's API allowlist and its rate limit,
// removes any access_token the caller sent, injects the current one, and
// forwards the call to WeChat (same method, path and query, the body
// streamed). WeChat's answer comes back unchanged: status, content headers
// and body, streamed. When WeChat refuses the token (40001, 40014, 42001)
// the proxy reports the token it used to the token owner
// (compare-and-refresh: one refresh for every instance) and tries once more
// with the new one, if it kept the request body (at most 1 MiB); nothing
// else is retried unless it cannot have reached WeChat (the connection was
// refused).
//
// Unmodified SDKs work: their own GET cgi-bin/token or POST
// cgi-bin/stable_token, with a client_id as appid and its client_secret as
// secret, returns an opaque proxy token bound to that client (never the
// real access_token), which the proxy then accepts in access_token.
//
// Refusals are WeChat-shaped ({"errcode":N,"errmsg":"..."}) so that SDKs
// surface them as usual; see [Refusal] for the codes.
//
// It imports the standard library, x/time/rate, x/sync/semaphore, and
// wxauth's clients (the registry), store (proxy tokens in Records), session
// (the JWT adapter) and wechat (the token owner's interface and errcodes);
// it knows no routes: httpapi mounts it at /cgi-bin/.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
package proxy
