package wechat_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/wechat"
)

func ExampleClient_AuthCodeURL() {
	c, err := wechat.NewClient(wechat.Config{
		AppID:      "wx520c15f417810387",
		AppSecret:  "appsecret",
		Endpoint:   wechat.ProductionEndpoint(),
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := c.AuthCodeURL("https://h5.example.com/oauth/callback?next=/shop", wechat.ScopeUserInfo, "q3Zb8xYt")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u)
	// Output:
	// https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387&redirect_uri=https%3A%2F%2Fh5.example.com%2Foauth%2Fcallback%3Fnext%3D%2Fshop&response_type=code&scope=snsapi_userinfo&state=q3Zb8xYt&connect_redirect=1#wechat_redirect
}

func ExampleSignJSSDK() {
	// The official example of the JS-SDK page, appendix 1.
	sig := wechat.SignJSSDK(
		"sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
		"Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value#xxxx")
	fmt.Println(sig)
	// Output: 0f9de62fce790f9a083d5c99e95740ceb90c27ed
}

// ExampleIsDeadCode shows how a login decides what a failed code exchange
// calls for: a dead code, or a lost answer (which most likely consumed the
// code), restarts the authorization once; a second failure shows an error.
func ExampleIsDeadCode() {
	decide := func(err error, restarted bool) string {
		switch {
		case err == nil:
			return "log in"
		case (wechat.IsDeadCode(err) || errors.Is(err, wechat.ErrAnswerLost)) && !restarted:
			return "restart the authorization once"
		case wechat.Temporary(err):
			return "WeChat is busy: offer a retry"
		default:
			return "error page"
		}
	}
	used := &wechat.Error{API: "sns/oauth2/access_token", Code: wechat.CodeCodeUsed, Msg: "code been used rid: 6650a1b2-1c2d3e4f-5a6b7c8d"}
	fmt.Println(decide(used, false))
	fmt.Println(decide(used, true))
	fmt.Println(decide(&wechat.Error{Code: wechat.CodeBusy}, false))
	// Output:
	// restart the authorization once
	// error page
	// WeChat is busy: offer a retry
}

func BenchmarkClient_AuthCodeURL(b *testing.B) {
	c, err := wechat.NewClient(wechat.Config{
		AppID: "wx520c15f417810387", AppSecret: "appsecret",
		Endpoint: wechat.ProductionEndpoint(), HTTPClient: &http.Client{Timeout: time.Second},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AuthCodeURL("https://h5.example.com/oauth/callback?next=/shop/items/42", wechat.ScopeBase, "q3Zb8xYtK2mN4pQr7sTu9vWx"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignJSSDK(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		wechat.SignJSSDK("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
			"Wm3WZYTPz0wzccnW", 1414587457, "https://h5.example.com/shop/items/42?from=timeline&isappinstalled=0#top")
	}
}
