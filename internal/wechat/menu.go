package wechat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Menu is an Official Account's custom menu, as sent to menu/create:
// {"button":[...]}.
type Menu struct {
	// Buttons are the 1 to 3 top-level buttons.
	Buttons []Button `json:"button"`
}

// Button is one menu button. A top-level button either has SubButtons (1 to
// 5, and then no Type) or is itself a leaf with a Type. Which fields a leaf
// needs depends on Type:
//
//   - click, scancode_push, scancode_waitmsg, pic_sysphoto,
//     pic_photo_or_album, pic_weixin, location_select: Key
//   - view: URL
//   - media_id, view_limited: MediaID
//   - article_id, article_view_limited: ArticleID
//   - miniprogram: URL (shown by clients without mini programs), AppID, PagePath
type Button struct {
	// Type is one of the types above; empty on a parent of SubButtons.
	Type string `json:"type,omitempty"`
	// Name is at most 16 bytes on a top-level button, 60 in a sub-menu.
	Name string `json:"name"`
	// Key is the EventKey of the CLICK (etc.) event, at most 128 bytes.
	Key string `json:"key,omitempty"`
	// URL is at most 1024 bytes.
	URL string `json:"url,omitempty"`
	// MediaID is the permanent material of media_id and view_limited.
	MediaID string `json:"media_id,omitempty"`
	// ArticleID is the published article of article_id and
	// article_view_limited.
	ArticleID string `json:"article_id,omitempty"`
	// AppID is the mini program of a miniprogram button.
	AppID string `json:"appid,omitempty"`
	// PagePath is the mini program page of a miniprogram button.
	PagePath string `json:"pagepath,omitempty"`
	// SubButtons are the 1 to 5 buttons of a top-level parent button.
	SubButtons []Button `json:"sub_button,omitempty"`
}

// Menu limits, in buttons and bytes.
const (
	MaxTopButtons   = 3    // top-level buttons
	MaxSubButtons   = 5    // buttons under one top-level button
	MaxTopNameBytes = 16   // name of a top-level button
	MaxSubNameBytes = 60   // name of a sub-button
	MaxButtonKeyLen = 128  // key
	MaxButtonURLLen = 1024 // url
)

// ErrInvalidMenu is wrapped by the errors of [ValidateMenu].
var ErrInvalidMenu = errors.New("wechat: invalid menu")

// ValidateMenu checks m against the documented limits (1-3 top-level
// buttons, 1-5 sub-buttons, names at most 16 bytes top-level and 60 in a
// sub-menu, key at most 128 bytes, url at most 1024 bytes, the fields each
// type requires, no third level). The error wraps [ErrInvalidMenu] and names
// the button, e.g. `button[3]: at most 3 top-level buttons` or
// `button[0] "ABCDEFGHIJKLMNOPQ": name is 17 bytes, at most 16`.
//
// https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
func ValidateMenu(m Menu) error {
	bad := func(where, format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidMenu, where}, args...)...)
	}
	if len(m.Buttons) == 0 {
		return fmt.Errorf("%w: no buttons: at least 1 top-level button", ErrInvalidMenu)
	}
	if len(m.Buttons) > MaxTopButtons {
		return bad("button["+strconv.Itoa(MaxTopButtons)+"]", "at most %d top-level buttons", MaxTopButtons)
	}
	for i, b := range m.Buttons {
		where := "button[" + strconv.Itoa(i) + "]"
		if err := checkName(where, b.Name, MaxTopNameBytes); err != nil {
			return err
		}
		where += " " + strconv.Quote(b.Name)
		if len(b.SubButtons) == 0 {
			if err := checkLeaf(where, b); err != nil {
				return err
			}
			continue
		}
		if b.Type != "" {
			return bad(where, "has sub_button and type %q: a parent button has no type", b.Type)
		}
		if len(b.SubButtons) > MaxSubButtons {
			return bad(where+".sub_button["+strconv.Itoa(MaxSubButtons)+"]", "at most %d sub-buttons", MaxSubButtons)
		}
		for j, s := range b.SubButtons {
			sw := "button[" + strconv.Itoa(i) + "].sub_button[" + strconv.Itoa(j) + "]"
			if err := checkName(sw, s.Name, MaxSubNameBytes); err != nil {
				return err
			}
			sw += " " + strconv.Quote(s.Name)
			if len(s.SubButtons) > 0 {
				return bad(sw, "sub-buttons cannot have sub_button")
			}
			if err := checkLeaf(sw, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkName checks a button name's presence and size in bytes.
func checkName(where, name string, limit int) error {
	if name == "" {
		return fmt.Errorf("%w: %s: name is required", ErrInvalidMenu, where)
	}
	if len(name) > limit {
		return fmt.Errorf("%w: %s %q: name is %d bytes, at most %d", ErrInvalidMenu, where, name, len(name), limit)
	}
	return nil
}

// checkLeaf checks a button with a type: size limits and required fields.
func checkLeaf(where string, b Button) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidMenu, where}, args...)...)
	}
	if len(b.Key) > MaxButtonKeyLen {
		return bad("key is %d bytes, at most %d", len(b.Key), MaxButtonKeyLen)
	}
	if len(b.URL) > MaxButtonURLLen {
		return bad("url is %d bytes, at most %d", len(b.URL), MaxButtonURLLen)
	}
	need := func(field, v string) error {
		if v == "" {
			return bad("type %s requires %s", b.Type, field)
		}
		return nil
	}
	switch b.Type {
	case "":
		return bad("type is required (or sub_button for a top-level button)")
	case "click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select":
		return need("key", b.Key)
	case "view":
		return need("url", b.URL)
	case "media_id", "view_limited":
		return need("media_id", b.MediaID)
	case "article_id", "article_view_limited":
		return need("article_id", b.ArticleID)
	case "miniprogram":
		if err := need("url", b.URL); err != nil {
			return err
		}
		if err := need("appid", b.AppID); err != nil {
			return err
		}
		return need("pagepath", b.PagePath)
	default:
		return bad("unknown type %q", b.Type)
	}
}

// CreateMenu validates m with [ValidateMenu], then replaces the account's
// menu with it (POST cgi-bin/menu/create, body {"button":[...]}).
//
// Errors: an [ErrInvalidMenu] error before any call; [*Error] with Code
// 40016-40027 when WeChat still refuses a button; otherwise as
// [API.CreateQRCode].
//
// https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html
func (a *API) CreateMenu(ctx context.Context, m Menu) error {
	if err := ValidateMenu(m); err != nil {
		return err
	}
	body, err := marshalJSON(m)
	if err != nil {
		return fmt.Errorf("wechat: cgi-bin/menu/create: encode request: %w", err)
	}
	return a.withToken(ctx, request{api: "cgi-bin/menu/create", base: a.c.api, method: "POST", body: body, retryTooFrequent: true}, nil)
}

// GetMenu returns the account's menu (GET cgi-bin/menu/get, whose JSON is
// {"menu":{"button":[...]},"conditionalmenu":[...]}; conditional menus are
// not returned).
//
// Errors: [*Error] with Code 46003 ([CodeNoMenu]) when there is no menu;
// otherwise as [API.CreateQRCode].
//
// https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Querying_Custom_Menus.html
func (a *API) GetMenu(ctx context.Context) (*Menu, error) {
	var v struct {
		Menu Menu `json:"menu"`
	}
	if err := a.withToken(ctx, request{api: "cgi-bin/menu/get", base: a.c.api, method: "GET", retryTooFrequent: true}, &v); err != nil {
		return nil, err
	}
	return &v.Menu, nil
}

// DeleteMenu deletes the account's menu, conditional menus included (GET
// cgi-bin/menu/delete). Deleting when there is none succeeds.
//
// Errors: as [API.CreateQRCode].
//
// https://developers.weixin.qq.com/doc/offiaccount/Custom_Menus/Deleting_Custom-Defined_Menu.html
func (a *API) DeleteMenu(ctx context.Context) error {
	return a.withToken(ctx, request{api: "cgi-bin/menu/delete", base: a.c.api, method: "GET", retryTooFrequent: true}, nil)
}
