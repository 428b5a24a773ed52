// Package wxemu is a faithful local WeChat: one http.Handler serving the
// paths of open.weixin.qq.com (the web-authorization pages, with a user
// picker and a consent page a browser or chromedp can click), api.weixin.qq.com
// (sns/oauth2/access_token, refresh_token, sns/userinfo, sns/auth,
// cgi-bin/token, stable_token, ticket/getticket, qrcode/create, menu/*,
// user/info, media/upload, media/get, message/custom/send) and mp.weixin.qq.com (cgi-bin/showqrcode), plus a control API
// under /emu/ for tests and `authsvc dev`: users, a virtual clock, call
// counts, scripted faults, token voiding, IP rules, and a message-callback
// sender that signs, encrypts and delivers messages and events to the
// service's /wx as WeChat does and judges its passive reply as WeChat would.
//
// It is WeChat, not wxauth: it imports only the standard library and
// github.com/piglig/go-qr (QR images), so its signature, AES and XML code is a second,
// independent implementation that catches the service's mistakes instead of
// sharing them. Its pages are html/template files embedded from templates/.
//
// Errors follow WeChat: API errors are HTTP 200 {"errcode":N,"errmsg":"...
// rid: 6650a1b2-1c2d3e4f-5a6b7c8d"} (a space before "rid:", no comma);
// authorize-page errors are HTML pages with status 200 carrying the code
// (#errcode) and no redirect. Control-API errors are JSON {"error":"..."}
// with a 4xx status.
//
// # Behaviours
//
// Each behaviour the emulator plays is logged at Info with the attribute
// behaviour=NAME (scripted faults with fault=NAME), so that a failed test's
// log reads like a WeChat session. Sources are pages under
// https://developers.weixin.qq.com/doc/offiaccount/ (OA_Web_Apps/Wechat_webpage_authorization.html
// is "web auth", Basic_Information/getStableAccessToken.html "stable_token",
// Getting_Started/Global_Return_Code.html "return codes"); behaviour those
// pages leave out is named as observed (e.g. the Android X5 double callback).
//
// Web authorization:
//
//   - authorize_error: a malformed authorize link (parameter order, an
//     unknown parameter) shows "该链接无法访问"; empty appid, redirect_uri,
//     scope, state show 10012, 10011, 10010, 10013; a redirect_uri outside
//     the 网页授权域名 10003; another scope 10005 (web auth, 错误码).
//   - outside_wechat: a browser without "MicroMessenger" in its User-Agent
//     gets the page "请在微信客户端打开链接" and no code, scripted requests
//     included (what open.weixin.qq.com shows any browser but WeChat's; web
//     auth is for pages opened in the WeChat client). Off with
//     [Config.AllowOutsideWeChat].
//   - consent_page: snsapi_userinfo asks the user (允许 / 拒绝).
//   - silent_userinfo: no consent page for snsapi_userinfo when the user
//     follows the account and opens the page from its chat or menu (web auth:
//     "对于已关注公众号的用户，如果用户从公众号的会话或者自定义菜单进入本公众号的
//     网页授权页，即使是scope为snsapi_userinfo，也是静默授权"); forcePopup=true
//     shows it anyway. Where the user comes from is X-Wxemu-Scene.
//   - deny_redirect / deny_blank: 拒绝 redirects with state only
//     ([Config.DenyRedirect]), or (the default, as WeChat mostly does in
//     practice) does not redirect at all (web auth says 302 to
//     redirect_uri?state=STATE; in practice iOS closes the
//     page, Android shows a blank page). Where WeChat leaves a blank page
//     the emulator shows a "declined" page (status 200, no redirect, no
//     callback reaches the service) saying so, with the developer's two ways
//     on: a link to redirect_uri?state=STATE ("return to the page as WeChat
//     does on some clients") and a form back to the consent page. A
//     scripted deny (X-Wxemu-Consent: deny) gets the same page.
//   - code_issued: 302 to redirect_uri?code=CODE&state=STATE; the code works
//     once, for 5 minutes (web auth).
//   - snapshot_page: snapshot mode (快照页, since 2022-07-12) exists for
//     snsapi_userinfo only: a snapshot user's snsapi_base authorization is an
//     ordinary one (web auth, 快照页模式说明).
//   - code_exchanged, code_invalid (40029: unknown, expired, other appid),
//     code_used (40163) on sns/oauth2/access_token (web auth; return codes).
//     is_snapshotuser: 1 appears for a snapshot page's code only.
//   - snapshot_userinfo: sns/userinfo with a snapshot user's token answers
//     48001 (a virtual account has no profile; web auth, 快照页模式).
//   - refresh_replaced: a new code exchange for a user makes the user's
//     earlier refresh_token answer 40030 (reported by developers on
//     developers.weixin.qq.com/community, not on the web auth page);
//     refresh_invalid (40030, unknown),
//     refresh_expired (42002, 30 days from the authorization: refreshing
//     does not extend it; web auth).
//   - tokens_voided: after POST /emu/void-web-tokens the user's web
//     access_tokens and refresh_tokens answer 42007 ("用户修改微信密码，
//     accesstoken 和 refreshtoken 失效，需要重新授权", return codes).
//
// Global credentials:
//
//   - token_issued: cgi-bin/token issues a new token on every call; the
//     previous one stays valid 5 minutes (Basic_Information/Get_access_token.html);
//     token_quota: 2000 a day, then 45009.
//   - stable_token_reused / stable_token_issued: stable_token answers the
//     same token until 5 minutes before expiry (stable_token).
//   - stable_token_forced: force_refresh=true issues a new token and the
//     previous one fails at once (stable_token: "会导致上次获取的
//     access_token 失效"); stable_token_force_too_soon: a force within 30 s
//     of the previous one answers the current token without refreshing
//     ("两次强制刷新需间隔30秒，否则不会刷新"); stable_token_force_quota:
//     more than 20 refreshing forces a day answer 45009.
//   - ip_whitelist: with an IP whitelist, cgi-bin/token and stable_token from
//     another IP answer 40164 "invalid ip A ipv6 ::ffff:A, not in whitelist";
//     ip_confirm / ip_pending: with IP risk control, an unknown IP answers
//     89503 "此IP调用需要管理员确认,请联系管理员", then 89501 until confirmed
//     (return codes, 89501-89507).
//
// QR codes and pushes:
//
//   - qrcode/create: a temporary code without expire_seconds lives 60 s
//     ("此字段如果不填，则默认有效期为60秒", Account_Management/Generating_a_Parametric_QR_Code.html;
//     older pages said 30); scene_str is 1 to 64 bytes (21 Chinese
//     characters fit, 22 do not); expire_seconds is capped at 30 days.
//   - qr_scan: a follower's scan pushes SCAN with EventKey <scene> and Ticket;
//     a non-follower's subscribe with EventKey qrscene_<scene> and Ticket;
//     qr_subscribe: POST /emu/subscribe with a scene pushes the same
//     subscribe, with the Ticket of a live QR code of that scene (or of a
//     temporary one made for it) (Message_Management/Receiving_event_pushes.html).
//   - push: a message or event signed (and in compat/safe mode encrypted)
//     and posted to the callback; redelivery: no valid answer within 5 s or
//     a non-200 is delivered again, three deliveries in all;
//     reply_refused: the answer is not one WeChat accepts (bad XML or
//     signature, plaintext in safe mode, swapped user names, news over 1
//     article after a user's message or over 8, a text Content over 2048
//     bytes as developers report WeChat refusing) and the user would see
//     "该公众号暂时无法提供服务，请稍后再试" (Message_Management/Passive_user_reply_message.html).
//
// # Faults
//
// POST /emu/faults {"path","errcode","status","delay_ms","drop_answer",
// "double_redirect","omit_snapshot","times"} scripts the next calls of one
// WeChat path ("times": how many, default 1, -1 until DELETE /emu/faults):
//
//   - delay: "delay_ms" sleeps first (until the caller gives up).
//   - status: "status" answers that HTTP status with an HTML body (a
//     gateway in front of WeChat).
//   - errcode: "errcode" answers {"errcode":N,"errmsg":"<WeChat's text> rid:
//     ..."} (-1, 40001, 40029, 40030, 40163, 42001, 42002, 42007, 45009,
//     45011, 48001, 89501, 89503, 89506, 89507 have WeChat's own texts;
//     others, 40164 included, "injected fault": the real 40164 names the
//     caller's IP, see POST /emu/ip-whitelist).
//   - authorize_error: "errcode" on /connect/oauth2/authorize shows the
//     authorize error page with that code: 10006 (必须关注此测试号, a test
//     account's user who does not follow it), 10009 (操作太频繁了，请稍后重试),
//     10016 (an Open Platform appid), 10004, 10015, ... (web auth, 错误码).
//   - drop_answer: the call is served for real (a code is consumed, a token
//     issued) and the connection is then closed without an answer: WeChat
//     did the work and its answer was lost. The retry of a client that
//     re-sends the code meets 40163.
//   - double_redirect: on /connect/oauth2/authorize only, and alone: the next
//     "times" authorizations call redirect_uri twice for one authorization,
//     with two different codes and the same state (Android X5 webview, a
//     page refresh; observed, not on the web auth page). A scripted request
//     (X-Wxemu-User) gets the 302 to the second code and the first URL in
//     the header X-Wxemu-First-Redirect: the test, playing the webview,
//     requests both (first, then Location; or concurrently) with the same
//     cookies. A browser gets a page that requests the first URL in the
//     background (fetch, credentials included) and then navigates to the
//     second. It is counted when codes are issued, not per request.
//   - omit_snapshot: on /sns/oauth2/access_token only: a snapshot user's
//     exchange lacks is_snapshotuser, as first exchanges have been seen to;
//     sns/userinfo still answers 48001.
//
// # Pages
//
// The pages follow WeChat's own look (grey background, white cards, the
// green #07C160 primary button), are laid out for a phone first, and say
// everything in Chinese first, English below. Where a page has no
// counterpart in WeChat (the user picker) or replaces what WeChat does not
// show (the declined page), a dashed "emulator note" box says so. Each page
// offers the next action:
//
//   - GET /connect/oauth2/authorize: the user picker (tap a test user; the
//     note says whether the consent page comes next) or the error page.
//   - POST /connect/oauth2/authorize/confirm: the consent page (允许 / 拒绝).
//   - POST /connect/oauth2/authorize/consent with decision=deny: the
//     declined page (see deny_blank above).
//   - GET /emu/chat: chat with the Official Account as a chosen user: what
//     it sends (signed, encrypted in safe mode, to the callback) and what
//     each kind of bubble means (reply, refused reply, success).
//   - GET /q/{id} and showqrcode with page=1: the scan page; "scan as ..."
//     shows a result card (which event was pushed, the account's reply or
//     WeChat's refusal, what the desktop login page does next) and the raw
//     answer folded away.
//   - GET /emu/users from a browser: the test users (openid, nickname,
//     unionid, follows); GET /emu/: the emulator's overview.
//
// # Control API
//
// JSON bodies and answers:
//
//	GET  /emu/users                  [User, ...]; a browser (Accept: text/html, no ?format=json) gets the test-users page
//	POST /emu/users                  add or replace a User
//	GET|POST /emu/clock              {"advance_seconds": N} -> {"now": unix}
//	GET  /emu/calls                  {"/sns/oauth2/access_token": 3, ...}
//	POST /emu/calls/reset
//	POST /emu/faults                 {"path","errcode","status","delay_ms","drop_answer","double_redirect","omit_snapshot","times"}
//	DELETE /emu/faults               clears every fault, double_redirect included
//	POST /emu/void-token             current global tokens answer 40001
//	GET  /emu/media                  [{"media_id","type","size","sha256","filename","created_at"}, ...] (uploads: counted and hashed, not kept)
//	POST /emu/void-web-tokens        {"openid"} ("" = every user) -> {"voided": N}: 42007 from now on
//	POST /emu/ip-whitelist           {"ips":[...],"risk_confirm":bool}: 40164 / 89503, 89501; {"ips":[]} = off
//	POST /emu/ip-whitelist/confirm   {"ip"}: the administrator confirms an IP
//	POST /emu/follow                 {"openid","follows"}
//	GET|POST /emu/callback           {"url","token","aes_key","mode"}
//	POST /emu/send                   {"from","message":{...},"repeat","concurrent","timestamp","create_time","msg_id"}
//	POST /emu/menu/click             {"from","key"}
//	POST /emu/subscribe              {"from","scene"?}
//	POST /emu/unsubscribe            {"from"}
//	POST /emu/location               {"from","latitude","longitude","precision"}
//	POST /emu/scan                   {"openid","ticket"}
//	GET  /emu/jssdk/check            ?url&timestamp&nonceStr&signature -> {"valid","error"}
//	GET  /wx-verify, POST /emu/verify-url   WeChat's URL verification of the callback
//	GET  /emu/chat, GET /emu/, GET /q/{id}, GET /emu/avatar/{openid}/{size}   pages and images
//
// Scripted authorization (GET /connect/oauth2/authorize with a User-Agent
// containing MicroMessenger): X-Wxemu-User: OPENID picks the user,
// X-Wxemu-Consent: allow|deny answers the consent page (default allow;
// ignored where there is no consent page), X-Wxemu-Scene:
// chat|menu|moments|other says where the page was opened from (default
// other).
//
// Protocol: https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
// and the pages named above and on each handler.
package wxemu
