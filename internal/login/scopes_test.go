package login

import (
	"net/url"
	"slices"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/wxauth/wxauth/internal/clients"
)

func TestGrantScopes(t *testing.T) {
	reg, err := clients.New(
		&clients.Client{ID: "all", Public: true, RedirectURIs: []string{"https://a.example/cb"}},
		&clients.Client{ID: "base", Public: true, RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"openid", "offline_access"},
			GrantTypes: []string{"authorization_code"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := reg.Lookup("all")
	base, _ := reg.Lookup("base")
	for _, tc := range []struct {
		name    string
		c       *clients.Client
		req     []string
		granted []string
		wscope  string
		err     bool
	}{
		{"OpenID", all, []string{"openid"}, []string{"openid"}, "snsapi_base", false},
		{"Profile", all, []string{"openid", "profile", "offline_access"}, []string{"openid", "profile", "offline_access"}, "snsapi_userinfo", false},
		{"AliasBase", all, []string{"snsapi_base"}, []string{"openid"}, "snsapi_base", false},
		{"AliasUserinfo", all, []string{"snsapi_userinfo"}, []string{"openid", "profile"}, "snsapi_userinfo", false},
		{"EmailIgnored", all, []string{"openid", "email"}, []string{"openid"}, "snsapi_base", false},
		{"NoOpenID", all, []string{"profile"}, nil, "", true},
		{"ProfileNotRegistered", base, []string{"openid", "profile"}, []string{"openid"}, "snsapi_base", false},
		{"OfflineWithoutRefreshGrant", base, []string{"openid", "offline_access"}, []string{"openid"}, "snsapi_base", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			granted, wscope, err := grantScopes(tc.c, tc.req)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				if oe, ok := err.(*oidc.Error); !ok || oe.ErrorType != oidc.InvalidScope {
					t.Errorf("err %v, want invalid_scope", err)
				}
				return
			}
			if !slices.Equal(granted, tc.granted) || wscope != tc.wscope {
				t.Errorf("granted %v %s, want %v %s", granted, wscope, tc.granted, tc.wscope)
			}
		})
	}
}

func TestWithQuery(t *testing.T) {
	for in, want := range map[string]string{
		"https://a.example/cb":     "https://a.example/cb?code=c&state=s",
		"https://a.example/cb?x=1": "https://a.example/cb?x=1&code=c&state=s",
	} {
		if got := withQuery(in, url.Values{"code": {"c"}, "state": {"s"}}); got != want {
			t.Errorf("withQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHashOf(t *testing.T) {
	if h := hashOf("code"); len(h) != 64 || h == "code" || h != hashOf("code") || h == hashOf("code2") {
		t.Errorf("hashOf: %q", h)
	}
}
