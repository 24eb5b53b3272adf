// Package memstore is an apikey.Store that keeps everything in memory, with
// the standard library only. It is meant for tests of the layers above a
// store (middleware, servers, portals), which it lets run without a
// database and in microseconds, and for applications that embed apikey and
// want no database at all.
//
// A Store keeps nothing across restarts: its keys, audit log and usage
// counters live in the process and are gone when it exits. An application
// that must remember its keys wants the sqlite or postgres store.
//
// Apart from persistence, a Store follows the apikey.Store contract as the
// SQL stores do, and passes the same conformance suites
// (apikeytest.TestStore, apikeytest.TestBulkInsert,
// apikeytest.TestImporter, and for its Webhooks apikeytest.TestOutbox and
// apikeytest.TestWorker): the owner limit is
// checked atomically with the insert; revocation cannot be undone; the id of
// every key ever revoked stays taken after the key is deleted; every
// mutation given an apikey.Event appends it to the audit log, atomically
// with the change; every change of a key is recorded in its
// apikey.ChangeFeed, which Managers sharing the Store follow, and it keeps
// an apikey.InstanceRegistry; times are kept in UTC to the microsecond, as
// the SQL stores keep them. Values passed in and handed out are copies: callers
// cannot change what the Store holds except through its methods.
package memstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

// Store is an in-memory apikey.Store. It is safe for concurrent use. Its
// zero value is not usable: create one with New.
type Store struct {
	// closed is set by Close: every later call fails.
	closed atomic.Bool
	mu     sync.RWMutex
	// keys holds the stored records, by id. They are never handed out:
	// every method returns copies.
	keys map[string]*apikey.Record
	// revoked holds the id of every key ever revoked, kept after the key is
	// deleted so that the id can never be inserted again.
	revoked map[string]struct{}
	// active counts the keys of each owner that are not revoked: the count
	// that Insert compares with its limit.
	active map[string]int
	// events is the audit log in the order of writing: the entry with ID n
	// is events[n-1].
	events []event
	// usage holds the usage counters of each key id.
	usage map[string]map[usageSlot]int64
	// changes is the change feed, oldest first; lastSeq is the sequence
	// number of the last change ever recorded.
	changes []apikey.KeyChange
	lastSeq int64
	// instances is the instance registry, by id.
	instances map[string]apikey.Instance
	// leaks holds the recorded leaks in the order of writing: the leak
	// with ID n is leaks[n-1].
	leaks []apikey.Leak
	// logged holds the key id of every audit entry, for Taken.
	logged map[string]struct{}
	// owners holds the owners' records, by id.
	owners map[string]*apikey.Owner
	// spends holds the recorded spends of credits, by key id and
	// idempotency key.
	spends map[spendID]*spend
	// epochs holds the epochs of the balances (apikey.Balance), by key id
	// and by apikey.OwnerSubject; absent means 0.
	epochs map[string]int64
	// occurrences holds the time-driven events recorded
	// (RecordOccurrences).
	occurrences map[occurrenceID]struct{}
	// endpoints holds the webhook endpoints, by id; deliveries their
	// deliveries, oldest (lowest Seq) first; deliverySeq the Seq of the
	// last delivery queued (see WebhookStore).
	endpoints   map[string]*outbox.Endpoint
	deliveries  []*delivery
	deliverySeq int64
}

var (
	_ apikey.Store     = (*Store)(nil)
	_ apikey.LeakStore = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		keys:    map[string]*apikey.Record{},
		revoked: map[string]struct{}{},
		active:  map[string]int{},
		usage:   map[string]map[usageSlot]int64{},

		instances: map[string]apikey.Instance{},
		logged:    map[string]struct{}{},
		owners:    map[string]*apikey.Owner{},
		spends:    map[spendID]*spend{},
		epochs:    map[string]int64{},
	}
}

// ErrClosed is the failure of every call to a Store after Close. The Manager
// reports it, like any store failure, as apikey.ErrUnavailable.
var ErrClosed = errors.New("memstore: store is closed")

// Close discards nothing but makes every later call fail with ErrClosed, as
// a closed database would; it lets tests see how callers meet a store that
// is down. It is safe to call more than once.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// usable returns ErrClosed after Close, else the context's error.
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Ping reports whether the store can be used: it can until Close; it
// returns the context's error if ctx is done. It lets a Store stand where a
// health check expects a database.
func (s *Store) Ping(ctx context.Context) error {
	return opErr("ping", s.usable(ctx))
}

// event is one entry of the audit log. Its changes are kept as the SQL
// stores keep them, in the JSON of apikey.MarshalChanges, so that they come
// back from ListEvents as the SQL stores return them.
type event struct {
	id                  int64
	typ                 apikey.EventType
	at                  time.Time
	actor, keyID, owner string
	url                 string
	changes             []byte
}

// usageSlot identifies one usage counter of a key.
type usageSlot struct {
	bucket  int64 // Unix microseconds of the start of the minute
	outcome string
}

// norm returns t as the store keeps it: in UTC, truncated to the
// microsecond.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := norm(*t)
	return &n
}

// stored returns a deep copy of rec as the store keeps it: times in UTC to
// the microsecond, scopes and metadata never nil, no state.
func stored(rec *apikey.Record) *apikey.Record {
	k := rec.Key.Clone()
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	k.CreatedAt = norm(k.CreatedAt)
	k.ExpiresAt = normPtr(k.ExpiresAt)
	k.RevokedAt = normPtr(k.RevokedAt)
	k.LastUsedAt = normPtr(k.LastUsedAt)
	k.DisabledAt = normPtr(k.DisabledAt)
	k.PreviousSecret = nil // only Roll sets it
	if k.Credits != nil {
		k.Credits.NextRefillAt = normPtr(k.Credits.NextRefillAt)
	}
	k.State = ""
	return &apikey.Record{Key: *k, Hash: rec.Hash}
}

// previousRefused says why Import and BulkInsert refuse a record with a
// previous secret.
const previousRefused = "the record carries a previous secret: only Roll makes one, and a load stores a key with one secret"

// hasPrevious reports whether rec carries a previous secret or its digest.
func hasPrevious(rec *apikey.Record) bool { return rec.PreviousSecret != nil || rec.PreviousHash != "" }

// cloneRecord returns a deep copy of rec.
func cloneRecord(rec *apikey.Record) *apikey.Record {
	c := &apikey.Record{Key: *rec.Key.Clone(), Hash: rec.Hash, PreviousHash: rec.PreviousHash}
	c.Environment = c.Env() // as the SQL stores' column default
	if len(c.AllowedCIDRs) == 0 {
		c.AllowedCIDRs = nil
	}
	return c
}

// opErr prefixes a failure with the operation; nil stays nil.
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("memstore: %s: %w", op, err)
}

// errEventIncomplete is the refusal of a mutation whose event lacks a Type
// or a KeyID, which the audit log refuses as bad input (as the SQL stores'
// schemas do).
var errEventIncomplete = fmt.Errorf("%w: audit log: an event needs a type and a key id", apikey.ErrInvalidInput)

// checkEvent reports whether ev can be written to the audit log. A nil ev
// writes nothing and is always fine.
func checkEvent(ev *apikey.Event) error {
	if ev != nil && (ev.Type == "" || ev.KeyID == "") {
		return errEventIncomplete
	}
	return nil
}

// writeEventLocked appends ev to the audit log, after filling its Owner and
// Changes, and sets ev.ID to the entry's sequence number. A nil ev writes
// nothing. The caller holds s.mu for writing and has checked ev with
// checkEvent; changes must not share memory with stored keys.
func (s *Store) writeEventLocked(ev *apikey.Event, owner string, changes map[string]apikey.Change) {
	if ev == nil {
		return
	}
	ev.Owner, ev.Changes = owner, changes
	ev.ID = int64(len(s.events)) + 1
	s.logged[ev.KeyID] = struct{}{}
	s.events = append(s.events, event{
		id:      ev.ID,
		typ:     ev.Type,
		at:      norm(ev.At),
		actor:   ev.Actor,
		keyID:   ev.KeyID,
		owner:   owner,
		url:     ev.URL,
		changes: apikey.MarshalChanges(changes),
	})
	s.queueLocked(ev)
}

// Insert stores a copy of rec. The existence check, the owner limit and the
// insert happen under one lock, so concurrent Inserts cannot both pass the
// limit. An id in use, or of a key ever revoked, is apikey.ErrDuplicateID.
// With ev, the audit entry is written with the key.
func (s *Store) Insert(ctx context.Context, rec *apikey.Record, limit int, ev *apikey.Event) error {
	if err := s.usable(ctx); err != nil {
		return opErr("insert", err)
	}
	r := stored(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.takenLocked(r.ID) {
		return apikey.ErrDuplicateID
	}
	if limit > 0 && s.active[r.Owner] >= limit {
		return apikey.ErrTooManyKeys
	}
	if err := checkEvent(ev); err != nil {
		return opErr("insert", err)
	}
	s.putLocked(r)
	s.writeEventLocked(ev, r.Owner, apikey.Diff(nil, r.Key.Clone()))
	s.changedLocked(apikey.ChangeInsert, r.ID)
	return nil
}

// takenLocked reports whether id belongs to a stored key or to a key ever
// revoked. The caller holds s.mu.
func (s *Store) takenLocked(id string) bool {
	_, exists := s.keys[id]
	_, revoked := s.revoked[id]
	return exists || revoked
}

// putLocked stores r, a record that no caller holds, under a free id. The
// caller holds s.mu for writing.
func (s *Store) putLocked(r *apikey.Record) {
	s.keys[r.ID] = r
	if r.RevokedAt != nil {
		s.revoked[r.ID] = struct{}{}
	} else {
		s.active[r.Owner]++
	}
}

// uncountLocked removes one key from the count of owner's keys that are not
// revoked. The caller holds s.mu for writing.
func (s *Store) uncountLocked(owner string) {
	if s.active[owner]--; s.active[owner] <= 0 {
		delete(s.active, owner)
	}
}

// BulkInsert stores copies of recs at once: the fast path for seeding and
// imports, with the signature of the SQL stores' BulkInsert. Unlike Insert
// it checks no owner limit and writes no audit entry. An id in use, of a key
// ever revoked, or given twice in recs fails the whole batch with an error
// matching apikey.ErrDuplicateID, and nothing is stored; so does a record
// with a PreviousSecret or a PreviousHash, with apikey.ErrInvalidInput
// (only Roll makes one; see apikey.Importer).
func (s *Store) BulkInsert(ctx context.Context, recs []*apikey.Record) error {
	if err := s.usable(ctx); err != nil {
		return opErr("bulk insert", err)
	}
	if len(recs) == 0 {
		return nil
	}
	batch := make([]*apikey.Record, len(recs))
	seen := make(map[string]struct{}, len(recs))
	for i, rec := range recs {
		if hasPrevious(rec) {
			return fmt.Errorf("memstore: bulk insert: record %d (%s): %w: %s", i, rec.ID, apikey.ErrInvalidInput, previousRefused)
		}
		batch[i] = stored(rec)
		if _, dup := seen[rec.ID]; dup {
			return fmt.Errorf("memstore: bulk insert: %w: %s appears twice in the batch", apikey.ErrDuplicateID, rec.ID)
		}
		seen[rec.ID] = struct{}{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		if s.takenLocked(r.ID) {
			return fmt.Errorf("memstore: bulk insert: %w: %s", apikey.ErrDuplicateID, r.ID)
		}
	}
	for _, r := range batch {
		s.putLocked(r)
		s.changedLocked(apikey.ChangeInsert, r.ID)
	}
	return nil
}

var _ apikey.Importer = (*Store)(nil)

// Import stores the records of batch that are not taken (see Taken), each
// with its audit entry, and revokes those that come with a RevokedAt, all
// under one lock, as the apikey.Importer contract says: no reader sees an
// imported key unrevoked. An incomplete event fails the whole batch before
// anything is stored.
func (s *Store) Import(ctx context.Context, batch []apikey.ImportEntry) error {
	if err := s.usable(ctx); err != nil {
		return opErr("import", err)
	}
	recs := make([]*apikey.Record, len(batch))
	for i, e := range batch {
		if e.Record == nil || (e.Record.RevokedAt != nil) != (e.Revoked != nil) {
			return fmt.Errorf("memstore: import: entry %d: %w: a record, and a revocation event exactly when it is revoked", i, apikey.ErrInvalidInput)
		}
		if err := errors.Join(checkEvent(e.Imported), checkEvent(e.Revoked)); err != nil || e.Imported == nil {
			return opErr("import", errEventIncomplete)
		}
		if hasPrevious(e.Record) {
			return fmt.Errorf("memstore: import: entry %d (%s): %w: %s", i, e.Record.ID, apikey.ErrInvalidInput, previousRefused)
		}
		recs[i] = stored(e.Record)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range batch {
		r := recs[i]
		if s.takenLocked(r.ID) {
			continue
		}
		if _, ok := s.logged[r.ID]; ok {
			continue
		}
		at := r.RevokedAt
		r.RevokedAt = nil
		s.putLocked(r)
		s.writeEventLocked(e.Imported, r.Owner, apikey.Diff(nil, r.Key.Clone()))
		s.changedLocked(apikey.ChangeInsert, r.ID)
		if at != nil {
			before := r.Key.Clone()
			r.RevokedAt = at
			s.revoked[r.ID] = struct{}{}
			s.uncountLocked(r.Owner)
			s.writeEventLocked(e.Revoked, r.Owner, apikey.Diff(before, r.Key.Clone()))
			s.changedLocked(apikey.ChangeUpdate, r.ID)
		}
	}
	return nil
}

// Taken reports, for each of ids, whether a key, a revoked key's
// tombstone or an audit entry holds it.
func (s *Store) Taken(ctx context.Context, ids []string) ([]bool, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("taken", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]bool, len(ids))
	for i, id := range ids {
		_, logged := s.logged[id]
		out[i] = logged || s.takenLocked(id)
	}
	return out, nil
}

// Lookup returns a copy of the record with the given id, hash included, or
// apikey.ErrNotFound.
func (s *Store) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("lookup", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.keys[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	return cloneRecord(r), nil
}

// List returns copies of at most q.Limit keys matching q, newest first (by
// CreatedAt, then by ID, both descending). Search matches a substring of
// the name, id or owner with ASCII case folding, as the sqlite store does.
func (s *Store) List(ctx context.Context, q apikey.Query) ([]*apikey.Key, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("list", err)
	}
	now := norm(q.Now)
	var keep func(*apikey.Key) bool
	switch q.State {
	case "":
		keep = func(*apikey.Key) bool { return true }
	case apikey.StateActive, apikey.StateDisabled, apikey.StateExpired, apikey.StateRevoked:
		keep = func(k *apikey.Key) bool { return k.StateWith(now, q.InactivityExpiry) == q.State }
	default:
		return nil, fmt.Errorf("memstore: list: unknown state %q", q.State)
	}
	search := asciiLower(q.Search)
	from, to := norm(q.CreatedFrom), norm(q.CreatedTo)
	var after *apikey.Cursor
	if q.After != nil {
		after = &apikey.Cursor{CreatedAt: norm(q.After.CreatedAt), ID: q.After.ID}
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []*apikey.Record
	for _, r := range s.keys {
		k := &r.Key
		switch {
		case q.Owner != "" && k.Owner != q.Owner,
			q.Environment != "" && k.Env() != q.Environment,
			!keep(k),
			search != "" && !strings.Contains(asciiLower(k.Name), search) &&
				!strings.Contains(asciiLower(k.ID), search) && !strings.Contains(asciiLower(k.Owner), search),
			!q.CreatedFrom.IsZero() && k.CreatedAt.Before(from),
			!q.CreatedTo.IsZero() && !k.CreatedAt.Before(to),
			after != nil && compareListOrder(k, after.CreatedAt, after.ID) <= 0:
			continue
		}
		match = append(match, r)
	}
	slices.SortFunc(match, func(a, b *apikey.Record) int {
		return compareListOrder(&a.Key, b.CreatedAt, b.ID)
	})
	keys := make([]*apikey.Key, 0, min(len(match), max(q.Limit, 0)))
	for _, r := range match[:min(len(match), max(q.Limit, 0))] {
		keys = append(keys, &cloneRecord(r).Key)
	}
	return keys, nil
}

// compareListOrder compares k with the position (created, id) in the list
// order: negative when k comes first (is newer), zero at the position,
// positive when k comes after it.
func compareListOrder(k *apikey.Key, created time.Time, id string) int {
	if c := created.Compare(k.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(id, k.ID)
}

// asciiLower lower-cases the ASCII letters of s and leaves every other
// byte alone, as SQLite's lower() does.
func asciiLower(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// Update applies the fields set in u and returns a copy of the updated key.
// It returns apikey.ErrNotFound for an unknown id and apikey.ErrFrozen,
// changing nothing, for a revoked key. With ev, the audit entry carries the
// fields that differ between the key before and after.
func (s *Store) Update(ctx context.Context, id string, u apikey.KeyUpdate, ev *apikey.Event) (*apikey.Key, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("update", err)
	}
	if u.ExpiresAt != nil && u.ClearExpiry {
		return nil, errors.New("memstore: update: ExpiresAt and ClearExpiry are both set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before, ok := s.keys[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	if before.RevokedAt != nil {
		return nil, apikey.ErrFrozen
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("update", err)
	}
	after := cloneRecord(before)
	if u.Name != nil {
		after.Name = *u.Name
	}
	if u.Scopes != nil {
		after.Scopes = slices.Clone(*u.Scopes)
		if after.Scopes == nil {
			after.Scopes = []string{}
		}
	}
	if u.Metadata != nil {
		after.Metadata = maps.Clone(*u.Metadata)
		if after.Metadata == nil {
			after.Metadata = map[string]string{}
		}
	}
	switch {
	case u.ClearExpiry:
		after.ExpiresAt = nil
	case u.ExpiresAt != nil:
		after.ExpiresAt = normPtr(u.ExpiresAt)
	}
	if u.RateLimits != nil {
		after.RateLimits = append([]apikey.RateLimit(nil), *u.RateLimits...)
	}
	switch {
	case u.ClearCredits:
		after.Credits = nil
	case u.Credits != nil:
		after.Credits = u.Credits.Clone()
		after.Credits.NextRefillAt = normPtr(after.Credits.NextRefillAt)
	}
	if u.ClearCredits || u.Credits != nil {
		s.newEpochLocked(id, time.Now())
	}
	if u.AllowedCIDRs != nil {
		after.AllowedCIDRs = slices.Clone(*u.AllowedCIDRs)
	}
	if u.InactivityExpiry != nil {
		after.InactivityExpiry = apikey.Inactivity(*u.InactivityExpiry)
	}
	s.keys[id] = after
	s.writeEventLocked(ev, after.Owner, apikey.Diff(before.Key.Clone(), after.Key.Clone()))
	s.changedLocked(apikey.ChangeUpdate, id)
	return after.Key.Clone(), nil
}

// Revoke sets RevokedAt to at unless the key is already revoked, in which
// case it keeps the first instant, changes nothing and records no event. It
// returns a copy of the key, or apikey.ErrNotFound. Nothing clears
// RevokedAt once set, and the id stays taken after the key is deleted.
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("revoke", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.keys[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	if r.RevokedAt != nil {
		return r.Key.Clone(), nil
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("revoke", err)
	}
	before := r.Key.Clone()
	r.RevokedAt = normPtr(&at)
	s.revoked[id] = struct{}{}
	s.uncountLocked(r.Owner)
	s.writeEventLocked(ev, r.Owner, apikey.Diff(before, r.Key.Clone()))
	s.changedLocked(apikey.ChangeUpdate, id)
	return r.Key.Clone(), nil
}

// Delete removes the key for good, or returns apikey.ErrNotFound. With ev,
// the audit entry records every field of the deleted key as before values.
// The id of a revoked key stays taken.
func (s *Store) Delete(ctx context.Context, id string, ev *apikey.Event) error {
	if err := s.usable(ctx); err != nil {
		return opErr("delete", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.keys[id]
	if !ok {
		return apikey.ErrNotFound
	}
	if err := checkEvent(ev); err != nil {
		return opErr("delete", err)
	}
	delete(s.keys, id)
	if r.RevokedAt == nil {
		s.uncountLocked(r.Owner)
	}
	s.writeEventLocked(ev, r.Owner, apikey.Diff(r.Key.Clone(), nil))
	s.changedLocked(apikey.ChangeDelete, id)
	return nil
}

// SetHash replaces the stored digest of a key, or returns
// apikey.ErrNotFound. A revoked key is frozen: SetHash returns apikey.ErrFrozen,
// changing nothing and recording nothing, decided under the same lock as
// the write, so a Roll racing a Revoke never writes after it. When oldHash
// is not empty it changes the digest only if the stored one still equals
// oldHash; if it does not (the upgrade lost a race) it changes nothing,
// records nothing and returns nil. With ev, it writes an audit entry
// without changes (the digest is never recorded).
func (s *Store) SetHash(ctx context.Context, id, oldHash, newHash string, ev *apikey.Event) error {
	if err := s.usable(ctx); err != nil {
		return opErr("set hash", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.unfrozenLocked(id)
	if err != nil {
		return err
	}
	if oldHash != "" && r.Hash != oldHash {
		return nil
	}
	if err := checkEvent(ev); err != nil {
		return opErr("set hash", err)
	}
	r.Hash = newHash
	s.writeEventLocked(ev, r.Owner, nil)
	s.changedLocked(apikey.ChangeUpdate, id)
	return nil
}

// unfrozenLocked returns the record of id for a change that a revoked key
// refuses: apikey.ErrNotFound for an unknown id, apikey.ErrFrozen for a
// revoked key. s.mu must be held.
func (s *Store) unfrozenLocked(id string) (*apikey.Record, error) {
	r, ok := s.keys[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	if r.RevokedAt != nil {
		return nil, apikey.ErrFrozen
	}
	return r, nil
}

// Roll replaces the digest of a key and sets or drops its previous secret
// (see apikey.Store), under one lock, or returns apikey.ErrNotFound or,
// for a revoked key, apikey.ErrFrozen.
func (s *Store) Roll(ctx context.Context, id string, ro apikey.Rollover, ev *apikey.Event) (*apikey.Key, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("roll", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.unfrozenLocked(id)
	if err != nil {
		return nil, err
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("roll", err)
	}
	before := r.Key.Clone()
	if p := ro.Previous.Clone(); p != nil {
		p.RolledAt, p.ExpiresAt = norm(p.RolledAt), norm(p.ExpiresAt)
		p.GraceStartedAt = normPtr(p.GraceStartedAt)
		p.LastUsedAt, p.Active = r.LastUsedAt, false
		r.PreviousSecret, r.PreviousHash = p, r.Hash
	} else {
		r.PreviousSecret, r.PreviousHash = nil, ""
	}
	r.Hash, r.LastUsedAt = ro.Hash, nil
	s.writeEventLocked(ev, r.Owner, apikey.Diff(before, r.Key.Clone()))
	s.changedLocked(apikey.ChangeUpdate, id)
	return r.Key.Clone(), nil
}

// StartGrace records the start of the grace window of a key's previous
// secret, once, under the store's lock (see apikey.Store).
func (s *Store) StartGrace(ctx context.Context, id, hash string, at time.Time) (bool, error) {
	if err := s.usable(ctx); err != nil {
		return false, opErr("start grace", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.keys[id]
	if !ok {
		return false, apikey.ErrNotFound
	}
	if r.RevokedAt != nil || r.Hash != hash || r.PreviousSecret == nil || r.PreviousSecret.GraceStartedAt != nil {
		return false, nil
	}
	at = norm(at)
	r.PreviousSecret.GraceStartedAt = &at
	s.changedLocked(apikey.ChangeUpdate, id)
	return true, nil
}

// SetDisabled disables or enables a key under one lock (see apikey.Store).
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("set disabled", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.unfrozenLocked(id)
	if err != nil {
		return nil, err
	}
	if disabled == (r.DisabledAt != nil) {
		return r.Key.Clone(), nil
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("set disabled", err)
	}
	before := r.Key.Clone()
	r.DisabledAt = nil
	if disabled {
		r.DisabledAt = normPtr(&at)
	}
	s.writeEventLocked(ev, r.Owner, apikey.Diff(before, r.Key.Clone()))
	s.changedLocked(apikey.ChangeUpdate, id)
	return r.Key.Clone(), nil
}

// ListEvents returns audit log entries matching q, newest (highest ID)
// first. Their Changes hold what encoding/json decodes into an any, as the
// SQL stores return them; no changes is nil.
func (s *Store) ListEvents(ctx context.Context, q apikey.EventQuery) ([]*apikey.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("list events", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := int64(len(s.events))
	if q.Before > 0 {
		end = min(end, q.Before-1)
	}
	out := []*apikey.Event{}
	for i := end - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := &s.events[i]
		if q.KeyID != "" && e.keyID != q.KeyID || q.Actor != "" && e.actor != q.Actor || q.Type != "" && e.typ != q.Type {
			continue
		}
		ev := &apikey.Event{ID: e.id, Type: e.typ, At: e.at, Actor: e.actor, KeyID: e.keyID, Owner: e.owner, URL: e.url}
		if err := json.Unmarshal(e.changes, &ev.Changes); err != nil {
			return nil, fmt.Errorf("memstore: list events: event %d: malformed changes: %w", e.id, err)
		}
		if len(ev.Changes) == 0 {
			ev.Changes = nil
		}
		out = append(out, ev)
	}
	return out, nil
}

// RecordUsage adds counts to the per-minute counters and moves each key's
// LastUsedAt forward to the given time unless it already holds a later one,
// all under one lock. Ids that no longer exist are ignored. A count with an
// empty outcome or a negative count fails the whole call, changing nothing.
func (s *Store) RecordUsage(ctx context.Context, counts []apikey.UsageCount, lastUsed map[string]time.Time) error {
	if err := s.usable(ctx); err != nil {
		return opErr("record usage", err)
	}
	for _, c := range counts {
		if c.Outcome == "" || c.Count < 0 {
			return fmt.Errorf("memstore: record usage: key %s: invalid counter (outcome %q, count %d)", c.KeyID, c.Outcome, c.Count)
		}
	}
	if len(counts) == 0 && len(lastUsed) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range counts {
		if _, ok := s.keys[c.KeyID]; !ok {
			continue
		}
		slots := s.usage[c.KeyID]
		if slots == nil {
			slots = map[usageSlot]int64{}
			s.usage[c.KeyID] = slots
		}
		slots[usageSlot{norm(c.Bucket).UnixMicro(), c.Outcome}] += c.Count
	}
	for id, t := range lastUsed {
		if key, ok := strings.CutPrefix(id, apikey.PreviousSubject("")); ok {
			if r, ok := s.keys[key]; ok && r.PreviousSecret != nil {
				if p := r.PreviousSecret; p.LastUsedAt == nil || p.LastUsedAt.Before(norm(t)) {
					t = norm(t)
					p.LastUsedAt = &t
				}
			}
			continue
		}
		r, ok := s.keys[id]
		if !ok {
			continue
		}
		if t = norm(t); r.LastUsedAt == nil || r.LastUsedAt.Before(t) {
			r.LastUsedAt = &t
		}
	}
	return nil
}

// Usage returns the per-minute counters of a key with from <= Bucket < to,
// oldest first, then by outcome. The counters of a deleted key remain.
func (s *Store) Usage(ctx context.Context, id string, from, to time.Time) ([]apikey.UsageCount, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("usage", err)
	}
	lo, hi := norm(from).UnixMicro(), norm(to).UnixMicro()
	out := []apikey.UsageCount{}
	s.mu.RLock()
	for slot, n := range s.usage[id] {
		if lo <= slot.bucket && slot.bucket < hi {
			out = append(out, apikey.UsageCount{KeyID: id, Bucket: time.UnixMicro(slot.bucket).UTC(), Outcome: slot.outcome, Count: n})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b apikey.UsageCount) int {
		if c := a.Bucket.Compare(b.Bucket); c != 0 {
			return c
		}
		return cmp.Compare(a.Outcome, b.Outcome)
	})
	return out, nil
}

// RecordLeak stores a copy of l and sets l.ID, unless a leak of the same
// key with the same URL and source is stored already (apikey.ErrDuplicateID,
// nothing stored). With ev, the audit entry is written with the leak, under
// the same lock.
func (s *Store) RecordLeak(ctx context.Context, l *apikey.Leak, ev *apikey.Event) error {
	if err := s.usable(ctx); err != nil {
		return opErr("record leak", err)
	}
	if l.KeyID == "" || !l.Action.Valid() {
		return opErr("record leak", fmt.Errorf("%w: a leak needs a key id and a known action", apikey.ErrInvalidInput))
	}
	if err := checkEvent(ev); err != nil {
		return opErr("record leak", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.leaks {
		if o := &s.leaks[i]; o.KeyID == l.KeyID && o.URL == l.URL && o.Source == l.Source {
			return opErr("record leak", apikey.ErrDuplicateID)
		}
	}
	l.ID = int64(len(s.leaks)) + 1
	c := *l
	c.ReportedAt = norm(c.ReportedAt)
	s.leaks = append(s.leaks, c)
	s.writeEventLocked(ev, l.Owner, nil)
	return nil
}

// ListLeaks returns the leaks matching q, newest (highest ID) first.
func (s *Store) ListLeaks(ctx context.Context, q apikey.LeakQuery) ([]*apikey.Leak, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opErr("list leaks", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := int64(len(s.leaks))
	if q.Before > 0 {
		end = min(end, q.Before-1)
	}
	out := []*apikey.Leak{}
	for i := end - 1; i >= 0 && len(out) < q.Limit; i-- {
		if l := s.leaks[i]; q.KeyID == "" || l.KeyID == q.KeyID {
			out = append(out, &l)
		}
	}
	return out, nil
}
