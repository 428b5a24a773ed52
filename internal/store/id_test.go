package store

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewUserID(t *testing.T) {
	shape := regexp.MustCompile(`^u_[0-9A-Za-z]{22}$`)
	seen := map[string]bool{}
	used := map[rune]bool{}
	for range 5000 {
		id := NewUserID()
		if !shape.MatchString(id) || len(id) != UserIDLen {
			t.Fatalf("NewUserID() = %q, want u_ + 22 base62", id)
		}
		if seen[id] {
			t.Fatalf("NewUserID() repeated %q", id)
		}
		seen[id] = true
		for _, r := range id[2:] {
			used[r] = true
		}
	}
	// 110000 draws over 62 characters: every one appears unless the
	// alphabet or the sampling is broken.
	if len(used) != len(base62) {
		var missing []string
		for _, r := range base62 {
			if !used[r] {
				missing = append(missing, string(r))
			}
		}
		t.Fatalf("characters never drawn: %s", strings.Join(missing, ""))
	}
}

func TestRandomBase62(t *testing.T) {
	if got := RandomBase62(-1); got != "" {
		t.Fatalf("RandomBase62(-1) = %q, want empty", got)
	}
	for _, n := range []int{0, 1, 63, 64, 65, 200} {
		if got := RandomBase62(n); len(got) != n || strings.Trim(got, base62) != "" {
			t.Fatalf("RandomBase62(%d) = %q", n, got)
		}
	}
}
