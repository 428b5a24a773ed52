package logtest

import (
	"log/slog"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	var b Buffer
	logger := slog.New(slog.NewJSONHandler(&b, nil))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { logger.Info("hello", "n", i) })
	}
	wg.Wait()
	lines := b.JSONLines(t)
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		if l["msg"] != "hello" {
			t.Fatalf("line %v", l)
		}
	}
	if b.String() == "" {
		t.Fatal("String is empty")
	}
}
