package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/storeform"
)

var _ apikey.Importer = (*Store)(nil)

// importChunk is how many records one statement of Import inserts.
const importChunk = 1000

// importSQL inserts the records of one chunk whose id is free (no key, no
// tombstone, no audit entry; the first of several with the same id), and
// their key.imported entries in the chunk's order, in one statement. The
// revoked_at of every record is left NULL: Import revokes afterwards.
const importSQL = `WITH v AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::timestamptz[], $13::text[], $14::text[],
		$15::text[], $16::bigint[], $17::text[], $18::timestamptz[], $19::text[], $20::text[], $21::bigint[], $22::timestamptz[])
		WITH ORDINALITY AS v(id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, last_used_at, ev_type, ev_at, actor, changes,
			ratelimits, credits_remaining, credits_refill, credits_next_refill, environment, allowed_cidrs, inactivity_expiry, disabled_at, ord)
), fresh AS (
	SELECT DISTINCT ON (id) * FROM v
	WHERE NOT EXISTS (SELECT 1 FROM ONLY apikey_keys k WHERE k.id = v.id)
		AND NOT EXISTS (SELECT 1 FROM apikey_revoked_ids r WHERE r.id = v.id)
		AND NOT EXISTS (SELECT 1 FROM apikey_events e WHERE e.key_id = v.id)
	ORDER BY id, ord
), inserted AS (
	INSERT INTO apikey_keys (id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, last_used_at,
		ratelimits, credits_remaining, credits_refill, credits_next_refill, environment, allowed_cidrs, inactivity_expiry, disabled_at)
	SELECT id, prefix, name, owner,
		ARRAY(SELECT s FROM jsonb_array_elements_text(scopes::jsonb) WITH ORDINALITY AS a(s, n) ORDER BY n),
		metadata::jsonb, hash, created_at, expires_at, last_used_at,
		ratelimits, credits_remaining, credits_refill, credits_next_refill, environment, allowed_cidrs, inactivity_expiry, disabled_at
	FROM fresh
	ON CONFLICT (id) DO NOTHING
	RETURNING id
)
INSERT INTO apikey_events (type, at, actor, key_id, owner, changes)
SELECT f.ev_type, f.ev_at, f.actor, f.id, f.owner, f.changes::jsonb
FROM fresh f JOIN inserted USING (id)
ORDER BY f.ord
RETURNING key_id, id`

// Import implements apikey.Importer in one transaction: one statement per
// chunk of 1,000 records inserts the free ones with their audit entries,
// then each revoked record is revoked as Revoke does (the same statement,
// its audit entry, the tombstone of its trigger).
func (s *Store) Import(ctx context.Context, batch []apikey.ImportEntry) error {
	if len(batch) == 0 {
		return nil
	}
	for i, e := range batch {
		if e.Record == nil || e.Imported == nil || (e.Record.RevokedAt != nil) != (e.Revoked != nil) {
			return fmt.Errorf("postgres: import: entry %d: %w: a record and its key.imported event, and a key.revoked event exactly when the record is revoked",
				i, apikey.ErrInvalidInput)
		}
		if hasPrevious(e.Record) {
			return fmt.Errorf("postgres: import: entry %d (%s): %w: %s", i, e.Record.ID, apikey.ErrInvalidInput, previousRefused)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for lo := 0; lo < len(batch); lo += importChunk {
			if err := importChunkTx(ctx, tx, batch[lo:min(lo+importChunk, len(batch))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, e := range batch { // rolled back: no event was written
			e.Imported.ID = 0
			if e.Revoked != nil {
				e.Revoked.ID = 0
			}
		}
		return mapErr("import", err)
	}
	return nil
}

func importChunkTx(ctx context.Context, tx pgx.Tx, chunk []apikey.ImportEntry) error {
	n := len(chunk)
	var (
		ids, prefixes, names, owners = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		scopes, metadata, hashes     = make([]string, n), make([]string, n), make([]string, n)
		created, expires, lastUsed   = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		types, actors, changes       = make([]string, n), make([]string, n), make([]string, n)
		ats                          = make([]pgtype.Timestamptz, n)
		diffs                        = make([]map[string]apikey.Change, n)
		// The lifecycle columns, as insertArgs encodes them.
		limits, refills, envs, cidrs = make([]string, n), make([]pgtype.Text, n), make([]string, n), make([]string, n)
		remaining, idle              = make([]pgtype.Int8, n), make([]int64, n)
		nextRefill, disabled         = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	)
	for i, e := range chunk {
		k := e.Record.Key // stored unrevoked; revoked below
		k.RevokedAt = nil
		sc, err := json.Marshal(scopesArg(k.Scopes))
		if err != nil {
			return fmt.Errorf("scopes of %s: %w", k.ID, err)
		}
		md, err := json.Marshal(metadataArg(k.Metadata))
		if err != nil {
			return fmt.Errorf("metadata of %s: %w", k.ID, err)
		}
		if limits[i], err = encodeLimits(k.RateLimits); err != nil {
			return fmt.Errorf("ratelimits of %s: %w", k.ID, err)
		}
		r, refill, next, err := encodeCredits(k.Credits)
		if err != nil {
			return fmt.Errorf("credits of %s: %w", k.ID, err)
		}
		if r != nil {
			remaining[i] = pgtype.Int8{Int64: *r, Valid: true}
		}
		if refill != nil {
			refills[i] = pgtype.Text{String: *refill, Valid: true}
		}
		if cidrs[i], err = storeform.EncodeCIDRs(k.AllowedCIDRs); err != nil {
			return fmt.Errorf("allowed_cidrs of %s: %w", k.ID, err)
		}
		nextRefill[i], disabled[i] = timestamptz(next), timestamptz(k.DisabledAt)
		envs[i], idle[i] = string(k.Env()), storeform.EncodeInactivity(time.Duration(k.InactivityExpiry))
		diffs[i] = apikey.Diff(nil, &k)
		ids[i], prefixes[i], names[i], owners[i] = k.ID, k.Prefix, k.Name, k.Owner
		scopes[i], metadata[i], hashes[i] = string(sc), string(md), e.Record.Hash
		created[i] = pgtype.Timestamptz{Time: timeArg(k.CreatedAt), Valid: true}
		expires[i], lastUsed[i] = timestamptz(k.ExpiresAt), timestamptz(k.LastUsedAt)
		ev := e.Imported
		types[i], actors[i], changes[i] = string(ev.Type), ev.Actor, string(apikey.MarshalChanges(diffs[i]))
		ats[i] = pgtype.Timestamptz{Time: timeArg(ev.At), Valid: true}
	}
	rows, err := tx.Query(ctx, importSQL, ids, prefixes, names, owners, scopes, metadata, hashes,
		created, expires, lastUsed, types, ats, actors, changes,
		limits, remaining, refills, nextRefill, envs, cidrs, idle, disabled)
	if err != nil {
		return err
	}
	written := map[string]int64{}
	var keyID string
	var evID int64
	_, err = pgx.ForEachRow(rows, []any{&keyID, &evID}, func() error {
		written[keyID] = evID
		return nil
	})
	if err != nil {
		return err
	}
	for i, e := range chunk {
		id, ok := written[ids[i]]
		if !ok {
			continue // taken, or a later copy of an id in the batch
		}
		delete(written, ids[i])
		e.Imported.ID, e.Imported.Owner, e.Imported.Changes = id, owners[i], diffs[i]
		if at := e.Record.RevokedAt; at != nil {
			if _, err := revokeTx(ctx, tx, ids[i], *at, e.Revoked); err != nil {
				return err
			}
		}
	}
	return nil
}

func timestamptz(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: timeArg(*t), Valid: true}
}

// Taken implements apikey.Importer in one statement.
func (s *Store) Taken(ctx context.Context, ids []string) ([]bool, error) {
	out := make([]bool, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT EXISTS (SELECT 1 FROM ONLY apikey_keys k WHERE k.id = v.id)
		OR EXISTS (SELECT 1 FROM apikey_revoked_ids r WHERE r.id = v.id)
		OR EXISTS (SELECT 1 FROM apikey_events e WHERE e.key_id = v.id)
	FROM unnest($1::text[]) WITH ORDINALITY AS v(id, ord) ORDER BY ord`, ids)
	if err != nil {
		return nil, mapErr("taken", err)
	}
	var held bool
	if _, err := pgx.ForEachRow(rows, []any{&held}, func() error {
		out = append(out, held)
		return nil
	}); err != nil {
		return nil, mapErr("taken", err)
	}
	return out, nil
}
