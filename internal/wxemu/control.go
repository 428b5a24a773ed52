package wxemu

import (
	"bytes"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The control API under /emu/: users, the virtual clock, call counts,
// token voiding, follows, the callback settings and the pages (faults are
// in faults.go, IP rules in ip.go).

// userJSON is a User as the control API shows it, headimgurl filled in.
func (e *Emulator) usersLocked() []User {
	out := make([]User, 0, len(e.order))
	for _, id := range e.order {
		u := e.users[id]
		u.HeadImgURL = e.avatarLocked(u)
		out = append(out, u)
	}
	return out
}

// handleUsers serves GET /emu/users: the users as a JSON array, or, for a
// browser (Accept with text/html and no ?format=json), a page listing them
// (openid, nickname, unionid, follows). Scripts get JSON: they send no
// Accept, or application/json, or ?format=json.
func (e *Emulator) handleUsers(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	out := e.usersLocked()
	var page usersPageData
	for _, id := range e.order {
		page.Users = append(page.Users, usersPageUser{pageUser: e.pageUserLocked(e.users[id]), UnionID: e.users[id].UnionID})
	}
	e.mu.Unlock()
	if wantsHTML(r) {
		e.render(w, http.StatusOK, "users.html", page)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type usersPageUser struct {
	pageUser
	UnionID string
}

type usersPageData struct {
	Users []usersPageUser
}

// wantsHTML reports whether r is a browser asking for a page: Accept names
// text/html and the query has no format=json.
func wantsHTML(r *http.Request) bool {
	return r.URL.Query().Get("format") != "json" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// handlePutUser serves POST /emu/users {User}: adds or replaces a user.
func (e *Emulator) handlePutUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := decodeJSON(r, &u); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	e.mu.Lock()
	err := e.putUser(u, e.now())
	u = e.users[u.OpenID]
	e.mu.Unlock()
	if err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// handleClock serves GET and POST /emu/clock {"advance_seconds": N}:
// {"now": unix seconds}. Negative advances are refused.
func (e *Emulator) handleClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			AdvanceSeconds int64 `json:"advance_seconds"`
		}
		if err := decodeJSON(r, &req); err != nil || req.AdvanceSeconds < 0 {
			ctlError(w, http.StatusBadRequest, "want {\"advance_seconds\": N >= 0}")
			return
		}
		e.mu.Lock()
		e.offset += time.Duration(req.AdvanceSeconds) * time.Second
		e.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]int64{"now": e.virtualNow().Unix()})
}

// handleCalls serves GET /emu/calls: {"/path": count, ...}.
func (e *Emulator) handleCalls(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	out := make(map[string]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleCallsReset serves POST /emu/calls/reset.
func (e *Emulator) handleCallsReset(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.calls = map[string]int{}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleVoidToken serves POST /emu/void-token: the current cgi-bin/token and
// stable_token tokens answer 40001 from now on.
func (e *Emulator) handleVoidToken(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	now := e.now()
	for _, tok := range []string{e.current, e.stable} {
		if tok != "" {
			e.voidLocked(tok, now)
		}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleVoidWebTokens serves POST /emu/void-web-tokens {"openid"}: the web
// access_tokens and refresh_tokens issued so far to that user (to every
// user when openid is empty, as after an AppSecret reset) answer 42007 from
// now on, as after the user changed the WeChat password.
func (e *Emulator) handleVoidWebTokens(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID string `json:"openid"`
	}
	if !readControl(w, r, &req) {
		return
	}
	n := 0
	e.mu.Lock()
	for _, t := range e.webTokens {
		if req.OpenID == "" || t.openID == req.OpenID {
			t.voided = true
			n++
		}
	}
	for _, g := range e.refreshes {
		if req.OpenID == "" || g.openID == req.OpenID {
			g.voided = true
			n++
		}
	}
	e.mu.Unlock()
	e.behaviour(r.Context(), "tokens_voided", "web access_tokens and refresh_tokens voided (42007)", slog.String("openid", req.OpenID), slog.Int("tokens", n))
	writeJSON(w, http.StatusOK, map[string]int{"voided": n})
}

// handleFollow serves POST /emu/follow {"openid","follows"}: sets the follow
// state without pushing an event.
func (e *Emulator) handleFollow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID  string `json:"openid"`
		Follows bool   `json:"follows"`
	}
	if !readControl(w, r, &req) {
		return
	}
	e.mu.Lock()
	_, ok := e.users[req.OpenID]
	e.mu.Unlock()
	if !ok {
		ctlError(w, http.StatusNotFound, "unknown openid %q", req.OpenID)
		return
	}
	e.setFollow(req.OpenID, req.Follows, "", "")
	writeJSON(w, http.StatusOK, map[string]any{"openid": req.OpenID, "follows": req.Follows})
}

// handleCallback serves GET and POST /emu/callback {"url","token",
// "aes_key","mode"}: the callback settings (GET shows url and mode only).
func (e *Emulator) handleCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			URL    string `json:"url"`
			Token  string `json:"token"`
			AESKey string `json:"aes_key"`
			Mode   string `json:"mode"`
		}
		if !readControl(w, r, &req) {
			return
		}
		if err := e.SetCallback(req.URL, req.Token, req.AESKey, req.Mode); err != nil {
			ctlError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	e.mu.Lock()
	cb := e.cb
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"url": cb.url, "mode": cb.mode})
}

// handleAvatar serves GET /emu/avatar/{openid}/{size}: a square PNG in a
// colour derived from the openid; size 0 is 640 px, else 46, 64, 96 or 132.
func (e *Emulator) handleAvatar(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.PathValue("size"))
	switch {
	case err != nil:
		http.NotFound(w, r)
		return
	case size == 0:
		size = 640
	case size != 46 && size != 64 && size != 96 && size != 132:
		http.NotFound(w, r)
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(r.PathValue("openid")))
	sum := h.Sum32()
	bg := color.RGBA{uint8(sum), uint8(sum >> 8), uint8(sum >> 16), 255}
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{bg, color.White})
	// A light circle in the middle, so it reads as a face placeholder.
	c, rad := size/2, size/4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if dx, dy := x-c, y-c; dx*dx+dy*dy <= rad*rad {
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		http.Error(w, "avatar", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write(buf.Bytes())
}

type chatPageData struct {
	Users             []pageUser
	CallbackURL, Mode string
}

// handleChat serves GET /emu/chat: chat as a follower (calls /emu/send).
func (e *Emulator) handleChat(w http.ResponseWriter, r *http.Request) {
	var data chatPageData
	e.mu.Lock()
	data.CallbackURL, data.Mode = e.cb.url, e.cb.mode
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	e.render(w, http.StatusOK, "chat.html", data)
}

type indexPageData struct {
	AppID, OriginalID, PublicURL, CallbackURL, Mode string
	Domains                                         []string
	Users                                           []pageUser
	Paths                                           []string
}

// handleIndex serves GET /emu/: an overview page.
func (e *Emulator) handleIndex(w http.ResponseWriter, r *http.Request) {
	data := indexPageData{AppID: e.appID, OriginalID: e.originalID, Domains: e.domains, Paths: wechatPaths()}
	e.mu.Lock()
	data.PublicURL, data.CallbackURL, data.Mode = e.publicURL, e.cb.url, e.cb.mode
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	sort.Strings(data.Paths)
	e.render(w, http.StatusOK, "index.html", data)
}
