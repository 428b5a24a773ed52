package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandleScript(t *testing.T) {
	h := handleScript()
	get := func(target string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := get("/wxauth.js")
	etag, version := rec.Header().Get("ETag"), rec.Header().Get("X-Wxauth-Version")
	switch {
	case rec.Code != http.StatusOK:
		t.Fatalf("status %d", rec.Code)
	case rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8":
		t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
	case etag == "" || etag != `"`+version+`"`:
		t.Errorf("ETag %q, version %q", etag, version)
	case rec.Header().Get("Cache-Control") != "public, max-age=3600":
		t.Errorf("Cache-Control of the plain URL %q", rec.Header().Get("Cache-Control"))
	case !strings.Contains(rec.Body.String(), "window.wxauth"):
		t.Errorf("body is not wxauth.js: %.100s", rec.Body)
	}

	t.Run("Revalidated", func(t *testing.T) {
		if rec := get("/wxauth.js", "If-None-Match", etag); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("If-None-Match of the current ETag: %d with %d bytes, want 304", rec.Code, rec.Body.Len())
		}
		if rec := get("/wxauth.js", "If-None-Match", `"0000"`); rec.Code != http.StatusOK {
			t.Errorf("If-None-Match of another ETag: %d, want 200", rec.Code)
		}
	})
	t.Run("Versioned", func(t *testing.T) {
		if cc := get("/wxauth.js?v=" + version).Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("Cache-Control of the current version %q, want immutable", cc)
		}
		if cc := get("/wxauth.js?v=stale").Header().Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("Cache-Control of another version %q is immutable", cc)
		}
	})
}
