package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/postgres"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// newDatabase creates a database wxauth_test_<random> on the server of
// WXAUTH_TEST_POSTGRES_URL (skipping t when unset), drops it when t ends,
// and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("WXAUTH_TEST_POSTGRES_URL")
	if admin == "" {
		t.Skip("WXAUTH_TEST_POSTGRES_URL not set: e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to WXAUTH_TEST_POSTGRES_URL: %v", err)
	}
	name := "wxauth_test_" + strings.ToLower(store.RandomBase62(12))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		conn.Close(ctx)
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("WXAUTH_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// opener returns a constructor opening the database at dbURL, emptied of
// the previous subtest's rows, and closed when the subtest ends.
func opener(dbURL string) func(t testing.TB, now func() time.Time) *postgres.DB {
	return func(t testing.TB, now func() time.Time) *postgres.DB {
		t.Helper()
		ctx := context.Background()
		db, err := postgres.Open(ctx, dbURL, now)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `TRUNCATE users, identities, refresh_tokens, revoked_families,
			signing_keys, records, tokens, locks`); err != nil {
			t.Fatalf("truncate: %v", err)
		}
		return db
	}
}

func TestDB_Contract(t *testing.T) {
	open := opener(newDatabase(t))
	storetest.Contract(t, func(t *testing.T, now func() time.Time) *postgres.DB { return open(t, now) })
}

func TestOpen_ConcurrentMigrations(t *testing.T) {
	dbURL := newDatabase(t)
	ctx := context.Background()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			db, err := postgres.Open(ctx, dbURL, nil)
			if err == nil {
				err = db.Ping(ctx)
				db.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Open: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []string
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001_init", "0002_refresh_successor"}; !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations = %v, want %v", versions, want)
	}
}

func TestOpen_Unavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres:s3cret-pass@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret-pass") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if _, err := postgres.Open(ctx, "postgres://postgres:s3cret-pass@127.0.0.1:bad/x", nil); err == nil ||
		strings.Contains(err.Error(), "s3cret-pass") {
		t.Fatalf("Open of a bad URL: %v", err)
	}
}

func TestDB_ClosedIsUnavailable(t *testing.T) {
	dbURL := newDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on a closed store: %v, want ErrUnavailable", err)
	}
	if err := db.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a closed store: %v, want ErrUnavailable", err)
	}
}

func TestDB_RecoversFromDroppedConnections(t *testing.T) {
	dbURL := newDatabase(t)
	ctx := context.Background()
	db := opener(dbURL)(t, nil)
	if err := db.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// What a server restart or a failover does to the pool's idle
	// connections.
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		_, err := db.Get(ctx, "k")
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Get after the connections dropped: %v, want ErrUnavailable or success", err)
		}
		if attempt == postgres.MaxConns+1 {
			t.Fatalf("Get still failing after %d attempts: %v", attempt, err)
		}
	}
}

func TestDB_Sweep(t *testing.T) {
	// A clock that can go back: after a sweep, a swept record stays gone
	// even when it would be live again by the clock.
	clock := clocktest.New(storetest.Epoch())
	db := opener(newDatabase(t))(t, clock.Now)
	ctx := context.Background()
	if err := db.Put(ctx, "short", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Set(storetest.Epoch().Add(time.Minute))
	if err := db.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	clock.Set(storetest.Epoch())
	if _, err := db.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a swept record: %v", err)
	}
	if _, err := db.Get(ctx, "long"); err != nil {
		t.Fatalf("Get long after Sweep: %v", err)
	}
}
