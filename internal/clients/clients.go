// Package clients is the registry of the OAuth 2.0 / OpenID Connect clients
// that may use wxauth: H5 pages (public clients doing code + PKCE), web
// back ends and gateways (confidential clients such as oauth2-proxy), and the
// owner's services that call WeChat's API through wxauth (client_credentials).
//
// The registry is a YAML file named by WXAUTH_CLIENTS: a list of clients (or
// a map with a "clients" list), each with the fields of [Client]. [Parse]
// validates every client and reports every problem at once, each naming the
// client and the field, so a bad file stops startup with a clear message.
// The registry is read-only once loaded and safe for concurrent use.
//
// It imports the standard library, golang.org/x/crypto/bcrypt and the YAML
// decoder only. Client metadata names follow RFC 7591 (OAuth 2.0 Dynamic
// Client Registration) and OpenID Connect Registration 1.0.
package clients

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Grant types a client may be registered for (RFC 6749 section 4).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Scopes a client may be registered for. snsapi_base and snsapi_userinfo are
// WeChat's names, accepted as aliases of openid and openid+profile.
const (
	ScopeOpenID         = "openid"
	ScopeProfile        = "profile"
	ScopeOfflineAccess  = "offline_access"
	ScopeSnsapiBase     = "snsapi_base"
	ScopeSnsapiUserinfo = "snsapi_userinfo"
)

// knownScopes are the scopes wxauth understands, in the order discovery
// lists them.
var knownScopes = []string{ScopeOpenID, ScopeProfile, ScopeOfflineAccess, ScopeSnsapiBase, ScopeSnsapiUserinfo}

// KnownScopes returns the scopes wxauth understands (a fresh slice).
func KnownScopes() []string { return slices.Clone(knownScopes) }

// Errors of [Registry.Authenticate]. Both mean RFC 6749's invalid_client;
// they are distinct for logs and metrics only and must not be told apart in a
// response.
var (
	ErrUnknownClient = errors.New("clients: unknown client_id")
	ErrInvalidSecret = errors.New("clients: wrong client_secret")
)

// Client is one registered client. YAML keys are the snake_case names in the
// tags; every field but client_id is optional.
type Client struct {
	// ID is client_id: 1 to 128 characters of [A-Za-z0-9._~-].
	ID string `yaml:"client_id"`
	// Name is shown on pages (for example the QR login page); defaults to ID.
	Name string `yaml:"client_name"`
	// Secret is client_secret in plain text (at least 16 bytes). Prefer
	// SecretHash in files that are shared; one of the two is required for a
	// confidential client, none is allowed for a public one. After [Parse]
	// it is empty: only its hash is kept.
	Secret string `yaml:"client_secret"`
	// SecretHash is client_secret_hash: a bcrypt hash ("$2a$...", "$2b$...",
	// "$2y$...") or "sha256:" followed by the lowercase hex SHA-256 of the
	// secret. `authsvc clients hash` prints one.
	SecretHash string `yaml:"client_secret_hash"`
	// Public marks a client that cannot keep a secret (an H5 page, a mobile
	// app): it must use PKCE S256 and may not use client_credentials.
	Public bool `yaml:"public"`
	// RedirectURIs are the exact redirect_uri values the authorization
	// endpoint accepts (absolute, no fragment; https, or http on a loopback
	// host or localhost). Required for the authorization_code grant.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values of
	// RP-Initiated Logout, with the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes the client may use; default authorization_code and
	// refresh_token (client_credentials alone for a client without
	// redirect_uris).
	GrantTypes []string `yaml:"grant_types"`
	// Scopes the client may request; default openid, profile,
	// offline_access and the WeChat aliases.
	Scopes []string `yaml:"scopes"`
	// IDTokenAlg is id_token_signed_response_alg: RS256, ES256 or EdDSA;
	// empty means the service default (WXAUTH_JWT_ALG).
	IDTokenAlg string `yaml:"id_token_signed_response_alg"`
	// AllowedOrigins are browser origins (scheme://host[:port]) that may call
	// the token endpoint with CORS; by default the origins of RedirectURIs.
	AllowedOrigins []string `yaml:"allowed_origins"`

	// APIs are the WeChat API paths below /cgi-bin/ that this client may
	// call through wxauth's proxy, as prefixes ("message/", "user/info",
	// "media/"); "*" allows every path. Empty allows none.
	APIs []string `yaml:"apis"`
	// RateLimit is the client's proxied WeChat API calls per second; 0
	// means the service default.
	RateLimit float64 `yaml:"rate_limit"`
	// RateBurst is how many proxied calls the client may make at once
	// before RateLimit applies; 0 means the service default.
	RateBurst int `yaml:"rate_burst"`
	// RawAccessToken allows GET /internal/access-token: the real global
	// access_token, for the rare caller that truly needs it.
	RawAccessToken bool `yaml:"raw_access_token"`

	verify func(secret string) bool
}

// Confidential reports whether the client authenticates with a secret.
func (c *Client) Confidential() bool { return !c.Public }

// HasGrant reports whether the client is registered for grant type g.
func (c *Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// HasScope reports whether the client may request scope s.
func (c *Client) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// HasRedirectURI reports whether uri is, byte for byte, one of the client's
// redirect_uris (OAuth 2.0 Security BCP, RFC 9700 section 2.1: exact match).
func (c *Client) HasRedirectURI(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// HasPostLogoutRedirectURI reports whether uri is, byte for byte, one of the
// client's post_logout_redirect_uris.
func (c *Client) HasPostLogoutRedirectURI(uri string) bool {
	return slices.Contains(c.PostLogoutRedirectURIs, uri)
}

// AllowsOrigin reports whether a browser page of origin (scheme://host[:port],
// as in the Origin header) may call the token endpoint for this client.
func (c *Client) AllowsOrigin(origin string) bool { return slices.Contains(c.AllowedOrigins, origin) }

// AllowsAPI reports whether path (below /cgi-bin/, without a leading slash,
// e.g. "message/custom/send") is in the client's API allowlist.
func (c *Client) AllowsAPI(path string) bool {
	for _, p := range c.APIs {
		if p == "*" || strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Registry is a validated, read-only set of clients.
type Registry struct {
	byID  map[string]*Client
	order []*Client
}

// Problems lists what is wrong with a clients file: one line per problem,
// each naming the client and the field ("client \"h5\": redirect_uris[0]:
// must be absolute"). It is the error [Parse] returns for a bad file.
type Problems []string

// Error joins the problems, one per line.
func (p Problems) Error() string { return strings.Join(p, "\n") }

// Load reads and parses the YAML clients file at path. Errors: a wrapped
// *fs.PathError when the file cannot be read; see [Parse] for the rest.
func Load(path string) (*Registry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("clients: %s: %w", path, err)
	}
	return r, nil
}

// Parse decodes a clients file: a YAML list of clients, or a mapping whose
// "clients" key holds that list. Unknown keys are errors (a misspelt
// redirect_uris must not silently leave a client without them). Errors: a
// wrapped YAML error for malformed YAML; [Problems] for invalid clients.
func Parse(b []byte) (*Registry, error) {
	var list []*Client
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return nil, fmt.Errorf("malformed YAML: %w", err)
	}
	doc := &node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.MappingNode {
		var wrapper struct {
			Clients yaml.Node `yaml:"clients"`
		}
		if err := decodeStrict(doc, &wrapper); err != nil {
			return nil, err
		}
		doc = &wrapper.Clients
	}
	if doc.Kind != 0 {
		if err := decodeStrict(doc, &list); err != nil {
			return nil, err
		}
	}
	return New(list...)
}

func decodeStrict(n *yaml.Node, v any) error {
	// yaml.Node.Decode has no KnownFields; re-encode and use a Decoder.
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Errorf("malformed YAML: %w", err)
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("malformed YAML: %w", err)
	}
	return nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// New validates clients, fills their defaults, hashes plain secrets and
// returns the registry. The clients are copied. Errors: [Problems].
func New(list ...*Client) (*Registry, error) {
	r := &Registry{byID: map[string]*Client{}}
	var probs Problems
	for i, in := range list {
		if in == nil {
			probs = append(probs, fmt.Sprintf("clients[%d]: empty entry", i))
			continue
		}
		c := *in
		name := fmt.Sprintf("client %q", c.ID)
		if c.ID == "" {
			name = fmt.Sprintf("clients[%d]", i)
		}
		bad := func(field, msg string) { probs = append(probs, name+": "+field+": "+msg) }
		switch {
		case c.ID == "":
			bad("client_id", "required")
		case !idRE.MatchString(c.ID):
			bad("client_id", "1 to 128 characters of A-Z a-z 0-9 . _ ~ -")
		case r.byID[c.ID] != nil:
			bad("client_id", "registered twice")
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
		c.APIs = slices.Clone(c.APIs)
		if len(c.GrantTypes) == 0 {
			if len(c.RedirectURIs) == 0 && !c.Public {
				c.GrantTypes = []string{GrantClientCredentials}
			} else {
				c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
			}
		} else {
			c.GrantTypes = slices.Clone(c.GrantTypes)
		}
		for j, g := range c.GrantTypes {
			switch g {
			case GrantAuthorizationCode, GrantRefreshToken:
			case GrantClientCredentials:
				if c.Public {
					bad(fmt.Sprintf("grant_types[%d]", j), "client_credentials needs a confidential client (public: true has no secret)")
				}
			default:
				bad(fmt.Sprintf("grant_types[%d]", j), fmt.Sprintf("%q is not one of authorization_code, refresh_token, client_credentials", g))
			}
		}
		if len(c.Scopes) == 0 {
			c.Scopes = KnownScopes()
		} else {
			c.Scopes = slices.Clone(c.Scopes)
		}
		for j, s := range c.Scopes {
			if !slices.Contains(knownScopes, s) {
				bad(fmt.Sprintf("scopes[%d]", j), fmt.Sprintf("%q is not one of %s", s, strings.Join(knownScopes, ", ")))
			}
		}
		if c.HasGrant(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
			bad("redirect_uris", "required for the authorization_code grant")
		}
		for j, u := range c.RedirectURIs {
			if msg := checkRedirect(u); msg != "" {
				bad(fmt.Sprintf("redirect_uris[%d]", j), msg)
			}
		}
		for j, u := range c.PostLogoutRedirectURIs {
			if msg := checkRedirect(u); msg != "" {
				bad(fmt.Sprintf("post_logout_redirect_uris[%d]", j), msg)
			}
		}
		switch c.IDTokenAlg {
		case "", "RS256", "ES256", "EdDSA":
		default:
			bad("id_token_signed_response_alg", fmt.Sprintf("%q is not one of RS256, ES256, EdDSA", c.IDTokenAlg))
		}
		if len(c.AllowedOrigins) == 0 {
			for _, u := range c.RedirectURIs {
				if o := originOf(u); o != "" && !slices.Contains(c.AllowedOrigins, o) {
					c.AllowedOrigins = append(c.AllowedOrigins, o)
				}
			}
		} else {
			c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
			for j, o := range c.AllowedOrigins {
				if originOf(o) != o {
					bad(fmt.Sprintf("allowed_origins[%d]", j), "must be scheme://host[:port] with no path")
				}
			}
		}
		for j, p := range c.APIs {
			if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.ContainsAny(p, "?#") {
				bad(fmt.Sprintf("apis[%d]", j), "a path prefix below /cgi-bin/ without a leading slash, such as message/ (or *)")
			}
		}
		if c.RateLimit < 0 {
			bad("rate_limit", "must not be negative")
		}
		if c.RateBurst < 0 {
			bad("rate_burst", "must not be negative")
		}
		switch {
		case c.Public && (c.Secret != "" || c.SecretHash != ""):
			bad("client_secret", "a public client has no secret")
		case c.Public:
		case c.Secret != "" && c.SecretHash != "":
			bad("client_secret", "give client_secret or client_secret_hash, not both")
		case c.Secret != "":
			if len(c.Secret) < 16 {
				bad("client_secret", "at least 16 characters")
			}
			sum := sha256.Sum256([]byte(c.Secret))
			c.verify = sha256Verifier(sum[:])
		case c.SecretHash != "":
			v, err := verifierFor(c.SecretHash)
			if err != nil {
				bad("client_secret_hash", err.Error())
			}
			c.verify = v
		default:
			bad("client_secret", "a confidential client needs client_secret or client_secret_hash (or public: true)")
		}
		c.Secret = ""
		if r.byID[c.ID] == nil {
			r.byID[c.ID] = &c
			r.order = append(r.order, &c)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return r, nil
}

// Lookup returns the client with client_id id; false when there is none.
// The client is shared and must not be modified.
func (r *Registry) Lookup(id string) (*Client, bool) {
	if r == nil {
		return nil, false
	}
	c, ok := r.byID[id]
	return c, ok
}

// Authenticate checks a confidential client's credentials (client_secret_basic
// or client_secret_post, RFC 6749 section 2.3.1) in constant time. Errors:
// [ErrUnknownClient] when id is not registered or is a public client (which
// has no secret); [ErrInvalidSecret] when the secret is wrong.
func (r *Registry) Authenticate(id, secret string) (*Client, error) {
	c, ok := r.Lookup(id)
	if !ok || c.verify == nil {
		return nil, ErrUnknownClient
	}
	if !c.verify(secret) {
		return nil, ErrInvalidSecret
	}
	return c, nil
}

// All returns the clients in file order. The slice is fresh; the clients are
// shared and must not be modified.
func (r *Registry) All() []*Client {
	if r == nil {
		return nil
	}
	return slices.Clone(r.order)
}

// Origins returns every origin any client allows, sorted and unique: the
// CORS allowlist of the token, revocation and userinfo endpoints.
func (r *Registry) Origins() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range r.All() {
		for _, o := range c.AllowedOrigins {
			if !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	sort.Strings(out)
	return out
}
