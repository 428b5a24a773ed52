package wxemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
)

// upload posts data as the "media" part of a multipart form to
// cgi-bin/media/upload?type=typ.
func upload(tb testing.TB, base, tok, typ string, data []byte) map[string]any {
	tb.Helper()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("media", "f.jpg")
	fw.Write(data)
	mw.Close()
	resp, err := http.Post(base+"/cgi-bin/media/upload?type="+typ+"&access_token="+url.QueryEscape(tok), mw.FormDataContentType(), &form)
	if err != nil {
		tb.Fatal(err)
	}
	return decodeResp(tb, resp)
}

func getJSONArray(tb testing.TB, u string) []map[string]any {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestEmulator_Media(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok, _ := fetchToken(t, srv)["access_token"].(string)
	data := bytes.Repeat([]byte{1, 2, 3}, 100000)

	t.Run("UploadAndGet", func(t *testing.T) {
		m := upload(t, srv.URL, tok, "image", data)
		id, _ := m["media_id"].(string)
		if errcode(t, m) != 0 || id == "" || m["type"] != "image" {
			t.Fatalf("upload: %v", m)
		}
		list := getJSONArray(t, srv.URL+"/emu/media")
		sum := sha256.Sum256(data)
		if len(list) != 1 || list[0]["size"] != float64(len(data)) || list[0]["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("/emu/media: %v", list)
		}
		resp, err := http.Get(srv.URL + "/cgi-bin/media/get?media_id=" + id + "&access_token=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		if n != int64(len(data)) || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("media/get: %d bytes %v", n, resp.Header)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		wantCode(t, upload(t, srv.URL, tok, "gif", data), 40004)
		wantCode(t, upload(t, srv.URL, tok, "thumb", data), 40006) // over 64 KB
		wantCode(t, upload(t, srv.URL, "bad", "image", data), 40001)
		wantCode(t, getJSON(t, srv.URL+"/cgi-bin/media/get?media_id=nope&access_token="+url.QueryEscape(tok)), 40007)
	})
	t.Run("CustomSend", func(t *testing.T) {
		send := func(body string) map[string]any {
			return postJSON(t, srv.URL+"/cgi-bin/message/custom/send?access_token="+url.QueryEscape(tok), body)
		}
		if m := send(`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"hi"}}`); errcode(t, m) != 0 || m["errmsg"] != "ok" {
			t.Fatalf("custom/send to a follower: %v", m)
		}
		wantCode(t, send(`{"touser":"nobody","msgtype":"text"}`), 40003)
		wantCode(t, send(`{"touser":"oWXEMU_alice","msgtype":"fax"}`), 40008)
		wantCode(t, send(`not json`), 47001)
	})
}
