// Package sqlite is an apikey.Store on an embedded SQLite database, through
// the pure-Go driver modernc.org/sqlite (no cgo). It is the default store
// of the apikey command.
//
// Open configures the database for concurrent use: WAL journal, a busy
// timeout, foreign keys, and write transactions that take the write lock at
// BEGIN, so that the per-owner key limit holds under concurrent creates.
// The writes of a Store run one at a time, in the order they come, so that
// none of them waits in SQLite's busy handler for another write of the same
// process: a write never fails with "database is locked" because of the
// process's own load (see writelock.go).
// Migrate creates or upgrades the schema from migrations embedded in the
// package; every table is prefixed apikey_ so that the store can share a
// database with an application.
//
// The database enforces the rules that must hold whatever code writes to
// it: a trigger refuses any statement that clears or changes revoked_at once
// it is set, another refuses changes to a revoked row's name, owner, scopes,
// metadata or expiry, and a third refuses an INSERT OR REPLACE over a
// revoked id. The id of every key ever revoked is kept for good in
// apikey_revoked_ids, and no key may be inserted under such an id, so that
// deleting a revoked key and inserting it again cannot revive it; key ids
// never change. CheckIntegrity reports a database where a trigger, table or
// index no longer has the definition the migrations gave it.
//
// Every mutation that comes with an apikey.Event appends it to the audit
// log, apikey_events, in the same write transaction as the change; triggers
// make that table append-only. Usage counters live in apikey_usage, one row
// per key, minute and outcome, written in batches by RecordUsage.
//
// Triggers also append every change of a key, whichever process or
// statement makes it, to apikey_changes: the Store is an apikey.ChangeFeed,
// which a Manager with a cache reads to evict what other processes changed
// (the command line included) and to bound how long it trusts its cache,
// and an apikey.InstanceRegistry (apikey_instances), which strict
// revocations wait on.
//
// Times are stored as fixed-width UTC text, 2006-01-02T15:04:05.000000Z, so
// that they sort in time order and stay readable with the sqlite3 shell.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/storeform"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is an apikey.Store on SQLite. It is safe for concurrent use. Its
// zero value is not usable: create one with Open or New.
type Store struct {
	db *sql.DB
	// writeDB, with Open, is the one connection of the Store's writes
	// (beginWrite, execWrite), which never wait for db's connections,
	// busy with reads, while they hold the write lock; db with New.
	writeDB *sql.DB
	// spendDB, with Open, is one connection with synchronous=NORMAL for
	// the batches of credit spends; nil with New.
	spendDB *sql.DB

	// lookup is the prepared statement of Lookup, the hot path of every
	// verification; it is prepared on first use, after Migrate.
	lookup atomic.Pointer[sql.Stmt]
	prepMu sync.Mutex // guards preparing, stmts and closed
	closed bool
	// stmts are the prepared statements of credit spends, by text (see
	// preparedTx).
	stmts  map[string]*sql.Stmt
	wanted map[string]bool // statements to prepare on spendDB

	spends spendBatcher // concurrent credit spends, committed together

	// writes holds a token while a write of this Store runs (see
	// lockWrites).
	writes chan struct{}
}

// newStore returns a Store over db, writeDB and spendDB (db and nil with
// New).
func newStore(db, writeDB, spendDB *sql.DB) *Store {
	return &Store{db: db, writeDB: writeDB, spendDB: spendDB, writes: make(chan struct{}, 1)}
}

var _ apikey.Store = (*Store)(nil)

// BusyTimeout is how long Open's connections wait for a lock held by
// another connection or process before failing with SQLITE_BUSY.
const BusyTimeout = 5 * time.Second

// busyTimeout is the busy timeout of the connections of Open: BusyTimeout,
// which tests shorten (export_test.go).
var busyTimeout = BusyTimeout

// Open opens the SQLite database at path, creating the file if it does not
// exist (its directory must), and returns a Store over it. It does not
// migrate: call Migrate.
//
// Every connection runs in WAL mode with a busy timeout of BusyTimeout and
// foreign keys on, and begins its transactions with BEGIN IMMEDIATE. Reads
// use a pool; writes take turns on a connection of their own, and the
// batches of credit spends on another. path is a file name, not a URI: it
// must not contain '?'. A path that cannot be opened yields an error that
// names it.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite: cannot open database %q: the path must not contain '?'; use New with a database/sql handle for URIs", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sqlite: cannot open database %q: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sqlite: cannot open database %q: %s is not a directory", path, dir)
	}
	dsn := path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot open database %q: %w", path, err)
	}
	// SQLite serialises writers anyway; a bounded pool that keeps its idle
	// connections avoids reopening (and re-running the pragmas) under load.
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := pingWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: cannot open database %q: %w", path, err)
	}
	// The writes run one at a time (lockWrites) on a connection of their
	// own, and the batches of credit spends on another, which commits
	// without syncing the log (see inSpendTx); each connects on first use.
	writeDB, err := sql.Open("sqlite", dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: cannot open database %q: %w", path, err)
	}
	spendDB, err := sql.Open("sqlite", dsn+"&_pragma=synchronous(NORMAL)")
	if err != nil {
		db.Close()
		writeDB.Close()
		return nil, fmt.Errorf("sqlite: cannot open database %q: %w", path, err)
	}
	for _, one := range []*sql.DB{writeDB, spendDB} {
		one.SetMaxOpenConns(1)
		one.SetMaxIdleConns(1)
	}
	return newStore(db, writeDB, spendDB), nil
}

// pingWAL opens a first connection, which switches the file to WAL. Turning a
// fresh file to WAL needs an exclusive lock, and SQLite reports SQLITE_BUSY
// at once, without waiting the busy timeout, when another process holds the
// file in its former mode (several instances starting and migrating
// together): retry for up to BusyTimeout. Once in WAL the mode persists, so
// later connections do not meet this.
func pingWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	for {
		err := db.PingContext(ctx)
		var se *msqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// New returns a Store over db, a handle opened with the driver name
// "sqlite" of modernc.org/sqlite. The caller keeps ownership of its
// settings; it should set, as Open does, a busy timeout and _txlock=immediate
// in its DSN, without which concurrent Inserts may fail with SQLITE_BUSY
// (they never exceed the owner limit). The Store's writes take turns as
// with Open, on connections of db. Close closes db.
func New(db *sql.DB) *Store { return newStore(db, db, nil) }

// DB returns the underlying database handle.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database handle.
func (s *Store) Close() error {
	s.prepMu.Lock()
	s.closed = true
	st := s.lookup.Swap(nil)
	stmts := s.stmts
	s.stmts = nil
	s.prepMu.Unlock()
	if st != nil {
		st.Close()
	}
	for _, st := range stmts {
		st.Close()
	}
	if s.spendDB != nil {
		s.spendDB.Close()
	}
	if s.writeDB != s.db {
		s.writeDB.Close()
	}
	return s.db.Close()
}

// Ping checks that the database can be reached.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// timeLayout is the stored form of times: fixed width, so that text order is
// time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: malformed stored time %q", s)
	}
	return t, nil
}

func parseTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	return &t, err
}

func encodeScopes(s []string) (string, error) {
	if s == nil {
		return "[]", nil
	}
	b, err := json.Marshal(s)
	return string(b), err
}

func encodeMetadata(m map[string]string) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// columns are the columns of apikey_keys in the order scanRecord reads them.
const columns = "id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, last_used_at, " +
	"ratelimits, credits_remaining, credits_refill, credits_next_refill, " +
	"disabled_at, prev_hash, prev_rolled_at, prev_grace_us, prev_grace_starts, prev_started_at, prev_expires_at, prev_last_used_at, " +
	"environment, allowed_cidrs, inactivity_expiry"

// insertKey is the statement that inserts a key; insertArgs gives its
// arguments. A new key has no previous secret.
const insertKey = `INSERT INTO apikey_keys (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` +
	`NULL, NULL, NULL, NULL, NULL, NULL, NULL, ?, ?, ?)`

// insertArgs returns the arguments of insertKey for k and its digest.
func insertArgs(k *apikey.Key, hash string) ([]any, error) {
	scopes, err := encodeScopes(k.Scopes)
	if err != nil {
		return nil, fmt.Errorf("scopes: %w", err)
	}
	metadata, err := encodeMetadata(k.Metadata)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	limits, err := encodeLimits(k.RateLimits)
	if err != nil {
		return nil, fmt.Errorf("ratelimits: %w", err)
	}
	remaining, refill, next, err := encodeCredits(k.Credits)
	if err != nil {
		return nil, fmt.Errorf("credits: %w", err)
	}
	cidrs, err := storeform.EncodeCIDRs(k.AllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("allowed_cidrs: %w", err)
	}
	return []any{k.ID, k.Prefix, k.Name, k.Owner, scopes, metadata, hash,
		formatTime(k.CreatedAt), formatTimePtr(k.ExpiresAt), formatTimePtr(k.RevokedAt), formatTimePtr(k.LastUsedAt),
		limits, remaining, refill, next, formatTimePtr(k.DisabledAt),
		string(k.Env()), cidrs, storeform.EncodeInactivity(time.Duration(k.InactivityExpiry))}, nil
}

type scanner interface {
	Scan(dest ...any) error
}

func scanRecord(row scanner) (*apikey.Record, error) {
	var (
		r                          apikey.Record
		scopes, metadata, created  string
		expires, revoked, lastUsed sql.NullString
		limits                     string
		cr                         storedCredits
		disabled                   sql.NullString
		prev                       storedPrevious
		env, cidrs                 string
		inactivity                 int64
	)
	if err := row.Scan(&r.ID, &r.Prefix, &r.Name, &r.Owner, &scopes, &metadata, &r.Hash,
		&created, &expires, &revoked, &lastUsed, &limits, &cr.remaining, &cr.refill, &cr.next,
		&disabled, &prev.hash, &prev.rolled, &prev.grace, &prev.starts, &prev.started, &prev.expires, &prev.lastUsed,
		&env, &cidrs, &inactivity); err != nil {
		return nil, err
	}
	var err0 error
	if r.DisabledAt, err0 = parseTimePtr(disabled); err0 == nil {
		r.PreviousSecret, r.PreviousHash, err0 = prev.decode()
	}
	if err0 != nil {
		return nil, fmt.Errorf("sqlite: key %s: %w", r.ID, err0)
	}
	var err error
	r.Environment = apikey.Environment(env)
	r.InactivityExpiry = apikey.Inactivity(storeform.DecodeInactivity(inactivity))
	if r.AllowedCIDRs, err = storeform.DecodeCIDRs(cidrs); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: malformed allowed_cidrs: %w", r.ID, err)
	}
	if r.RateLimits, err = decodeLimits(limits); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: malformed ratelimits: %w", r.ID, err)
	}
	if r.Credits, err = cr.decode(); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: malformed credits: %w", r.ID, err)
	}
	if r.Scopes, err = decodeScopes(scopes); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: malformed scopes: %w", r.ID, err)
	}
	if r.Metadata, err = decodeMetadata(metadata); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: malformed metadata: %w", r.ID, err)
	}
	var err2, err3, err4 error
	r.CreatedAt, err = parseTime(created)
	r.ExpiresAt, err2 = parseTimePtr(expires)
	r.RevokedAt, err3 = parseTimePtr(revoked)
	r.LastUsedAt, err4 = parseTimePtr(lastUsed)
	if err := errors.Join(err, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("key %s: %w", r.ID, err)
	}
	return &r, nil
}

// revokedIDReused is the message of the trigger that refuses to insert a
// key under the id of a revoked one (migration 0004).
const revokedIDReused = "apikey: revoked key ids cannot be reused"

// storeErr maps driver errors to the answers of the apikey.Store contract
// (a refused value among them: apikey.ErrInvalidInput) and prefixes every
// other failure with the operation.
func storeErr(op string, err error) error {
	var se *msqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrFrozen),
		errors.Is(err, apikey.ErrTooManyKeys), errors.Is(err, apikey.ErrDuplicateID):
		return err // already an answer of the contract
	case errors.Is(err, sql.ErrNoRows):
		return apikey.ErrNotFound
	case errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("%w: %w", apikey.ErrDuplicateID, err)
	case errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_TRIGGER && strings.Contains(se.Error(), revokedIDReused):
		// The id of a deleted revoked key stays taken (migration 0004).
		return fmt.Errorf("%w: %w", apikey.ErrDuplicateID, err)
	case refused(err):
		return fmt.Errorf("%w: sqlite: %s: %w", apikey.ErrInvalidInput, op, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// refused reports whether err is SQLite refusing a value rather than
// failing: a constraint (CHECK, NOT NULL, a trigger's RAISE(ABORT)), a
// value too big or of the wrong type. Such an error is bad input, which
// the apikey.Store contract wraps with apikey.ErrInvalidInput: retrying
// the same write cannot succeed.
func refused(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
		return true
	}
	return false
}

// Insert stores rec. When limit > 0 it counts the owner's keys that are not
// revoked and inserts in one write transaction, which Open's connections
// begin with BEGIN IMMEDIATE, so concurrent Inserts cannot both pass the
// count. With ev, the audit entry is written in the same transaction.
func (s *Store) Insert(ctx context.Context, rec *apikey.Record, limit int, ev *apikey.Event) error {
	args, err := insertArgs(&rec.Key, rec.Hash)
	if err != nil {
		return fmt.Errorf("sqlite: insert: %w", err)
	}
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return storeErr("insert", err)
	}
	defer end()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM apikey_keys WHERE id = ?)`, rec.ID).Scan(&exists); err != nil {
		return storeErr("insert", err)
	}
	if exists {
		return apikey.ErrDuplicateID
	}
	if limit > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM apikey_keys WHERE owner = ? AND revoked_at IS NULL`, rec.Owner).Scan(&n); err != nil {
			return storeErr("insert", err)
		}
		if n >= limit {
			return apikey.ErrTooManyKeys
		}
	}
	if _, err := tx.ExecContext(ctx, insertKey, args...); err != nil {
		return storeErr("insert", err)
	}
	if err := writeEvent(ctx, tx, ev, rec.Owner, apikey.Diff(nil, &rec.Key)); err != nil {
		return storeErr("insert", err)
	}
	return storeErr("insert", tx.Commit())
}

// Lookup returns the record with the given id, or apikey.ErrNotFound.
func (s *Store) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	var row *sql.Row
	if st := s.lookupStmt(ctx); st != nil {
		row = st.QueryRowContext(ctx, id)
	} else {
		row = s.db.QueryRowContext(ctx, lookupQuery, id)
	}
	rec, err := scanRecord(row)
	if err != nil {
		return nil, storeErr("lookup", err)
	}
	return rec, nil
}

const lookupQuery = `SELECT ` + columns + ` FROM apikey_keys WHERE id = ?`

// lookupStmt returns the prepared Lookup statement, preparing it on first
// use, or nil when it cannot be prepared yet (for example before Migrate),
// in which case the caller runs the query unprepared.
func (s *Store) lookupStmt(ctx context.Context) *sql.Stmt {
	if st := s.lookup.Load(); st != nil {
		return st
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if st := s.lookup.Load(); st != nil || s.closed {
		return st
	}
	st, err := s.db.PrepareContext(ctx, lookupQuery)
	if err != nil {
		return nil
	}
	s.lookup.Store(st)
	return st
}

// List returns at most q.Limit keys matching q, newest first. Search matches
// a case-insensitive substring of the name, id or owner (ASCII case folding;
// '%' and '_' are literal).
//
// A search of three characters or more is answered in at most two steps:
// the newest searchWindow keys that pass the other filters are scanned
// first, which answers a term that many keys hold; when they hold less
// than a page, the trigram index (migration 0008) names the candidates:
// up to searchCandidates of them, only those rows are read; more, the
// keys are scanned newest first. Either way the rows are tested exactly.
func (s *Store) List(ctx context.Context, q apikey.Query) ([]*apikey.Key, error) {
	var (
		where []string
		args  []any
	)
	if q.Owner != "" {
		where = append(where, "owner = ?")
		args = append(args, q.Owner)
	}
	now := formatTime(q.Now)
	switch q.State {
	case "":
	case apikey.StateActive:
		where = append(where, "revoked_at IS NULL AND disabled_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND NOT "+inactiveCond)
		args = append(args, now, storeform.InactivityArg(q.InactivityExpiry), now, storeform.InactivityArg(q.InactivityExpiry))
	case apikey.StateDisabled:
		where = append(where, "revoked_at IS NULL AND disabled_at IS NOT NULL AND (expires_at IS NULL OR expires_at > ?) AND NOT "+inactiveCond)
		args = append(args, now, storeform.InactivityArg(q.InactivityExpiry), now, storeform.InactivityArg(q.InactivityExpiry))
	case apikey.StateExpired:
		where = append(where, "revoked_at IS NULL AND (expires_at <= ? OR "+inactiveCond+")")
		args = append(args, now, storeform.InactivityArg(q.InactivityExpiry), now, storeform.InactivityArg(q.InactivityExpiry))
	case apikey.StateRevoked:
		where = append(where, "revoked_at IS NOT NULL")
	default:
		return nil, fmt.Errorf("sqlite: list: unknown state %q", q.State)
	}
	if q.Environment != "" {
		where = append(where, "environment = ?")
		args = append(args, string(q.Environment))
	}
	if !q.CreatedFrom.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, formatTime(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, formatTime(q.CreatedTo))
	}
	if q.After != nil {
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, formatTime(q.After.CreatedAt), q.After.ID)
	}
	if q.Search == "" {
		return s.list(ctx, listQuery(where), append(args, q.Limit))
	}
	const exact = "(instr(lower(name), lower(?)) > 0 OR instr(lower(id), lower(?)) > 0 OR instr(lower(owner), lower(?)) > 0)"
	exactArgs := []any{q.Search, q.Search, q.Search}
	if utf8.RuneCountInString(q.Search) < 3 { // no trigram to look up
		return s.list(ctx, listQuery(append(where, exact)), append(append(args, exactArgs...), q.Limit))
	}
	// The newest keys first.
	inner := listQuery(where) // ends in LIMIT ?
	windowed := `SELECT * FROM (` + inner + `) WHERE ` + exact + ` ORDER BY created_at DESC, id DESC LIMIT ?`
	wargs := append(append(append(slices.Clone(args), searchWindow), exactArgs...), q.Limit)
	keys, err := s.list(ctx, windowed, wargs)
	if err != nil || len(keys) == q.Limit {
		return keys, err
	}
	// Then as many candidates as the index holds: few, read them; many
	// (a frequent term), scan newest first, which soon finds a page.
	match := `"` + strings.ReplaceAll(q.Search, `"`, `""`) + `"` // one phrase: a substring
	var candidates int
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT rowid FROM apikey_keys_search WHERE apikey_keys_search MATCH ? LIMIT ?)`,
		match, searchCandidates+1).Scan(&candidates)
	if err != nil {
		return nil, storeErr("list", err)
	}
	if candidates > searchCandidates {
		return s.list(ctx, listQuery(append(where, exact)), append(append(args, exactArgs...), q.Limit))
	}
	// CROSS JOIN makes SQLite start from the candidates.
	indexed := `SELECT ` + columns + ` FROM (SELECT r.id AS candidate FROM apikey_keys_search s
		JOIN apikey_keys_search_rows r ON r.n = s.rowid WHERE apikey_keys_search MATCH ?) CROSS JOIN apikey_keys ON id = candidate
		WHERE ` + strings.Join(append(where, exact), " AND ") + ` ORDER BY created_at DESC, id DESC LIMIT ?`
	return s.list(ctx, indexed, append(append(append([]any{match}, args...), exactArgs...), q.Limit))
}

// searchCandidates is the most candidates of the trigram index List reads
// one by one; a term with more is frequent enough for a scan of the newest
// keys to find a page soon.
var searchCandidates = 5000

// searchWindow is how many of the newest keys List scans for a search term
// before it asks the trigram index.
var searchWindow = 10000

// listQuery returns the SELECT of List over the conditions where, newest
// first, ending in "LIMIT ?".
func listQuery(where []string) string {
	query := `SELECT ` + columns + ` FROM apikey_keys`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	return query + ` ORDER BY created_at DESC, id DESC LIMIT ?`
}

// list runs a query of List.
func (s *Store) list(ctx context.Context, query string, args []any) ([]*apikey.Key, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storeErr("list", err)
	}
	defer rows.Close()
	keys := []*apikey.Key{}
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, storeErr("list", err)
		}
		keys = append(keys, &rec.Key)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list", err)
	}
	return keys, nil
}

// Update applies u in one write transaction that reads the key first: it
// returns apikey.ErrFrozen, changing nothing, for a revoked key, and
// apikey.ErrNotFound for an unknown id. With ev, the audit entry carries the
// fields that differ between the key before and after, and is written in the
// same transaction.
func (s *Store) Update(ctx context.Context, id string, u apikey.KeyUpdate, ev *apikey.Event) (*apikey.Key, error) {
	if u.ExpiresAt != nil && u.ClearExpiry {
		return nil, errors.New("sqlite: update: ExpiresAt and ClearExpiry are both set")
	}
	var name, scopes, metadata, expires any
	if u.Name != nil {
		name = *u.Name
	}
	if u.Scopes != nil {
		enc, err := encodeScopes(*u.Scopes)
		if err != nil {
			return nil, fmt.Errorf("sqlite: update: scopes: %w", err)
		}
		scopes = enc
	}
	if u.Metadata != nil {
		m, err := encodeMetadata(*u.Metadata)
		if err != nil {
			return nil, fmt.Errorf("sqlite: update: metadata: %w", err)
		}
		metadata = m
	}
	expires = formatTimePtr(u.ExpiresAt)
	var limits any
	if u.RateLimits != nil {
		enc, err := encodeLimits(*u.RateLimits)
		if err != nil {
			return nil, fmt.Errorf("sqlite: update: ratelimits: %w", err)
		}
		limits = enc
	}
	setCredits := u.Credits != nil || u.ClearCredits
	remaining, refill, next, err := encodeCredits(u.Credits)
	if err != nil {
		return nil, fmt.Errorf("sqlite: update: credits: %w", err)
	}
	var cidrs, inactivity any
	if u.AllowedCIDRs != nil {
		if cidrs, err = storeform.EncodeCIDRs(*u.AllowedCIDRs); err != nil {
			return nil, fmt.Errorf("sqlite: update: allowed_cidrs: %w", err)
		}
	}
	if u.InactivityExpiry != nil {
		inactivity = storeform.EncodeInactivity(*u.InactivityExpiry)
	}
	var after *apikey.Record
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanRecord(tx.QueryRowContext(ctx, lookupQuery, id))
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			return apikey.ErrFrozen
		}
		after, err = scanRecord(tx.QueryRowContext(ctx, `UPDATE apikey_keys SET
			name = coalesce(?, name),
			scopes = coalesce(?, scopes),
			metadata = coalesce(?, metadata),
			expires_at = CASE WHEN ? THEN NULL ELSE coalesce(?, expires_at) END,
			ratelimits = coalesce(?, ratelimits),
			credits_remaining = CASE WHEN ? THEN ? ELSE credits_remaining END,
			credits_refill = CASE WHEN ? THEN ? ELSE credits_refill END,
			credits_next_refill = CASE WHEN ? THEN ? ELSE credits_next_refill END,
			credits_epoch = CASE WHEN ? THEN max(credits_epoch + 1, ?) ELSE credits_epoch END,
			allowed_cidrs = coalesce(?, allowed_cidrs),
			inactivity_expiry = coalesce(?, inactivity_expiry)
		WHERE id = ? AND revoked_at IS NULL
		RETURNING `+columns,
			name, scopes, metadata, u.ClearExpiry, expires, limits,
			setCredits, remaining, setCredits, refill, setCredits, next, setCredits, time.Now().UnixNano(), cidrs, inactivity, id))
		if errors.Is(err, sql.ErrNoRows) {
			// Only a connection that does not begin with BEGIN IMMEDIATE
			// (see New) can let a write slip between the two statements.
			return fmt.Errorf("key %s was changed concurrently", id)
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, after.Owner, apikey.Diff(&before.Key, &after.Key))
	})
	if err != nil {
		return nil, storeErr("update", err)
	}
	return &after.Key, nil
}

// Revoke sets revoked_at to at unless it is already set, and returns the
// key, or apikey.ErrNotFound. With ev, it writes the audit entry in the same
// transaction, and only when it revoked the key now.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	var rec *apikey.Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = revokeTx(ctx, tx, id, at, ev)
		return err
	})
	if err != nil {
		return nil, storeErr("revoke", err)
	}
	return &rec.Key, nil
}

// revokeTx is Revoke within tx: Import revokes imported keys with it too.
func revokeTx(ctx context.Context, tx *sql.Tx, id string, at time.Time, ev *apikey.Event) (*apikey.Record, error) {
	rec, err := scanRecord(tx.QueryRowContext(ctx,
		`UPDATE apikey_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING `+columns,
		formatTime(at), id))
	if errors.Is(err, sql.ErrNoRows) {
		// Unknown, or already revoked: then nothing changes and
		// nothing is recorded.
		return scanRecord(tx.QueryRowContext(ctx, lookupQuery, id))
	}
	if err != nil {
		return nil, err
	}
	// Only revoked_at changed.
	before := rec.Key
	before.RevokedAt = nil
	return rec, writeEvent(ctx, tx, ev, rec.Owner, apikey.Diff(&before, &rec.Key))
}

// Delete removes the key, or returns apikey.ErrNotFound. With ev, the audit
// entry records every field of the deleted key as before values.
func (s *Store) Delete(ctx context.Context, id string, ev *apikey.Event) error {
	return storeErr("delete", s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanRecord(tx.QueryRowContext(ctx, `DELETE FROM apikey_keys WHERE id = ? RETURNING `+columns, id))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, before.Owner, apikey.Diff(&before.Key, nil))
	}))
}

// SetHash replaces the stored digest of a key, or returns
// apikey.ErrNotFound. A revoked key is frozen: its digest is never replaced,
// and SetHash returns apikey.ErrFrozen, changing nothing and recording nothing. The
// refusal is part of the UPDATE (WHERE ... AND revoked_at IS NULL), so a
// Revoke that commits first always wins over a Roll. When oldHash is not
// empty it changes the digest only if the stored one still equals oldHash,
// in the same conditional UPDATE; if it does not (the upgrade lost a race;
// nothing to do) it changes nothing, records nothing and returns nil. With
// ev, it writes an audit entry without changes (the digest is never
// recorded).
func (s *Store) SetHash(ctx context.Context, id, oldHash, newHash string, ev *apikey.Event) error {
	const (
		set     = `UPDATE apikey_keys SET hash = ? WHERE id = ? AND revoked_at IS NULL`
		setIf   = `UPDATE apikey_keys SET hash = ? WHERE id = ? AND revoked_at IS NULL AND hash = ?`
		returns = ` RETURNING owner`
	)
	query, args := set, []any{newHash, id}
	if oldHash != "" {
		query, args = setIf, []any{newHash, id, oldHash}
	}
	if ev == nil {
		// A hash upgrade during verification: one statement, and a second
		// only to tell why it matched no row.
		res, err := s.execWrite(ctx, query, args...)
		if err != nil {
			return storeErr("set hash", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return storeErr("set hash", err)
		} else if n == 0 {
			return storeErr("set hash", whyHashKept(ctx, s.db, id, oldHash))
		}
		return nil
	}
	return storeErr("set hash", s.inTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, query+returns, args...).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return whyHashKept(ctx, tx, id, oldHash)
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, owner, nil)
	}))
}

// whyHashKept explains a SetHash that matched no row: apikey.ErrNotFound
// for an unknown id, apikey.ErrFrozen for a revoked key (revocation is final, so it
// is still revoked), and nil when the key exists but its digest no longer
// equals oldHash (the upgrade lost a race).
func whyHashKept(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id, oldHash string) error {
	var revoked bool
	err := q.QueryRowContext(ctx, `SELECT revoked_at IS NOT NULL FROM apikey_keys WHERE id = ?`, id).Scan(&revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.ErrNotFound
	case err != nil:
		return err
	case revoked:
		return apikey.ErrFrozen
	case oldHash == "":
		// The key appeared after the UPDATE looked (only possible outside
		// a transaction): to that statement it did not exist.
		return apikey.ErrNotFound
	}
	return nil
}
