package callback

import (
	"errors"
	"fmt"
	"strings"
)

// replySpec is a reply written by people (rules YAML) or by the owner's
// service (forwarder JSON): {"type": "text", "content": "..."}. The field
// names are the same in both.
type replySpec struct {
	Type         string        `yaml:"type" json:"type"`
	Content      string        `yaml:"content" json:"content"`
	MediaID      string        `yaml:"media_id" json:"media_id"`
	Title        string        `yaml:"title" json:"title"`
	Description  string        `yaml:"description" json:"description"`
	MusicURL     string        `yaml:"music_url" json:"music_url"`
	HQMusicURL   string        `yaml:"hq_music_url" json:"hq_music_url"`
	ThumbMediaID string        `yaml:"thumb_media_id" json:"thumb_media_id"`
	Articles     []articleSpec `yaml:"articles" json:"articles"`
	KfAccount    string        `yaml:"kf_account" json:"kf_account"`
}

type articleSpec struct {
	Title       string `yaml:"title" json:"title"`
	Description string `yaml:"description" json:"description"`
	PicURL      string `yaml:"pic_url" json:"pic_url"`
	URL         string `yaml:"url" json:"url"`
}

// errSpec is wrapped by the errors of replySpec.build.
var errSpec = errors.New("invalid reply")

// build turns the spec into a Reply; type "success" (or "none") is a nil
// Reply. Errors name the missing field.
func (s replySpec) build() (Reply, error) {
	need := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%w: type %s needs %s", errSpec, s.Type, field)
		}
		return nil
	}
	switch strings.ToLower(s.Type) {
	case "text":
		if err := need("content", s.Content); err != nil {
			return nil, err
		}
		return TextReply{Content: s.Content}, nil
	case "image":
		if err := need("media_id", s.MediaID); err != nil {
			return nil, err
		}
		return ImageReply{MediaID: s.MediaID}, nil
	case "voice":
		if err := need("media_id", s.MediaID); err != nil {
			return nil, err
		}
		return VoiceReply{MediaID: s.MediaID}, nil
	case "video":
		if err := need("media_id", s.MediaID); err != nil {
			return nil, err
		}
		return VideoReply{MediaID: s.MediaID, Title: s.Title, Description: s.Description}, nil
	case "music":
		if s.MusicURL == "" && s.HQMusicURL == "" {
			return nil, fmt.Errorf("%w: type music needs music_url or hq_music_url", errSpec)
		}
		return MusicReply{Title: s.Title, Description: s.Description, MusicURL: s.MusicURL,
			HQMusicURL: s.HQMusicURL, ThumbMediaID: s.ThumbMediaID}, nil
	case "news":
		if len(s.Articles) == 0 || len(s.Articles) > 8 {
			return nil, fmt.Errorf("%w: type news needs 1 to 8 articles, has %d", errSpec, len(s.Articles))
		}
		n := NewsReply{Articles: make([]Article, len(s.Articles))}
		for i, a := range s.Articles {
			if strings.TrimSpace(a.Title) == "" {
				return nil, fmt.Errorf("%w: articles[%d] needs title", errSpec, i)
			}
			n.Articles[i] = Article(a)
		}
		return n, nil
	case "transfer_customer_service", "transfer":
		return TransferReply{KfAccount: s.KfAccount}, nil
	case "success", "none":
		return nil, nil
	case "":
		return nil, fmt.Errorf("%w: type is missing", errSpec)
	}
	return nil, fmt.Errorf("%w: unknown type %q (text, image, voice, video, music, news, transfer_customer_service, success)", errSpec, s.Type)
}
