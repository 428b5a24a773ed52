// Package qrlogin logs desktop browsers in by scanning the Official
// Account's QR code with WeChat (扫码登录). A login attempt is a temporary
// QR_STR_SCENE code whose scene ("login_" and 22 base62 characters) names
// the attempt; scanning it makes WeChat push a subscribe event (EventKey
// "qrscene_<scene>", a user who did not follow yet) or a SCAN event
// (EventKey "<scene>", a follower) to the message callback. The [Service]
// is a [callback.Handler] for those events: it looks the user up
// (cgi-bin/user/info, for the unionid), upserts the same store.User web
// authorization would (so the JWT "sub" is the same for the same person),
// marks the attempt confirmed, answers the follower with a text, and
// publishes on the store.Broker topic "qr:<id>" so that the instance
// holding the browser's event stream learns it.
//
// Attempts live in store.Records under "qr:<id>" (the attempt, JSON) and
// "qrscene:<scene>" (the id); single use is enforced with PutIfAbsent claims
// under "qrclaim:<id>" (confirmation) and "qrused:<id>" (completion). Times
// come from Config.Now, never from the store.
//
// It imports callback, wechat and store; it knows no routes, sessions or
// cookies: internal/httpapi serves the pages and issues the session.
//
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
// https://developers.weixin.qq.com/doc/offiaccount/User_Management/Get_users_basic_information_UnionID.html
package qrlogin
