package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestSignJSSDK(t *testing.T) {
	const (
		ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
		nonce  = "Wm3WZYTPz0wzccnW"
		ts     = 1414587457
		want   = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
	)
	for name, page := range map[string]string{
		"official/JS-SDK-appendix1":          "http://mp.weixin.qq.com?params=value",
		"official/JS-SDK-appendix1-fragment": "http://mp.weixin.qq.com?params=value#xxxx",
	} {
		t.Run(name, func(t *testing.T) {
			if got := SignJSSDK(ticket, nonce, ts, page); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
	t.Run("URLMatters", func(t *testing.T) {
		if SignJSSDK(ticket, nonce, ts, "https://mp.weixin.qq.com?params=value") == want {
			t.Fatal("scheme ignored")
		}
	})
	t.Run("LongURL", func(t *testing.T) {
		long := "https://h5.example.com/" + strings.Repeat("p", 2000)
		if got := SignJSSDK(ticket, nonce, ts, long); len(got) != 40 || got == SignJSSDK(ticket, nonce, ts, long+"x") {
			t.Fatal(got)
		}
	})
}

// apiEnv is an API over a fake WeChat whose token endpoints issue numbered
// tokens.
func apiEnv(tb testing.TB, routes map[string]http.HandlerFunc) (*API, *fakeWeChat, *tokenServer) {
	tb.Helper()
	ts := &tokenServer{}
	all := ts.routes(tb)
	for k, v := range routes {
		all[k] = v
	}
	f := newFake(tb, all)
	c := newTestClient(tb, f)
	m, err := NewTokenManager(c, TokenConfig{Cache: newFakeCache(), Locker: newFakeLocker(), Box: newTestBox(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return NewAPI(c, m), f, ts
}

func TestAPI_CreateQRCode(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	var tokens []string
	a, f, _ := apiEnv(t, map[string]http.HandlerFunc{"/cgi-bin/qrcode/create": func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		bodies = append(bodies, b)
		tokens = append(tokens, r.URL.Query().Get("access_token"))
		n := len(tokens)
		mu.Unlock()
		if n == 1 {
			errBody(CodeAccessTokenExpired, "access_token expired")(w, r)
			return
		}
		io.WriteString(w, `{"ticket":"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==","expire_seconds":60,"url":"http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"}`)
	}})
	t.Run("OKAfterTokenExpired42001", func(t *testing.T) {
		q, err := a.CreateQRCode(context.Background(), QRCodeRequest{ActionName: QRStrScene, ExpireSeconds: 604800, SceneStr: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		if q.ExpireSeconds != 60 || q.URL != "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI" || !strings.HasPrefix(q.Ticket, "gQH47j") {
			t.Fatalf("%+v", q)
		}
		if len(tokens) != 2 || tokens[0] != "TOKEN-1" || tokens[1] != "TOKEN-2" {
			t.Fatalf("tokens used %v: want a retry with a refreshed token", tokens)
		}
		b := bodies[1]
		if b["action_name"] != "QR_STR_SCENE" || b["expire_seconds"] != float64(604800) ||
			b["action_info"].(map[string]any)["scene"].(map[string]any)["scene_str"] != "abc" {
			t.Fatalf("body %v", b)
		}
	})
	t.Run("Permanent", func(t *testing.T) {
		if _, err := a.CreateQRCode(context.Background(), QRCodeRequest{ActionName: QRLimitScene, SceneID: 100000}); err != nil {
			t.Fatal(err)
		}
		b := bodies[len(bodies)-1]
		if _, ok := b["expire_seconds"]; ok || b["action_info"].(map[string]any)["scene"].(map[string]any)["scene_id"] != float64(100000) {
			t.Fatalf("body %v", b)
		}
	})
	calls := f.count("/cgi-bin/qrcode/create")
	for name, req := range map[string]QRCodeRequest{
		"Expire2592001":       {ActionName: QRScene, ExpireSeconds: 2592001, SceneID: 1},
		"ExpireNegative":      {ActionName: QRScene, ExpireSeconds: -1, SceneID: 1},
		"TempSceneID0":        {ActionName: QRScene, ExpireSeconds: 60},
		"PermanentSceneID0":   {ActionName: QRLimitScene},
		"PermanentID100001":   {ActionName: QRLimitScene, SceneID: 100001},
		"PermanentWithExpire": {ActionName: QRLimitScene, SceneID: 1, ExpireSeconds: 60},
		"SceneStr65":          {ActionName: QRStrScene, SceneStr: strings.Repeat("a", 65)},
		"SceneStr66BytesUTF8": {ActionName: QRStrScene, SceneStr: strings.Repeat("码", 22)},
		"SceneStrEmpty":       {ActionName: QRLimitStrScene},
		"StrWithSceneID":      {ActionName: QRStrScene, SceneStr: "a", SceneID: 3},
		"IDWithSceneStr":      {ActionName: QRScene, SceneID: 3, SceneStr: "a"},
		"UnknownAction":       {ActionName: "QR_FOREVER", SceneID: 1},
		"LowercaseAction":     {ActionName: "qr_scene", SceneID: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := a.CreateQRCode(context.Background(), req); !errors.Is(err, ErrInvalidQRCode) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if f.count("/cgi-bin/qrcode/create") != calls {
		t.Fatal("invalid requests reached WeChat")
	}
	for name, req := range map[string]QRCodeRequest{
		"Expire2592000":  {ActionName: QRScene, ExpireSeconds: 2592000, SceneID: 4294967295},
		"SceneStr64":     {ActionName: QRLimitStrScene, SceneStr: strings.Repeat("a", 64)},
		"SceneStr63UTF8": {ActionName: QRStrScene, SceneStr: strings.Repeat("码", 21)},
		"PermanentID1":   {ActionName: QRLimitScene, SceneID: 1},
	} {
		if err := req.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAPI_ShowQRCode(t *testing.T) {
	png := "\x89PNG\r\n\x1a\nimage"
	a, _, _ := apiEnv(t, map[string]http.HandlerFunc{"/cgi-bin/showqrcode": func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ticket") != "gQ+/=" || r.URL.Query().Has("access_token") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/jpg")
		io.WriteString(w, png)
	}})
	if got := a.ShowQRCodeURL("gQ+/="); !strings.HasSuffix(got, "/cgi-bin/showqrcode?ticket=gQ%2B%2F%3D") {
		t.Fatal(got)
	}
	if u, _ := url.Parse(a.ShowQRCodeURL("gQ+/=")); u.Query().Get("ticket") != "gQ+/=" {
		t.Fatal("ticket does not round-trip")
	}
	b, err := a.ShowQRCode(context.Background(), "gQ+/=")
	if err != nil || string(b) != png {
		t.Fatalf("%q %v", b, err)
	}
	_, err = a.ShowQRCode(context.Background(), "expired")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 {
		t.Fatalf("err = %v", err)
	}
	if ProductionEndpoint().MPBase+"/cgi-bin/showqrcode?ticket=x" != NewAPI(mustProdClient(t), nil).ShowQRCodeURL("x") {
		t.Fatal("production URL")
	}
}

func mustProdClient(tb testing.TB) *Client {
	c, err := NewClient(Config{AppID: testAppID, AppSecret: testSecret, Endpoint: ProductionEndpoint(), HTTPClient: &http.Client{Timeout: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAPI_Follower(t *testing.T) {
	a, _, _ := apiEnv(t, map[string]http.HandlerFunc{"/cgi-bin/user/info": func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("openid") != "o6_bmjrPTlm6_2sgVt7hMZOPfL2M" || q.Get("lang") != "zh_CN" || q.Get("access_token") == "" {
			errBody(CodeInvalidOpenID, "invalid openid")(w, r)
			return
		}
		io.WriteString(w, `{"subscribe":1,"openid":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M","language":"zh_CN","subscribe_time":1382694957,"unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL","remark":"","groupid":0,"tagid_list":[128,2],"subscribe_scene":"ADD_SCENE_QR_CODE","qr_scene":98765,"qr_scene_str":""}`)
	}})
	f, err := a.Follower(context.Background(), "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.Subscribe != 1 || f.SubscribeTime != 1382694957 || f.UnionID != "o6_bmasdasdsad6_2sgVt7hMZOPfL" || f.SubscribeScene != "ADD_SCENE_QR_CODE" || f.QRScene != 98765 || len(f.TagIDs) != 2 {
		t.Fatalf("%+v", f)
	}
	if _, err := a.Follower(context.Background(), "other", ""); !IsCode(err, CodeInvalidOpenID) {
		t.Fatalf("err = %v", err)
	}
	if _, err := a.Follower(context.Background(), "", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
}

// validMenu is the menu of the official create example (miniprogram appid
// filled in).
func validMenu() Menu {
	return Menu{Buttons: []Button{
		{Type: "click", Name: "今日歌曲", Key: "V1001_TODAY_MUSIC"},
		{Name: "菜单", SubButtons: []Button{
			{Type: "view", Name: "搜索", URL: "http://www.soso.com/"},
			{Type: "miniprogram", Name: "wxa", URL: "http://mp.weixin.qq.com", AppID: "wx286b93c14bbf93aa", PagePath: "pages/lunar/index"},
			{Type: "click", Name: "赞一下我们", Key: "V1001_GOOD"},
		}},
		{Type: "article_id", Name: "文章", ArticleID: "ARTICLE_ID1"},
	}}
}

func TestValidateMenu(t *testing.T) {
	if err := ValidateMenu(validMenu()); err != nil {
		t.Fatal(err)
	}
	sub := func(n int) []Button {
		bs := make([]Button, n)
		for i := range bs {
			bs[i] = Button{Type: "click", Name: "s", Key: "k"}
		}
		return bs
	}
	cases := []struct {
		name string
		mod  func(m *Menu)
		want string
	}{
		{"FourthTopLevel", func(m *Menu) { m.Buttons = append(m.Buttons, Button{Type: "click", Name: "x", Key: "k"}) }, "button[3]: at most 3 top-level buttons"},
		{"NoButtons", func(m *Menu) { m.Buttons = nil }, "at least 1"},
		{"Name17Bytes", func(m *Menu) { m.Buttons[0].Name = "ABCDEFGHIJKLMNOPQ" }, `button[0] "ABCDEFGHIJKLMNOPQ": name is 17 bytes, at most 16`},
		{"NameChinese6Chars18Bytes", func(m *Menu) { m.Buttons[0].Name = "一二三四五六" }, "name is 18 bytes, at most 16"},
		{"NameEmpty", func(m *Menu) { m.Buttons[0].Name = "" }, "button[0]: name is required"},
		{"SixSubButtons", func(m *Menu) { m.Buttons[1].SubButtons = sub(6) }, `button[1] "菜单".sub_button[5]: at most 5 sub-buttons`},
		{"ClickWithoutKey", func(m *Menu) { m.Buttons[0].Key = "" }, `button[0] "今日歌曲": type click requires key`},
		{"SubName61Bytes", func(m *Menu) { m.Buttons[1].SubButtons[0].Name = strings.Repeat("n", 61) }, "button[1].sub_button[0] \"" + strings.Repeat("n", 61) + "\": name is 61 bytes, at most 60"},
		{"Key129Bytes", func(m *Menu) { m.Buttons[0].Key = strings.Repeat("k", 129) }, "key is 129 bytes, at most 128"},
		{"URL1025Bytes", func(m *Menu) { m.Buttons[1].SubButtons[0].URL = "http://a.example.com/" + strings.Repeat("u", 1025-21) }, `button[1].sub_button[0] "搜索": url is 1025 bytes, at most 1024`},
		{"MiniprogramWithoutAppID", func(m *Menu) { m.Buttons[1].SubButtons[1].AppID = "" }, `button[1].sub_button[1] "wxa": type miniprogram requires appid`},
		{"MiniprogramWithoutPagePath", func(m *Menu) { m.Buttons[1].SubButtons[1].PagePath = "" }, "requires pagepath"},
		{"ViewWithoutURL", func(m *Menu) { m.Buttons[1].SubButtons[0].URL = "" }, "type view requires url"},
		{"MediaWithoutID", func(m *Menu) { m.Buttons[2] = Button{Type: "media_id", Name: "m"} }, "type media_id requires media_id"},
		{"ArticleWithoutID", func(m *Menu) { m.Buttons[2].ArticleID = "" }, "type article_id requires article_id"},
		{"UnknownType", func(m *Menu) { m.Buttons[0].Type = "tap" }, `unknown type "tap"`},
		{"NoType", func(m *Menu) { m.Buttons[0].Type = "" }, "type is required"},
		{"ParentWithType", func(m *Menu) { m.Buttons[1].Type = "click" }, "a parent button has no type"},
		{"ThirdLevel", func(m *Menu) { m.Buttons[1].SubButtons[0].SubButtons = sub(1) }, "sub-buttons cannot have sub_button"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validMenu()
			tc.mod(&m)
			err := ValidateMenu(m)
			if !errors.Is(err, ErrInvalidMenu) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("Limits", func(t *testing.T) {
		m := validMenu()
		m.Buttons[0].Name = strings.Repeat("n", 16)
		m.Buttons[0].Key = strings.Repeat("k", 128)
		m.Buttons[1].SubButtons = sub(5)
		m.Buttons[1].SubButtons[0] = Button{Type: "view", Name: strings.Repeat("n", 60), URL: "http://a.example.com/" + strings.Repeat("u", 1024-21)}
		if err := ValidateMenu(m); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAPI_Menu(t *testing.T) {
	var mu sync.Mutex
	var stored []byte
	a, f, _ := apiEnv(t, map[string]http.HandlerFunc{
		"/cgi-bin/menu/create": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			stored = b
			mu.Unlock()
			io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
		},
		"/cgi-bin/menu/get": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if stored == nil {
				errBody(CodeNoMenu, "menu no exist")(w, r)
				return
			}
			io.WriteString(w, `{"menu":`+string(stored)+`,"conditionalmenu":[]}`)
		},
		"/cgi-bin/menu/delete": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			stored = nil
			mu.Unlock()
			io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
		},
	})
	ctx := context.Background()
	if _, err := a.GetMenu(ctx); !IsCode(err, CodeNoMenu) {
		t.Fatalf("err = %v, want 46003", err)
	}
	bad := validMenu()
	bad.Buttons[0].Key = ""
	if err := a.CreateMenu(ctx, bad); !errors.Is(err, ErrInvalidMenu) || f.count("/cgi-bin/menu/create") != 0 {
		t.Fatalf("err = %v; an invalid menu must not reach WeChat", err)
	}
	if err := a.CreateMenu(ctx, validMenu()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), `"button":[{"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"}`) ||
		!strings.Contains(string(stored), `"sub_button":[`) {
		t.Fatalf("sent %s", stored)
	}
	m, err := a.GetMenu(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Buttons) != 3 || len(m.Buttons[1].SubButtons) != 3 || m.Buttons[1].SubButtons[1].PagePath != "pages/lunar/index" {
		t.Fatalf("%+v", m)
	}
	if err := a.DeleteMenu(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetMenu(ctx); !IsCode(err, CodeNoMenu) {
		t.Fatalf("err = %v", err)
	}
}

func TestAPI_TokenRefusedTwice(t *testing.T) {
	a, f, _ := apiEnv(t, map[string]http.HandlerFunc{"/cgi-bin/menu/delete": errBody(CodeInvalidCredential, "invalid credential")})
	err := a.DeleteMenu(context.Background())
	if !IsCode(err, CodeInvalidCredential) {
		t.Fatalf("err = %v", err)
	}
	if n := f.count("/cgi-bin/menu/delete"); n != 2 {
		t.Fatalf("%d calls, want 2 (one retry with a new token)", n)
	}
	assertNoSecret(t, err.Error(), "TOKEN-1", "TOKEN-2")
}

func TestMarshalJSON(t *testing.T) {
	b, err := marshalJSON(Menu{Buttons: []Button{{Type: "view", Name: "商城", URL: "https://h5.example.com/?a=1&b=<2>"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"button":[{"type":"view","name":"商城","url":"https://h5.example.com/?a=1&b=<2>"}]}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
