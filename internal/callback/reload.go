package callback

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// watchInterval is how often [Reloader.Watch] checks the rules file.
const watchInterval = time.Second

// Reloader is a [Handler] serving the [Rules] of a file, swapped atomically
// when the file is reloaded: a message is answered by the old or the new
// rules, never by a mix. A file that fails to load keeps the previous rules
// (and is logged, naming the problem); a reply WeChat cannot deliver
// ([Rules.Warnings]) is logged at Warn level on every load. Safe for
// concurrent use.
type Reloader struct {
	path   string
	logger *slog.Logger
	every  time.Duration // Watch's polling interval (tests shorten it)

	rules atomic.Pointer[Rules]
	mu    sync.Mutex // serializes loads
	seen  fileStamp  // stamp of the last load attempt
}

// fileStamp identifies a version of a file by its modification time and
// size in bytes.
type fileStamp struct {
	mod  time.Time
	size int64
}

// NewReloader loads the rules file at path (see [Rules]) and returns a
// Reloader serving them. It returns the load error (naming the file and the
// rule) when the first load fails. A nil logger discards.
func NewReloader(path string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{path: path, logger: logger, every: watchInterval}
	st, _ := stamp(path)
	rules, err := LoadRules(path)
	if err != nil {
		return nil, err
	}
	r.warn(rules)
	r.rules.Store(rules)
	r.seen = st
	return r, nil
}

// Rules returns the rules currently served.
func (r *Reloader) Rules() *Rules { return r.rules.Load() }

// ServeMessage answers with the current rules (see [Rules.ServeMessage]).
func (r *Reloader) ServeMessage(ctx context.Context, m *Message) (Reply, error) {
	return r.rules.Load().ServeMessage(ctx, m)
}

// Reload reads the file again and swaps the rules in. On error the previous
// rules stay in service, the error is logged and returned. cmd/authsvc calls
// it on SIGHUP.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.load()
}

func (r *Reloader) load() error {
	st, _ := stamp(r.path)
	r.seen = st
	rules, err := LoadRules(r.path)
	if err != nil {
		r.logger.LogAttrs(context.Background(), slog.LevelError, "callback rules not reloaded, keeping the previous ones",
			slog.String("path", r.path), slog.String("error", err.Error()))
		return err
	}
	r.warn(rules)
	r.rules.Store(rules)
	r.logger.LogAttrs(context.Background(), slog.LevelInfo, "callback rules reloaded",
		slog.String("path", r.path), slog.Int("keywords", len(rules.keywords)), slog.Int("events", len(rules.events)))
	return nil
}

// Watch checks the file's modification time and size every second and
// reloads it when they have changed and then stayed the same for one more
// check (so that a file caught while being written, e.g. truncated, is not
// loaded half-written), until ctx ends; it then returns ctx.Err(). A bad
// version is logged once and the previous rules kept.
func (r *Reloader) Watch(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	var pending fileStamp // a changed stamp seen once, loaded if seen again
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		st, err := stamp(r.path)
		if err != nil {
			continue // being replaced; try again next tick
		}
		r.mu.Lock()
		changed := !st.mod.Equal(r.seen.mod) || st.size != r.seen.size
		settled := st.mod.Equal(pending.mod) && st.size == pending.size
		switch {
		case changed && settled:
			_ = r.load() // logged by load
		case changed:
			pending = st
		}
		r.mu.Unlock()
	}
}

// warn logs the replies of rules that WeChat cannot deliver as written.
func (r *Reloader) warn(rules *Rules) {
	for _, w := range rules.Warnings() {
		r.logger.LogAttrs(context.Background(), slog.LevelWarn, "callback rules: a reply WeChat cannot deliver as written",
			slog.String("path", r.path), slog.String("problem", w))
	}
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, fmt.Errorf("callback: rules: %w", err)
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}
