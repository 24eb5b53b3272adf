package apikey

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// LimitStore is the optional interface of the stores that keep owners and
// balances of credits, which Check, Enforce, SetOwner and AdjustCredits
// need; sqlite.Store, postgres.Store and memstore.Store implement it, and
// apikeytest.TestCredits checks it. Implementations must be safe for
// concurrent use, and exact: whatever the concurrency, over one process or
// many, a balance is never spent below zero and a spend is counted once.
type LimitStore interface {
	// Owner returns the record of owner id, or ErrNotFound when it has
	// none.
	Owner(ctx context.Context, id string) (*Owner, error)

	// PutOwner applies u to the record of owner id, creating it when
	// missing, sets its UpdatedAt to now and returns it. When ev is not
	// nil it is written to the audit log in the same transaction, its
	// Changes filled with DiffOwner(before, after) (before is nil for a new
	// record), and ev.ID set. The change is recorded in the ChangeFeed
	// under OwnerSubject(id), so that caches of other instances evict the
	// owner.
	PutOwner(ctx context.Context, id string, u OwnerUpdate, now time.Time, ev *Event) (*Owner, error)

	// DeleteOwner removes the record of owner id: its limits and its
	// balance. The keys of the owner are left alone; they just no longer
	// share the owner's limits or balance. When ev is not nil it is
	// written to the audit log in the same transaction, its Changes
	// filled with DiffOwner(before, nil), and ev.ID set. The change is
	// recorded in the ChangeFeed under OwnerSubject(id), as PutOwner's. An
	// owner without a record yields ErrNotFound.
	DeleteOwner(ctx context.Context, id string, ev *Event) error

	// SpendCredits spends req.Cost from the balance of key req.KeyID, if
	// it has one, and from that of owner req.Owner (when not empty), if it
	// has one, in one transaction: both or neither. First it applies the
	// refills due at req.Now (Credits.ApplyRefill), and keeps them even
	// when it spends nothing. A balance below the cost spends nothing
	// anywhere: Spent is false. When req.IdempotencyKey is set and a spend
	// of the same key with it was recorded less than IdempotencyWindow
	// before req.Now, it spends nothing and returns that spend's result
	// with Replayed set; otherwise it records this spend's (when it spent
	// something), replacing an older one. Records older than
	// IdempotencyWindow may be forgotten (the stores drop a key's as they
	// record its next), after which they can no longer be refunded. A key or owner without a balance
	// is not limited: with neither, Spent is true and nothing is recorded.
	// An unknown key yields ErrNotFound. Spends are not audited and not
	// recorded in the ChangeFeed.
	SpendCredits(ctx context.Context, req SpendRequest) (SpendResult, error)

	// AdjustCredits applies adj to the balance of a key (adj.KeyID) or of
	// an owner (adj.Owner), after the refill due at adj.Now, and returns
	// the balance. CreditSet and CreditAdd create a balance without a
	// refill when there is none; CreditAdd refuses (ErrInvalidInput,
	// changing nothing) to take a balance below zero. CreditRefund adds
	// back what the spend recorded under adj.IdempotencyKey for adj.KeyID
	// took from the key's and the owner's balances, once: a second refund
	// of it changes nothing, records no event and returns the balance. An
	// unknown key, or a refund of an unknown spend, yields ErrNotFound, as
	// does a key balance changed on a revoked key (ErrFrozen). ev, when not
	// nil and something changed, is written as PutOwner writes its own
	// (Changes {"credits": ...}).
	AdjustCredits(ctx context.Context, adj CreditAdjustment, ev *Event) (*Credits, error)
}

// OwnerUpdate is a patch of an owner's record for Manager.SetOwner and
// LimitStore.PutOwner; nil fields are left unchanged.
type OwnerUpdate struct {
	// RateLimits replaces the owner's limits; an empty slice removes them.
	RateLimits *[]RateLimit
	// Credits replaces the owner's balance and refill; ClearCredits
	// removes them. They cannot be combined.
	Credits      *Credits
	ClearCredits bool
}

// SpendRequest is a spend of credits for LimitStore.SpendCredits.
type SpendRequest struct {
	// KeyID is the key the request was made with.
	KeyID string
	// Owner is the key's owner, whose balance is spent too; empty means
	// none.
	Owner string
	// Cost is what to spend; positive.
	Cost int64
	// IdempotencyKey, when set, makes the spend idempotent for KeyID.
	IdempotencyKey string
	// Now is the Manager's clock: refills and the idempotency window are
	// judged by it.
	Now time.Time

	// Lease, when positive, asks for up to Lease credits beyond Cost, for
	// the caller to spend itself (the Manager's credit leases, see
	// Config.CreditLease): SpendBalances decides how many (LeaseShare).
	// What it takes is SpendResult.Leased. Not with IdempotencyKey.
	Lease int64
	// Return gives back, before anything is spent, credits that an
	// earlier result leased and the caller did not spend, to each balance
	// whose epoch is still the one that result reported (KeyEpoch,
	// OwnerEpoch): a balance set, cleared or refilled since gets nothing
	// back. Not with IdempotencyKey. Cost may be zero when Return or Lease
	// is set: a lease taken ahead, or given back, without a spend.
	Return               int64
	KeyEpoch, OwnerEpoch int64
}

// SpendResult is the answer of LimitStore.SpendCredits.
type SpendResult struct {
	// Spent reports whether the cost was spent (or nothing needed to be).
	Spent bool
	// Replayed reports an idempotent retry: nothing was spent this time,
	// and the other fields are those of the first spend.
	Replayed bool
	// KeyRemaining and OwnerRemaining are the balances after the spend (or
	// as found, when refused); nil for one that does not exist.
	KeyRemaining, OwnerRemaining *int64
	// NextRefillAt is, when refused, the earliest next refill of the
	// balances that were short; nil when none of them refills.
	NextRefillAt *time.Time

	// Leased is what the spend took beyond its cost for the caller to
	// spend itself (SpendRequest.Lease), from each balance.
	Leased int64
	// KeyEpoch and OwnerEpoch are the epochs of the balances after the
	// spend (Balance.Epoch), for the Return of what was leased.
	KeyEpoch, OwnerEpoch int64
	// RefillAt is the earliest next refill of the balances, nil when none
	// refills: credits leased must not be spent from then on.
	RefillAt *time.Time
}

// Balance is a balance of credits as a store holds it.
type Balance struct {
	// Credits is the balance; nil means none.
	Credits *Credits
	// Epoch identifies the balance as it was last set: a store gives it a
	// new value (NextEpoch) whenever the balance is set, cleared or
	// refilled, and keeps it when the balance is spent from, added to or
	// refunded, so that credits leased from a balance are given back only
	// to that balance (SpendRequest.Return), never to one set since.
	Epoch int64
}

// ApplyRefill applies the refill due at now to b.Credits
// (Credits.ApplyRefill), giving b a new epoch when it refills, and
// reports whether it did.
func (b *Balance) ApplyRefill(now time.Time) bool {
	if !b.Credits.ApplyRefill(now) {
		return false
	}
	b.Epoch = NextEpoch(b.Epoch, now)
	return true
}

// NextEpoch returns the epoch of a balance that was at old and is set,
// cleared or refilled at now: greater than old, and than the epoch of any
// balance set before now, so that a balance removed and made again (an
// owner's record deleted and created) does not take an epoch it had.
func NextEpoch(old int64, now time.Time) int64 {
	return max(old+1, now.UnixNano())
}

// LeaseShare bounds a lease: SpendBalances leases at most the smallest
// balance left after the cost divided by LeaseShare, so that the
// credits leased to all the instances sharing a balance stay a small part
// of it, and a balance nearly spent is spent without leases, exactly.
const LeaseShare = 16

// CheckSpendRequest returns the ErrInvalidInput of a malformed
// SpendRequest: a negative amount, nothing to spend, lease or give back, or a
// lease or a return with an idempotency key. Stores call it first.
func CheckSpendRequest(req SpendRequest) error {
	switch {
	case req.Cost < 0 || req.Lease < 0 || req.Return < 0:
		return fmt.Errorf("%w: spend credits: cost, lease and return must not be negative", ErrInvalidInput)
	case req.Cost == 0 && req.Return == 0 && req.Lease == 0:
		return fmt.Errorf("%w: spend credits: cost must be positive", ErrInvalidInput)
	case req.IdempotencyKey != "" && (req.Lease > 0 || req.Return > 0):
		return fmt.Errorf("%w: spend credits: an idempotent spend takes no lease and returns none", ErrInvalidInput)
	}
	return nil
}

// SpendBalances is the rule of a spend of credits with its lease and
// return, which every LimitStore applies to the balances it holds (locked,
// in the spend's transaction; key and owner may be nil, or hold nil
// Credits, for none). In order:
//
//   - the refills due at req.Now are applied, each giving its balance a
//     new epoch (NextEpoch);
//   - req.Return is added to each balance whose epoch is req's (KeyEpoch,
//     OwnerEpoch);
//   - when every balance covers Cost plus a lease, both are taken from
//     each: the lease is req.Lease, or less, at most the smallest balance
//     left after the cost over LeaseShare (Leased); otherwise, when every
//     balance covers Cost, Cost alone is taken; otherwise nothing (Spent
//     is false, NextRefillAt the earliest next refill of those short).
//
// The result holds the balances and their epochs after it. It changes key
// and owner in place, for the store to write back.
func SpendBalances(key, owner *Balance, req SpendRequest) SpendResult {
	bals := [...]*Balance{key, owner}
	epochs := [...]int64{req.KeyEpoch, req.OwnerEpoch}
	res := SpendResult{Spent: true}
	short := int64(-1) // the smallest balance, -1 for none
	for i, b := range bals {
		if b == nil || b.Credits == nil {
			continue
		}
		c := b.Credits
		b.ApplyRefill(req.Now)
		if req.Return > 0 && b.Epoch == epochs[i] {
			c.Remaining += req.Return
		}
		if c.Remaining < req.Cost {
			res.Spent = false
			if n := c.NextRefillAt; n != nil && (res.NextRefillAt == nil || n.Before(*res.NextRefillAt)) {
				t := *n
				res.NextRefillAt = &t
			}
		}
		if short < 0 || c.Remaining < short {
			short = c.Remaining
		}
		if n := c.NextRefillAt; n != nil && (res.RefillAt == nil || n.Before(*res.RefillAt)) {
			t := *n
			res.RefillAt = &t
		}
	}
	if res.Spent && short >= 0 && req.Lease > 0 {
		res.Leased = max(min(req.Lease, (short-req.Cost)/LeaseShare), 0)
	}
	if !res.Spent {
		res.RefillAt = nil
	}
	take := req.Cost + res.Leased
	for i, b := range bals {
		if b == nil || b.Credits == nil {
			continue
		}
		if res.Spent {
			b.Credits.Remaining -= take
		}
		v := b.Credits.Remaining
		if i == 0 {
			res.KeyRemaining, res.KeyEpoch = &v, b.Epoch
		} else {
			res.OwnerRemaining, res.OwnerEpoch = &v, b.Epoch
		}
	}
	return res
}

// Spend is the rule of a spend of credits, which every LimitStore applies
// to the balances it holds (locked, in the spend's transaction): it
// applies the refills due at now to key and owner, the balances of the key
// and of its owner, either of which may be nil for none; then, only when
// every balance there is covers cost, spends cost from each (all or
// nothing). The result holds the balances after it, and when refused the
// earliest next refill of the balances that were short. It changes key and
// owner in place, for the store to write back.
func Spend(key, owner *Credits, now time.Time, cost int64) SpendResult {
	var kb, ob *Balance
	if key != nil {
		kb = &Balance{Credits: key}
	}
	if owner != nil {
		ob = &Balance{Credits: owner}
	}
	res := SpendBalances(kb, ob, SpendRequest{Cost: cost, Now: now})
	res.KeyEpoch, res.OwnerEpoch, res.RefillAt = 0, 0, nil
	return res
}

// Adjust is the rule of a set or an add of credits (CreditSet,
// CreditAdd), which every LimitStore applies to the balance it holds: it
// returns a copy of c (nil for no balance yet) with the refill due at now
// applied, then the balance set to amount or amount added to it. An add
// that would take the balance below zero, and any other operation, is
// refused with ErrInvalidInput. Refunds are the store's: they undo a
// recorded spend.
func Adjust(c *Credits, op CreditOp, amount int64, now time.Time) (*Credits, error) {
	out := c.Clone()
	if out == nil {
		out = &Credits{}
	}
	out.ApplyRefill(now)
	switch op {
	case CreditSet:
		out.Remaining = amount
	case CreditAdd:
		if out.Remaining+amount < 0 {
			return nil, fmt.Errorf("%w: the balance would go below zero", ErrInvalidInput)
		}
		out.Remaining += amount
	default:
		return nil, fmt.Errorf("%w: unknown credit operation %q", ErrInvalidInput, op)
	}
	return out, nil
}

// CreditsChange is the audit form of a change of balance: the remaining
// credits before and after (nil for no balance).
func CreditsChange(before, after *Credits) Change {
	var b, a any
	if before != nil {
		b = before.Remaining
	}
	if after != nil {
		a = after.Remaining
	}
	return Change{Before: b, After: a}
}

// CreditOp is an operation of AdjustCredits.
type CreditOp string

// The operations of AdjustCredits.
const (
	// CreditSet sets the balance to Amount.
	CreditSet CreditOp = "set"
	// CreditAdd adds Amount, which may be negative, to the balance.
	CreditAdd CreditOp = "add"
	// CreditRefund gives back what the spend of IdempotencyKey took.
	CreditRefund CreditOp = "refund"
)

// CreditAdjustment is a change of a balance for Manager.AdjustCredits and
// LimitStore.AdjustCredits.
type CreditAdjustment struct {
	// KeyID names the key whose balance changes; Owner the owner. Exactly
	// one is set, and a refund names a key.
	KeyID string
	Owner string
	// Op is the operation.
	Op CreditOp
	// Amount is the balance to set or the amount to add; a refund takes
	// none.
	Amount int64
	// IdempotencyKey, for a refund, names the spend to undo.
	IdempotencyKey string
	// Now is the Manager's clock; the Manager sets it.
	Now time.Time
}

// DiffOwner returns the fields of an owner's record that differ between
// before and after (either may be nil), by JSON name: "ratelimits" and
// "credits". Stores call it to fill the audit log.
func DiffOwner(before, after *Owner) map[string]Change {
	kb, ka := &Key{}, &Key{}
	if before != nil {
		kb.RateLimits, kb.Credits = before.RateLimits, before.Credits
	}
	if after != nil {
		ka.RateLimits, ka.Credits = after.RateLimits, after.Credits
	}
	return Diff(kb, ka)
}

// ownerEntry is what the cache holds for an owner, under OwnerSubject.
type ownerEntry struct {
	rec     *Owner      // nil: the owner has no record
	buckets []bucketRef // one per rec.RateLimits
}

// bucketRef is one limit of a cached key or owner with its limiter bucket,
// made once per cache entry, and the cell of the MemoryLimiter once
// fetched: contiguous, so that a request on a cached key reads a few
// adjacent cache lines, builds no string, hashes nothing and takes no
// lock. own is the cell the bucket offers the limiter when it has none
// for it yet, so that the counter lives beside the rest (usually in the
// entry's own allocation, see newEntry) rather than in a cache line of
// its own.
type bucketRef struct {
	limit RateLimit
	gcra  gcraLimit // of limit
	name  string
	cell  atomic.Pointer[limitCell]
	own   limitCell
	// requests reports limit.Name == DefaultRateLimit.
	requests bool
}

// cost is limitCost for this bucket's limit, without comparing strings
// in the common case of a route that names no limit.
func (b *bucketRef) cost(route string, cost int64) int64 {
	if route == "" {
		if b.requests {
			return cost
		}
		return 0
	}
	return limitCost(b.limit.Name, route, cost)
}

func newBucketRefs(prefix string, limits []RateLimit) []bucketRef {
	if len(limits) == 0 {
		return nil
	}
	b := make([]bucketRef, len(limits))
	fillBucketRefs(b, prefix, limits)
	return b
}

// fillBucketRefs makes b, of len(limits), the buckets of limits.
func fillBucketRefs(b []bucketRef, prefix string, limits []RateLimit) {
	for i, l := range limits {
		b[i].limit, b[i].name = l, prefix+l.Name
		b[i].gcra = newGCRA(&b[i].limit)
		b[i].requests = l.Name == DefaultRateLimit
	}
}

func ownerBuckets(o *Owner) []bucketRef {
	if o == nil {
		return nil
	}
	return newBucketRefs("owner:"+o.ID+":", o.RateLimits)
}

func keyBuckets(k *Key) []bucketRef {
	return newBucketRefs("key:"+k.ID+":", k.RateLimits)
}

// check returns the validation error of opts, if any.
func (o *CheckOptions) check() error {
	switch {
	case o.RateLimit != "" && !ValidLimitName(o.RateLimit):
		return invalid("ratelimit", "%q is not a valid limit name", o.RateLimit)
	case o.Cost < 0:
		return invalid("cost", "must not be negative")
	case o.Credits < 0:
		return invalid("credits", "must not be negative")
	case o.IdempotencyKey != "" && !ValidIdempotencyKey(o.IdempotencyKey):
		return invalid("idempotency_key", "must be 1 to 255 bytes of printable ASCII")
	case o.Environment != "" && !o.Environment.Valid():
		return invalid("environment", "must be live or test, got %q", o.Environment)
	}
	return nil
}

// Check verifies token as Verify does, applies Key.Permits with
// opts.Environment and opts.ClientAddr (ErrWrongEnvironment, or an
// *AddrError matching ErrIPNotAllowed: a key with a network allowlist is
// refused when opts.ClientAddr is not set), and then applies, in this
// order, the rate limits of the key and of its owner that opts selects, and the
// spend of opts.Credits. A request refused by a rate limit spends no
// credit. It returns the key with the outcome of every limit and the
// balance left, or the error of Verify, a *LimitError matching
// ErrRateLimited or ErrUsageExceeded, ErrInvalidInput for bad opts, or
// ErrUnavailable when a Limiter (of a limit that does not fail open: a
// *LimiterError) or the store fails.
//
// Check does not check scopes: check them on Result.Key first when the
// request needs any, or use Verify, then the scope checks, then Enforce,
// which is what apikeyhttp does.
//
// The rate limits of a key are counted in the Manager's Limiter
// (Config.Limiter); a request passes each limit in turn and is counted by
// those it passed, even when a later one refuses it. Credits are spent by
// the store (a LimitStore), exactly.
func (m *Manager) Check(ctx context.Context, token string, opts CheckOptions) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	start := time.Now() // as in Verify: the one reading of a cache hit
	var at time.Time
	res := new(Result) // one allocation for the result and the key's copy
	k, e, id, err := m.verifyEntry(ctx, token, start, false, &at, &res.key)
	m.metrics.verifiedSince(start, err)
	if err != nil {
		m.rejected(ctx, id, err)
		return nil, err
	}
	if err := k.Permits(opts.Environment, opts.ClientAddr); err != nil {
		m.rejected(ctx, id, err)
		return nil, err
	}
	res.Key = k
	res.RateLimits = res.limits[:0]
	if err := m.enforce(ctx, k, e.buckets, e.ownerID, opts, at, res); err != nil {
		m.rejected(ctx, id, err)
		return nil, err
	}
	return res, nil
}

// Enforce applies the rate limits and credits of opts to k, a key that
// Verify returned, as Check does after verifying. It leaves
// opts.Environment and opts.ClientAddr to the caller (Key.Permits), as
// apikeyhttp does before it calls Enforce. Keys from elsewhere (a
// remote verifier) are limited as they are given: their RateLimits and
// Owner decide.
func (m *Manager) Enforce(ctx context.Context, k *Key, opts CheckOptions) (*Result, error) {
	if k == nil {
		return nil, errors.New("apikey: Enforce needs a key")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	res := &Result{Key: k}
	res.RateLimits = res.limits[:0]
	buckets, ownerID := m.bucketsOf(k)
	if err := m.enforce(ctx, k, buckets, ownerID, opts, time.Time{}, res); err != nil {
		m.rejected(ctx, k.ID, err)
		return nil, err
	}
	return res, nil
}

// bucketsOf returns the limiter buckets and the owner's cache id of k:
// those of its cache entry when k is the key the entry gave Verify (it
// shares the entry's RateLimits), so that the common path of Verify then
// Enforce builds no strings; otherwise made afresh.
func (m *Manager) bucketsOf(k *Key) ([]bucketRef, string) {
	if cs := m.cache; cs != nil {
		if e, ok := cs.c.Get(k.ID); ok && e != nil && e.owner == nil && e.key.ID == k.ID && e.key.Owner == k.Owner &&
			len(e.key.RateLimits) == len(k.RateLimits) && (len(k.RateLimits) == 0 || &e.key.RateLimits[0] == &k.RateLimits[0]) {
			return e.buckets, e.ownerID
		}
	}
	var ownerID string
	if k.Owner != "" {
		ownerID = OwnerSubject(k.Owner)
	}
	return keyBuckets(k), ownerID
}

// rejected emits the verify.rejected event of a refusal.
func (m *Manager) rejected(ctx context.Context, id string, err error) {
	if m.events != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrInvalidInput) {
		ev := m.event(ctx, EventVerifyRejected, id, m.clock())
		ev.Reason = string(CodeOf(err))
		m.emit(ev)
	}
}

// limitCost returns what a request costs against limit name when the route
// asks for route with cost: cost for the named limit, 1 for "requests"
// otherwise, and nothing (0) for the other limits.
func limitCost(name, route string, cost int64) int64 {
	if route == "" {
		route = DefaultRateLimit
	}
	switch name {
	case route:
		return cost
	case DefaultRateLimit:
		return 1
	}
	return 0
}

// enforce applies opts to k. at, when not zero, is the time of the
// Manager's clock at which k was verified: the default limiter, which
// runs on that clock, takes it rather than reading the clock again.
func (m *Manager) enforce(ctx context.Context, k *Key, buckets []bucketRef, ownerID string, opts CheckOptions, at time.Time, res *Result) error {
	cost := cmpOr(opts.Cost, 1)
	var now int64 // read once, when a MemoryLimiter needs it
	if m.memLimiter != nil && len(k.RateLimits) > 0 {
		now = m.limiterNow(at)
	}
	if len(buckets) != len(k.RateLimits) {
		buckets = keyBuckets(k) // not the key of the entry
	}
	for i := range buckets {
		b := &buckets[i]
		c := b.cost(opts.RateLimit, cost)
		if c == 0 {
			continue
		}
		if err := m.allow(ctx, b, "key", c, k.ID, now, res); err != nil {
			return err
		}
	}
	var owner *Owner
	if ownerID != "" && m.limitStore != nil {
		oe, err := m.lookupOwner(ctx, ownerID, k.Owner)
		if err != nil {
			return unavailable("owner lookup", err)
		}
		owner = oe.rec
		if owner != nil {
			for i := range oe.buckets {
				b := &oe.buckets[i]
				c := b.cost(opts.RateLimit, cost)
				if c == 0 {
					continue
				}
				if now == 0 && m.memLimiter != nil {
					now = m.limiterNow(at)
				}
				if err := m.allow(ctx, b, "owner", c, k.ID, now, res); err != nil {
					return err
				}
			}
		}
	}
	if opts.Credits > 0 {
		return m.spend(ctx, k, opts, at, res)
	}
	return nil
}

// limiterNow returns the time of the MemoryLimiter in Unix nanoseconds:
// at, the Manager's, when the limiter is the default one on the Manager's
// clock and at is set, else the limiter's own reading.
func (m *Manager) limiterNow(at time.Time) int64 {
	if m.ownLimiter && !at.IsZero() {
		return at.UnixNano()
	}
	return m.memLimiter.now().UnixNano()
}

// allow checks the limit of b and appends its outcome to res. now is the
// time for a MemoryLimiter, in Unix nanoseconds.
func (m *Manager) allow(ctx context.Context, b *bucketRef, scope string, cost int64, keyID string, now int64, res *Result) error {
	l := &b.limit
	var r LimitResult
	if m.memLimiter != nil {
		r = m.memLimiter.allowCell(&b.cell, &b.own, b.name, &b.gcra, cost, now)
	} else {
		var err error
		if r, err = m.limiter.Allow(ctx, b.name, *l, cost); err != nil {
			if l.FailOpen {
				m.metrics.rateLimitDecided(scope, l.Name, LimitFailOpen)
				return nil
			}
			m.metrics.rateLimitDecided(scope, l.Name, LimitFailed)
			return &LimiterError{Scope: scope, Limit: l.Name, Err: err}
		}
	}
	r.Scope = scope
	res.RateLimits = append(res.RateLimits, r)
	if !r.Allowed {
		m.metrics.rateLimitDecided(scope, l.Name, LimitLimited)
		return &LimitError{Err: ErrRateLimited, KeyID: keyID, RetryAfter: r.RetryAfter, RateLimits: append([]LimitResult(nil), res.RateLimits...)}
	}
	m.metrics.rateLimitDecided(scope, l.Name, LimitAllowed)
	return nil
}

// spend spends opts.Credits for k: from its lease (Config.CreditLease)
// when the Manager leases and the spend is not idempotent, else in the
// store. at, when not zero, is the time of the Manager's clock at which k
// was verified (see enforce).
func (m *Manager) spend(ctx context.Context, k *Key, opts CheckOptions, at time.Time, res *Result) error {
	if m.limitStore == nil {
		if k.Credits == nil {
			m.metrics.creditsSpent(SpendSpent, 0)
			return nil // no balance, and no store that could hold one
		}
		m.metrics.creditsSpent(SpendError, 0)
		return unavailable("spend credits", errors.New("the store keeps no credits (not a LimitStore)"))
	}
	if m.leases != nil {
		if opts.IdempotencyKey == "" {
			return m.spendLeased(ctx, k, opts, at, res)
		}
		// The store decides an idempotent spend alone, with every credit
		// this Manager holds of the key given back first.
		if err := m.surrender(ctx, k); err != nil {
			m.metrics.creditsSpent(SpendError, 0)
			return m.storeErr("spend credits", err)
		}
	}
	now := m.clock()
	sr, err := m.limitStore.SpendCredits(ctx, SpendRequest{
		KeyID: k.ID, Owner: k.Owner, Cost: opts.Credits, IdempotencyKey: opts.IdempotencyKey, Now: now,
	})
	return m.spent(k, opts, sr, err, now, res)
}

// spent completes a spend of opts.Credits for k with the store's answer,
// sr or err, at now.
func (m *Manager) spent(k *Key, opts CheckOptions, sr SpendResult, err error, now time.Time, res *Result) error {
	switch {
	case errors.Is(err, ErrNotFound):
		m.metrics.creditsSpent(SpendError, 0)
		return ErrInvalidKey // deleted since it was verified
	case err != nil:
		m.metrics.creditsSpent(SpendError, 0)
		return m.storeErr("spend credits", err)
	}
	var cr *CreditsResult
	if left, ok := remainingOf(sr.KeyRemaining, sr.OwnerRemaining, sr.Leased); ok {
		res.setCredits(CreditsResult{Remaining: left, Replayed: sr.Replayed})
		cr = res.Credits
	}
	switch {
	case sr.Replayed:
		m.metrics.creditsSpent(SpendReplayed, 0)
	case !sr.Spent:
		m.metrics.creditsSpent(SpendExceeded, 0)
	case cr == nil:
		m.metrics.creditsSpent(SpendSpent, 0) // no balance applied
	default:
		m.metrics.creditsSpent(SpendSpent, opts.Credits)
	}
	if !sr.Spent {
		le := &LimitError{Err: ErrUsageExceeded, KeyID: k.ID, RateLimits: append([]LimitResult(nil), res.RateLimits...), Credits: cr}
		if sr.NextRefillAt != nil {
			le.RetryAfter = max(sr.NextRefillAt.Sub(now), 0)
		}
		return le
	}
	return nil
}

// lookupOwner returns the cached entry of an owner, reading the store on a
// miss, as lookup does for keys.
func (m *Manager) lookupOwner(ctx context.Context, subject, owner string) (*ownerEntry, error) {
	cs := m.cache
	if cs == nil {
		return m.fetchOwner(ctx, owner)
	}
	trusted := cs.isTrusted()
	if trusted {
		if e, ok := cs.c.Get(subject); ok && e != nil && e.owner != nil {
			return e.owner, nil
		}
	}
	e, err := cs.flight.do(ctx, subject, func(call *flightCall) (*CacheEntry, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		oe, err := m.fetchOwner(fctx, owner)
		if err != nil {
			return nil, err
		}
		e := &CacheEntry{owner: oe}
		if trusted && cs.isTrusted() && !call.stale.Load() {
			cs.c.Set(subject, e)
			if call.stale.Load() || !cs.isTrusted() {
				cs.c.Delete(subject)
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	if e == nil || e.owner == nil {
		return &ownerEntry{}, nil
	}
	return e.owner, nil
}

func (m *Manager) fetchOwner(ctx context.Context, owner string) (*ownerEntry, error) {
	o, err := m.limitStore.Owner(ctx, owner)
	switch {
	case errors.Is(err, ErrNotFound):
		return &ownerEntry{}, nil
	case err != nil:
		return nil, err
	}
	return &ownerEntry{rec: o, buckets: ownerBuckets(o)}, nil
}

// Owner returns the record of an owner: its rate limits and credits. An
// owner without one (no SetOwner yet) yields ErrNotFound. It returns
// ErrUnavailable when the store keeps no owners.
func (m *Manager) Owner(ctx context.Context, id string) (*Owner, error) {
	if err := checkOwnerID(id); err != nil {
		return nil, err
	}
	if m.limitStore == nil {
		return nil, errNoLimitStore
	}
	o, err := m.limitStore.Owner(ctx, id)
	if err != nil {
		return nil, m.storeErr("owner", err)
	}
	return o, nil
}

var errNoLimitStore = fmt.Errorf("%w: the store keeps no owners or credits (not a LimitStore)", ErrUnavailable)

func checkOwnerID(id string) error {
	if id == "" {
		return invalid("owner", "is required")
	}
	if err := checkText(id, 200); err != nil {
		return invalid("owner", "%v", err)
	}
	return nil
}

// SetOwner applies u to the record of owner id (creating it when it has
// none) and returns it. The change is audited (EventOwnerUpdated) and
// reaches the caches of every instance as a key's change does.
func (m *Manager) SetOwner(ctx context.Context, id string, u OwnerUpdate) (*Owner, error) {
	if err := checkOwnerID(id); err != nil {
		return nil, err
	}
	if m.limitStore == nil {
		return nil, errNoLimitStore
	}
	now := m.clock()
	if u.Credits != nil && u.ClearCredits {
		return nil, invalid("credits", "cannot both set and clear the credits")
	}
	if u.RateLimits != nil {
		if err := CheckRateLimits(*u.RateLimits); err != nil {
			return nil, err
		}
		l := cloneLimits(*u.RateLimits)
		if l == nil {
			l = []RateLimit{}
		}
		u.RateLimits = &l
	}
	if u.Credits != nil {
		c, err := normalizeCredits(u.Credits, now)
		if err != nil {
			return nil, err
		}
		u.Credits = c
	}
	ev := m.event(ctx, EventOwnerUpdated, OwnerSubject(id), now)
	ev.Owner = id
	o, err := m.limitStore.PutOwner(ctx, id, u, now, ev)
	m.changed(ctx, OwnerSubject(id), err)
	if err != nil {
		return nil, m.storeErr("put owner", err)
	}
	m.emit(ev)
	return o, nil
}

// DeleteOwner removes the record of owner id: its rate limits and its
// balance of credits. The owner's keys stay as they are and are no longer
// limited by the owner's limits or balance (a refund of a spend that took
// from the deleted balance gives back only the key's part). The deletion
// is audited (EventOwnerDeleted) and reaches the caches of every instance
// as a revocation does. An owner without a record yields ErrNotFound.
func (m *Manager) DeleteOwner(ctx context.Context, id string) error {
	if err := checkOwnerID(id); err != nil {
		return err
	}
	if m.limitStore == nil {
		return errNoLimitStore
	}
	ev := m.event(ctx, EventOwnerDeleted, OwnerSubject(id), m.clock())
	ev.Owner = id
	err := m.limitStore.DeleteOwner(ctx, id, ev)
	m.changed(ctx, OwnerSubject(id), err)
	if err != nil {
		return m.storeErr("delete owner", err)
	}
	m.emit(ev)
	return nil
}

// AdjustCredits sets, adds to or refunds the balance of a key or an owner
// (see CreditAdjustment) and returns the balance. The change is audited
// (EventCreditsChanged for a key, EventOwnerUpdated for an owner); a refund
// that was already made changes nothing and records nothing.
func (m *Manager) AdjustCredits(ctx context.Context, adj CreditAdjustment) (*Credits, error) {
	if m.limitStore == nil {
		return nil, errNoLimitStore
	}
	subject := adj.KeyID
	typ := EventCreditsChanged
	switch {
	case (adj.KeyID == "") == (adj.Owner == ""):
		return nil, invalid("credits", "name either a key or an owner")
	case adj.KeyID != "" && !ValidID(adj.KeyID):
		return nil, ErrNotFound
	case adj.Owner != "":
		if err := checkOwnerID(adj.Owner); err != nil {
			return nil, err
		}
		subject, typ = OwnerSubject(adj.Owner), EventOwnerUpdated
	}
	switch adj.Op {
	case CreditSet:
		if adj.Amount < 0 {
			return nil, invalid("amount", "must not be negative")
		}
	case CreditAdd:
	case CreditRefund:
		if adj.KeyID == "" {
			return nil, invalid("credits", "a refund names the key that spent")
		}
		if !ValidIdempotencyKey(adj.IdempotencyKey) {
			return nil, invalid("idempotency_key", "a refund names the idempotency key of the spend it undoes")
		}
	default:
		return nil, invalid("op", "must be set, add or refund")
	}
	adj.Now = m.clock()
	ev := m.event(ctx, typ, subject, adj.Now)
	ev.Owner = adj.Owner
	c, err := m.limitStore.AdjustCredits(ctx, adj, ev)
	m.changed(ctx, subject, err)
	if err != nil {
		return nil, m.storeErr("adjust credits", err)
	}
	if ev.ID != 0 {
		m.emit(ev)
	}
	return c, nil
}

// prepareLimits validates and normalises the limits and credits of an
// update, and returns the type of its audit entry.
func (m *Manager) prepareLimits(u *KeyUpdate, now time.Time) (EventType, error) {
	if u.Credits != nil && u.ClearCredits {
		return "", invalid("credits", "cannot both set and clear the credits")
	}
	if u.RateLimits != nil {
		if err := CheckRateLimits(*u.RateLimits); err != nil {
			return "", err
		}
		l := cloneLimits(*u.RateLimits)
		if l == nil {
			l = []RateLimit{}
		}
		u.RateLimits = &l
	}
	if u.Credits != nil {
		c, err := normalizeCredits(u.Credits, now)
		if err != nil {
			return "", err
		}
		u.Credits = c
	}
	other := u.Name != nil || u.Scopes != nil || u.Metadata != nil || u.ExpiresAt != nil || u.ClearExpiry ||
		u.AllowedCIDRs != nil || u.InactivityExpiry != nil
	creds := u.Credits != nil || u.ClearCredits
	switch {
	case !other && u.RateLimits != nil && !creds:
		return EventLimitsChanged, nil
	case !other && u.RateLimits == nil && creds:
		return EventCreditsChanged, nil
	}
	return EventUpdated, nil
}
