package apikey

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Occurrence is one time-driven event due for a key: the Scheduler finds
// them, an OccurrenceStore records each exactly once.
type Occurrence struct {
	// Event is the audit entry to write; its Type, At, Actor and KeyID are
	// set, the store fills Owner and ID.
	Event *Event
	// Due is the instant the occurrence is about (the key's ExpiresAt, or
	// the instant it expires for inactivity). With Event.Type and
	// Event.KeyID it identifies the occurrence: a key whose expiry moves
	// gets new occurrences, one that keeps it gets none twice.
	Due time.Time
}

// OccurrenceStore is the optional interface of the stores that can record
// time-driven events, which the Scheduler needs; sqlite.Store,
// postgres.Store and memstore.Store implement it, and
// apikeytest.TestOccurrences checks it.
type OccurrenceStore interface {
	// RecordOccurrences writes, in one transaction, the audit entry of
	// every occurrence not recorded before (by KeyID, Type and Due), and
	// records it so that it is never written again, whatever other process
	// records the same occurrence at the same time (a unique constraint
	// decides, not a read). It fills the Owner and ID of each event it
	// writes, as a mutation does; an occurrence already recorded, or whose
	// key no longer exists, keeps Event.ID 0.
	RecordOccurrences(ctx context.Context, occ []Occurrence) error
}

// Rule finds one kind of time-driven event.
type Rule struct {
	// Type is the event type of the rule's occurrences.
	Type EventType
	// Due reports whether an occurrence is due for k at now, and the
	// instant it is about (see Occurrence.Due).
	Due func(k *Key, now time.Time) (due time.Time, ok bool)
}

// ExpiringRule is due for a key that expires within warn of now and has
// not expired yet nor been revoked: EventExpiring.
func ExpiringRule(warn time.Duration) Rule {
	return Rule{Type: EventExpiring, Due: func(k *Key, now time.Time) (time.Time, bool) {
		if k.ExpiresAt == nil || k.RevokedAt != nil || !k.ExpiresAt.After(now) || k.ExpiresAt.Sub(now) > warn {
			return time.Time{}, false
		}
		return *k.ExpiresAt, true
	}}
}

// ExpiredRule is due for a key whose ExpiresAt has passed, unless it was
// revoked before: EventExpired. It is ExpiredOrInactiveRule(nil).
func ExpiredRule() Rule { return ExpiredOrInactiveRule(nil) }

// ExpiredOrInactiveRule is due for a key whose end has passed, unless it
// was revoked before: EventExpired. A key's end is the earlier of its
// ExpiresAt and, when inactiveAt is not nil and reports one, the instant
// it expires for inactivity (see InactiveWarningRule), so that a key
// expired for want of use is announced like one that reached its expiry,
// and each key once.
func ExpiredOrInactiveRule(inactiveAt func(k *Key) (time.Time, bool)) Rule {
	return Rule{Type: EventExpired, Due: func(k *Key, now time.Time) (time.Time, bool) {
		var end time.Time
		ok := k.ExpiresAt != nil
		if ok {
			end = *k.ExpiresAt
		}
		if inactiveAt != nil {
			if at, idle := inactiveAt(k); idle && (!ok || at.Before(end)) {
				end, ok = at, true
			}
		}
		if !ok || end.After(now) || k.RevokedAt != nil && !k.RevokedAt.After(end) {
			return time.Time{}, false
		}
		return end, true
	}}
}

// InactiveWarningRule is due for a key that will expire for inactivity
// within warn of now: EventInactiveWarning. inactiveAt says when a key
// expires for inactivity, and false when it never does (no policy); the
// rule of the inactivity policy supplies it (for example a method of Key
// bound to the service-wide default). Revoked keys get no warning.
func InactiveWarningRule(inactiveAt func(k *Key) (time.Time, bool), warn time.Duration) Rule {
	return Rule{Type: EventInactiveWarning, Due: func(k *Key, now time.Time) (time.Time, bool) {
		if k.RevokedAt != nil {
			return time.Time{}, false
		}
		at, ok := inactiveAt(k)
		if !ok || !at.After(now) || at.Sub(now) > warn {
			return time.Time{}, false
		}
		return at, true
	}}
}

// Scheduler writes the time-driven events (a key about to expire, expired,
// about to expire for inactivity) to the audit log, where webhooks pick
// them up like every other audited event. Each Tick reads every key and
// asks each rule whether an occurrence is due; the store records each
// occurrence once, so that several schedulers on one database (one per
// instance) never write an event twice and need no coordinator. Set the
// fields before the first Tick; a Scheduler is not safe for concurrent
// Ticks (run one loop per process).
type Scheduler struct {
	// Store lists the keys. Required.
	Store Store
	// Occurrences records what is due. Required.
	Occurrences OccurrenceStore
	// Rules are the kinds of events to find.
	Rules []Rule
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Actor is the actor of the events; empty means "scheduler".
	Actor string
	// PageSize is how many keys a Tick reads at a time; zero means 500.
	PageSize int
}

// Tick records every occurrence due now and returns how many it recorded
// (those recorded before are not counted).
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	if s.Store == nil || s.Occurrences == nil {
		return 0, errors.New("apikey: Scheduler needs a Store and an OccurrenceStore")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := now().UTC().Truncate(time.Microsecond)
	actor := cmpOr(s.Actor, "scheduler")
	size := cmpOr(s.PageSize, 500)
	q := Query{Now: at, Limit: size}
	recorded := 0
	for {
		keys, err := s.Store.List(ctx, q)
		if err != nil {
			return recorded, fmt.Errorf("apikey: scheduler: list keys: %w", err)
		}
		var occ []Occurrence
		for _, k := range keys {
			for _, r := range s.Rules {
				if due, ok := r.Due(k, at); ok {
					occ = append(occ, Occurrence{Event: &Event{Type: r.Type, At: at, Actor: actor, KeyID: k.ID}, Due: due.UTC()})
				}
			}
		}
		if len(occ) > 0 {
			if err := s.Occurrences.RecordOccurrences(ctx, occ); err != nil {
				return recorded, fmt.Errorf("apikey: scheduler: record: %w", err)
			}
			for _, o := range occ {
				if o.Event.ID != 0 {
					recorded++
				}
			}
		}
		if len(keys) < size {
			return recorded, nil
		}
		last := keys[len(keys)-1]
		q.After = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}

// Run calls Tick every interval until ctx is done, passing its errors to
// onError (nil ignores them). The first Tick runs at once.
func (s *Scheduler) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
