// Package wxemu is a faithful local WeChat: one http.Handler serving the
// paths of open.weixin.qq.com (the web-authorization pages, with a user
// picker and a consent page a browser or chromedp can click), api.weixin.qq.com
// (sns/oauth2/access_token, refresh_token, sns/userinfo, sns/auth,
// cgi-bin/token, stable_token, ticket/getticket, qrcode/create, menu/*,
// user/info, media/upload, media/get, message/custom/send) and mp.weixin.qq.com (cgi-bin/showqrcode), plus a control API
// under /emu/ for tests and `authsvc dev`: users, a virtual clock, call
// counts, scripted faults, token voiding, and a message-callback sender that
// signs, encrypts and delivers messages and events to the service's /wx as
// WeChat does and judges its passive reply as WeChat would.
//
// It is WeChat, not wxauth: it imports only the standard library and
// github.com/skip2/go-qrcode, so its signature, AES and XML code is a second,
// independent implementation that catches the service's mistakes instead of
// sharing them. Its pages are html/template files embedded from templates/.
//
// Errors follow WeChat: API errors are HTTP 200 {"errcode":N,"errmsg":"...,
// rid: 6650a1b2-1c2d3e4f-5a6b7c8d"}; authorize-page errors are HTML pages
// with status 200 carrying the code (#errcode). Control-API errors are JSON
// {"error":"..."} with a 4xx status.
//
// Control API (JSON):
//
//	GET  /emu/users                  [User, ...]
//	POST /emu/users                  add or replace a User
//	GET|POST /emu/clock              {"advance_seconds": N} -> {"now": unix}
//	GET  /emu/calls                  {"/sns/oauth2/access_token": 3, ...}
//	POST /emu/calls/reset
//	POST /emu/faults                 {"path","errcode","status","delay_ms","times"}
//	DELETE /emu/faults
//	POST /emu/void-token             current global tokens answer 40001
//	GET  /emu/media                  [{"media_id","type","size","sha256","filename","created_at"}, ...] (uploads: counted and hashed, not kept)
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
// Protocol: https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
// and the pages named on each handler; facts in wechat-protocol.md.
package wxemu
