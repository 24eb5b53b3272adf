// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema on the server named by APIKEY_TEST_POSTGRES_DSN, dropped with
// everything in it when the test ends. Tests skip, with a message naming
// the variable, when it is not set.
package pgtest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey/postgres"
)

// DSNVar is the environment variable that names the test server.
const DSNVar = "APIKEY_TEST_POSTGRES_DSN"

// DSN returns the DSN of the test server, or skips the test.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(DSNVar)
	if dsn == "" {
		tb.Skip(DSNVar + " is not set; set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	return dsn
}

// Schema creates an empty schema apikey_test_<random> on the server of dsn
// and drops it, with everything in it, when the test ends.
func Schema(tb testing.TB, dsn string) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to %s: %v", DSNVar, err)
	}
	schema := "apikey_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	return schema
}

// SchemaDSN returns a DSN whose connections work in a fresh schema (see
// Schema), for code under test that opens its own connections.
func SchemaDSN(tb testing.TB) string {
	tb.Helper()
	dsn := DSN(tb)
	schema := Schema(tb, dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("parse %s: %v", DSNVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a Store, not migrated, whose connections work in schema. It
// is closed when the test ends, before the schema is dropped.
func Open(tb testing.TB, dsn, schema string, configure ...func(*pgxpool.Config)) *postgres.Store {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("parse %s: %v", DSNVar, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	for _, f := range configure {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pgxpool: %v", err)
	}
	s := postgres.New(pool)
	tb.Cleanup(s.Close)
	return s
}

// NewStore returns a migrated Store in a fresh schema.
func NewStore(tb testing.TB, configure ...func(*pgxpool.Config)) *postgres.Store {
	tb.Helper()
	dsn := DSN(tb)
	s := Open(tb, dsn, Schema(tb, dsn), configure...)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s
}
