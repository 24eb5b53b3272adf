package apikey

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Get returns the key with the given id, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	rec, err := m.store.Lookup(ctx, id)
	if err != nil {
		return nil, m.storeErr("lookup", err)
	}
	k := &rec.Key
	m.stamp(k, m.clock())
	return k, nil
}

// KeyFilter selects keys for Manager.List. Zero fields do not filter.
type KeyFilter struct {
	// Owner keeps the keys of that owner. Like Search, it must be valid
	// text (see ValidText) of at most 200 bytes.
	Owner string
	// State keeps keys in that state now.
	State State
	// Search keeps keys whose name, id or owner contains it, ignoring case.
	Search string
	// Environment keeps the keys of that environment.
	Environment Environment
	// CreatedFrom keeps keys created at or after it; zero means no bound.
	// Both bounds must be ValidTime.
	CreatedFrom time.Time
	// CreatedTo keeps keys created before it; zero means no bound.
	CreatedTo time.Time
	// Cursor continues a previous listing: pass its Page.NextCursor.
	Cursor string
	// Limit is the page size: zero means DefaultPageSize, at most
	// MaxPageSize.
	Limit int
}

// Page sizes for List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Page is one page of a listing.
type Page struct {
	// Keys are newest first.
	Keys []*Key `json:"keys"`
	// NextCursor, when not empty, fetches the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// List returns one page of keys matching f, newest first. The order is
// stable (creation time, then id), so paging with NextCursor neither skips
// nor repeats keys, even while keys are added.
func (m *Manager) List(ctx context.Context, f KeyFilter) (*Page, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, invalid("state", "must be %s", orList(States()))
	}
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return nil, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if f.Environment != "" && !f.Environment.Valid() {
		return nil, invalid("environment", "must be live or test, got %q", f.Environment)
	}
	if err := checkText(f.Search, 200); err != nil {
		return nil, invalid("search", "%v", err)
	}
	if err := checkText(f.Owner, 200); err != nil {
		return nil, invalid("owner", "%v", err)
	}
	if err := CheckTime("created_from", f.CreatedFrom); err != nil {
		return nil, err
	}
	if err := CheckTime("created_to", f.CreatedTo); err != nil {
		return nil, err
	}
	now := m.clock()
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedFrom.Before(f.CreatedTo) {
		return nil, invalid("created_to", "must be after created_from")
	}
	q := Query{Owner: f.Owner, State: f.State, Search: f.Search, Now: now, Limit: cmpOr(f.Limit, DefaultPageSize) + 1,
		Environment: f.Environment, InactivityExpiry: m.inactivity,
		CreatedFrom: f.CreatedFrom.UTC(), CreatedTo: f.CreatedTo.UTC()}
	if f.Cursor != "" {
		c, err := ParseCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q.After = &c
	}
	keys, err := m.store.List(ctx, q)
	if err != nil {
		return nil, m.storeErr("list", err)
	}
	page := &Page{Keys: keys}
	if len(keys) == q.Limit {
		page.Keys = keys[:q.Limit-1]
		last := page.Keys[len(page.Keys)-1]
		page.NextCursor = Cursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
	}
	for _, k := range page.Keys {
		m.stamp(k, now)
	}
	return page, nil
}

// EventFilter selects audit log entries for Manager.Events. Zero fields do
// not filter.
type EventFilter struct {
	// KeyID, when set, must be a valid key id, or the WebhookSubject of
	// a webhook endpoint.
	KeyID string
	// Actor, when set, must be valid text (see ValidText).
	Actor string
	Type  EventType
	// Cursor continues a previous listing: pass its EventPage.NextCursor.
	Cursor string
	// Limit is the page size: zero means DefaultPageSize, at most
	// MaxPageSize.
	Limit int
}

// EventPage is one page of the audit log, newest first.
type EventPage struct {
	Events     []*Event `json:"events"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// Events lists the audit log: every mutation, with its actor and the
// before and after values of the fields it changed.
func (m *Manager) Events(ctx context.Context, f EventFilter) (*EventPage, error) {
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return nil, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if types := AuditedEventTypes(); f.Type != "" && !slices.Contains(types, f.Type) {
		return nil, invalid("type", "must be one of %s", strings.Join(stringsOf(types), ", "))
	}
	if f.KeyID != "" && !ValidID(f.KeyID) && !validWebhookSubject(f.KeyID) {
		return nil, invalid("key_id", "not a key id (%d letters and digits) nor webhook:<endpoint id>", IDLength)
	}
	if err := checkText(f.Actor, 1024); err != nil {
		return nil, invalid("actor", "%v", err)
	}
	q := EventQuery{KeyID: f.KeyID, Actor: f.Actor, Type: f.Type, Limit: cmpOr(f.Limit, DefaultPageSize) + 1}
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, invalid("cursor", "not a cursor returned by a previous list call")
		}
		q.Before = n
	}
	evs, err := m.store.ListEvents(ctx, q)
	if err != nil {
		return nil, m.storeErr("list events", err)
	}
	page := &EventPage{Events: evs}
	if len(evs) == q.Limit {
		page.Events = evs[:q.Limit-1]
		page.NextCursor = strconv.FormatInt(page.Events[len(page.Events)-1].ID, 10)
	}
	if page.Events == nil {
		page.Events = []*Event{}
	}
	return page, nil
}

// validWebhookSubject reports whether s is the KeyID of the audit entries
// of a webhook endpoint (WebhookSubject): an Events filter may name it.
func validWebhookSubject(s string) bool {
	id, ok := strings.CutPrefix(s, "webhook:wh_")
	if !ok || len(id) != 22 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
