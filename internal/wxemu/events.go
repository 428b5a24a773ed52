package wxemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The control API's shortcuts that push events as a user's WeChat does
// (menu click, follow, unfollow, location), and WeChat's URL verification.
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html

// handleClick serves POST /emu/menu/click {"from","key"}: a CLICK event.
func (e *Emulator) handleClick(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		Key  string `json:"key"`
	}
	if err := decodeJSON(r, &req); err != nil || !openIDPattern.MatchString(req.From) {
		ctlError(w, http.StatusBadRequest, "want {\"from\": openid, \"key\": ...}")
		return
	}
	e.pushEvent(w, r, req.From, []field{{"Event", "CLICK"}, {"EventKey", req.Key}})
}

// handleSubscribe serves POST /emu/subscribe {"from","scene"?}: the user
// follows. With a scene the follow came through a QR code with parameters:
// EventKey is qrscene_<scene> and Ticket is that QR code's ticket (of the
// live QR code with this scene, else of a temporary one made for the
// occasion, 60 s).
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
func (e *Emulator) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From  string `json:"from"`
		Scene string `json:"scene"`
	}
	if err := decodeJSON(r, &req); err != nil || !openIDPattern.MatchString(req.From) {
		ctlError(w, http.StatusBadRequest, "want {\"from\": openid, \"scene\": optional}")
		return
	}
	if len(req.Scene) > maxSceneStr {
		ctlError(w, http.StatusBadRequest, "scene: at most %d bytes, as scene_str", maxSceneStr)
		return
	}
	fields := []field{{"Event", "subscribe"}, {"EventKey", ""}}
	scene := "ADD_SCENE_OTHERS"
	if req.Scene != "" {
		scene = "ADD_SCENE_QR_CODE"
		fields = []field{{"Event", "subscribe"}, {"EventKey", "qrscene_" + req.Scene}, {"Ticket", e.sceneTicket(req.Scene)}}
		e.behaviour(r.Context(), "qr_subscribe", "a follow through a QR code: EventKey qrscene_<scene> and its Ticket", slog.String("openid", req.From), slog.String("scene", req.Scene))
	}
	e.setFollow(req.From, true, scene, req.Scene)
	e.pushEvent(w, r, req.From, fields)
}

// sceneTicket returns the ticket of a live QR code of scene (scene_id in
// decimal, or scene_str), making a temporary one when there is none.
func (e *Emulator) sceneTicket(scene string) string {
	e.mu.Lock()
	now := e.now()
	for _, q := range e.qrs {
		if q.scene() == scene && (q.permanent || now.Before(q.expires)) {
			e.mu.Unlock()
			return q.ticket
		}
	}
	e.mu.Unlock()
	q := &qrCode{expires: now.Add(qrDefaultExpire * time.Second)}
	if id, err := strconv.ParseInt(scene, 10, 64); err == nil && id != 0 {
		q.sceneID = id
	} else {
		q.sceneStr = scene
	}
	rnd := make([]byte, 46)
	e.random(rnd)
	q.ticket = "gQ" + base64.StdEncoding.EncodeToString(rnd)
	q.id = e.randomString(15)
	e.mu.Lock()
	e.sweepLocked(now)
	e.qrs[q.ticket] = q
	e.mu.Unlock()
	return q.ticket
}

// handleUnsubscribe serves POST /emu/unsubscribe {"from"}.
func (e *Emulator) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
	}
	if err := decodeJSON(r, &req); err != nil || !openIDPattern.MatchString(req.From) {
		ctlError(w, http.StatusBadRequest, "want {\"from\": openid}")
		return
	}
	e.setFollow(req.From, false, "", "")
	e.pushEvent(w, r, req.From, []field{{"Event", "unsubscribe"}, {"EventKey", ""}})
}

// handleLocation serves POST /emu/location {"from","latitude","longitude",
// "precision"}: a LOCATION event (numbers in degrees and metres).
func (e *Emulator) handleLocation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From      string      `json:"from"`
		Latitude  json.Number `json:"latitude"`
		Longitude json.Number `json:"longitude"`
		Precision json.Number `json:"precision"`
	}
	if err := decodeJSON(r, &req); err != nil || !openIDPattern.MatchString(req.From) {
		ctlError(w, http.StatusBadRequest, "want {\"from\": openid, \"latitude\", \"longitude\", \"precision\"}")
		return
	}
	num := func(n json.Number) rawText {
		if n == "" {
			return "0"
		}
		return rawText(n)
	}
	e.pushEvent(w, r, req.From, []field{
		{"Event", "LOCATION"},
		{"Latitude", num(req.Latitude)},
		{"Longitude", num(req.Longitude)},
		{"Precision", num(req.Precision)},
	})
}

// setFollow records a (un)follow of a known user; unknown openids are
// ignored.
func (e *Emulator) setFollow(openID string, follows bool, scene, sceneStr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.users[openID]
	if !ok {
		return
	}
	u.Follows = follows
	e.users[openID] = u
	if !follows {
		delete(e.subs, openID)
		return
	}
	if _, already := e.subs[openID]; already && scene == "" {
		return
	}
	sub := subscription{time: e.now().Unix(), scene: scene}
	if sceneStr != "" {
		if id, err := strconv.ParseInt(sceneStr, 10, 64); err == nil {
			sub.qrScene = id
		} else {
			sub.qrStr = sceneStr
		}
	}
	if sub.scene == "" {
		sub.scene = "ADD_SCENE_OTHERS"
	}
	e.subs[openID] = sub
}

// handleVerifyURL serves GET /wx-verify and POST /emu/verify-url: WeChat's
// URL verification (GET CallbackURL?signature&timestamp&nonce&echostr).
// Answer: {"ok": bool, "status": HTTP status, "echostr", "body", "error"}.
func (e *Emulator) handleVerifyURL(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	cb := e.cb
	now := e.now()
	e.mu.Unlock()
	if cb.url == "" {
		ctlError(w, http.StatusConflict, "%v", errNoCallback)
		return
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := e.randomDigits()
	echo := e.randomDigits() + e.randomDigits()
	q := url.Values{}
	q.Set("signature", Signature(cb.token, ts, nonce))
	q.Set("echostr", echo)
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	sep := "?"
	if strings.Contains(cb.url, "?") {
		sep = "&"
	}
	ctx, cancel := context.WithTimeout(r.Context(), deliveryTimeout)
	defer cancel()
	out := map[string]any{"ok": false, "status": 0, "echostr": echo, "body": "", "error": ""}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cb.url+sep+q.Encode(), nil)
	if err != nil {
		out["error"] = "bad callback URL"
		writeJSON(w, http.StatusOK, out)
		return
	}
	resp, err := e.client.Do(req)
	if err != nil {
		out["error"] = "verification request failed"
		writeJSON(w, http.StatusOK, out)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	out["status"] = resp.StatusCode
	out["body"] = string(body)
	switch {
	case resp.StatusCode != http.StatusOK:
		out["error"] = fmt.Sprintf("callback answered HTTP %d", resp.StatusCode)
	case string(body) != echo:
		out["error"] = "the answer is not the echostr verbatim"
	default:
		out["ok"] = true
	}
	writeJSON(w, http.StatusOK, out)
}
