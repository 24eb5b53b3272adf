package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
)

var _ apikey.LimitStore = (*Store)(nil)

// spendID identifies a recorded spend of credits.
type spendID struct{ keyID, idem string }

// spend is a recorded spend: what it took, and the balances it left.
type spend struct {
	at                   time.Time
	cost                 int64
	owner                string
	keyAfter             *int64 // nil: the key's balance was not spent
	ownerAfter           *int64 // nil: the owner's balance was not spent
	refunded             bool
	keySpent, ownerSpent bool
}

// Owner implements apikey.LimitStore.
func (s *Store) Owner(ctx context.Context, id string) (*apikey.Owner, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("owner", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.owners[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	return o.Clone(), nil
}

// PutOwner implements apikey.LimitStore.
func (s *Store) PutOwner(ctx context.Context, id string, u apikey.OwnerUpdate, now time.Time, ev *apikey.Event) (*apikey.Owner, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("put owner", err)
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("put owner", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.owners[id]
	after := &apikey.Owner{ID: id, RateLimits: []apikey.RateLimit{}}
	if before != nil {
		after = before.Clone()
	}
	if u.RateLimits != nil {
		after.RateLimits = append([]apikey.RateLimit{}, *u.RateLimits...)
	}
	switch {
	case u.ClearCredits:
		after.Credits = nil
	case u.Credits != nil:
		after.Credits = u.Credits.Clone()
		after.Credits.NextRefillAt = normPtr(after.Credits.NextRefillAt)
	}
	if u.ClearCredits || u.Credits != nil {
		s.newEpochLocked(apikey.OwnerSubject(id), now)
	}
	after.UpdatedAt = norm(now)
	s.owners[id] = after
	var prev *apikey.Owner
	if before != nil {
		prev = before.Clone()
	}
	s.writeEventLocked(ev, id, apikey.DiffOwner(prev, after.Clone()))
	s.changedLocked(apikey.ChangeUpdate, apikey.OwnerSubject(id))
	return after.Clone(), nil
}

// DeleteOwner implements apikey.LimitStore.
func (s *Store) DeleteOwner(ctx context.Context, id string, ev *apikey.Event) error {
	if err := s.usable(ctx); err != nil {
		return opErr("delete owner", err)
	}
	if err := checkEvent(ev); err != nil {
		return opErr("delete owner", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before, ok := s.owners[id]
	if !ok {
		return apikey.ErrNotFound
	}
	delete(s.owners, id)
	s.writeEventLocked(ev, id, apikey.DiffOwner(before.Clone(), nil))
	s.changedLocked(apikey.ChangeUpdate, apikey.OwnerSubject(id))
	return nil
}

// SpendCredits implements apikey.LimitStore, under the store's lock.
func (s *Store) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	if err := s.usable(ctx); err != nil {
		return apikey.SpendResult{}, opErr("spend credits", err)
	}
	if err := apikey.CheckSpendRequest(req); err != nil {
		return apikey.SpendResult{}, fmt.Errorf("memstore: %w", err)
	}
	now := norm(req.Now)
	req.Now = now
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[req.KeyID]
	if !ok {
		return apikey.SpendResult{}, apikey.ErrNotFound
	}
	sid := spendID{req.KeyID, req.IdempotencyKey}
	if req.IdempotencyKey != "" {
		if sp, ok := s.spends[sid]; ok && now.Sub(sp.at) < apikey.IdempotencyWindow {
			return apikey.SpendResult{Spent: true, Replayed: true, KeyRemaining: clonePtr(sp.keyAfter), OwnerRemaining: clonePtr(sp.ownerAfter)}, nil
		}
	}
	kb := &apikey.Balance{Credits: k.Credits, Epoch: s.epochs[req.KeyID]}
	var ob *apikey.Balance
	osub := apikey.OwnerSubject(req.Owner)
	if o := s.owners[req.Owner]; req.Owner != "" && o != nil {
		ob = &apikey.Balance{Credits: o.Credits, Epoch: s.epochs[osub]}
	}
	res := apikey.SpendBalances(kb, ob, req)
	s.setEpochLocked(req.KeyID, kb.Epoch)
	if ob != nil {
		s.setEpochLocked(osub, ob.Epoch)
	}
	if res.Spent && req.IdempotencyKey != "" && (kb.Credits != nil || ob != nil && ob.Credits != nil) {
		for id, sp := range s.spends { // forget the records past the window
			if now.Sub(sp.at) >= apikey.IdempotencyWindow {
				delete(s.spends, id)
			}
		}
		s.spends[sid] = &spend{at: now, cost: req.Cost, owner: req.Owner,
			keyAfter: clonePtr(res.KeyRemaining), ownerAfter: clonePtr(res.OwnerRemaining),
			keySpent: kb.Credits != nil, ownerSpent: ob != nil && ob.Credits != nil}
	}
	return res, nil
}

// newEpochLocked gives the balance of subject (a key id or an
// OwnerSubject) a new epoch: it was set, cleared or refilled at now.
func (s *Store) newEpochLocked(subject string, now time.Time) {
	s.epochs[subject] = apikey.NextEpoch(s.epochs[subject], now)
	s.changedLocked(apikey.ChangeUpdate, subject) // the caches and leases of other Managers
}

func (s *Store) setEpochLocked(subject string, e int64) {
	if e != 0 {
		s.epochs[subject] = e
	}
}

// refillLocked applies the refill due at now to c, the balance of
// subject, with its new epoch.
func (s *Store) refillLocked(subject string, c *apikey.Credits, now time.Time) {
	if c.ApplyRefill(now) {
		s.newEpochLocked(subject, now)
	}
}

// AdjustCredits implements apikey.LimitStore.
func (s *Store) AdjustCredits(ctx context.Context, adj apikey.CreditAdjustment, ev *apikey.Event) (*apikey.Credits, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("adjust credits", err)
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("adjust credits", err)
	}
	now := norm(adj.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if adj.KeyID == "" {
		o := s.owners[adj.Owner]
		if o == nil {
			o = &apikey.Owner{ID: adj.Owner, RateLimits: []apikey.RateLimit{}, UpdatedAt: now}
		}
		before := o.Clone()
		s.refillLocked(apikey.OwnerSubject(adj.Owner), o.Credits, now)
		c, err := apikey.Adjust(o.Credits, adj.Op, adj.Amount, now)
		if err != nil {
			return nil, err
		}
		if adj.Op == apikey.CreditSet || o.Credits == nil { // a set, or a new balance
			s.newEpochLocked(apikey.OwnerSubject(adj.Owner), now)
		}
		after := o.Clone()
		after.Credits, after.UpdatedAt = c, now
		s.owners[adj.Owner] = after
		s.writeEventLocked(ev, adj.Owner, map[string]apikey.Change{"credits": apikey.CreditsChange(before.Credits, c)})
		s.changedLocked(apikey.ChangeUpdate, apikey.OwnerSubject(adj.Owner))
		return c.Clone(), nil
	}
	k, ok := s.keys[adj.KeyID]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	if k.RevokedAt != nil {
		return nil, apikey.ErrFrozen
	}
	if adj.Op == apikey.CreditRefund {
		sp, ok := s.spends[spendID{adj.KeyID, adj.IdempotencyKey}]
		if !ok {
			return nil, apikey.ErrNotFound
		}
		if sp.refunded {
			return k.Credits.Clone(), nil
		}
		sp.refunded = true
		before := k.Credits.Clone()
		if sp.keySpent && k.Credits != nil {
			s.refillLocked(adj.KeyID, k.Credits, now)
			k.Credits.Remaining += sp.cost
		}
		if o := s.owners[sp.owner]; sp.ownerSpent && o != nil && o.Credits != nil {
			s.refillLocked(apikey.OwnerSubject(sp.owner), o.Credits, now)
			o.Credits.Remaining += sp.cost
		}
		s.writeEventLocked(ev, k.Owner, map[string]apikey.Change{"credits": apikey.CreditsChange(before, k.Credits)})
		return k.Credits.Clone(), nil
	}
	before := k.Credits.Clone()
	s.refillLocked(adj.KeyID, k.Credits, now)
	c, err := apikey.Adjust(k.Credits, adj.Op, adj.Amount, now)
	if err != nil {
		return nil, err
	}
	if adj.Op == apikey.CreditSet || k.Credits == nil { // a set, or a new balance
		s.newEpochLocked(adj.KeyID, now)
	}
	k.Credits = c
	s.writeEventLocked(ev, k.Owner, map[string]apikey.Change{"credits": apikey.CreditsChange(before, c)})
	return c.Clone(), nil
}

func clonePtr(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// PruneSpends implements apikey.SpendPruner.
func (s *Store) PruneSpends(ctx context.Context, before time.Time) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, opErr("prune spends", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, sp := range s.spends {
		if sp.at.Before(before) {
			delete(s.spends, id)
			n++
		}
	}
	return n, nil
}
