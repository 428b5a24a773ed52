package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	qr "github.com/piglig/go-qr"

	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/redirect"
)

// Desktop login by scanning the Official Account's QR code (扫码登录): the
// page, the attempt API, its event stream and the completion that issues
// the session. The scan itself arrives at /wx (qrlogin.Service is the first
// callback handler).
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html

const (
	// qrHeartbeat is the interval of the SSE comment lines that keep
	// proxies from closing an idle stream; each also re-reads the status,
	// in case a broker message was lost.
	qrHeartbeat = 15 * time.Second
	// qrCookie holds the key that binds an attempt to its browser; its
	// Path is the attempt's own /qr/sessions/{id}/.
	qrCookie = "wxauth_qr"
	// qrPageCookie holds "id.key" of the attempt the QR login page showed
	// last (Path /qr/login), so that reloading the page shows the same QR
	// code instead of creating another at WeChat.
	qrPageCookie = "wxauth_qr_page"
	// qrReuseMin is the least scanning time an attempt must have left to be
	// shown again on a reload; with less, a new QR code is made.
	qrReuseMin = time.Minute
	// qrImageSize is the largest side of the rendered QR code, in pixels.
	qrImageSize = 320
)

var (
	errQRPending = apiError{Status: http.StatusConflict, Code: "authorization_pending",
		Title: "Not scanned yet", TitleZh: "尚未扫码",
		Message:   "Scan the QR code with WeChat first.",
		MessageZh: "请先用微信扫描二维码。"}
	errQRExpired = apiError{Status: http.StatusBadRequest, Code: "expired_token",
		Title: "This QR code has expired", TitleZh: "二维码已失效",
		Message:   "The QR code was already used or has expired. Please get a new one.",
		MessageZh: "该二维码已使用或已过期，请刷新后重新扫码。"}
)

// qrError maps the errors of qrlogin to what the client sees.
func qrError(ctx context.Context, p *pages, step string, a qrlogin.Attempt, err error) apiError {
	retry := ""
	if a.Redirect != "" {
		retry = "/qr/login?redirect=" + url.QueryEscape(a.Redirect)
	}
	switch {
	case errors.Is(err, qrlogin.ErrNotFound):
		return errNotFound
	case errors.Is(err, qrlogin.ErrBinding):
		return errQRMismatch.withRetry(retry)
	case errors.Is(err, qrlogin.ErrPending):
		return errQRPending
	case errors.Is(err, qrlogin.ErrExpired), errors.Is(err, qrlogin.ErrUsed):
		return errQRExpired.withRetry(retry)
	}
	return p.fromError(ctx, step, err)
}

// qrAttempt is the JSON of a created attempt (POST /qr/sessions).
type qrAttempt struct {
	ID        string `json:"id"`         // 22 base62 characters
	Ticket    string `json:"ticket"`     // WeChat's QR ticket (showqrcode)
	QRURL     string `json:"qr_url"`     // the QR code's content
	ImageURL  string `json:"image_url"`  // our PNG of it: /qr/sessions/{id}/qr.png
	ExpiresIn int    `json:"expires_in"` // seconds left to scan
}

// qrCreator is what creating a QR login attempt takes: the QR login
// service, the redirect allowlist, the OpenID Provider (for an attempt that
// ends a client's authorization request), the service-wide budget of WeChat
// QR codes, the public URL (cookie Secure, image URLs) and the clock.
type qrCreator struct {
	svc       *qrlogin.Service
	allow     *redirect.Allowlist
	login     *login.Service
	budget    *qrBudget
	publicURL string
	secure    bool // publicURL is https: the cookies are Secure
	now       func() time.Time
}

// target returns where an attempt for redirect ends: a client's
// authorization request (flow:HANDLE) while the provider still holds it,
// else the page redirect as the allowlist normalises it. Errors:
// errLoginExpired for a flow past its time, the refused-redirect page for
// a page the allowlist refuses.
func (c qrCreator) target(ctx context.Context, p *pages, redirect string) (string, *apiError) {
	if h, ok := strings.CutPrefix(redirect, qrFlowPrefix); ok {
		if !c.login.QRFlow(ctx, h) {
			e := errLoginExpired
			return "", &e
		}
		return redirect, nil
	}
	t, err := c.allow.Check(redirect, true)
	if err != nil {
		e := p.redirectRefused(ctx, redirect, err)
		return "", &e
	}
	return t.String(), nil
}

// qrCookieFor is a cookie of the QR login (HttpOnly, SameSite=Lax, Secure
// behind HTTPS); maxAge in seconds, -1 clears it.
func qrCookieFor(name, value, path string, maxAge int, secure bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode}
}

// createQRAttempt creates an attempt ending at redirect (already resolved
// by qrCreator.target) and sets its browser-binding cookie.
func createQRAttempt(w http.ResponseWriter, r *http.Request, p *pages, c qrCreator, redirect string) (qrlogin.Attempt, *apiError) {
	if wait := c.budget.take(c.now()); wait > 0 {
		retryAfter(w, wait)
		e := errQRBudget
		return qrlogin.Attempt{}, &e
	}
	a, err := c.svc.Create(r.Context(), redirect)
	if err != nil {
		e := p.fromError(r.Context(), "create qr attempt", err)
		return qrlogin.Attempt{}, &e
	}
	http.SetCookie(w, qrCookieFor(qrCookie, a.Key, "/qr/sessions/"+a.ID+"/",
		int((c.svc.TTL()+qrlogin.CompleteWindow)/time.Second), c.secure))
	return a, nil
}

var errQRMismatch = apiError{Status: http.StatusBadRequest, Code: "invalid_request",
	Title: "Login started elsewhere", TitleZh: "登录状态不匹配",
	Message:   "This login was started in another browser or tab. Please start again here.",
	MessageZh: "该登录请求来自其他浏览器或页面，请在此处重新登录。"}

// handleQRLogin serves GET /qr/login?redirect=R: the desktop login page
// (zh/en) with a new attempt's QR code, a countdown and the instructions;
// it waits on /qr/sessions/{id}/events (polling /qr/sessions/{id} when
// EventSource fails or is refused) and then goes to
// /qr/sessions/{id}/complete. R must pass the allowlist (400 page
// otherwise). A reload by the same browser shows the same attempt while it
// has qrReuseMin left (cookie wxauth_qr_page); a new QR code spends the
// service-wide budget (503 page with Retry-After when it is spent).
func handleQRLogin(p *pages, c qrCreator) http.Handler {
	type pageData struct {
		ID        string
		Ticket    string
		ImageURL  string
		ExpiresIn int
		Redirect  string
		Nonce     string
		// DevURL is the QR code's content when it is not WeChat's (the
		// emulator's scan page in `authsvc dev`), linked for clicking
		// through by hand; empty in production.
		DevURL string
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, e := c.target(r.Context(), p, r.URL.Query().Get("redirect"))
		if e != nil {
			p.error(w, r, *e)
			return
		}
		a, ok := reusableQRAttempt(r, c, target)
		if !ok {
			if a, e = createQRAttempt(w, r, p, c, target); e != nil {
				p.error(w, r, *e)
				return
			}
			http.SetCookie(w, qrCookieFor(qrPageCookie, a.ID+"."+a.Key, "/qr/login", int(c.svc.TTL()/time.Second), c.secure))
		}
		nonce := randomString(22)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		data := pageData{ID: a.ID, Ticket: a.Ticket, ImageURL: "/qr/sessions/" + a.ID + "/qr.png",
			ExpiresIn: a.ExpiresIn(c.now()), Redirect: a.Redirect, Nonce: nonce}
		if u, err := url.Parse(a.QRURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
			u.Hostname() != "weixin.qq.com" && !strings.HasSuffix(u.Hostname(), ".weixin.qq.com") {
			data.DevURL = a.QRURL
		}
		if err := p.tmpl.ExecuteTemplate(w, "qr.html", data); err != nil {
			p.logger.ErrorContext(r.Context(), "render qr page", "err", err, "request_id", RequestID(r.Context()))
		}
	})
}

// reusableQRAttempt returns the attempt named by the browser's
// qrPageCookie when it is still worth showing on a reload: bound to this
// browser (its key), pending, for the same target (qrCreator.target), with
// at least qrReuseMin left to scan. A reload thus costs no WeChat call.
func reusableQRAttempt(r *http.Request, qc qrCreator, target string) (qrlogin.Attempt, bool) {
	c, err := r.Cookie(qrPageCookie)
	if err != nil {
		return qrlogin.Attempt{}, false
	}
	id, key, ok := strings.Cut(c.Value, ".")
	if !ok || !qrlogin.ValidID(id) {
		return qrlogin.Attempt{}, false
	}
	a, err := qc.svc.Status(r.Context(), id)
	if err != nil || !a.HasKey(key) || a.Status != qrlogin.StatusPending || a.Redirect != target ||
		a.ExpiresAt.Sub(qc.now()) < qrReuseMin {
		return qrlogin.Attempt{}, false
	}
	return a, true
}

// handleQRCreate serves POST /qr/sessions {"redirect": R}: 201
// {"id","ticket","qr_url","image_url","expires_in"} and the binding cookie.
// 400 when R is not in the allowlist; 503 when WeChat is busy.
func handleQRCreate(p *pages, c qrCreator) http.Handler {
	type request struct {
		Redirect string `json:"redirect"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if !p.readJSON(w, r, &req) {
			return
		}
		target, e := c.target(r.Context(), p, req.Redirect)
		var a qrlogin.Attempt
		if e == nil {
			a, e = createQRAttempt(w, r, p, c, target)
		}
		if e != nil {
			p.error(w, r, *e)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, qrAttempt{ID: a.ID, Ticket: a.Ticket, QRURL: a.QRURL,
			ImageURL: c.publicURL + "/qr/sessions/" + a.ID + "/qr.png", ExpiresIn: a.ExpiresIn(c.now())})
	})
}

// handleQRStatus serves GET /qr/sessions/{id}: {"status":
// "pending|confirmed|expired|used", "expires_in": N}; 404 JSON for an
// unknown id.
func handleQRStatus(p *pages, svc *qrlogin.Service, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := svc.Status(r.Context(), mux.Vars(r)["id"])
		if err != nil {
			p.error(w, r, qrError(r.Context(), p, "qr status", a, err))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, struct {
			Status    qrlogin.Status `json:"status"`
			ExpiresIn int            `json:"expires_in"`
		}{a.Status, a.ExpiresIn(now())})
	})
}

// handleQRImage serves GET /qr/sessions/{id}/qr.png: the attempt's QR code
// (its ticket's url) as a PNG of at most qrImageSize pixels; 404 for an unknown id.
func handleQRImage(p *pages, svc *qrlogin.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := svc.Status(r.Context(), mux.Vars(r)["id"])
		if err != nil {
			p.error(w, r, qrError(r.Context(), p, "qr image", a, err))
			return
		}
		png, err := qrPNG(a.QRURL, qrImageSize)
		if err != nil {
			p.error(w, r, p.fromError(r.Context(), "render qr", err))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "image/png")
		h.Set("Content-Length", strconv.Itoa(len(png)))
		h.Set("Cache-Control", "private, no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(png)
	})
}

// handleQREvents serves GET /qr/sessions/{id}/events as Server-Sent Events
// (text/event-stream): "event: status" with data {"status": S} at once and
// whenever the status changes, on any instance (store.Broker); a ": ping"
// comment every qrHeartbeat. The stream ends after confirmed, used or
// expired. 404 JSON for an unknown id. Open streams are capped per client
// IP (429) and in total (503), both JSON with Retry-After: the QR page then
// polls GET /qr/sessions/{id} instead.
func handleQREvents(p *pages, svc *qrlogin.Service, streams *streamLimiter, proxies []netip.Prefix, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, refused := streams.acquire(ClientIP(r, proxies))
		if refused != nil {
			retryAfter(w, qrHeartbeat)
			p.error(w, r, *refused)
			return
		}
		defer release()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		id := mux.Vars(r)["id"]
		updates, err := svc.Watch(ctx, id) // before the read: nothing is missed in between
		if err != nil {
			p.error(w, r, qrError(ctx, p, "qr watch", qrlogin.Attempt{}, err))
			return
		}
		a, err := svc.Status(ctx, id)
		if err != nil {
			p.error(w, r, qrError(ctx, p, "qr status", a, err))
			return
		}
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		write := func(s string) bool {
			// The server's WriteTimeout would cut the stream: each write
			// gets its own deadline (unsupported writers just go on).
			_ = rc.SetWriteDeadline(time.Now().Add(2 * qrHeartbeat))
			if _, err := fmt.Fprint(w, s); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		send := func(st qrlogin.Status) bool {
			return write("event: status\ndata: {\"status\":\"" + string(st) + "\"}\n\n")
		}
		last := a.Status
		if !send(last) || last != qrlogin.StatusPending {
			return
		}
		expiry := time.NewTimer(max(a.ExpiresAt.Sub(now()), 0))
		defer expiry.Stop()
		beat := time.NewTicker(qrHeartbeat)
		defer beat.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-updates:
				if !ok {
					return
				}
				if st == last {
					continue
				}
				last = st
				if !send(st) || st != qrlogin.StatusPending {
					return
				}
			case <-beat.C:
				if cur, err := svc.Status(ctx, id); err == nil && cur.Status != last {
					last = cur.Status
					if !send(last) || last != qrlogin.StatusPending {
						return
					}
					continue
				}
				if !write(": ping\n\n") {
					return
				}
			case <-expiry.C:
				if cur, err := svc.Status(ctx, id); err == nil && cur.Status == qrlogin.StatusConfirmed {
					send(cur.Status)
					return
				}
				send(qrlogin.StatusExpired)
				return
			}
		}
	})
}

// handleQRComplete serves GET /qr/sessions/{id}/complete: once the attempt
// is confirmed, and from the browser that created it (the wxauth_qr
// cookie), it ends the login: for a client's authorization request a code
// on its redirect_uri, for a cookie login the session and refresh cookies
// and a 302 to the page (no token in the URL). A second call, an
// expired or pending attempt, or another browser get an error page.
func handleQRComplete(p *pages, svc *qrlogin.Service, lg *login.Service, secure bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := mux.Vars(r)["id"]
		key := ""
		if c, err := r.Cookie(qrCookie); err == nil {
			key = c.Value
		}
		a, err := svc.Complete(ctx, id, key)
		if err != nil {
			p.error(w, r, qrError(ctx, p, "complete qr login", a, err))
			return
		}
		http.SetCookie(w, qrCookieFor(qrCookie, "", "/qr/sessions/"+id+"/", -1, secure))
		if h, ok := strings.CutPrefix(a.Redirect, qrFlowPrefix); ok {
			lg.CompleteQR(w, r, h, a.UserID, a.OpenID, a.UnionID)
			return
		}
		lg.IssueCookieSession(w, r, a.Redirect, a.UserID, a.OpenID, a.UnionID)
	})
}

// qrPNG renders content as a QR code PNG at error-correction level M (15%)
// with the standard 4-module quiet zone, at most side pixels wide.
func qrPNG(content string, side int) ([]byte, error) {
	code, err := qr.EncodeText(content, qr.Medium)
	if err != nil {
		return nil, err
	}
	const border = 4
	return code.ToPNGBytes(qr.NewQrCodeImgConfig(max(1, side/(code.Size()+2*border)), border))
}
