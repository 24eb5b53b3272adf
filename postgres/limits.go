package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/storeform"
)

var _ apikey.LimitStore = (*Store)(nil)

// insertArgs returns the values of the columns of an inserted key, in the
// order of Insert's and BulkInsert's column lists.
func insertArgs(r *apikey.Record) ([]any, error) {
	limits, err := encodeLimits(r.RateLimits)
	if err != nil {
		return nil, fmt.Errorf("ratelimits: %w", err)
	}
	remaining, refill, next, err := encodeCredits(r.Credits)
	if err != nil {
		return nil, fmt.Errorf("credits: %w", err)
	}
	cidrs, err := storeform.EncodeCIDRs(r.AllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("allowed_cidrs: %w", err)
	}
	return []any{r.ID, r.Prefix, r.Name, r.Owner, scopesArg(r.Scopes), metadataArg(r.Metadata), r.Hash,
		timeArg(r.CreatedAt), timePtrArg(r.ExpiresAt), timePtrArg(r.RevokedAt), timePtrArg(r.LastUsedAt),
		limits, remaining, refill, next, string(r.Env()), cidrs, storeform.EncodeInactivity(time.Duration(r.InactivityExpiry)),
		timePtrArg(r.DisabledAt)}, nil
}

// encodeLimits returns the stored JSON of rate limits: [] when none.
func encodeLimits(l []apikey.RateLimit) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// decodeLimits decodes the stored JSON of rate limits; none is nil.
func decodeLimits(s string) ([]apikey.RateLimit, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var out []apikey.RateLimit
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// encodeCredits returns the three stored columns of a balance; all NULL
// for nil.
func encodeCredits(c *apikey.Credits) (remaining *int64, refill *string, next *time.Time, err error) {
	if c == nil {
		return nil, nil, nil, nil
	}
	r := c.Remaining
	if c.Refill != nil {
		b, err := json.Marshal(c.Refill)
		if err != nil {
			return nil, nil, nil, err
		}
		s := string(b)
		refill = &s
	}
	return &r, refill, timePtrArg(c.NextRefillAt), nil
}

// storedCredits are the three stored columns of a balance.
type storedCredits struct {
	remaining pgtype.Int8
	refill    pgtype.Text
	next      pgtype.Timestamptz
}

func (sc *storedCredits) dest() []any { return []any{&sc.remaining, &sc.refill, &sc.next} }

func (sc *storedCredits) decode() (*apikey.Credits, error) {
	if !sc.remaining.Valid {
		return nil, nil
	}
	c := &apikey.Credits{Remaining: sc.remaining.Int64, NextRefillAt: utcPtr(sc.next)}
	if sc.refill.Valid {
		c.Refill = new(apikey.Refill)
		if err := json.Unmarshal([]byte(sc.refill.String), c.Refill); err != nil {
			return nil, err
		}
	}
	return c, nil
}

const ownerColumns = "id, ratelimits, credits_remaining, credits_refill, credits_next_refill, updated_at"

func scanOwner(row pgx.Row) (*apikey.Owner, error) {
	var (
		o       apikey.Owner
		limits  string
		sc      storedCredits
		updated pgtype.Timestamptz
	)
	if err := row.Scan(&o.ID, &limits, &sc.remaining, &sc.refill, &sc.next, &updated); err != nil {
		return nil, err
	}
	var err, err2 error
	o.RateLimits, err = decodeLimits(limits)
	if o.RateLimits == nil {
		o.RateLimits = []apikey.RateLimit{}
	}
	o.Credits, err2 = sc.decode()
	o.UpdatedAt = updated.Time.UTC()
	if err := errors.Join(err, err2); err != nil {
		return nil, fmt.Errorf("owner %q: %w", o.ID, err)
	}
	return &o, nil
}

// Owner implements apikey.LimitStore.
func (s *Store) Owner(ctx context.Context, id string) (*apikey.Owner, error) {
	o, err := scanOwner(s.pool.QueryRow(ctx, `SELECT `+ownerColumns+` FROM ONLY apikey_owners WHERE id = $1`, id))
	if err != nil {
		return nil, mapErr("owner", err)
	}
	return o, nil
}

// PutOwner implements apikey.LimitStore in one transaction that locks the
// owner's row (a new owner's insertion is serialised by its primary key).
func (s *Store) PutOwner(ctx context.Context, id string, u apikey.OwnerUpdate, now time.Time, ev *apikey.Event) (*apikey.Owner, error) {
	var after *apikey.Owner
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var created bool
		err := tx.QueryRow(ctx, `INSERT INTO apikey_owners (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING true`,
			id, timeArg(now)).Scan(&created)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		before, err := scanOwner(tx.QueryRow(ctx, `SELECT `+ownerColumns+` FROM ONLY apikey_owners WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		next := before.Clone()
		if u.RateLimits != nil {
			next.RateLimits = *u.RateLimits
		}
		switch {
		case u.ClearCredits:
			next.Credits = nil
		case u.Credits != nil:
			next.Credits = u.Credits
		}
		limits, err := encodeLimits(next.RateLimits)
		if err != nil {
			return err
		}
		remaining, refill, nextRefill, err := encodeCredits(next.Credits)
		if err != nil {
			return err
		}
		// Setting or clearing the balance gives it a new epoch (NextEpoch
		// also keeps an owner deleted and made again from taking an epoch
		// it had); the row is locked.
		var epoch *int64 // nil: kept
		if u.Credits != nil || u.ClearCredits {
			var old int64
			if err := tx.QueryRow(ctx, `SELECT credits_epoch FROM ONLY apikey_owners WHERE id = $1`, id).Scan(&old); err != nil {
				return err
			}
			e := apikey.NextEpoch(old, now)
			epoch = &e
		}
		after, err = scanOwner(tx.QueryRow(ctx, `UPDATE ONLY apikey_owners SET ratelimits = $2, credits_remaining = $3,
			credits_refill = $4, credits_next_refill = $5, updated_at = $6, credits_epoch = coalesce($7, credits_epoch) WHERE id = $1 RETURNING `+ownerColumns,
			id, limits, remaining, refill, nextRefill, timeArg(now), epoch))
		if err != nil {
			return err
		}
		prev := before
		if created {
			prev = nil
		}
		return writeEvent(ctx, tx, ev, id, apikey.DiffOwner(prev, after))
	})
	if err != nil {
		return nil, mapErr("put owner", err)
	}
	return after, nil
}

// DeleteOwner implements apikey.LimitStore in one transaction; the trigger
// of apikey_owners (migration 0008) records the change and notifies the
// other instances.
func (s *Store) DeleteOwner(ctx context.Context, id string, ev *apikey.Event) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanOwner(tx.QueryRow(ctx, `DELETE FROM ONLY apikey_owners WHERE id = $1 RETURNING `+ownerColumns, id))
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, id, apikey.DiffOwner(before, nil))
	})
	return mapErr("delete owner", err)
}

// balance is a balance read, and locked, for a spend or an adjustment,
// with its epoch (apikey.Balance.Epoch, migration 0015).
type balance struct {
	table, id string
	apikey.Balance
}

// lockBalance reads and locks (FOR UPDATE) the balance of a key or owner.
func lockBalance(ctx context.Context, tx pgx.Tx, table, id string) (*balance, error) {
	var sc storedCredits
	var epoch int64
	err := tx.QueryRow(ctx, `SELECT credits_remaining, credits_refill, credits_next_refill, credits_epoch FROM ONLY `+table+` WHERE id = $1 FOR UPDATE`, id).
		Scan(append(sc.dest(), &epoch)...)
	if err != nil {
		return nil, err
	}
	c, err := sc.decode()
	if err != nil {
		return nil, fmt.Errorf("%s %q: malformed credits: %w", table, id, err)
	}
	return &balance{table: table, id: id, Balance: apikey.Balance{Credits: c, Epoch: epoch}}, nil
}

// write stores the balance's remaining credits, next refill and epoch.
func (b *balance) write(ctx context.Context, tx pgx.Tx) error {
	remaining, _, next, err := encodeCredits(b.Credits)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE ONLY `+b.table+` SET credits_remaining = $2, credits_next_refill = $3, credits_epoch = $4 WHERE id = $1`,
		b.id, remaining, next, b.Epoch)
	return err
}

// SpendCredits implements apikey.LimitStore in one transaction. It locks
// the key's row, then the owner's (always in that order, so that spends
// never deadlock), and, with an idempotency key, serialises the spends of
// one key and idempotency key on a transaction-level advisory lock, so
// that concurrent retries see the first one's record.
func (s *Store) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	if err := apikey.CheckSpendRequest(req); err != nil {
		return apikey.SpendResult{}, err
	}
	now := timeArg(req.Now)
	req.Now = now
	var res apikey.SpendResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = apikey.SpendResult{}
		kb, err := lockBalance(ctx, tx, "apikey_keys", req.KeyID)
		if err != nil {
			return err
		}
		// The key's row lock serialises this key's spends: a retry that
		// waited for it reads the first spend's record below.
		if req.IdempotencyKey != "" {
			var keyAfter, ownerAfter pgtype.Int8
			var created time.Time
			err := tx.QueryRow(ctx, `SELECT key_after, owner_after, created_at FROM apikey_credit_spends
				WHERE key_id = $1 AND idempotency_key = $2`, req.KeyID, req.IdempotencyKey).Scan(&keyAfter, &ownerAfter, &created)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			case now.Sub(created) < apikey.IdempotencyWindow:
				res = apikey.SpendResult{Spent: true, Replayed: true, KeyRemaining: int8Ptr(keyAfter), OwnerRemaining: int8Ptr(ownerAfter)}
				return nil
			}
		}
		bals := []*balance{kb}
		if req.Owner != "" {
			ob, err := lockBalance(ctx, tx, "apikey_owners", req.Owner)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			default:
				bals = append(bals, ob)
			}
		}
		res = spendBalances(bals, req)
		for _, b := range bals {
			if b.Credits != nil {
				if err := b.write(ctx, tx); err != nil {
					return err
				}
			}
		}
		if res.Spent && req.IdempotencyKey != "" && (res.KeyRemaining != nil || res.OwnerRemaining != nil) {
			// The key's records past the window are forgotten as it
			// records a new one, so that the table stays small.
			if _, err := tx.Exec(ctx, `DELETE FROM apikey_credit_spends WHERE key_id = $1 AND created_at < $2`,
				req.KeyID, now.Add(-apikey.IdempotencyWindow)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO apikey_credit_spends
				(key_id, idempotency_key, owner, cost, key_after, owner_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (key_id, idempotency_key) DO UPDATE SET owner = excluded.owner, cost = excluded.cost,
					key_after = excluded.key_after, owner_after = excluded.owner_after, created_at = excluded.created_at,
					refunded_at = NULL`,
				req.KeyID, req.IdempotencyKey, req.Owner, req.Cost, res.KeyRemaining, res.OwnerRemaining, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return apikey.SpendResult{}, mapErr("spend credits", err)
	}
	return res, nil
}

// spendBalances applies apikey.SpendBalances to bals, the key's balance
// first, then, when its row exists, the owner's, and keeps in bals the
// balances and epochs it leaves, for the caller to write back.
func spendBalances(bals []*balance, req apikey.SpendRequest) apikey.SpendResult {
	var owner *apikey.Balance
	if len(bals) > 1 {
		owner = &bals[1].Balance
	}
	return apikey.SpendBalances(&bals[0].Balance, owner, req)
}

// AdjustCredits implements apikey.LimitStore in one transaction, with the
// rows locked as SpendCredits locks them.
func (s *Store) AdjustCredits(ctx context.Context, adj apikey.CreditAdjustment, ev *apikey.Event) (*apikey.Credits, error) {
	var out *apikey.Credits
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = adjustTx(ctx, tx, adj, ev)
		return err
	})
	if err != nil {
		return nil, mapErr("adjust credits", err)
	}
	return out, nil
}

func adjustTx(ctx context.Context, tx pgx.Tx, adj apikey.CreditAdjustment, ev *apikey.Event) (*apikey.Credits, error) {
	now := timeArg(adj.Now)
	var b *balance
	owner := adj.Owner
	if adj.KeyID != "" {
		var revoked bool
		if err := tx.QueryRow(ctx, `SELECT revoked_at IS NOT NULL, owner FROM ONLY apikey_keys WHERE id = $1 FOR UPDATE`, adj.KeyID).Scan(&revoked, &owner); err != nil {
			return nil, err
		}
		if revoked {
			return nil, apikey.ErrFrozen
		}
		var err error
		if b, err = lockBalance(ctx, tx, "apikey_keys", adj.KeyID); err != nil {
			return nil, err
		}
	} else {
		if _, err := tx.Exec(ctx, `INSERT INTO apikey_owners (id, updated_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, owner, now); err != nil {
			return nil, err
		}
		var err error
		if b, err = lockBalance(ctx, tx, "apikey_owners", owner); err != nil {
			return nil, err
		}
	}
	before := b.Credits.Clone()
	switch adj.Op {
	case apikey.CreditRefund:
		var cost int64
		var keyAfter, ownerAfter pgtype.Int8
		var spendOwner string
		var refunded pgtype.Timestamptz
		err := tx.QueryRow(ctx, `SELECT cost, key_after, owner_after, owner, refunded_at FROM apikey_credit_spends
			WHERE key_id = $1 AND idempotency_key = $2 FOR UPDATE`, adj.KeyID, adj.IdempotencyKey).Scan(&cost, &keyAfter, &ownerAfter, &spendOwner, &refunded)
		if err != nil {
			return nil, err
		}
		if refunded.Valid {
			return b.Credits, nil // refunded already: nothing changes
		}
		if _, err := tx.Exec(ctx, `UPDATE apikey_credit_spends SET refunded_at = $3 WHERE key_id = $1 AND idempotency_key = $2`,
			adj.KeyID, adj.IdempotencyKey, now); err != nil {
			return nil, err
		}
		if keyAfter.Valid && b.Credits != nil {
			b.ApplyRefill(now)
			b.Credits.Remaining += cost
			if err := b.write(ctx, tx); err != nil {
				return nil, err
			}
		}
		if ownerAfter.Valid {
			ob, err := lockBalance(ctx, tx, "apikey_owners", spendOwner)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return nil, err
			case ob.Credits != nil:
				ob.ApplyRefill(now)
				ob.Credits.Remaining += cost
				if err := ob.write(ctx, tx); err != nil {
					return nil, err
				}
			}
		}
	case apikey.CreditSet, apikey.CreditAdd:
		c, err := apikey.Adjust(b.Credits, adj.Op, adj.Amount, now)
		if err != nil {
			return nil, err
		}
		// A set, a balance made where there was none, and a refill that
		// Adjust applied give the balance a new epoch; an add keeps it.
		if adj.Op == apikey.CreditSet || b.Credits == nil || b.Credits.Clone().ApplyRefill(now) {
			b.Epoch = apikey.NextEpoch(b.Epoch, now)
		}
		b.Credits = c
		if err := b.write(ctx, tx); err != nil {
			return nil, err
		}
		if adj.KeyID == "" {
			if _, err := tx.Exec(ctx, `UPDATE ONLY apikey_owners SET updated_at = $2 WHERE id = $1`, owner, now); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown credit operation %q", apikey.ErrInvalidInput, adj.Op)
	}
	if err := writeEvent(ctx, tx, ev, owner, map[string]apikey.Change{"credits": apikey.CreditsChange(before, b.Credits)}); err != nil {
		return nil, err
	}
	return b.Credits, nil
}

func int8Ptr(v pgtype.Int8) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

// PruneSpends implements apikey.SpendPruner.
func (s *Store) PruneSpends(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM apikey_credit_spends WHERE created_at < $1`, before)
	if err != nil {
		return 0, mapErr("prune spends", err)
	}
	return tag.RowsAffected(), nil
}
