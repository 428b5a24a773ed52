// Package wechat is the client of WeChat's HTTP API for one Official
// Account (公众号): web authorization (网页授权: [Client.AuthCodeURL],
// [Client.Exchange], [Client.Refresh], [Client.UserInfo],
// [Client.CheckToken]), the global access_token and jsapi_ticket owned by a
// [TokenManager] across processes, the JS-SDK signature ([SignJSSDK]), QR
// codes with parameters, follower records and custom menus ([API]).
//
// WeChat's errcodes become [*Error] values matched by code ([IsCode],
// [Temporary]), never by errmsg text; non-200 answers are [*StatusError].
// Every call has the caller's deadline and the http.Client's Timeout per
// attempt; errcode -1, 45011 (on calls that are harmless to repeat), HTTP
// 5xx, timeouts and dropped connections are retried with jittered
// exponential backoff (about 100 ms, 200 ms, 400 ms; at most 4 attempts)
// while ctx allows, and other errcodes (40013, 40125, 40164, ...) are
// returned at once. The code exchange is the exception: a code works once,
// so [Client.Exchange] is never repeated once its request may have reached
// WeChat (only -1, 45011 and failures that sent nothing are retried); a
// lost answer is [ErrAnswerLost], and [IsDeadCode] tells the login when to
// start a new authorization. Every response is read through a 1 MiB limit. No appsecret,
// code, access_token or refresh_token reaches an error string or a log
// line: transport errors stay [*url.Error] with those query values
// replaced by REDACTED, and logs carry the API path only.
//
// What the client does is reported, not re-read from its traffic: an
// [Observer] set in [Config] is told of every HTTP attempt (API path,
// status, errcode, duration, failure) and of every credential refresh
// (which, forced or not); wxauth's metrics implement it.
//
// Where WeChat is, is data ([Endpoint]): production, or the wxemu emulator
// in development and tests. The package imports the standard library,
// golang.org/x/oauth2 (token types), golang.org/x/sync/singleflight, and
// wxauth's store (credential cache, locks) and secret (sealing); it knows no
// HTTP routes, sessions or users.
//
// WeChat pages followed (under https://developers.weixin.qq.com):
//
//   - /doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
//   - /doc/offiaccount/OA_Web_Apps/JS-SDK.html (附录1, signature)
//   - /doc/offiaccount/Basic_Information/Get_access_token.html
//   - /doc/offiaccount/Basic_Information/getStableAccessToken.html
//   - /doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
//   - /doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
//   - /doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
//   - /doc/offiaccount/Custom_Menus/Querying_Custom_Menus.html
//   - /doc/offiaccount/Custom_Menus/Deleting_Custom-Defined_Menu.html
//   - /doc/offiaccount/Getting_Started/Global_Return_Code.html
package wechat
