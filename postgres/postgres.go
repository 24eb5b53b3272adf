// Package postgres is an apikey.Store on PostgreSQL, through pgx/v5 and
// its connection pool, pgxpool.
//
// Open a Store with a connection string, or wrap a pool you already have with
// New, then call Migrate once at start-up:
//
//	s, err := postgres.Open(ctx, "postgres://app@db.internal/app")
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	if err := s.Migrate(ctx); err != nil {
//		return err
//	}
//	m, err := apikey.NewManager(s, apikey.Config{})
//
// The schema lives in tables prefixed apikey_ (apikey_keys, apikey_events,
// apikey_usage, apikey_revoked_ids, apikey_changes, apikey_instances and apikey_migrations), so it can share a database, or a schema chosen with
// search_path, with an application's own tables. Migrations are embedded in
// the binary, append-only, and applied under an advisory lock, so several
// instances may call Migrate at the same time.
//
// Revocation is enforced by the database as well as by the apikey.Manager: a
// trigger refuses any UPDATE that clears or changes revoked_at once set, or
// that changes the name, scopes, metadata or expiry of a revoked key,
// whatever client issues it. The id of every key ever revoked is kept for
// good in apikey_revoked_ids, and no key may be inserted under such an id,
// so that deleting a revoked key and inserting it again cannot revive it;
// key ids never change. These triggers are ENABLE ALWAYS, so that a session
// with session_replication_role = replica cannot skip them, and the store
// names ONLY apikey_keys in every statement, so that the rows of a table
// inheriting it, which no trigger guards, are never read. CheckIntegrity
// reports a schema where any of this no longer holds, and Grant lets a role
// that owns nothing, and so cannot drop or disable a trigger, run the
// service.
//
// Every mutation that comes with an apikey.Event appends it to the audit
// log, apikey_events, in the same transaction as the change; triggers make
// that table append-only. Usage counters live in apikey_usage, written in
// batches by RecordUsage in one statement.
//
// Another trigger sends the id of every changed or deleted key on the
// channel apikey_keys. A Store is an apikey.Invalidator: given to a Manager
// as Config.Invalidator, it turns those notifications into cache
// evictions, so that instances sharing the database, and changes made with
// plain SQL, never leave a stale verification cache behind.
//
// A third trigger appends every change of a key (plain SQL included) to
// apikey_changes, numbered in commit order: the Store is an
// apikey.ChangeFeed, which a Manager with a cache reads to evict what
// changed and to bound how long it trusts its cache, and an
// apikey.InstanceRegistry (apikey_instances), which strict revocations
// wait on.
//
// Lookup, the store call behind every verification, is a single statement
// that pgx prepares once per connection and then runs in one round trip.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey"
)

// Store is an apikey.Store on a pgxpool.Pool. It is safe for concurrent use.
// Create one with Open or New; the zero value is not usable.
type Store struct {
	pool *pgxpool.Pool
}

var _ apikey.Store = (*Store)(nil)

// Open connects to the PostgreSQL database named by dsn, a URL
// ("postgres://user:password@host:5432/db?sslmode=disable") or a keyword/value
// string ("host=... dbname=..."), in any form pgxpool.ParseConfig accepts,
// pool settings such as pool_max_conns included. It pings the server before
// returning, so an unreachable server or a refused login is reported here,
// with the address but never the password. Open does not migrate: call
// Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password from the DSN it quotes.
		return nil, fmt.Errorf("postgres: invalid connection string: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &connectError{addr: address(cfg.ConnConfig.Host, cfg.ConnConfig.Port), err: err}
	}
	return &Store{pool: pool}, nil
}

// New returns a Store over a pool the caller configured. The Store takes
// the pool as it is: it neither pings nor migrates.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Pool returns the pool the Store runs its statements on.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, including one given to New, waiting for
// connections in use to be released. Calls on the Store afterwards fail
// (and apikey.Manager reports them as apikey.ErrUnavailable).
func (s *Store) Close() { s.pool.Close() }

// connectError reports a failed first connection with the server's address.
// Its message leaves out pgconn's "failed to connect to `user=... database=...`"
// preamble, which repeats the address; errors.As still finds the
// *pgconn.ConnectError.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string {
	msg := e.err.Error()
	var ce *pgconn.ConnectError
	if errors.As(e.err, &ce) {
		if inner := errors.Unwrap(ce); inner != nil {
			msg = inner.Error()
		}
	}
	// With a single host, pgconn's next layer repeats it as "host:port (host): ".
	if rest, ok := strings.CutPrefix(msg, e.addr+" ("); ok {
		if _, after, ok := strings.Cut(rest, "): "); ok {
			msg = after
		}
	}
	// A network failure: "dial error: dial tcp ADDR: connect: connection
	// refused" says the address twice; the cause alone is enough.
	var op *net.OpError
	if errors.As(e.err, &op) && op.Err != nil {
		msg = op.Err.Error()
		var se *os.SyscallError
		if errors.As(op.Err, &se) && se.Err != nil {
			msg = se.Err.Error()
		}
	}
	return "postgres: cannot connect to " + e.addr + ": " + msg
}

func (e *connectError) Unwrap() error { return e.err }

func address(host string, port uint16) string {
	if strings.HasPrefix(host, "/") { // a Unix socket directory
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
