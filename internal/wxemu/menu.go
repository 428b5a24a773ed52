package wxemu

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The custom menu (cgi-bin/menu/create, get, delete).
// https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html

// menuButton is one button as menu/create takes it and menu/get returns it.
type menuButton struct {
	Type      string       `json:"type,omitempty"`
	Name      string       `json:"name"`
	Key       string       `json:"key,omitempty"`
	URL       string       `json:"url,omitempty"`
	MediaID   string       `json:"media_id,omitempty"`
	AppID     string       `json:"appid,omitempty"`
	PagePath  string       `json:"pagepath,omitempty"`
	ArticleID string       `json:"article_id,omitempty"`
	SubButton []menuButton `json:"sub_button"`
}

const (
	maxTopName = 16   // bytes, top-level button name
	maxSubName = 60   // bytes, sub-button name
	maxKeyLen  = 128  // bytes
	maxURLLen  = 1024 // bytes
)

// pick returns top for a top-level button (level 0) and sub for a sub-button.
func pick(top, sub, level int) int {
	if level == 0 {
		return top
	}
	return sub
}

// validateMenu applies WeChat's menu rules; it returns the errcode and
// errmsg, or 0.
func validateMenu(buttons []menuButton) (int, string) {
	if len(buttons) < 1 || len(buttons) > 3 {
		return 40016, "invalid button size"
	}
	for _, b := range buttons {
		if len(b.SubButton) > 0 {
			if b.Name == "" || len(b.Name) > maxTopName {
				return 40018, "invalid button name size"
			}
			if len(b.SubButton) > 5 {
				return 40023, "invalid sub button size"
			}
			for _, s := range b.SubButton {
				if len(s.SubButton) > 0 {
					return 40023, "invalid sub button size"
				}
				if code, msg := validateLeaf(s, 1); code != 0 {
					return code, msg
				}
			}
			continue
		}
		if code, msg := validateLeaf(b, 0); code != 0 {
			return code, msg
		}
	}
	return 0, ""
}

// validateLeaf checks a button without sub-buttons; level 0 is top-level.
func validateLeaf(b menuButton, level int) (int, string) {
	sub := ""
	if level == 1 {
		sub = "sub "
	}
	switch b.Type {
	case "click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select",
		"view", "miniprogram", "media_id", "view_limited", "article_id", "article_view_limited":
	default:
		return pick(40017, 40024, level), "invalid " + sub + "button type"
	}
	if b.Name == "" || len(b.Name) > pick(maxTopName, maxSubName, level) {
		return pick(40018, 40025, level), "invalid " + sub + "button name size"
	}
	switch b.Type {
	case "view", "miniprogram":
		if b.URL == "" || len(b.URL) > maxURLLen || !(strings.HasPrefix(b.URL, "http://") || strings.HasPrefix(b.URL, "https://")) {
			return pick(40020, 40027, level), "invalid " + sub + "button url size"
		}
		if b.Type == "miniprogram" && (b.AppID == "" || b.PagePath == "") {
			return 40097, "invalid args"
		}
	case "media_id", "view_limited":
		if b.MediaID == "" {
			return 40007, "invalid media_id"
		}
	case "article_id", "article_view_limited":
		if b.ArticleID == "" {
			return 40097, "invalid args"
		}
	default:
		if b.Key == "" || len(b.Key) > maxKeyLen {
			return pick(40019, 40026, level), "invalid " + sub + "button key size"
		}
	}
	return 0, ""
}

// handleMenuCreate serves POST cgi-bin/menu/create.
func (e *Emulator) handleMenuCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Button []menuButton `json:"button"`
	}
	if !e.readAPI(w, r, &req) {
		return
	}
	if code, msg := validateMenu(req.Button); code != 0 {
		e.wxError(w, code, msg)
		return
	}
	for i := range req.Button {
		if req.Button[i].SubButton == nil {
			req.Button[i].SubButton = []menuButton{}
		}
		for j := range req.Button[i].SubButton {
			req.Button[i].SubButton[j].SubButton = []menuButton{}
		}
	}
	menu, err := json.Marshal(map[string]any{"button": req.Button})
	if err != nil {
		e.wxError(w, -1, "system error")
		return
	}
	e.mu.Lock()
	e.menu = menu
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
}

// handleMenuGet serves GET cgi-bin/menu/get: {"menu":{"button":[...]}} or
// 46003.
func (e *Emulator) handleMenuGet(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	menu := e.menu
	e.mu.Unlock()
	if menu == nil {
		e.wxError(w, 46003, "menu no exist")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"menu": json.RawMessage(menu)})
}

// handleMenuDelete serves GET cgi-bin/menu/delete.
func (e *Emulator) handleMenuDelete(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.menu = nil
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
}
