package wxemu

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	qr "github.com/piglig/go-qr"
)

// QR codes with parameters (cgi-bin/qrcode/create, showqrcode) and their scan
// page.
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html

type qrCode struct {
	id        string // path segment of the QR's url content: {PublicURL}/q/{id}
	ticket    string
	sceneID   int64
	sceneStr  string
	permanent bool
	expires   time.Time // zero for permanent codes
}

// scene is the scene value as events carry it (EventKey without prefix).
func (q *qrCode) scene() string {
	if q.sceneStr != "" {
		return q.sceneStr
	}
	return strconv.FormatInt(q.sceneID, 10)
}

// handleQRCreate serves POST cgi-bin/qrcode/create.
func (e *Emulator) handleQRCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ExpireSeconds *int64 `json:"expire_seconds"`
		ActionName    string `json:"action_name"`
		ActionInfo    struct {
			Scene struct {
				SceneID  *json.Number `json:"scene_id"`
				SceneStr *string      `json:"scene_str"`
			} `json:"scene"`
		} `json:"action_info"`
	}
	if !e.readAPI(w, r, &req) {
		return
	}
	q := &qrCode{}
	scene := req.ActionInfo.Scene
	switch req.ActionName {
	case "QR_SCENE", "QR_LIMIT_SCENE":
		if scene.SceneID == nil {
			e.wxError(w, 40097, "invalid args: scene_id")
			return
		}
		id, err := scene.SceneID.Int64()
		lo, hi := int64(-1<<31), int64(1<<32-1)
		if req.ActionName == "QR_LIMIT_SCENE" {
			lo, hi = 1, qrMaxPermanent
		}
		if err != nil || id == 0 || id < lo || id > hi {
			e.wxError(w, 40097, "invalid args: scene_id")
			return
		}
		q.sceneID = id
	case "QR_STR_SCENE", "QR_LIMIT_STR_SCENE":
		// 1 to 64 "characters" in the docs, counted in bytes by WeChat:
		// 21 Chinese characters fit, 22 do not.
		if scene.SceneStr == nil || *scene.SceneStr == "" || len(*scene.SceneStr) > maxSceneStr || !utf8.ValidString(*scene.SceneStr) {
			e.wxError(w, 40097, "invalid args: scene_str")
			return
		}
		q.sceneStr = *scene.SceneStr
	default:
		e.wxError(w, 40097, "invalid args: action_name")
		return
	}
	q.permanent = strings.HasPrefix(req.ActionName, "QR_LIMIT_")
	// "此字段如果不填，则默认有效期为60秒" (older pages said 30).
	expire := int64(qrDefaultExpire)
	if !q.permanent && req.ExpireSeconds != nil {
		switch {
		case *req.ExpireSeconds < 0:
			e.wxError(w, 40097, "invalid args: expire_seconds")
			return
		case *req.ExpireSeconds == 0:
		case *req.ExpireSeconds > qrMaxExpire:
			expire = qrMaxExpire
		default:
			expire = *req.ExpireSeconds
		}
	}
	// Real tickets are standard base64 with '+', '/' and '=': callers must
	// URL-encode them for showqrcode.
	rnd := make([]byte, 46)
	e.random(rnd)
	q.ticket = "gQ" + base64.StdEncoding.EncodeToString(rnd)
	q.id = e.randomString(15)
	e.mu.Lock()
	now := e.now()
	if q.permanent {
		for _, old := range e.qrs {
			if old.permanent && old.sceneID == q.sceneID && old.sceneStr == q.sceneStr {
				q = old // the same permanent scene keeps its ticket
				break
			}
		}
		if e.qrs[q.ticket] == nil {
			if e.permanent >= qrMaxPermanent {
				e.mu.Unlock()
				e.wxError(w, 45009, "reach max permanent qrcode limit")
				return
			}
			e.permanent++
		}
	} else {
		q.expires = now.Add(time.Duration(expire) * time.Second)
	}
	e.sweepLocked(now)
	e.qrs[q.ticket] = q
	content := e.publicURL + "/q/" + q.id
	e.mu.Unlock()
	resp := map[string]any{"ticket": q.ticket, "url": content}
	if !q.permanent {
		resp["expire_seconds"] = expire
	}
	writeJSON(w, http.StatusOK, resp)
}

// lookupQR finds a live QR code by ticket or by id; nil when unknown or
// expired.
func (e *Emulator) lookupQR(ticket, id string) *qrCode {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	q := e.qrs[ticket]
	if q == nil && id != "" {
		for _, c := range e.qrs {
			if c.id == id {
				q = c
				break
			}
		}
	}
	if q == nil || (!q.permanent && !now.Before(q.expires)) {
		return nil
	}
	cp := *q
	return &cp
}

type qrPageData struct {
	Ticket   string
	ImageURL string
	Content  string
	Scene    string
	Users    []pageUser
}

// handleShowQR serves GET cgi-bin/showqrcode?ticket=T: the QR as a PNG (256
// px), or with Accept: text/html or page=1 the scan page. 404 for an unknown
// or expired ticket.
func (e *Emulator) handleShowQR(w http.ResponseWriter, r *http.Request) {
	q := e.lookupQR(r.URL.Query().Get("ticket"), "")
	if q == nil {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("page") == "1" || strings.Contains(r.Header.Get("Accept"), "text/html") {
		e.renderQRPage(w, q)
		return
	}
	e.mu.Lock()
	content := e.publicURL + "/q/" + q.id
	e.mu.Unlock()
	png, err := qrPNG(content, 256)
	if err != nil {
		http.Error(w, "qrcode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	_, _ = w.Write(png)
}

// handleQRContent serves GET /q/{id}, the QR's url content: the scan page.
func (e *Emulator) handleQRContent(w http.ResponseWriter, r *http.Request) {
	q := e.lookupQR("", r.PathValue("id"))
	if q == nil {
		http.NotFound(w, r)
		return
	}
	e.renderQRPage(w, q)
}

func (e *Emulator) renderQRPage(w http.ResponseWriter, q *qrCode) {
	data := qrPageData{
		Ticket:   q.ticket,
		ImageURL: "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(q.ticket),
		Scene:    q.scene(),
	}
	e.mu.Lock()
	data.Content = e.publicURL + "/q/" + q.id
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	e.render(w, http.StatusOK, "qr.html", data)
}

// handleScan serves POST /emu/scan {"openid","ticket"}: that user scans that
// QR code. A non-follower pushes subscribe with EventKey qrscene_<scene> and
// Ticket, and follows afterwards; a follower pushes SCAN with EventKey
// <scene> and Ticket. The answer is that of POST /emu/send.
func (e *Emulator) handleScan(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID string `json:"openid"`
		Ticket string `json:"ticket"`
	}
	if !readControl(w, r, &req) {
		return
	}
	q := e.lookupQR(req.Ticket, "")
	if q == nil {
		ctlError(w, http.StatusNotFound, "unknown or expired ticket")
		return
	}
	e.mu.Lock()
	u, ok := e.users[req.OpenID]
	now := e.now()
	var fields []field
	if ok {
		if _, follows := e.subs[u.OpenID]; follows {
			fields = []field{{"Event", "SCAN"}, {"EventKey", q.scene()}, {"Ticket", q.ticket}}
		} else {
			fields = []field{{"Event", "subscribe"}, {"EventKey", "qrscene_" + q.scene()}, {"Ticket", q.ticket}}
			e.subs[u.OpenID] = subscription{time: now.Unix(), scene: "ADD_SCENE_QR_CODE", qrScene: q.sceneID, qrStr: q.sceneStr}
			u.Follows = true
			e.users[u.OpenID] = u
		}
	}
	e.mu.Unlock()
	if !ok {
		ctlError(w, http.StatusBadRequest, "unknown openid %q", req.OpenID)
		return
	}
	e.behaviour(r.Context(), "qr_scan", "a QR code scanned: "+fields[0].value.(string)+" with its scene and Ticket", slog.String("openid", req.OpenID), slog.String("scene", q.scene()))
	e.pushEvent(w, r, req.OpenID, fields)
}

// qrPNG renders content as a QR code PNG at error-correction level M (15%)
// with the standard 4-module quiet zone, at most side pixels wide.
func qrPNG(content string, side int) ([]byte, error) {
	code, err := qr.EncodeText(content, qr.Medium)
	if err != nil {
		return nil, err
	}
	const border = 4
	return code.ToPNGBytes(qr.NewQrCodeImgConfig(max(1, side/(code.Size()+2*border)), border))
}
