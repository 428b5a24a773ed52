package httpapi

import (
	"context"
	"net/http"

	"github.com/wxauth/wxauth/internal/login"
)

// loginPages lets package login render wxauth's H5 error pages and map
// internal errors the way every other endpoint does.
type loginPages struct{ p *pages }

var _ login.Pages = loginPages{}

// Problem renders pr as the H5 page (JSON for API clients). login.Problem
// and apiError have the same fields, so each converts to the other.
func (l loginPages) Problem(w http.ResponseWriter, r *http.Request, pr login.Problem) {
	l.p.error(w, r, apiError(pr))
}

// FromError is [pages.fromError] as a login.Problem.
func (l loginPages) FromError(ctx context.Context, step string, err error) login.Problem {
	return login.Problem(l.p.fromError(ctx, step, err))
}

// RedirectRefused is [pages.redirectRefused] as a login.Problem: plain
// words for the user, the reason and the setting in the operator's log.
func (l loginPages) RedirectRefused(ctx context.Context, raw string, err error) login.Problem {
	return login.Problem(l.p.redirectRefused(ctx, raw, err))
}

// qrFlowPrefix marks a QR login attempt that ends a client's authorization
// request (login.Service.CompleteQR) instead of a cookie login.
const qrFlowPrefix = "flow:"

// handleLoginQR serves GET /login/qr?flow=HANDLE, where the authorization
// endpoint sends a desktop browser: the QR login page for that client's
// login.
func handleLoginQR(p *pages, lg *login.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.URL.Query().Get("flow")
		if !lg.QRFlow(r.Context(), h) {
			p.error(w, r, errLoginExpired)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/qr/login?redirect="+qrFlowPrefix+h, http.StatusFound)
	})
}
