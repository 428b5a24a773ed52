package wxemu

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Temporary media (临时素材) and customer-service messages (客服消息):
// uploads are counted and hashed, never kept, so that tests can send large
// files through the service without the emulator holding them.
// https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/New_temporary_materials.html
// https://developers.weixin.qq.com/doc/offiaccount/Asset_Management/Get_temporary_materials.html
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html

// mediaLimits are WeChat's size limits of temporary media by type, in bytes:
// image 10 MB (PNG, JPEG, GIF), voice 2 MB (AMR, MP3), video 10 MB (MP4),
// thumb 64 KB (JPG).
var mediaLimits = map[string]int64{"image": 10 << 20, "voice": 2 << 20, "video": 10 << 20, "thumb": 64 << 10}

// mediaTypes are the Content-Type of a downloaded medium by type.
var mediaTypes = map[string]string{"image": "image/jpeg", "voice": "audio/amr", "thumb": "image/jpeg"}

// mediaTTL is how long a temporary medium lives (3 days).
const mediaTTL = 72 * time.Hour

// medium is an uploaded temporary medium: its facts, not its bytes.
type medium struct {
	ID        string `json:"media_id"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`   // bytes of the media part
	SHA256    string `json:"sha256"` // hex digest of the media part
	Filename  string `json:"filename"`
	CreatedAt int64  `json:"created_at"` // unix seconds
}

// handleMediaUpload serves POST cgi-bin/media/upload?type=TYPE with a
// multipart form whose "media" part is the file: {"type","media_id",
// "created_at"}. The part is read as a stream, hashed and dropped. Errors:
// 40004 bad type, 41005 no media part, 40006 over the type's size limit.
func (e *Emulator) handleMediaUpload(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	limit, ok := mediaLimits[typ]
	if !ok {
		e.wxError(w, 40004, "invalid media type")
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		e.wxError(w, 41005, "media data missing")
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil { // io.EOF: no "media" part
			e.wxError(w, 41005, "media data missing")
			return
		}
		if part.FormName() != "media" {
			part.Close()
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(part, limit+1))
		if err != nil {
			e.wxError(w, 41005, "media data missing")
			return
		}
		if n > limit || n == 0 {
			e.wxError(w, 40006, "invalid file size")
			return
		}
		m := medium{ID: e.randomString(64), Type: typ, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
			Filename: part.FileName()}
		e.mu.Lock()
		now := e.now()
		m.CreatedAt = now.Unix()
		if e.media == nil {
			e.media = map[string]*medium{}
		}
		for id, old := range e.media {
			if now.Unix()-old.CreatedAt > int64(mediaTTL/time.Second) {
				delete(e.media, id)
			}
		}
		e.media[m.ID] = &m
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"type": typ, "media_id": m.ID, "created_at": m.CreatedAt})
		return
	}
}

// handleMediaGet serves GET cgi-bin/media/get?media_id=ID: the medium as a
// download (Content-Disposition with a filename) of its uploaded size; the
// bytes are a fixed pattern, not the upload. A video answers
// {"video_url": "..."} as WeChat does. Errors: 40007 unknown media_id.
func (e *Emulator) handleMediaGet(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("media_id")
	e.mu.Lock()
	m, ok := e.media[id]
	var cp medium
	if ok {
		cp = *m
	}
	public := e.publicURL
	e.mu.Unlock()
	if !ok {
		e.wxError(w, 40007, "invalid media_id")
		return
	}
	if cp.Type == "video" {
		writeJSON(w, http.StatusOK, map[string]string{"video_url": public + "/emu/video/" + cp.ID + ".mp4"})
		return
	}
	w.Header().Set("Content-Type", mediaTypes[cp.Type])
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": cp.ID + ".jpg"}))
	w.Header().Set("Content-Length", strconv.FormatInt(cp.Size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, io.LimitReader(patternReader{}, cp.Size))
}

// patternReader yields the bytes 0, 1, ..., 255, 0, 1, ... forever.
type patternReader struct{}

func (patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// handleCustomSend serves POST cgi-bin/message/custom/send {"touser",
// "msgtype", ...}: {"errcode":0,"errmsg":"ok"} for a follower. Errors: 47001
// bad JSON, 40003 unknown openid, 40008 bad msgtype, 45015 not a follower.
func (e *Emulator) handleCustomSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
	}
	if !e.readAPI(w, r, &req) {
		return
	}
	switch req.MsgType {
	case "text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard", "miniprogrampage":
	default:
		e.wxError(w, 40008, "invalid message type")
		return
	}
	e.mu.Lock()
	_, known := e.users[req.ToUser]
	_, follows := e.subs[req.ToUser]
	e.mu.Unlock()
	switch {
	case !known:
		e.wxError(w, 40003, "invalid openid")
	case !follows:
		e.wxError(w, 45015, "response out of time limit or subscription is canceled")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
	}
}

// handleMedia serves GET /emu/media: the uploaded media, oldest first, as
// [{media_id, type, size, sha256, filename, created_at}].
func (e *Emulator) handleMedia(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	out := make([]medium, 0, len(e.media))
	for _, m := range e.media {
		out = append(out, *m)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	writeJSON(w, http.StatusOK, out)
}
