package apikey

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// DefaultCreditLeaseTTL is how long a Manager spends from a lease of
// credits when Config.CreditLeaseTTL is zero.
const DefaultCreditLeaseTTL = time.Second

// leaseTable holds a Manager's leases of credits (Config.CreditLease), one
// per key that spends: what the store gave the Manager beyond the cost of
// a spend, for the next spends of the key to take in memory. The store
// decides every lease, in the transaction of a spend, exactly as it
// decides a spend, so that the leases of all instances never exceed a
// balance; a lease is spent only until its TTL, the next refill of its
// balances, or a change of the key or its owner, whichever comes first,
// and what is left of it is then given back, to the balance it came from
// only (Balance.Epoch).
type leaseTable struct {
	max int64         // Config.CreditLease
	ttl time.Duration // Config.CreditLeaseTTL

	m sync.Map // key id -> *creditLease; read without a lock on the hot path
}

// creditLease is the lease of one key.
type creditLease struct {
	id string // the key's
	// turn is held, as a semaphore, by the one caller that makes a store
	// trip for the key (or gives the lease back): the others wait for its
	// new lease rather than each making a trip.
	turn chan struct{}

	mu        sync.Mutex
	owner     string    // the key's owner when leased
	until     time.Time // on the Manager's clock; zero: nothing to spend
	left      int64     // credits leased and not spent yet
	unlimited bool      // the store found no balance: spends pass until the lease ends
	// The balances the store left beside the lease (nil: none), and
	// their epochs, for the return.
	keyRem, ownerRem     *int64
	keyEpoch, ownerEpoch int64
	gone                 bool   // out of the table: callers take a new one
	voids                uint64 // how many times the lease was ended by a change
	// size is what the last trip leased; when left falls below half of
	// it, one spend starts a trip that tops the lease up (topUp) while
	// the others go on spending what is left, so that a hot key does not
	// stall on each trip. fetching marks that trip.
	size     int64
	fetching bool
}

func newLeaseTable(max int64, ttl time.Duration) *leaseTable {
	return &leaseTable{max: max, ttl: ttl}
}

// get returns the lease of key id, made when missing.
func (t *leaseTable) get(id string) *creditLease {
	if l, ok := t.m.Load(id); ok {
		return l.(*creditLease)
	}
	l, _ := t.m.LoadOrStore(id, &creditLease{id: id, turn: make(chan struct{}, 1)})
	return l.(*creditLease)
}

// lookup returns the lease of key id, or nil.
func (t *leaseTable) lookup(id string) *creditLease {
	if l, ok := t.m.Load(id); ok {
		return l.(*creditLease)
	}
	return nil
}

// LeasedCredits reports what this Manager holds in leases of credits
// (Config.CreditLease): how many keys have credits leased here, and how
// many credits, which the store's balances lack until they come back. It
// is zero without leases. It visits every lease: call it at a metrics
// scrape, not per request.
func (m *Manager) LeasedCredits() (keys int, credits int64) {
	if m.leases == nil {
		return 0, 0
	}
	m.leases.m.Range(func(_, v any) bool {
		l := v.(*creditLease)
		l.mu.Lock()
		if !l.gone && l.left > 0 {
			keys++
			credits += l.left
		}
		l.mu.Unlock()
		return true
	})
	return keys, credits
}

// take spends cost from l at now for a key of owner, if l can: ok reports
// whether it did, and left the balance left as this Manager sees it, when
// there is one (has).
func (l *creditLease) take(now time.Time, owner string, cost int64) (left int64, has, ok bool) {
	if l.gone || l.until.IsZero() || !now.Before(l.until) || l.owner != owner {
		return 0, false, false
	}
	if l.unlimited {
		return 0, false, true
	}
	if l.left < cost {
		return 0, false, false
	}
	l.left -= cost
	left, has = remainingOf(l.keyRem, l.ownerRem, l.left)
	return left, has, true
}

// remainingOf is the balance left to spend: the smaller of the key's and
// the owner's remaining credits (nil: no balance) plus what is leased;
// has reports that there is a balance at all.
func remainingOf(key, owner *int64, leased int64) (left int64, has bool) {
	for _, r := range [...]*int64{key, owner} {
		if r == nil {
			continue
		}
		if !has || *r+leased < left {
			left = *r + leased
		}
		has = true
	}
	return left, has
}

// void ends l: its credits are given back at the next store trip of its
// key, or by the sweep.
func (l *creditLease) void() {
	l.mu.Lock()
	l.end()
	l.mu.Unlock()
}

// end ends l for a change; l.mu is held. A trip in flight, which may have
// read the balance before the change, then installs its lease ended.
func (l *creditLease) end() {
	l.until = time.Time{}
	l.voids++
}

// giveBack returns the request that gives back what is left of l, and
// empties l; l.mu is held. A lease that found no balance has nothing to
// give back.
func (l *creditLease) giveBack(req *SpendRequest) {
	if !l.unlimited && l.left > 0 && l.owner == req.Owner {
		req.Return, req.KeyEpoch, req.OwnerEpoch = l.left, l.keyEpoch, l.ownerEpoch
	}
	l.left, l.unlimited, l.until = 0, false, time.Time{}
}

// voidKey ends the lease of key id, changed.
func (t *leaseTable) voidKey(id string) {
	if l := t.lookup(id); l != nil {
		l.void()
	}
}

// voidOwner ends the leases of the keys of owner, changed.
func (t *leaseTable) voidOwner(owner string) {
	for _, l := range t.all() {
		l.mu.Lock()
		if l.owner == owner {
			l.end()
		}
		l.mu.Unlock()
	}
}

// voidAll ends every lease: changes may have been missed.
func (t *leaseTable) voidAll() {
	for _, l := range t.all() {
		l.void()
	}
}

func (t *leaseTable) all() []*creditLease {
	var out []*creditLease
	t.m.Range(func(_, l any) bool {
		out = append(out, l.(*creditLease))
		return true
	})
	return out
}

// invalidateLeases ends the leases that a change of subject, a key id or
// an OwnerSubject, concerns.
func (m *Manager) invalidateLeases(subject string) {
	t := m.leases
	if t == nil {
		return
	}
	if owner, ok := strings.CutPrefix(subject, OwnerSubject("")); ok {
		t.voidOwner(owner)
		return
	}
	t.voidKey(subject)
}

// spendLeased spends opts.Credits for k from its lease, making a store
// trip when the lease cannot cover it: the trip gives back what is left
// of the lease, spends the cost and takes a new lease, in one transaction.
func (m *Manager) spendLeased(ctx context.Context, k *Key, opts CheckOptions, at time.Time, res *Result) error {
	t := m.leases
	cost := opts.Credits
	now := at
	if now.IsZero() {
		now = m.clock()
	}
	for {
		l := t.get(k.ID)
		l.mu.Lock()
		left, has, ok := l.take(now, k.Owner, cost)
		top := ok && !l.unlimited && !l.fetching && l.left < l.size/2
		if top {
			l.fetching = true
		}
		l.mu.Unlock()
		if top {
			go m.topUp(l, k.ID, k.Owner)
		}
		if ok {
			m.leaseSpent(res, left, has, cost)
			return nil
		}
		select {
		case l.turn <- struct{}{}:
		case <-ctx.Done():
			m.metrics.creditsSpent(SpendError, 0)
			return m.storeErr("spend credits", ctx.Err())
		}
		l.mu.Lock()
		if l.gone { // swept while we waited: take the new one
			l.mu.Unlock()
			<-l.turn
			continue
		}
		now = m.clock()
		if left, has, ok := l.take(now, k.Owner, cost); ok { // the trip we waited for leased enough
			l.mu.Unlock()
			<-l.turn
			m.leaseSpent(res, left, has, cost)
			return nil
		}
		req := SpendRequest{KeyID: k.ID, Owner: k.Owner, Cost: cost, Lease: t.max, Now: now}
		l.giveBack(&req)
		// The lease is the key's and its owner's from now on, so that a
		// change of the owner while the trip is on its way ends it too.
		l.owner = k.Owner
		voids := l.voids
		l.mu.Unlock()
		sr, err := m.tripTo(ctx, req)
		if err == nil && sr.Spent {
			l.mu.Lock()
			l.owner, l.keyRem, l.ownerRem = k.Owner, sr.KeyRemaining, sr.OwnerRemaining
			l.keyEpoch, l.ownerEpoch = sr.KeyEpoch, sr.OwnerEpoch
			l.left, l.unlimited = sr.Leased, sr.KeyRemaining == nil && sr.OwnerRemaining == nil
			l.size = sr.Leased
			if (l.left > 0 || l.unlimited) && l.voids == voids {
				l.until = now.Add(t.ttl)
				if sr.RefillAt != nil && sr.RefillAt.Before(l.until) {
					l.until = *sr.RefillAt
				}
			}
			l.mu.Unlock()
		}
		// On an error the fate of what the trip gave back is unknown: it
		// stays given back (forfeited at worst, never spent twice).
		<-l.turn
		return m.spent(k, opts, sr, err, now, res)
	}
}

// tripTimeout bounds a store trip of the leases, which does not end with
// the request that makes it (tripTo).
const tripTimeout = 5 * time.Second

// tripTo makes a store trip of the leases: a spend that may give back
// credits and take a lease. It runs to its end even when the request
// that makes it is cancelled (its client gone), within tripTimeout: the
// credits it gives back would otherwise be forfeited with it.
func (m *Manager) tripTo(ctx context.Context, req SpendRequest) (SpendResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tripTimeout)
	defer cancel()
	return m.limitStore.SpendCredits(ctx, req)
}

// topUp takes a new lease ahead for l, the lease of key id of owner, in a
// goroutine of its own, while the key's spends go on taking what is left:
// a trip that spends nothing and gives nothing back. The credits it
// brings join those left when the balances are still those of the lease
// (same epochs, no change meanwhile); otherwise they replace them, since
// credits of a balance set or refilled since must not be spent.
func (m *Manager) topUp(l *creditLease, id, owner string) {
	defer func() {
		l.mu.Lock()
		l.fetching = false
		l.mu.Unlock()
	}()
	select {
	case l.turn <- struct{}{}:
	default:
		return // a trip is on its way: it brings a lease
	}
	defer func() { <-l.turn }()
	now := m.clock()
	l.mu.Lock()
	if l.gone || l.until.IsZero() || !now.Before(l.until) {
		l.mu.Unlock()
		return // ended: the next spend makes the trip
	}
	voids, want := l.voids, m.leases.max-l.left // never more than max held at once
	l.mu.Unlock()
	if want <= 0 {
		return
	}
	sr, err := m.tripTo(context.Background(), SpendRequest{KeyID: id, Owner: owner, Lease: want, Now: now})
	if err != nil || !sr.Spent {
		return // forfeited at worst, never spent twice; the next spends make a trip
	}
	l.mu.Lock()          // the turn, held, keeps the sweep from taking l out meanwhile
	var old SpendRequest // what is left of a lease of balances set or refilled since
	if sr.KeyEpoch == l.keyEpoch && sr.OwnerEpoch == l.ownerEpoch {
		l.left += sr.Leased
	} else {
		old = SpendRequest{KeyID: id, Owner: owner, Return: l.left, KeyEpoch: l.keyEpoch, OwnerEpoch: l.ownerEpoch, Now: now}
		l.left = sr.Leased
	}
	if sr.Leased > 0 {
		l.size = sr.Leased
	}
	l.keyRem, l.ownerRem = sr.KeyRemaining, sr.OwnerRemaining
	l.keyEpoch, l.ownerEpoch = sr.KeyEpoch, sr.OwnerEpoch
	switch {
	case l.voids != voids:
		// Ended while on its way: all of it goes back at the next trip
		// or sweep.
	case l.left == 0:
		l.until = time.Time{} // nothing left to spend: the next spend makes a trip
	default:
		l.until = now.Add(m.leases.ttl)
		if sr.RefillAt != nil && sr.RefillAt.Before(l.until) {
			l.until = *sr.RefillAt
		}
	}
	l.mu.Unlock()
	if old.Return > 0 {
		// The balance that changed keeps its new value (its epoch moved);
		// one that did not, the owner's say, gets its part back.
		_, _ = m.tripTo(context.Background(), old)
	}
}

// leaseSpent completes a spend of cost from a lease: left is the balance
// left, when there is one (has).
func (m *Manager) leaseSpent(res *Result, left int64, has bool, cost int64) {
	if !has {
		m.metrics.creditsSpent(SpendSpent, 0) // no balance applied
		return
	}
	res.setCredits(CreditsResult{Remaining: left})
	m.metrics.creditsSpent(SpendSpent, cost)
}

// surrender gives back what is left of the lease of key id, before a spend
// that the store must decide alone (one with an idempotency key).
func (m *Manager) surrender(ctx context.Context, k *Key) error {
	l := m.leases.lookup(k.ID)
	if l == nil {
		return nil
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return m.storeErr("spend credits", ctx.Err())
	}
	defer func() { <-l.turn }()
	req := SpendRequest{KeyID: k.ID, Owner: k.Owner, Now: m.clock()}
	l.mu.Lock()
	l.giveBack(&req)
	l.mu.Unlock()
	if req.Return == 0 {
		return nil
	}
	_, err := m.tripTo(ctx, req)
	if errors.Is(err, ErrNotFound) {
		return nil // the key is gone: the spend will say so
	}
	return err
}

// sweepLeases gives back the leases that ended (their TTL, a refill, a
// change), or all of them when all is set, and takes them out of the
// table. A lease whose key is making a trip is left for the next sweep,
// unless all is set.
func (m *Manager) sweepLeases(ctx context.Context, all bool) error {
	t := m.leases
	var errs []error
	for _, l := range t.all() {
		if all {
			select {
			case l.turn <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			select {
			case l.turn <- struct{}{}:
			default:
				continue
			}
		}
		if ctx.Err() != nil { // left for the next sweep, not forfeited
			<-l.turn
			return errors.Join(append(errs, ctx.Err())...)
		}
		now := m.clock()
		l.mu.Lock()
		if !all && !l.until.IsZero() && now.Before(l.until) {
			l.mu.Unlock()
			<-l.turn
			continue
		}
		t.m.CompareAndDelete(l.id, l)
		req := SpendRequest{KeyID: l.id, Owner: l.owner, Now: now}
		l.giveBack(&req)
		l.gone = true
		l.mu.Unlock()
		<-l.turn
		if req.Return > 0 {
			if _, err := m.limitStore.SpendCredits(ctx, req); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// leaseLoop sweeps the leases every quarter of their TTL until Close.
func (m *Manager) leaseLoop() {
	defer close(m.leasesDone)
	every := max(m.leases.ttl/4, time.Millisecond)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tk.C:
			ctx, cancel := context.WithTimeout(context.Background(), every+5*time.Second)
			_ = m.sweepLeases(ctx, false) // a lease not given back is forfeited, never spent twice
			cancel()
		}
	}
}

// SpendPruner is the optional interface of a LimitStore that forgets, all
// at once, the records of idempotent spends made before a time (a store
// forgets a key's as the key records its next; a key that stops spending
// would keep its records for ever). The sqlite, postgres and memstore
// stores implement it.
type SpendPruner interface {
	// PruneSpends deletes the records of spends made before before, and
	// returns how many it deleted. Their retries spend again, and their
	// refunds yield ErrNotFound.
	PruneSpends(ctx context.Context, before time.Time) (int64, error)
}

// SpendPruneInterval is how often a Manager whose store is a SpendPruner
// prunes the records of spends past IdempotencyWindow, in the loop that
// flushes usage (so not with UsageFlushInterval < 0: call PruneSpends).
const SpendPruneInterval = time.Hour

// PruneSpends has the store forget the records of the spends older than
// IdempotencyWindow by the Manager's clock, and returns how many it
// deleted: 0 when the store is not a SpendPruner.
func (m *Manager) PruneSpends(ctx context.Context) (int64, error) {
	p, ok := m.limitStore.(SpendPruner)
	if !ok {
		return 0, nil
	}
	n, err := p.PruneSpends(ctx, m.clock().Add(-IdempotencyWindow))
	if err != nil {
		return n, m.storeErr("prune spends", err)
	}
	return n, nil
}
