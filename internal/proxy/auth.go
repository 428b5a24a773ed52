package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
)

// TokenVerifier checks an OAuth 2.0 access token issued to a client by the
// client_credentials grant (a JWT, compact form, no "Bearer " prefix) and
// returns the client_id it was issued to. Implementations are safe for
// concurrent use. [SessionVerifier] adapts wxauth's session manager.
type TokenVerifier interface {
	// VerifyClientToken returns the token's client_id, or an error when
	// the token does not verify or was not issued to a client for itself.
	VerifyClientToken(ctx context.Context, raw string) (clientID string, err error)
}

// VerifierFunc adapts a function to [TokenVerifier].
type VerifierFunc func(ctx context.Context, raw string) (string, error)

// VerifyClientToken calls f.
func (f VerifierFunc) VerifyClientToken(ctx context.Context, raw string) (string, error) {
	return f(ctx, raw)
}

// ErrNotClientToken is returned by [SessionVerifier]'s verifier for a valid
// JWT that was not issued by the client_credentials grant: without a
// client_id claim, or whose sub is not that client_id (a user's token
// issued to a client does not let its bearer act as the client).
var ErrNotClientToken = errors.New("proxy: not a client_credentials token")

// SessionVerifier returns a [TokenVerifier] over m.Verify (signature, iss,
// aud, exp, revocation): the token must carry a client_id claim equal to its
// sub, which is what the client_credentials grant issues. Errors: those of
// [session.Manager.Verify], or [ErrNotClientToken].
func SessionVerifier(m *session.Manager) TokenVerifier {
	return VerifierFunc(func(ctx context.Context, raw string) (string, error) {
		c, err := m.Verify(ctx, raw)
		if err != nil {
			return "", err
		}
		if c.ClientID == "" || c.Subject != c.ClientID {
			return "", ErrNotClientToken
		}
		return c.ClientID, nil
	})
}

// Proxy tokens: opaque, random, stored hashed in store.Records so that every
// instance accepts them.
const (
	// proxyTokenPrefix names the Records key of a proxy token: the prefix
	// and the lowercase hex SHA-256 of the token; the value is the
	// client_id.
	proxyTokenPrefix = string(store.KeyProxyToken)
	// proxyTokenMark starts every proxy token, so that people and secret
	// scanners can tell it from WeChat's.
	proxyTokenMark = "wxp_"
	// proxyTokenRandom is the number of base62 characters after the mark
	// (about 256 bits).
	proxyTokenRandom = 43
	// maxProxyToken bounds a presented token, in bytes; longer ones are
	// refused without a store read.
	maxProxyToken = 512
	// maxTokenRequest bounds a stable_token request body, in bytes.
	maxTokenRequest = 4 << 10
)

func proxyTokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return proxyTokenPrefix + hex.EncodeToString(sum[:])
}

// issue creates a proxy token bound to c and stores its hash for
// p.tokenTTL.
func (p *Proxy) issue(ctx context.Context, c *clients.Client) (string, *Refusal) {
	tok := proxyTokenMark + store.RandomBase62(proxyTokenRandom)
	if err := p.records.Put(ctx, proxyTokenKey(tok), []byte(c.ID), p.tokenTTL); err != nil {
		p.logError(ctx, "proxy: store proxy token", err)
		return "", refuseUnavailable("store_unavailable", "cannot store the proxy token")
	}
	return tok, nil
}

// lookup returns the client a proxy token is bound to.
func (p *Proxy) lookup(ctx context.Context, tok string) (*clients.Client, *Refusal) {
	if len(tok) > maxProxyToken || !strings.HasPrefix(tok, proxyTokenMark) {
		return nil, refuseInvalidToken()
	}
	id, err := p.records.Get(ctx, proxyTokenKey(tok))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, refuseInvalidToken()
	case err != nil:
		p.logError(ctx, "proxy: read proxy token", err)
		return nil, refuseUnavailable("store_unavailable", "cannot read the proxy token")
	}
	c, ok := p.clients.Lookup(string(id))
	if !ok {
		return nil, refuseInvalidToken()
	}
	return c, nil
}

// Client authenticates the caller of r as a registered client, by the first
// credential present: an Authorization header (Basic client_id and
// client_secret; Bearer with a client_credentials JWT or a proxy token),
// else the access_token query parameter (a proxy token). It does not check
// grants or allowlists. Errors: a [*Refusal] (40001, 41001, 40125, or -1
// when the store is unavailable).
func (p *Proxy) Client(r *http.Request) (*clients.Client, error) {
	c, ref := p.authenticate(r)
	if ref != nil {
		return nil, ref
	}
	return c, nil
}

func (p *Proxy) authenticate(r *http.Request) (*clients.Client, *Refusal) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		switch {
		case strings.EqualFold(scheme, "Basic"):
			id, secret, ok := r.BasicAuth()
			if !ok {
				return nil, refuseInvalidClient()
			}
			c, err := p.clients.Authenticate(id, secret)
			if err != nil {
				return nil, refuseInvalidClient()
			}
			return c, nil
		case strings.EqualFold(scheme, "Bearer") && strings.Count(cred, ".") == 2:
			if p.verifier == nil {
				return nil, refuseInvalidToken()
			}
			id, err := p.verifier.VerifyClientToken(ctx, cred)
			if err != nil {
				if errors.Is(err, store.ErrUnavailable) {
					return nil, refuseUnavailable("store_unavailable", "cannot check the token")
				}
				return nil, refuseInvalidToken()
			}
			c, ok := p.clients.Lookup(id)
			if !ok {
				return nil, refuseInvalidToken()
			}
			return c, nil
		case strings.EqualFold(scheme, "Bearer"):
			return p.lookup(ctx, cred)
		default:
			return nil, refuseInvalidToken()
		}
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return p.lookup(ctx, tok)
	}
	return nil, refuseNoCredential()
}

// tokenResponse is WeChat's answer of cgi-bin/token and stable_token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"` // seconds
}

// serveToken answers an SDK's own token request with a proxy token: GET
// cgi-bin/token?grant_type=client_credential&appid=CLIENT_ID&secret=SECRET,
// or POST cgi-bin/stable_token {"grant_type":"client_credential",
// "appid":CLIENT_ID,"secret":SECRET,"force_refresh":bool}. Every call
// issues a new token (so force_refresh does too); unlike WeChat's, earlier
// tokens stay valid until they expire, so processes of one client never void
// one another's.
func (p *Proxy) serveToken(w http.ResponseWriter, r *http.Request, c *call) {
	var grant, id, secret string
	switch {
	case c.api == "token" && r.Method == http.MethodGet:
		q := r.URL.Query()
		grant, id, secret = q.Get("grant_type"), q.Get("appid"), q.Get("secret")
	case c.api == "stable_token" && r.Method == http.MethodPost:
		var req struct {
			GrantType    string `json:"grant_type"`
			AppID        string `json:"appid"`
			Secret       string `json:"secret"`
			ForceRefresh bool   `json:"force_refresh"`
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequest+1))
		if err != nil || len(b) > maxTokenRequest || json.Unmarshal(b, &req) != nil {
			c.refuse(w, refuseBadRequest(47001, "data format error"))
			return
		}
		grant, id, secret = req.GrantType, req.AppID, req.Secret
	case c.api == "token":
		c.refuse(w, refuseBadRequest(43001, "require GET method"))
		return
	default:
		c.refuse(w, refuseBadRequest(43002, "require POST method"))
		return
	}
	switch {
	case grant != "client_credential":
		c.refuse(w, refuseBadRequest(40002, "invalid grant_type"))
		return
	case id == "":
		c.refuse(w, refuseBadRequest(41002, "appid missing"))
		return
	case secret == "":
		c.refuse(w, refuseBadRequest(41004, "appsecret missing"))
		return
	}
	cl, err := p.clients.Authenticate(id, secret)
	if err != nil {
		c.refuse(w, refuseInvalidClient())
		return
	}
	c.client = cl.ID
	if !cl.HasGrant(clients.GrantClientCredentials) {
		c.refuse(w, refuseNotAllowed("client is not registered for client_credentials"))
		return
	}
	if ref := p.allow(cl); ref != nil {
		c.refuse(w, ref)
		return
	}
	tok, ref := p.issue(r.Context(), cl)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	b, _ := json.Marshal(tokenResponse{AccessToken: tok, ExpiresIn: int(p.tokenTTL.Seconds())})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	c.errcode = "0"
	c.status = http.StatusOK
}

func (p *Proxy) logError(ctx context.Context, msg string, err error) {
	p.log.ErrorContext(ctx, msg, "error", fmt.Sprint(err))
}
