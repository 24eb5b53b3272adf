package apikey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// LeakAction says what a confirmed leak does to its key.
type LeakAction string

// The actions of a LeakPolicy. A third, disabling a key until its owner
// acts, needs a key state that can be undone, which keys do not have yet:
// revocation is for ever, and there is no "disabled".
const (
	// LeakRevoke revokes the key at once: the default.
	LeakRevoke LeakAction = "revoke"
	// LeakNotify leaves the key working: the leak is recorded, audited and
	// sent to OnEvent (EventLeaked) for someone to act on.
	LeakNotify LeakAction = "notify"
)

// LeakActions returns every action, the default first.
func LeakActions() []LeakAction { return []LeakAction{LeakRevoke, LeakNotify} }

// Valid reports whether a is one of LeakActions.
func (a LeakAction) Valid() bool { return slices.Contains(LeakActions(), a) }

// LeakPolicy says what a confirmed leak does to its key: Default for every
// key, or the action Owners gives the key's owner. The zero value revokes
// every leaked key.
type LeakPolicy struct {
	// Default is the action for keys whose owner Owners does not name.
	// Zero means LeakRevoke.
	Default LeakAction
	// Owners overrides Default for the keys of an owner, by owner.
	Owners map[string]LeakAction
}

// Action returns the action for a key of owner.
func (p LeakPolicy) Action(owner string) LeakAction {
	if a, ok := p.Owners[owner]; ok {
		return a
	}
	return cmpOr(p.Default, LeakRevoke)
}

// Check reports the first action of p that is not one of LeakActions, as a
// *ValidationError for the field "leak_policy".
func (p LeakPolicy) Check() error {
	if p.Default != "" && !p.Default.Valid() {
		return invalid("leak_policy", "%q is not an action: want %s", p.Default, orList(LeakActions()))
	}
	for owner, a := range p.Owners {
		if !a.Valid() {
			return invalid("leak_policy", "%q (owner %q) is not an action: want %s", a, owner, orList(LeakActions()))
		}
	}
	return nil
}

// LeakReport is a token that someone found in public, such as one entry of
// a report of GitHub's secret scanning partner program.
type LeakReport struct {
	// Token is the text that was found. ReportLeak decides whether it is a
	// key of this Manager.
	Token string
	// URL is where it was found, as reported; it may be empty. At most
	// MaxLeakURLLength bytes of valid text (see ValidText).
	URL string
	// Source says what kind of place it was found in (GitHub reports
	// "content", "commit", "issue_comment", ...); it may be empty. At most
	// MaxLeakSourceLength bytes of valid text.
	Source string
}

// Limits of a LeakReport.
const (
	MaxLeakURLLength    = 2048
	MaxLeakSourceLength = 100
)

// Check reports the first field of r that no store would keep, as a
// *ValidationError ("url" or "source"). It does not look at the token.
func (r LeakReport) Check() error {
	if err := checkText(r.URL, MaxLeakURLLength); err != nil {
		return invalid("url", "%v", err)
	}
	if err := checkText(r.Source, MaxLeakSourceLength); err != nil {
		return invalid("source", "%v", err)
	}
	return nil
}

// Leak is a confirmed leak of a key, as ReportLeak records it.
type Leak struct {
	// ID is the leak's sequence number in its store: the newest has the
	// highest. Zero when nothing was recorded (a report repeated).
	ID int64 `json:"id"`
	// KeyID is the key that leaked.
	KeyID string `json:"key_id"`
	// Owner is the owner of the key when the leak was reported.
	Owner string `json:"owner"`
	// URL is where the key was found, as reported; it may be empty.
	URL string `json:"url"`
	// Source says what kind of place it was found in; it may be empty.
	Source string `json:"source"`
	// ReportedAt is when the report was received, in UTC.
	ReportedAt time.Time `json:"reported_at"`
	// Action is what the policy did to the key.
	Action LeakAction `json:"action"`
}

// LeakStore is a Store that also keeps leaks: Manager.ReportLeak and
// Manager.Leaks need one. sqlite.Store, postgres.Store and memstore.Store
// are LeakStores; apikeytest.TestLeakStore checks the rules below.
type LeakStore interface {
	Store

	// RecordLeak stores l and sets l.ID, unless a leak of the same key with
	// the same URL and Source is stored already: then it stores nothing,
	// writes no event and returns ErrDuplicateID. When ev is not nil, the
	// store appends it to the audit log in the same transaction, after
	// setting ev.Owner to l.Owner, and sets ev.ID. The key need not exist
	// any more.
	RecordLeak(ctx context.Context, l *Leak, ev *Event) error

	// ListLeaks returns at most q.Limit leaks matching q, newest (highest
	// ID) first.
	ListLeaks(ctx context.Context, q LeakQuery) ([]*Leak, error)
}

// LeakQuery selects leaks for LeakStore.ListLeaks. Zero fields do not
// filter.
type LeakQuery struct {
	KeyID string
	// Before keeps leaks whose ID is lower (the next page).
	Before int64
	// Limit is the most leaks to return; it is always positive.
	Limit int
}

// errNoLeakStore is the answer of ReportLeak and Leaks over a store that
// keeps no leaks.
var errNoLeakStore = fmt.Errorf("apikey: the store keeps no leaks (it is not an apikey.LeakStore): %w", errors.ErrUnsupported)

// leakStore returns the Manager's store as a LeakStore.
func (m *Manager) leakStore() (LeakStore, error) {
	ls, ok := m.store.(LeakStore)
	if !ok {
		return nil, errNoLeakStore
	}
	return ls, nil
}

// Identify returns the key of which token is the plaintext, whatever its
// state: active, disabled, expired or revoked. The token may be the key's
// current secret or its previous one (a roll with a grace window). Anything else (a malformed token, a
// bad checksum, an unknown id, a wrong secret) is ErrInvalidKey, and a
// store failure ErrUnavailable. Unlike Verify, it always reads the store,
// counts no usage, emits no event and never rehashes: it is for tools that
// ask whose key a found token is (apikey scan, leak reports), not for
// granting access.
func (m *Manager) Identify(ctx context.Context, token string) (*Key, error) {
	t, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	rec, err := m.store.Lookup(ctx, t.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		m.hasher.burn(token)
		return nil, ErrInvalidKey
	case err != nil:
		return nil, unavailable("lookup", err)
	}
	ok, _ := m.hasher.match(rec.Hash, token)
	if !ok && rec.PreviousHash != "" {
		// The previous secret of a roll with a grace window is the key's
		// too, while it verifies and after: a leak of it is a leak of the
		// key.
		ok, _ = m.hasher.match(rec.PreviousHash, token)
	}
	if !ok || rec.TokenPrefix() != t.Prefix {
		return nil, ErrInvalidKey
	}
	k := &rec.Key
	m.stamp(k, m.clock())
	return k, nil
}

// ReportLeak handles a token reported as found in public. If the token is
// not the plaintext of one of this Manager's keys, whatever the key's
// state (see Identify), it returns ErrInvalidKey and does nothing: a
// report naming a key id with a made-up secret changes nothing. (A
// reported text that is not a token but holds one, such as a match of
// TokenPattern that took the word before the prefix along, counts as the
// token it holds.) Otherwise the leak is confirmed, and ReportLeak:
//
//   - applies the action that policy gives the key's owner: LeakRevoke
//     revokes the key (a key.revoked entry, as Revoke writes) unless it is
//     revoked already; LeakNotify changes nothing;
//   - records the leak and a key.leaked entry (EventLeaked, with the URL
//     and the owner) in the audit log, in one transaction;
//   - sends the key.leaked event to OnEvent, with the action as its
//     Reason.
//
// The actor of ctx (WithActor) is named in both entries. A report repeated
// (the same key, URL and source, say a delivery retried) records nothing
// new and sends no event: the Leak returned then has ID 0. A report whose
// URL or source no store would keep is a *ValidationError, and a policy
// with an unknown action too; both are checked before anything else.
// Over a store that is not a LeakStore, ReportLeak returns an error
// matching errors.ErrUnsupported.
func (m *Manager) ReportLeak(ctx context.Context, r LeakReport, policy LeakPolicy) (*Leak, error) {
	ls, err := m.leakStore()
	if err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	if err := policy.Check(); err != nil {
		return nil, err
	}
	k, err := m.Identify(ctx, leakedToken(r.Token))
	if err != nil {
		return nil, err
	}
	action := policy.Action(k.Owner)
	if action == LeakRevoke && !k.Revoked() {
		if k, err = m.Revoke(ctx, k.ID); err != nil {
			if errors.Is(err, ErrNotFound) { // deleted since Identify
				return nil, ErrInvalidKey
			}
			return nil, err
		}
	}
	now := m.clock()
	l := &Leak{KeyID: k.ID, Owner: k.Owner, URL: r.URL, Source: r.Source, ReportedAt: now, Action: action}
	ev := m.event(ctx, EventLeaked, k.ID, now)
	ev.URL, ev.Reason = r.URL, string(action)
	switch err := ls.RecordLeak(ctx, l, ev); {
	case errors.Is(err, ErrDuplicateID):
		l.ID = 0
		return l, nil
	case err != nil:
		return nil, m.storeErr("record leak", err)
	}
	m.emit(ev)
	return l, nil
}

// leakedToken returns s if it is a token, else the first token in s (see
// FindTokens), else s.
func leakedToken(s string) string {
	if _, err := ParseToken(s); err == nil || len(s) > 4*MaxTokenLength {
		return s
	}
	for m := range FindTokens([]byte(s)) {
		return s[m.Start:m.End]
	}
	return s
}

// LeakFilter selects leaks for Manager.Leaks. Zero fields do not filter.
type LeakFilter struct {
	KeyID string
	// Cursor continues a previous listing: pass its LeakPage.NextCursor.
	Cursor string
	// Limit is the page size: zero means DefaultPageSize, at most
	// MaxPageSize.
	Limit int
}

// LeakPage is one page of leaks, newest first.
type LeakPage struct {
	Leaks      []*Leak `json:"leaks"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// Leaks lists the recorded leaks, newest first. Over a store that is not a
// LeakStore, it returns an error matching errors.ErrUnsupported.
func (m *Manager) Leaks(ctx context.Context, f LeakFilter) (*LeakPage, error) {
	ls, err := m.leakStore()
	if err != nil {
		return nil, err
	}
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return nil, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if f.KeyID != "" && !ValidID(f.KeyID) {
		return nil, invalid("key_id", "not a key id (%d letters and digits)", IDLength)
	}
	q := LeakQuery{KeyID: f.KeyID, Limit: cmpOr(f.Limit, DefaultPageSize) + 1}
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, invalid("cursor", "not a cursor returned by a previous list call")
		}
		q.Before = n
	}
	leaks, err := ls.ListLeaks(ctx, q)
	if err != nil {
		return nil, m.storeErr("list leaks", err)
	}
	page := &LeakPage{Leaks: leaks}
	if len(leaks) == q.Limit {
		page.Leaks = leaks[:q.Limit-1]
		page.NextCursor = strconv.FormatInt(page.Leaks[len(page.Leaks)-1].ID, 10)
	}
	if page.Leaks == nil {
		page.Leaks = []*Leak{}
	}
	return page, nil
}
