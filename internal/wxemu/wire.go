package wxemu

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The emulator's wire helpers: WeChat's JSON answers and errors, the
// control API's errors, bounded JSON bodies and HTML pages.

// writeJSON writes v with WeChat's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encode"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// wxError writes WeChat's HTTP 200 error body, errmsg ending in WeChat's
// " rid: 6650a1b2-1c2d3e4f-5a6b7c8d" (a space, no comma).
func (e *Emulator) wxError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"errcode": code,
		"errmsg":  msg + " rid: " + e.rid(e.virtualNow()),
	})
}

// ctlError writes a control-API error.
func ctlError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// decodeJSON reads a bounded JSON body into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode JSON body: %w", err)
	}
	return nil
}

// readControl decodes a control API body into v; on failure it answers 400
// with the error and returns false.
func readControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSON(r, v); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return false
	}
	return true
}

// readAPI decodes a WeChat API body into v; on failure it answers errcode
// 47001 ("data format error"), as WeChat does, and returns false.
func (e *Emulator) readAPI(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSON(r, v); err != nil {
		e.wxError(w, 47001, "data format error")
		return false
	}
	return true
}

// render executes a template as an HTML page with the given status.
func (e *Emulator) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := e.tmpl.ExecuteTemplate(w, name, data); err != nil {
		e.log.Error("wxemu template", "template", name, "err", err)
	}
}
