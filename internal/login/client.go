package login

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wxauth/wxauth/internal/clients"
)

// opClient is a registered client as the op package sees it: what its
// redirect_uri, response type, grant type and scope checks read.
type opClient struct{ c *clients.Client }

var _ op.Client = (*opClient)(nil)

func (o *opClient) GetID() string                    { return o.c.ID }
func (o *opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o *opClient) PostLogoutRedirectURIs() []string { return o.c.PostLogoutRedirectURIs }

// ApplicationType is web for a confidential client, user agent (a page)
// for a public one.
func (o *opClient) ApplicationType() op.ApplicationType {
	if o.c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

// AuthMethod is none for a public client; a confidential one may use
// client_secret_basic or client_secret_post ([Service.VerifyClient] takes
// either).
func (o *opClient) AuthMethod() oidc.AuthMethod {
	if o.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (o *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (o *opClient) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(o.c.GrantTypes))
	for i, g := range o.c.GrantTypes {
		out[i] = oidc.GrantType(g)
	}
	return out
}

// LoginURL is not used: [Service.Authorize] runs the login step itself.
func (o *opClient) LoginURL(id string) string { return "" }

func (o *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (o *opClient) IDTokenLifetime() time.Duration      { return DefaultIDTokenTTL }

// DevMode lets op accept http redirect URIs: the registry (clients.New)
// already allows http only on loopback hosts and localhost.
func (o *opClient) DevMode() bool { return true }

func (o *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (o *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (o *opClient) IsScopeAllowed(scope string) bool     { return o.c.HasScope(scope) }
func (o *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (o *opClient) ClockSkew() time.Duration             { return 0 }
