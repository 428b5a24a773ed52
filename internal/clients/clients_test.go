package clients

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const good = `
clients:
  - client_id: h5-demo
    public: true
    redirect_uris: ["http://127.0.0.1:8082/"]
    post_logout_redirect_uris: ["http://127.0.0.1:8082/"]
  - client_id: web
    client_secret: "0123456789abcdef-web"
    redirect_uris: ["https://app.example.com/oauth2/callback"]
    scopes: [openid, profile]
    id_token_signed_response_alg: RS256
  - client_id: crm
    client_secret_hash: "sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `"
    apis: ["message/", "user/info"]
    rate_limit: 5
`

func TestParse_Defaults(t *testing.T) {
	r, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	h5, ok := r.Lookup("h5-demo")
	if !ok || !h5.Public || h5.Confidential() {
		t.Fatalf("h5-demo = %+v, %v", h5, ok)
	}
	if !h5.HasGrant(GrantAuthorizationCode) || !h5.HasGrant(GrantRefreshToken) || h5.HasGrant(GrantClientCredentials) {
		t.Errorf("h5-demo grants = %v", h5.GrantTypes)
	}
	if !h5.HasScope(ScopeOfflineAccess) || !h5.HasScope(ScopeSnsapiBase) {
		t.Errorf("h5-demo scopes = %v", h5.Scopes)
	}
	if !h5.AllowsOrigin("http://127.0.0.1:8082") || h5.AllowsOrigin("http://127.0.0.1:8083") {
		t.Errorf("h5-demo origins = %v", h5.AllowedOrigins)
	}
	if !h5.HasRedirectURI("http://127.0.0.1:8082/") || h5.HasRedirectURI("http://127.0.0.1:8082") || h5.HasRedirectURI("http://127.0.0.1:8082/?x=1") {
		t.Error("redirect_uri match is not exact")
	}
	crm, _ := r.Lookup("crm")
	if !crm.HasGrant(GrantClientCredentials) || len(crm.GrantTypes) != 1 {
		t.Errorf("crm grants = %v", crm.GrantTypes)
	}
	if !crm.AllowsAPI("message/custom/send") || !crm.AllowsAPI("user/info") || crm.AllowsAPI("menu/create") {
		t.Error("crm API allowlist")
	}
	web, _ := r.Lookup("web")
	if web.Secret != "" {
		t.Error("plain secret kept after Parse")
	}
	if got := r.Origins(); strings.Join(got, ",") != "http://127.0.0.1:8082,https://app.example.com" {
		t.Errorf("Origins = %v", got)
	}
	if len(r.All()) != 3 || r.All()[0].ID != "h5-demo" {
		t.Error("All is not in file order")
	}
}

func TestParse_TopLevelList(t *testing.T) {
	r, err := Parse([]byte("- client_id: a\n  public: true\n  redirect_uris: [\"https://a.example.com/cb\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("a"); !ok {
		t.Fatal("client a missing")
	}
}

func TestRegistry_Authenticate(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("bcrypt-secret-0123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(
		&Client{ID: "plain", Secret: "0123456789abcdef", GrantTypes: []string{GrantClientCredentials}},
		&Client{ID: "sha", SecretHash: HashSecret("sha-secret-0123456"), GrantTypes: []string{GrantClientCredentials}},
		&Client{ID: "bc", SecretHash: string(bc), GrantTypes: []string{GrantClientCredentials}},
		&Client{ID: "pub", Public: true, RedirectURIs: []string{"https://x.example.com/"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, secret string
		want       error
	}{
		{"plain", "0123456789abcdef", nil},
		{"plain", "0123456789abcdeF", ErrInvalidSecret},
		{"sha", "sha-secret-0123456", nil},
		{"sha", "", ErrInvalidSecret},
		{"bc", "bcrypt-secret-0123", nil},
		{"bc", "bcrypt-secret-0123", nil}, // remembered
		{"bc", "bcrypt-secret-0124", ErrInvalidSecret},
		{"pub", "", ErrUnknownClient},
		{"nobody", "x", ErrUnknownClient},
	} {
		c, err := r.Authenticate(tc.id, tc.secret)
		if !errors.Is(err, tc.want) {
			t.Errorf("Authenticate(%q, %q) = %v, want %v", tc.id, tc.secret, err, tc.want)
		}
		if err == nil && c.ID != tc.id {
			t.Errorf("Authenticate(%q) returned %q", tc.id, c.ID)
		}
	}
}

// TestParse_Problems: each bad file names the client and the field.
func TestParse_Problems(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"MissingID":        {"- public: true\n  redirect_uris: [\"https://a.example.com/\"]\n", "clients[0]: client_id: required"},
		"BadID":            {"- client_id: \"a b\"\n  public: true\n  redirect_uris: [\"https://a.example.com/\"]\n", `client "a b": client_id:`},
		"Duplicate":        {"- {client_id: a, public: true, redirect_uris: [\"https://a.example.com/\"]}\n- {client_id: a, public: true, redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": client_id: registered twice`},
		"NoRedirect":       {"- {client_id: a, public: true}\n", `client "a": redirect_uris: required`},
		"RelativeRedirect": {"- {client_id: a, public: true, redirect_uris: [\"/cb\"]}\n", `client "a": redirect_uris[0]: must be an absolute URL`},
		"Fragment":         {"- {client_id: a, public: true, redirect_uris: [\"https://a.example.com/#x\"]}\n", `redirect_uris[0]: must not have a #fragment`},
		"PlainHTTP":        {"- {client_id: a, public: true, redirect_uris: [\"http://a.example.com/\"]}\n", `redirect_uris[0]: http is allowed only`},
		"JavaScript":       {"- {client_id: a, public: true, redirect_uris: [\"javascript://a.example.com/%0aalert(1)\"]}\n", `redirect_uris[0]: scheme must be https`},
		"Logout":           {"- {client_id: a, public: true, redirect_uris: [\"https://a.example.com/\"], post_logout_redirect_uris: [\"ftp://x/\"]}\n", `post_logout_redirect_uris[0]:`},
		"PublicSecret":     {"- {client_id: a, public: true, client_secret: 0123456789abcdef, redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": client_secret: a public client has no secret`},
		"NoSecret":         {"- {client_id: a, redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": client_secret: a confidential client needs`},
		"ShortSecret":      {"- {client_id: a, client_secret: short, redirect_uris: [\"https://a.example.com/\"]}\n", `client_secret: at least 16`},
		"BothSecrets":      {"- {client_id: a, client_secret: 0123456789abcdef, client_secret_hash: \"sha256:00\", redirect_uris: [\"https://a.example.com/\"]}\n", `not both`},
		"BadHash":          {"- {client_id: a, client_secret_hash: md5:abc, redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": client_secret_hash: must be a bcrypt hash`},
		"ShortSHA":         {"- {client_id: a, client_secret_hash: \"sha256:abcd\", redirect_uris: [\"https://a.example.com/\"]}\n", `client_secret_hash: sha256: must be followed by 64 hex digits`},
		"Grant":            {"- {client_id: a, public: true, grant_types: [implicit], redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": grant_types[0]: "implicit" is not one of`},
		"PublicCC":         {"- {client_id: a, public: true, grant_types: [client_credentials]}\n", `grant_types[0]: client_credentials needs a confidential client`},
		"Scope":            {"- {client_id: a, public: true, scopes: [openid, email], redirect_uris: [\"https://a.example.com/\"]}\n", `client "a": scopes[1]: "email" is not one of`},
		"Alg":              {"- {client_id: a, public: true, id_token_signed_response_alg: HS256, redirect_uris: [\"https://a.example.com/\"]}\n", `id_token_signed_response_alg: "HS256"`},
		"Origin":           {"- {client_id: a, public: true, allowed_origins: [\"https://a.example.com/path\"], redirect_uris: [\"https://a.example.com/\"]}\n", `allowed_origins[0]: must be scheme://host[:port]`},
		"API":              {"- {client_id: a, client_secret: 0123456789abcdef, apis: [\"/cgi-bin/message\"]}\n", `client "a": apis[0]:`},
		"APITraversal":     {"- {client_id: a, client_secret: 0123456789abcdef, apis: [\"../sns\"]}\n", `client "a": apis[0]:`},
		"Rate":             {"- {client_id: a, client_secret: 0123456789abcdef, rate_limit: -1}\n", `client "a": rate_limit: must not be negative`},
		"UnknownField":     {"- {client_id: a, public: true, redirect_uri: [\"https://a.example.com/\"]}\n", `field redirect_uri not found`},
		"NotYAML":          {"- {client_id: [\n", "malformed YAML"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse accepted a bad file")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParse_EveryProblemAtOnce(t *testing.T) {
	_, err := Parse([]byte("- {client_id: a, public: true}\n- {client_id: b, client_secret: x, redirect_uris: [\"https://b.example.com/\"]}\n"))
	var p Problems
	if !errors.As(err, &p) || len(p) != 2 {
		t.Fatalf("err = %v, want two problems", err)
	}
}

func TestLoad_MissingFile(t *testing.T) {
	if _, err := Load(t.TempDir() + "/none.yaml"); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("err = %v", err)
	}
}
