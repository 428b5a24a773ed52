package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/store/sqlite"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// open opens dsn and closes it when t ends.
func open(t testing.TB, dsn string, now func() time.Time) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dsn, now)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// backends are the two ways the suite opens a database: a WAL file (the
// production shape) and the in-memory one of other packages' tests.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"File", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db") }},
	{"Memory", func(t *testing.T) string { return "sqlite::memory:" }},
}

func TestDB_Contract(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			newDB := func(t *testing.T, now func() time.Time) *sqlite.DB { return open(t, b.dsn(t), now) }
			storetest.Contract(t, newDB)
		})
	}
}

func TestOpen_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wxauth.db")
	ctx := context.Background()
	first, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := first.UpsertUser(ctx, store.User{AppID: "wx1", OpenID: "o1"}, storetest.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Migrations already applied are skipped; the data is still there.
	second := open(t, "sqlite:"+path, nil)
	got, err := second.FindUser(ctx, "wx1", "o1")
	if err != nil || got.ID != u.ID {
		t.Fatalf("FindUser after reopen = %v, %v; want %s", got.ID, err, u.ID)
	}
	if err := second.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestOpen_MemoryIsPrivate(t *testing.T) {
	ctx := context.Background()
	a := open(t, ":memory:", nil)
	b := open(t, "sqlite::memory:", nil)
	if err := a.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second in-memory database sees the first's record: %v", err)
	}
}

func TestOpen_Errors(t *testing.T) {
	ctx := context.Background()
	if _, err := sqlite.Open(ctx, "sqlite:", nil); err == nil {
		t.Fatal("Open of an empty path succeeded")
	}
	dir := t.TempDir()
	if _, err := sqlite.Open(ctx, filepath.Join(dir, "missing", "sub", "wxauth.db"), nil); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

func TestDB_Sweep(t *testing.T) {
	// A clock that can go back: after a sweep, a swept record stays gone
	// even when it would be live again by the clock.
	clock := clocktest.New(storetest.Epoch())
	db := open(t, "sqlite::memory:", clock.Now)
	ctx := context.Background()
	for _, k := range []string{"short", "unswept"} {
		if err := db.Put(ctx, k, []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Put(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Set(storetest.Epoch().Add(time.Minute))
	if err := db.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if err := db.Put(ctx, "unswept", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Set(storetest.Epoch())
	if _, err := db.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a swept record: %v", err)
	}
	for _, k := range []string{"long", "unswept"} {
		if _, err := db.Get(ctx, k); err != nil {
			t.Fatalf("Get %s after Sweep: %v", k, err)
		}
	}
}

// TestMirroredRecords runs the Records contract on the SQLite records with
// an in-memory mirror (what `authsvc serve` does for revocations), and
// checks that a mirror that has evicted reads through to the database and
// that Load fills a fresh mirror from it.
func TestMirroredRecords(t *testing.T) {
	t.Run("Contract", func(t *testing.T) {
		storetest.TestRecords(t, func(t *testing.T, now func() time.Time) store.Records {
			mem := memory.New(now)
			t.Cleanup(func() { mem.Close() })
			return store.MirroredRecords{Mirror: mem, Durable: open(t, "sqlite::memory:", now)}
		})
	})
	t.Run("EvictedReadsThrough", func(t *testing.T) {
		ctx := context.Background()
		db := open(t, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"), nil)
		mem := memory.New(nil, memory.WithMaxRecordBytes(64*200))
		t.Cleanup(func() { mem.Close() })
		m := store.MirroredRecords{Mirror: mem, Durable: db}
		const n = 2000
		for i := range n {
			if err := m.Put(ctx, fmt.Sprint("revoked:", i), []byte{1}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		found := 0
		for i := range n {
			if _, err := m.Get(ctx, fmt.Sprint("revoked:", i)); err == nil {
				found++
			}
		}
		t.Logf("%d records through a mirror bounded at %d bytes (%d evicted) -> %d found", n, 64*200, mem.Evictions(), found)
		if mem.Evictions() == 0 || found != n {
			t.Fatalf("%d evictions, %d of %d found", mem.Evictions(), found, n)
		}

		fresh := memory.New(nil)
		t.Cleanup(func() { fresh.Close() })
		m2 := store.MirroredRecords{Mirror: fresh, Durable: db}
		if err := m2.Load(ctx, func(ctx context.Context, fn func(string, []byte, time.Duration) error) error {
			return db.EachRecord(ctx, "revoked:", fn)
		}); err != nil {
			t.Fatal(err)
		}
		if st := fresh.RecordStats(); st.Records != n {
			t.Fatalf("Load filled %d records, want %d", st.Records, n)
		}
		if _, err := m2.Get(ctx, "revoked:7"); err != nil {
			t.Fatalf("Get after Load: %v", err)
		}
	})
}

// TestBatchedRecords runs the Records contract on grouped Puts, and checks
// that Close writes what is waiting.
func TestBatchedRecords(t *testing.T) {
	t.Run("Contract", func(t *testing.T) {
		storetest.TestRecords(t, func(t *testing.T, now func() time.Time) store.Records {
			b := open(t, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"), now).Batched(time.Hour, 0)
			t.Cleanup(func() { b.Close() })
			return b
		})
	})
	t.Run("CloseWrites", func(t *testing.T) {
		ctx := context.Background()
		path := "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db")
		db := open(t, path, nil)
		b := db.Batched(time.Hour, 0)
		const n = 300
		for i := range n {
			if err := b.Put(ctx, fmt.Sprint("state:", i), []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		written := 0
		db.EachRecord(ctx, "state:", func(string, []byte, time.Duration) error { written++; return nil })
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		after := 0
		db.EachRecord(ctx, "state:", func(string, []byte, time.Duration) error { after++; return nil })
		t.Logf("%d Puts with an hour's interval: %d in the database before Close, %d after", n, written, after)
		if after != n {
			t.Fatalf("%d of %d records written by Close", after, n)
		}
	})
}
