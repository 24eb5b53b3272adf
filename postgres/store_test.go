package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/postgres/pgtest"
)

const dsnVar = pgtest.DSNVar

func testDSN(tb testing.TB) string { tb.Helper(); return pgtest.DSN(tb) }

func newSchema(tb testing.TB, dsn string) string { tb.Helper(); return pgtest.Schema(tb, dsn) }

func openStore(tb testing.TB, dsn, schema string, configure ...func(*pgxpool.Config)) *postgres.Store {
	tb.Helper()
	return pgtest.Open(tb, dsn, schema, configure...)
}

func newStore(tb testing.TB, configure ...func(*pgxpool.Config)) *postgres.Store {
	tb.Helper()
	return pgtest.NewStore(tb, configure...)
}

func TestStore(t *testing.T) { apikeytest.TestStore(t, newHarness) }

// TestChangeFeed runs the change feed and instance registry suite.
func TestChangeFeed(t *testing.T) { apikeytest.TestChangeFeed(t, newHarness) }

// newHarness returns a migrated store in a fresh schema for one subtest of
// a suite.
func newHarness(t *testing.T) apikeytest.Harness {
	s := newStore(t)
	pool := s.Pool()
	return apikeytest.Harness{
		Store: s,
		Exec: func(ctx context.Context, query string) error {
			_, err := pool.Exec(ctx, query)
			return err
		},
		Dump: func(ctx context.Context) ([]byte, error) {
			var dump string
			err := pool.QueryRow(ctx, `SELECT
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_keys t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_events t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_usage t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_revoked_ids t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_changes t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_instances t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_leaks t), '') || E'\n' ||
	coalesce((SELECT string_agg(t::text, E'\n') FROM apikey_migrations t), '')`).Scan(&dump)
			return []byte(dump), err
		},
	}
}

func TestOpenUnreachable(t *testing.T) {
	const dsn = "postgres://postgres:hunter2secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	s, err := postgres.Open(ctx, dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of a closed port took %v, want a fast failure", d)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "postgres: cannot connect to 127.0.0.1:1: ") {
		t.Errorf("Open error = %q, want it to start with %q", msg, "postgres: cannot connect to 127.0.0.1:1: ")
	}
	if strings.Count(msg, "127.0.0.1:1") != 1 || strings.Contains(msg, "dial") {
		t.Errorf("Open error = %q: it repeats the address or the cause", msg)
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("Open error %q contains the password", msg)
	}
	if strings.Count(msg, "127.0.0.1:1") > 2 {
		t.Errorf("Open error repeats the address: %q", msg)
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres:hunter2secret@127.0.0.1:notaport/test",
		"host=127.0.0.1 password=hunter2secret port=notaport",
	} {
		s, err := postgres.Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if !strings.HasPrefix(err.Error(), "postgres: ") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error = %q, want a postgres: error without the password", dsn, err)
		}
	}
}

// withSearchPath adds search_path to a URL or keyword/value DSN.
func withSearchPath(tb testing.TB, dsn, schema string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("parse %s: %v", dsnVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestOpen(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := t.Context()
	s, err := postgres.Open(ctx, withSearchPath(t, dsn, schema))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if s.Pool() == nil {
		t.Fatal("Pool() = nil")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	var where string
	if err := s.Pool().QueryRow(ctx, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'apikey_keys'::regclass").Scan(&where); err != nil || where != schema {
		t.Errorf("apikey_keys lives in schema %q (err %v), want %q: Migrate does not follow search_path", where, err, schema)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

func migrationVersions(t *testing.T, s *postgres.Store) []int32 {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), "SELECT version FROM apikey_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read apikey_migrations: %v", err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatalf("read apikey_migrations: %v", err)
	}
	return v
}

func TestMigrateTwice(t *testing.T) {
	s := newStore(t) // migrated once
	ctx := t.Context()
	first := migrationVersions(t, s)
	if len(first) == 0 || first[0] != 1 {
		t.Fatalf("apikey_migrations after Migrate = %v, want it to start with 1", first)
	}
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "survives migrations"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	if got := migrationVersions(t, s); !slices.Equal(got, first) {
		t.Errorf("apikey_migrations after migrating again = %v, want %v", got, first)
	}
	if got, err := m.Verify(ctx, token); err != nil || got.ID != k.ID {
		t.Errorf("Verify after migrating again: %v, %v", got, err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	const n = 4
	stores := make([]*postgres.Store, n)
	for i := range stores {
		stores[i] = openStore(t, dsn, schema)
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	if got := migrationVersions(t, stores[0]); len(got) == 0 || got[0] != 1 {
		t.Errorf("apikey_migrations after concurrent Migrates = %v", got)
	}
	if _, err := stores[1].Lookup(t.Context(), "NoSuchKey000"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup after concurrent Migrates: err = %v, want %v", err, apikey.ErrNotFound)
	}
}

func TestVerifyWithClosedPool(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "orphan"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("Verify before Close: %v", err)
	}
	s.Close()
	k, err := m.Verify(ctx, token)
	if !errors.Is(err, apikey.ErrUnavailable) || k != nil {
		t.Errorf("Verify with a closed pool = %v, %v; want nil, %v", k, err, apikey.ErrUnavailable)
	}
	if errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify with a closed pool: %v also matches %v", err, apikey.ErrInvalidKey)
	}
	if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "after close"}); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Create with a closed pool: err = %v, want %v", err, apikey.ErrUnavailable)
	}
}

// TestRevokedRowFrozen checks the trigger beyond revoked_at: raw SQL cannot
// change a revoked key's fields, but may replace its hash or delete it.
func TestRevokedRowFrozen(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "frozen", Scopes: []string{"a"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	where := " WHERE id = '" + k.ID + "'"
	for _, set := range []string{
		"name = 'thawed'",
		"scopes = '{admin}'",
		"metadata = '{\"x\": \"1\"}'",
		"expires_at = NULL",
		"expires_at = expires_at + interval '1 day'",
		"owner = 'someone else'",
		"id = 'Other0000000'",
		"revoked_at = revoked_at + interval '1 microsecond'",
	} {
		if _, err := s.Pool().Exec(ctx, "UPDATE apikey_keys SET "+set+where); err == nil {
			t.Errorf("UPDATE ... SET %s of a revoked key succeeded", set)
		} else if !strings.Contains(err.Error(), "apikey: ") {
			t.Errorf("UPDATE ... SET %s: err = %v, want the trigger's apikey: message", set, err)
		}
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE apikey_keys SET hash = 'sha256$00', last_used_at = now()"+where); err != nil {
		t.Errorf("UPDATE of the hash and last_used_at of a revoked key: %v", err)
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE apikey_keys SET revoked_at = revoked_at"+where); err != nil {
		t.Errorf("UPDATE that keeps revoked_at: %v", err)
	}
	if err := s.Delete(ctx, k.ID, nil); err != nil {
		t.Errorf("Delete of a revoked key: %v", err)
	}
}

// countTracer counts the statements and prepares a pool's connections run.
type countTracer struct{ queries, prepares atomic.Int64 }

func (c *countTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}

func (c *countTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *countTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.prepares.Add(1)
	return ctx
}

func (c *countTracer) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// TestLookupOneStatement checks that the hot path stays one cached
// statement: after the first call on a connection, Lookup and Verify run
// exactly one query and prepare nothing.
func TestLookupOneStatement(t *testing.T) {
	tr := new(countTracer)
	s := newStore(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.Tracer = tr
	})
	ctx := t.Context()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "hot"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Lookup(ctx, k.ID); err != nil { // warm the statement cache
		t.Fatalf("Lookup: %v", err)
	}
	tr.queries.Store(0)
	tr.prepares.Store(0)
	if _, err := s.Lookup(ctx, k.ID); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if q, p := tr.queries.Load(), tr.prepares.Load(); q != 2 || p != 0 {
		t.Errorf("a warm Lookup and a Verify ran %d queries and %d prepares, want 2 and 0", q, p)
	}
}

// TestCredits runs the owners and credits suite on real PostgreSQL.
func TestCredits(t *testing.T) { apikeytest.TestCredits(t, newHarness) }
