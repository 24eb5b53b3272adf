package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/storeform"
)

// keyColumns are the columns of an apikey.Key, in the order scanKey reads
// them.
const keyColumns = "id, prefix, name, owner, scopes, metadata, created_at, expires_at, revoked_at, last_used_at, " +
	"ratelimits, credits_remaining, credits_refill, credits_next_refill, " +
	"disabled_at, prev_rolled_at, prev_grace_us, prev_grace_starts, prev_started_at, prev_expires_at, prev_last_used_at, " +
	"environment, allowed_cidrs, inactivity_expiry"

// lookupSQL is the statement behind every verification. It keeps one fixed
// text so that pgx's statement cache prepares it once per connection.
//
// Every statement on apikey_keys names it ONLY: the rows of a table created
// with INHERITS (apikey_keys), which none of its triggers guard, are never
// read nor written (CheckIntegrity reports such a table).
const lookupSQL = "SELECT " + keyColumns + ", hash, coalesce(prev_hash, '') FROM ONLY apikey_keys WHERE id = $1"

// Insert implements apikey.Store. With limit > 0 it counts and inserts in
// one transaction under a transaction-scoped advisory lock on the owner, so
// concurrent Inserts for the same owner, from any process, are serialised.
// With ev, the audit entry is written in the same transaction.
func (s *Store) Insert(ctx context.Context, rec *apikey.Record, limit int, ev *apikey.Event) error {
	const insertSQL = `INSERT INTO apikey_keys
	(id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, last_used_at,
	 ratelimits, credits_remaining, credits_refill, credits_next_refill, environment, allowed_cidrs, inactivity_expiry, disabled_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	k := &rec.Key
	args, err := insertArgs(rec)
	if err != nil {
		return fmt.Errorf("postgres: insert: %w", err)
	}
	if limit <= 0 && ev == nil {
		_, err := s.pool.Exec(ctx, insertSQL, args...)
		return mapErr("insert", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if limit <= 0 {
			if _, err := tx.Exec(ctx, insertSQL, args...); err != nil {
				return err
			}
			return writeEvent(ctx, tx, ev, k.Owner, apikey.Diff(nil, k))
		}
		// The count must run in a statement that starts after the lock is
		// held: under READ COMMITTED its snapshot then sees every Insert
		// that held the lock before.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('apikey_owner:' || $1::text, 0))", k.Owner); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM ONLY apikey_keys WHERE owner = $1 AND revoked_at IS NULL", k.Owner).Scan(&n); err != nil {
			return err
		}
		if n >= int64(limit) {
			return apikey.ErrTooManyKeys
		}
		if _, err := tx.Exec(ctx, insertSQL, args...); err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, k.Owner, apikey.Diff(nil, k))
	})
	return mapErr("insert", err)
}

// Lookup implements apikey.Store in one round trip.
func (s *Store) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	rec := new(apikey.Record)
	var sc keyScan
	if err := s.pool.QueryRow(ctx, lookupSQL, id).Scan(append(sc.dest(&rec.Key, &rec.Hash), &rec.PreviousHash)...); err != nil {
		return nil, mapErr("lookup", err)
	}
	if err := sc.finish(&rec.Key); err != nil {
		return nil, fmt.Errorf("postgres: lookup: %w", err)
	}
	return rec, nil
}

// likeEscaper makes text literal in a LIKE pattern (whose escape character
// is the backslash).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// List implements apikey.Store. Search matches substrings literally
// (strpos, not LIKE), ignoring case; State is evaluated at q.Now; paging is
// keyset pagination on (created_at, id).
func (s *Store) List(ctx context.Context, q apikey.Query) ([]*apikey.Key, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Owner != "" {
		where = append(where, "owner = "+arg(q.Owner))
	}
	switch q.State {
	case "":
	case apikey.StateActive:
		now := arg(timeArg(q.Now))
		where = append(where, "revoked_at IS NULL AND disabled_at IS NULL AND (expires_at IS NULL OR expires_at > "+now+") AND NOT "+
			inactiveCond(now, arg(storeform.InactivityArg(q.InactivityExpiry))))
	case apikey.StateDisabled:
		now := arg(timeArg(q.Now))
		where = append(where, "revoked_at IS NULL AND disabled_at IS NOT NULL AND (expires_at IS NULL OR expires_at > "+now+") AND NOT "+
			inactiveCond(now, arg(storeform.InactivityArg(q.InactivityExpiry))))
	case apikey.StateExpired:
		now := arg(timeArg(q.Now))
		where = append(where, "revoked_at IS NULL AND (expires_at <= "+now+" OR "+
			inactiveCond(now, arg(storeform.InactivityArg(q.InactivityExpiry)))+")")
	case apikey.StateRevoked:
		where = append(where, "revoked_at IS NOT NULL")
	default:
		return nil, fmt.Errorf("postgres: list: unknown state %q", q.State)
	}
	if q.Search != "" {
		// The ILIKE conditions are what the trigram indexes of migration
		// 0009 serve (they match the same keys: ILIKE lowers both sides);
		// strpos stays the exact test.
		if utf8.RuneCountInString(q.Search) >= 3 { // shorter text has no trigram: the indexes would read every entry
			like := arg("%" + likeEscaper.Replace(q.Search) + "%")
			where = append(where, fmt.Sprintf("(name ILIKE %[1]s OR id ILIKE %[1]s OR owner ILIKE %[1]s)", like))
		}
		p := arg(q.Search)
		where = append(where, fmt.Sprintf("(strpos(lower(name), lower(%[1]s)) > 0 OR strpos(lower(id), lower(%[1]s)) > 0 OR strpos(lower(owner), lower(%[1]s)) > 0)", p))
	}
	if q.Environment != "" {
		where = append(where, "environment = "+arg(string(q.Environment)))
	}
	if !q.CreatedFrom.IsZero() {
		where = append(where, "created_at >= "+arg(timeArg(q.CreatedFrom)))
	}
	if !q.CreatedTo.IsZero() {
		where = append(where, "created_at < "+arg(timeArg(q.CreatedTo)))
	}
	if q.After != nil {
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s)", arg(timeArg(q.After.CreatedAt)), arg(q.After.ID)))
	}
	var b strings.Builder
	b.WriteString("SELECT " + keyColumns + " FROM ONLY apikey_keys")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY created_at DESC, id DESC LIMIT " + arg(q.Limit))

	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, mapErr("list", err)
	}
	defer rows.Close()
	keys := []*apikey.Key{}
	for rows.Next() {
		k := new(apikey.Key)
		var sc keyScan
		if err := rows.Scan(sc.dest(k, nil)...); err != nil {
			return nil, mapErr("list", err)
		}
		if err := sc.finish(k); err != nil {
			return nil, fmt.Errorf("postgres: list: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list", err)
	}
	return keys, nil
}

// Update implements apikey.Store. Without an event it is one UPDATE that
// skips revoked rows; when that changes nothing, a second query tells an
// unknown id from a revoked key. With an event it runs in a transaction that
// first reads and locks the row (SELECT ... FOR UPDATE), so that the audit
// entry records exactly the fields this update changed.
func (s *Store) Update(ctx context.Context, id string, u apikey.KeyUpdate, ev *apikey.Event) (*apikey.Key, error) {
	args := []any{id}
	var set []string
	arg := func(col string, v any) {
		args = append(args, v)
		set = append(set, col+" = $"+strconv.Itoa(len(args)))
	}
	if u.Name != nil {
		arg("name", *u.Name)
	}
	if u.Scopes != nil {
		arg("scopes", scopesArg(*u.Scopes))
	}
	if u.Metadata != nil {
		arg("metadata", metadataArg(*u.Metadata))
	}
	switch {
	case u.ExpiresAt != nil:
		arg("expires_at", timeArg(*u.ExpiresAt))
	case u.ClearExpiry:
		set = append(set, "expires_at = NULL")
	}
	if u.RateLimits != nil {
		l, err := encodeLimits(*u.RateLimits)
		if err != nil {
			return nil, fmt.Errorf("postgres: update: ratelimits: %w", err)
		}
		arg("ratelimits", l)
	}
	if u.Credits != nil || u.ClearCredits {
		remaining, refill, next, err := encodeCredits(u.Credits)
		if err != nil {
			return nil, fmt.Errorf("postgres: update: credits: %w", err)
		}
		arg("credits_remaining", remaining)
		arg("credits_refill", refill)
		arg("credits_next_refill", next)
		// A new epoch (apikey.NextEpoch, in SQL: the row is not read
		// first): credits leased from the balance replaced are not given
		// back to this one.
		args = append(args, time.Now().UnixNano())
		set = append(set, "credits_epoch = greatest(credits_epoch + 1, $"+strconv.Itoa(len(args))+")")
	}
	if u.AllowedCIDRs != nil {
		c, err := storeform.EncodeCIDRs(*u.AllowedCIDRs)
		if err != nil {
			return nil, fmt.Errorf("postgres: update: allowed_cidrs: %w", err)
		}
		arg("allowed_cidrs", c)
	}
	if u.InactivityExpiry != nil {
		arg("inactivity_expiry", storeform.EncodeInactivity(*u.InactivityExpiry))
	}

	if ev != nil {
		return s.updateAudited(ctx, id, set, args, ev)
	}
	var sql string
	if len(set) == 0 {
		// An empty patch reads the key with the same answers as a real
		// one, without writing a new row version.
		sql = "SELECT " + keyColumns + " FROM ONLY apikey_keys WHERE id = $1 AND revoked_at IS NULL"
	} else {
		sql = "UPDATE ONLY apikey_keys SET " + strings.Join(set, ", ") + " WHERE id = $1 AND revoked_at IS NULL RETURNING " + keyColumns
	}
	k := new(apikey.Key)
	var sc keyScan
	err := s.pool.QueryRow(ctx, sql, args...).Scan(sc.dest(k, nil)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.whyNoRow(ctx, "update", id)
	}
	if err != nil {
		return nil, mapErr("update", err)
	}
	if err := sc.finish(k); err != nil {
		return nil, fmt.Errorf("postgres: update: %w", err)
	}
	return k, nil
}

// updateAudited is Update with an audit entry: set and args are the SET
// clauses and their arguments, $1 being the id.
func (s *Store) updateAudited(ctx context.Context, id string, set []string, args []any, ev *apikey.Event) (*apikey.Key, error) {
	var after *apikey.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM ONLY apikey_keys WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		if before.Revoked() {
			return apikey.ErrFrozen
		}
		after = before.Clone()
		if len(set) > 0 {
			// The row is locked: this UPDATE sees what we read.
			if after, err = scanKey(tx.QueryRow(ctx,
				"UPDATE ONLY apikey_keys SET "+strings.Join(set, ", ")+" WHERE id = $1 RETURNING "+keyColumns, args...)); err != nil {
				return err
			}
		}
		return writeEvent(ctx, tx, ev, after.Owner, apikey.Diff(before, after))
	})
	if err != nil {
		return nil, mapErr("update", err)
	}
	return after, nil
}

// scanKey reads one row of keyColumns.
func scanKey(row pgx.Row) (*apikey.Key, error) {
	k := new(apikey.Key)
	var sc keyScan
	if err := row.Scan(sc.dest(k, nil)...); err != nil {
		return nil, err
	}
	if err := sc.finish(k); err != nil {
		return nil, err
	}
	return k, nil
}

// whyNoRow tells why a write guarded by "revoked_at IS NULL" matched no
// row: ErrFrozen if the key exists (revocation is final, so it is still
// revoked), ErrNotFound otherwise.
func (s *Store) whyNoRow(ctx context.Context, op, id string) error {
	var revoked bool
	err := s.pool.QueryRow(ctx, "SELECT revoked_at IS NOT NULL FROM ONLY apikey_keys WHERE id = $1", id).Scan(&revoked)
	switch {
	case err != nil:
		return mapErr(op, err)
	case revoked:
		return apikey.ErrFrozen
	default:
		// The key appeared after the UPDATE looked: to that statement it
		// did not exist.
		return apikey.ErrNotFound
	}
}

// Revoke implements apikey.Store. It keeps the first revocation instant.
// Without an event it is one statement; with one, a transaction that writes
// the audit entry only when this call revoked the key.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	if ev == nil {
		k, err := scanKey(s.pool.QueryRow(ctx,
			"UPDATE ONLY apikey_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING "+keyColumns,
			id, timeArg(at)))
		if err != nil {
			return nil, mapErr("revoke", err)
		}
		return k, nil
	}
	var k *apikey.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		k, err = revokeTx(ctx, tx, id, at, ev)
		return err
	})
	if err != nil {
		return nil, mapErr("revoke", err)
	}
	return k, nil
}

// revokeTx is Revoke with an event, within tx: Import revokes imported
// keys with it too.
func revokeTx(ctx context.Context, tx pgx.Tx, id string, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	k, err := scanKey(tx.QueryRow(ctx,
		"UPDATE ONLY apikey_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING "+keyColumns,
		id, timeArg(at)))
	if errors.Is(err, pgx.ErrNoRows) {
		// Unknown, or revoked already (by us or by a concurrent Revoke
		// this UPDATE waited for): nothing changes, nothing is recorded.
		return scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM ONLY apikey_keys WHERE id = $1", id))
	}
	if err != nil {
		return nil, err
	}
	before := k.Clone() // only revoked_at changed
	before.RevokedAt = nil
	return k, writeEvent(ctx, tx, ev, k.Owner, apikey.Diff(before, k))
}

// Delete implements apikey.Store. With an event, the audit entry records
// every field of the deleted key as before values, in the same transaction.
func (s *Store) Delete(ctx context.Context, id string, ev *apikey.Event) error {
	if ev == nil {
		tag, err := s.pool.Exec(ctx, "DELETE FROM ONLY apikey_keys WHERE id = $1", id)
		if err != nil {
			return mapErr("delete", err)
		}
		if tag.RowsAffected() == 0 {
			return apikey.ErrNotFound
		}
		return nil
	}
	return mapErr("delete", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanKey(tx.QueryRow(ctx, "DELETE FROM ONLY apikey_keys WHERE id = $1 RETURNING "+keyColumns, id))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, before.Owner, apikey.Diff(before, nil))
	}))
}

// SetHash implements apikey.Store. A revoked key is frozen: its digest is
// never replaced, and SetHash returns apikey.ErrFrozen, changing nothing and
// recording nothing. The refusal is part of the UPDATE (WHERE ... AND
// revoked_at IS NULL), which PostgreSQL re-evaluates on the latest row
// version when it waited for a concurrent Revoke: a Revoke that commits
// first always wins over a Roll. When oldHash is not empty the digest
// changes only if the stored one still equals oldHash, in the same
// conditional UPDATE; if it does not (the upgrade lost a race; nothing to
// do) SetHash changes nothing, records nothing and returns nil. Without an
// event (a hash upgrade during verification) it is one statement, plus one
// to tell why it matched no row; with one, the audit entry, which records
// no changes (the digest is never logged), is written in the same
// transaction.
func (s *Store) SetHash(ctx context.Context, id, oldHash, newHash string, ev *apikey.Event) error {
	const (
		set   = "UPDATE ONLY apikey_keys SET hash = $2 WHERE id = $1 AND revoked_at IS NULL"
		setIf = "UPDATE ONLY apikey_keys SET hash = $2 WHERE id = $1 AND revoked_at IS NULL AND hash = $3"
	)
	query, args := set, []any{id, newHash}
	if oldHash != "" {
		query, args = setIf, []any{id, newHash, oldHash}
	}
	if ev == nil {
		tag, err := s.pool.Exec(ctx, query, args...)
		if err != nil {
			return mapErr("set hash", err)
		}
		if tag.RowsAffected() == 0 {
			return mapErr("set hash", whyHashKept(ctx, s.pool, id, oldHash))
		}
		return nil
	}
	return mapErr("set hash", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, query+" RETURNING owner", args...).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
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
	QueryRow(context.Context, string, ...any) pgx.Row
}, id, oldHash string) error {
	var revoked bool
	err := q.QueryRow(ctx, "SELECT revoked_at IS NOT NULL FROM ONLY apikey_keys WHERE id = $1", id).Scan(&revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return apikey.ErrNotFound
	case err != nil:
		return err
	case revoked:
		return apikey.ErrFrozen
	case oldHash == "":
		// The key appeared after the UPDATE looked: to that statement it
		// did not exist.
		return apikey.ErrNotFound
	}
	return nil
}

// keyScan holds the columns of a Key that need converting after Scan. Its
// destinations are chosen for the hot path: value types that pgx scans
// without extra allocations, and metadata as the JSON text PostgreSQL sends.
type keyScan struct {
	metadata                            string
	created, expires, revoked, lastUsed pgtype.Timestamptz
	limits                              string
	credits                             storedCredits
	disabled                            pgtype.Timestamptz
	prev                                storedPrevious
	env, cidrs                          string
	inactivity                          int64
}

// dest returns the scan destinations for keyColumns, followed by the hash
// when hash is not nil.
func (sc *keyScan) dest(k *apikey.Key, hash *string) []any {
	d := []any{&k.ID, &k.Prefix, &k.Name, &k.Owner, &k.Scopes, &sc.metadata, &sc.created, &sc.expires, &sc.revoked, &sc.lastUsed,
		&sc.limits, &sc.credits.remaining, &sc.credits.refill, &sc.credits.next,
		&sc.disabled, &sc.prev.rolled, &sc.prev.grace, &sc.prev.starts, &sc.prev.started, &sc.prev.expires, &sc.prev.lastUsed,
		&sc.env, &sc.cidrs, &sc.inactivity}
	if hash != nil {
		d = append(d, hash)
	}
	return d
}

// finish stores the converted columns in k: times in UTC, and empty, never
// nil, scopes and metadata.
func (sc *keyScan) finish(k *apikey.Key) error {
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	md, err := decodeMetadata(sc.metadata)
	if err != nil {
		return fmt.Errorf("metadata of key %s: %w", k.ID, err)
	}
	k.Metadata = md
	k.CreatedAt = sc.created.Time.UTC()
	k.ExpiresAt = utcPtr(sc.expires)
	k.RevokedAt = utcPtr(sc.revoked)
	k.LastUsedAt = utcPtr(sc.lastUsed)
	if k.RateLimits, err = decodeLimits(sc.limits); err != nil {
		return fmt.Errorf("ratelimits of key %s: %w", k.ID, err)
	}
	if k.Credits, err = sc.credits.decode(); err != nil {
		return fmt.Errorf("credits of key %s: %w", k.ID, err)
	}
	k.DisabledAt = utcPtr(sc.disabled)
	k.PreviousSecret = sc.prev.decode()
	k.Environment = apikey.Environment(sc.env)
	k.InactivityExpiry = apikey.Inactivity(storeform.DecodeInactivity(sc.inactivity))
	if k.AllowedCIDRs, err = storeform.DecodeCIDRs(sc.cidrs); err != nil {
		return fmt.Errorf("allowed_cidrs of key %s: %w", k.ID, err)
	}
	return nil
}

func utcPtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// decodeMetadata parses the metadata column, a JSON object of strings. The
// common case is the exact text jsonb prints for such an object without
// escapes ({"k": "v", "k2": "v2"}), read here without reflection and with
// the keys and values sharing s; anything else goes to encoding/json.
func decodeMetadata(s string) (map[string]string, error) {
	if m, ok := decodePlainObject(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if m == nil { // JSON null, which the column's CHECK refuses anyway
		m = map[string]string{}
	}
	return m, nil
}

// decodePlainObject parses s if it is exactly in the form jsonb_out prints
// for an object of strings none of which needs an escape; ok is false for
// anything else.
func decodePlainObject(s string) (m map[string]string, ok bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || !utf8.ValidString(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m = make(map[string]string, strings.Count(body, `": "`))
	for body != "" {
		var k, v string
		if k, body, ok = plainString(body); !ok {
			return nil, false
		}
		if body, ok = strings.CutPrefix(body, ": "); !ok {
			return nil, false
		}
		if v, body, ok = plainString(body); !ok {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
		if body != "" {
			if body, ok = strings.CutPrefix(body, ", "); !ok || body == "" {
				return nil, false
			}
		}
	}
	return m, true
}

// plainString reads a JSON string without escapes or control characters
// at the start of s.
func plainString(s string) (str, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], s[i+1:], true
		case c == '\\' || c < 0x20:
			return "", "", false
		}
	}
	return "", "", false
}

// timeArg returns t as stored: UTC, truncated to the microsecond precision
// of timestamptz (pgx would truncate too; this makes it explicit).
func timeArg(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func timePtrArg(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := timeArg(*t)
	return &u
}

// scopesArg and metadataArg send empty values rather than NULL (which the
// NOT NULL columns refuse) or JSON null.
func scopesArg(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func metadataArg(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// mapErr translates the answers a store may give (no row, duplicate id, too
// many keys, a refused value) into apikey's sentinels, and wraps every
// other error, which means the store failed.
func mapErr(op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrTooManyKeys):
		return apikey.ErrTooManyKeys
	case errors.Is(err, apikey.ErrFrozen), errors.Is(err, apikey.ErrNotFound):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return apikey.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation: a primary key, or a leak reported twice (apikey_leaks_report)
		return apikey.ErrDuplicateID
	case refused(err):
		return fmt.Errorf("%w: postgres: %s: %w", apikey.ErrInvalidInput, op, err)
	default:
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
}

// refused reports whether err is PostgreSQL refusing a value rather than
// failing: SQLSTATE class 22 (data exception: text with NUL or invalid
// UTF-8, a value out of range) or 23 (integrity constraint violation:
// check, not null, the schema's triggers). Such an error is bad input,
// which the apikey.Store contract wraps with apikey.ErrInvalidInput:
// retrying the same statement cannot succeed.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}
