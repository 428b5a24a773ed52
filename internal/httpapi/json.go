package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// maxJSONBody caps every JSON request body, in bytes.
const maxJSONBody = 64 << 10

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readJSON reads a JSON body into v (see decodeJSON); on a bad body it
// answers the error and returns false.
func (p *pages) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if e := decodeJSON(w, r, v); e != nil {
		p.error(w, r, *e)
		return false
	}
	return true
}

// decodeJSON reads a JSON body (at most maxJSONBody bytes) into v. An empty
// body leaves v untouched. Errors are apiErrors ready to write.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) *apiError {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			e := errBadRequest.withMessage("The body must be application/json.", "请求体必须是 application/json。")
			e.Status = http.StatusUnsupportedMediaType
			return &e
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := errTooLarge
			return &e
		}
		e := errBadRequest.withMessage("The body is not valid JSON for this endpoint.", "请求体不是有效的 JSON。")
		return &e
	}
	return nil
}
