package callback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// The Server wraps its Handler in three adapters, outermost first:
//
//	withBudget  answers nil ("success") when the budget is spent; the
//	            handler runs on, and its result is still recorded (with
//	            Config.Inline, on the request's goroutine: the handler's
//	            context still ends with the budget)
//	withDedup   handles a message once per de-duplication record and
//	            answers redeliveries with the recorded reply (wrapped in
//	            redelivered, so that the Server reports a duplicate)
//	withErrors  turns ErrNotHandled, errors and panics into nil, logged
//
// so that each concern is a func(Handler) Handler, testable alone.

// encodedReply is a reply already encoded as plaintext XML, header
// included, as kept in a de-duplication record; the Server writes it as is.
type encodedReply []byte

// MsgType returns "" (the type is inside the encoded XML).
func (encodedReply) MsgType() string { return "" }

func (r encodedReply) appendBody(b []byte) []byte { return b }

// withBudget runs next in its own goroutine with a context ending after the
// budget, detached from the request's cancellation (the result is still
// recorded for redeliveries when WeChat hangs up). It answers nil when the
// budget is spent or the request ends first.
func (s *Server) withBudget(next Handler) Handler {
	if s.inline {
		return s.withInlineBudget(next)
	}
	type result struct {
		r   Reply
		err error
	}
	return HandlerFunc(func(reqCtx context.Context, m *Message) (Reply, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), s.budget)
		defer cancel()
		done := make(chan result, 1)
		go func() {
			r, err := next.ServeMessage(ctx, m)
			done <- result{r, err}
		}()
		select {
		case res := <-done:
			return res.r, res.err
		case <-ctx.Done():
			s.logger.LogAttrs(reqCtx, slog.LevelWarn, "callback handler past budget, answering success",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event), slog.Duration("budget", s.budget))
		case <-reqCtx.Done():
		}
		return nil, nil
	})
}

// withInlineBudget runs next on the request's goroutine with a context
// ending after the budget, detached from the request's cancellation like
// withBudget's. It saves the goroutine and the hand-off of withBudget, but
// cannot answer before next returns: it is for handlers that honour their
// context and answer in memory (Config.Inline). It answers nil when next
// returned after the budget.
func (s *Server) withInlineBudget(next Handler) Handler {
	return HandlerFunc(func(reqCtx context.Context, m *Message) (Reply, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), s.budget)
		defer cancel()
		r, err := next.ServeMessage(ctx, m)
		if ctx.Err() != nil {
			s.logger.LogAttrs(reqCtx, slog.LevelWarn, "callback handler past budget, answering success",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event), slog.Duration("budget", s.budget))
			return nil, nil
		}
		return r, err
	})
}

// withErrors makes next total: ErrNotHandled becomes nil, other errors and
// panics are logged (without message contents) and become nil. It also logs
// each handled message at debug level.
func (s *Server) withErrors(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, m *Message) (reply Reply, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.logger.LogAttrs(ctx, slog.LevelError, "callback handler panicked, answering success",
					slog.String("msg_type", m.MsgType), slog.String("event", m.Event))
				reply, err = nil, nil
			}
		}()
		reply, err = next.ServeMessage(ctx, m)
		switch {
		case errors.Is(err, ErrNotHandled):
			reply = nil
		case err != nil:
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback handler failed, answering success",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event), slog.String("error", err.Error()))
			reply = nil
		}
		if s.logger.Enabled(ctx, slog.LevelDebug) {
			msgType := ""
			if reply != nil {
				msgType = reply.MsgType()
			}
			s.logger.LogAttrs(ctx, slog.LevelDebug, "callback handled",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event),
				slog.String("openid_hash", hashID(m.FromUserName)), slog.Bool("encrypted", m.Encrypted),
				slog.String("reply_type", msgType))
		}
		return reply, nil
	})
}

// withDedup calls next once per message: the first delivery claims the
// record "dedup:<key>" (PutIfAbsent, pending) and stores the encoded reply
// when next returns; a redelivery polls the record until the reply is
// there (or ctx ends) and answers with the same plaintext. When Records
// fails, it logs and calls next anyway.
func (s *Server) withDedup(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		key := dedupKey(m)
		claimed, err := s.records.PutIfAbsent(ctx, key, []byte{recPending}, s.dedupTTL)
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback de-duplication unavailable, handling anyway",
				slog.String("msg_type", m.MsgType), slog.String("error", err.Error()))
			return next.ServeMessage(ctx, m)
		}
		if !claimed {
			return redelivered{s.await(ctx, key, m)}, nil
		}
		reply, err := next.ServeMessage(ctx, m)
		if err != nil {
			reply = nil // withErrors normally absorbs errors first
		}
		rec := make([]byte, 1, 512)
		rec[0] = recDone
		rec = s.encode(ctx, rec, m, reply)
		// The record gets at least storeTimeout, past the budget too: a
		// record left pending would make WeChat's redeliveries wait and then
		// run the handler again. Detaching costs a timer, so only when the
		// budget leaves less than that.
		sctx := ctx
		if d, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(d) < storeTimeout {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
			defer cancel()
		}
		if err := s.records.Put(sctx, key, rec, s.dedupTTL); err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback de-duplication record not stored",
				slog.Int("reply_bytes", len(rec)-1), slog.String("error", err.Error()))
		}
		if len(rec) == 1 {
			return nil, nil
		}
		return encodedReply(rec[1:]), nil
	})
}

// await waits for the result of an earlier delivery of the same message,
// polling Records every pollInterval until ctx ends; nil means "success".
func (s *Server) await(ctx context.Context, key string, m *Message) Reply {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback redelivery while first still running, answering success",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event))
			return nil
		case <-t.C:
		}
		rec, err := s.records.Get(ctx, key)
		switch {
		case err == nil && len(rec) > 0 && rec[0] == recDone:
			s.logger.LogAttrs(ctx, slog.LevelDebug, "callback redelivery answered from record",
				slog.String("msg_type", m.MsgType), slog.String("event", m.Event))
			if len(rec) == 1 {
				return nil
			}
			return encodedReply(rec[1:])
		case errors.Is(err, store.ErrNotFound):
			return nil // expired between the two calls: nothing to repeat
		case err != nil && ctx.Err() == nil:
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback de-duplication record unreadable",
				slog.String("error", err.Error()))
		}
		t.Reset(pollInterval)
	}
}

// dedupKey names the de-duplication record of m: by MsgId for messages, by
// FromUserName+CreateTime+MsgType+Event+EventKey (hashed) otherwise.
func dedupKey(m *Message) string {
	if m.MsgID != 0 && !m.IsEvent() {
		var b [96]byte
		k := append(append(append(b[:0], store.KeyDedup...), m.ToUserName...), ":m:"...)
		return string(strconv.AppendUint(k, m.MsgID, 10))
	}
	h := sha256.New()
	for _, p := range [...]string{m.FromUserName, strconv.FormatInt(m.CreateTime, 10), m.MsgType, m.Event, m.EventKey} {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return string(store.KeyDedup) + m.ToUserName + ":e:" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
