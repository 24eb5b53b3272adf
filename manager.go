package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Verifier checks a presented token. The Manager satisfies it, and so do the
// remote client and any caching layer, so HTTP middleware can take any of
// them.
type Verifier interface {
	// Verify returns the key the token belongs to, or an error matching
	// ErrInvalidKey, ErrExpired, ErrRevoked or ErrUnavailable.
	Verify(ctx context.Context, token string) (*Key, error)
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(ctx context.Context, token string) (*Key, error)

// Verify calls f(ctx, token).
func (f VerifierFunc) Verify(ctx context.Context, token string) (*Key, error) { return f(ctx, token) }

// Config configures a Manager. The zero value is usable: every field has a
// documented default.
type Config struct {
	// Prefix is the issuer prefix of new keys: 1 to 32 characters of a-z,
	// 0-9 and _. Zero means DefaultPrefix ("ak"). Keys created under an
	// earlier prefix keep verifying.
	Prefix string

	// SecretLength is the number of base62 characters in new secrets,
	// MinSecretLength (22, 131 bits) to MaxSecretLength (128). Zero means
	// DefaultSecretLength (32, about 190 bits).
	SecretLength int

	// Peppers are server-side secrets for HMAC-SHA256 hashing. The first is
	// used for new keys; the others still verify keys hashed with them, and
	// such keys are rehashed with the first when next verified. None means
	// plain SHA-256, which is safe for random secrets of this length but
	// lets a stolen database be used to test guesses offline.
	Peppers []Pepper

	// MaxKeysPerOwner caps the keys an owner may hold that are not revoked.
	// Zero means unlimited. Keys without an owner are not limited.
	MaxKeysPerOwner int

	// Usable, when set, is consulted by Verify after every other check
	// passed; a non-nil error denies the key. This is the hook for rules
	// such as "the owning organisation must be active". The error is
	// returned wrapped in ErrInvalidKey unless it already matches
	// ErrUnavailable.
	Usable func(ctx context.Context, k *Key) error

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Rand is the source of ids and secrets. Nil means crypto/rand.Reader.
	Rand io.Reader

	// Cache, when set, keeps verified records in memory so that Verify
	// skips the store; see package ottercache. The Manager evicts keys it
	// changes itself; when several processes share a store, run an
	// invalidation listener ((*postgres.Store).Listen) so that changes made elsewhere
	// evict them too. Nil means no cache: every Verify reads the store.
	Cache Cache

	// Metrics, when set, receives verification, cache and store
	// measurements. Nil means none.
	Metrics Metrics

	// OnEvent, when set, receives every event (mutations, owner limit
	// reached, rejected verifications) on a separate goroutine, in order.
	// A slow subscriber never blocks the Manager: past EventBuffer pending
	// events, new ones are dropped. A panic in OnEvent is recovered.
	OnEvent func(Event)

	// EventBuffer is the number of events that may wait for OnEvent. Zero
	// means 1024.
	EventBuffer int

	// UsageFlushInterval is how often usage counters and last-used times
	// are written to the store; LastUsedAt is accurate to it. Zero means
	// DefaultUsageFlushInterval (10s); a negative value turns usage
	// tracking off. Close flushes what is pending.
	UsageFlushInterval time.Duration
}

// Manager applies every rule of the key lifecycle on top of a Store:
// generation, hashing, verification, expiry, revocation, limits and
// validation. It is safe for concurrent use.
type Manager struct {
	store     Store
	prefix    string
	secretLen int
	maxKeys   int
	usable    func(context.Context, *Key) error
	now       func() time.Time
	rand      io.Reader
	hasher    *hasher
	cache     *cacheState
	metrics   metricsHook
	events    *dispatcher
	usage     *usageTracker
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

var _ Verifier = (*Manager)(nil)

// NewManager returns a Manager over store, or an error naming the first bad
// setting in cfg.
func NewManager(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("apikey: NewManager needs a store")
	}
	m := &Manager{
		store:     store,
		prefix:    cmpOr(cfg.Prefix, DefaultPrefix),
		secretLen: cmpOr(cfg.SecretLength, DefaultSecretLength),
		maxKeys:   cfg.MaxKeysPerOwner,
		usable:    cfg.Usable,
		now:       cfg.Now,
		rand:      cfg.Rand,
	}
	if err := checkPrefix(m.prefix); err != nil {
		return nil, fmt.Errorf("apikey: prefix %q %v", m.prefix, err)
	}
	if m.secretLen < MinSecretLength || m.secretLen > MaxSecretLength {
		return nil, fmt.Errorf("apikey: secret length %d is outside %d..%d: below %d base62 characters a secret carries less than 128 bits of entropy",
			m.secretLen, MinSecretLength, MaxSecretLength, MinSecretLength)
	}
	if m.maxKeys < 0 {
		return nil, fmt.Errorf("apikey: MaxKeysPerOwner must not be negative, got %d", m.maxKeys)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	h, err := newHasher(cfg.Peppers)
	if err != nil {
		return nil, err
	}
	m.hasher = h
	m.metrics = metricsHook{cfg.Metrics}
	if cfg.Cache != nil {
		m.cache = &cacheState{c: cfg.Cache}
		m.cache.trusted.Store(true)
	}
	if cfg.OnEvent != nil {
		m.events = newDispatcher(cfg.OnEvent, cmpOr(cfg.EventBuffer, 1024))
	}
	m.stop, m.stopped = make(chan struct{}), make(chan struct{})
	if cfg.UsageFlushInterval >= 0 {
		m.usage = newUsageTracker()
		go m.flushLoop(cmpOr(cfg.UsageFlushInterval, DefaultUsageFlushInterval))
	} else {
		close(m.stopped)
	}
	return m, nil
}

func (m *Manager) flushLoop(every time.Duration) {
	defer close(m.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = m.FlushUsage(ctx) // kept for the next flush on failure
			cancel()
		}
	}
}

// Close stops the Manager's background work, writes pending usage and
// delivers pending events, giving up when ctx is done. The Manager must not
// be used afterwards; the store is not closed.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		select { // a flush in progress may run on; do not wait past ctx
		case <-m.stopped:
		case <-ctx.Done():
			err = fmt.Errorf("apikey: usage flush still running: %w", ctx.Err())
			return
		}
		err = m.FlushUsage(ctx)
		if m.events != nil {
			err = errors.Join(err, m.events.close(ctx))
		}
	})
	return err
}

// event starts an event of type t about key id, at now, by the actor of ctx.
func (m *Manager) event(ctx context.Context, t EventType, id string, now time.Time) *Event {
	return &Event{Type: t, At: now, Actor: ActorFrom(ctx), KeyID: id}
}

func (m *Manager) emit(e *Event) {
	if m.events != nil && e != nil {
		m.events.emit(*e)
	}
}

// DroppedEvents reports how many events were dropped because OnEvent fell
// behind.
func (m *Manager) DroppedEvents() int64 {
	if m.events == nil {
		return 0
	}
	return m.events.dropped.Load()
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// clock returns the current time in UTC at the microsecond precision that
// every store keeps.
func (m *Manager) clock() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// CreateParams describes a new key.
type CreateParams struct {
	// Name is required: 1 to 200 characters, no control characters.
	Name string
	// Owner is optional: at most 200 characters, no control characters.
	Owner string
	// Scopes are optional; see ValidScope for their syntax.
	Scopes []string
	// Metadata is optional: at most 50 entries; names of 1 to 64
	// characters of A-Z a-z 0-9 _ . -; values of at most 512 characters.
	Metadata map[string]string
	// ExpiresAt is optional and must be in the future.
	ExpiresAt *time.Time
}

// maxIDAttempts bounds retries when a fresh id collides with a stored one
// (with 71 random bits, a second attempt is already vanishingly rare).
const maxIDAttempts = 4

// Create generates a key, stores its record and digest, and returns the
// record together with the plaintext token. The plaintext exists only in
// this return value: nothing can show it again.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Key, string, error) {
	now := m.clock()
	k := &Key{
		Prefix:    m.prefix,
		Name:      p.Name,
		Owner:     p.Owner,
		Scopes:    normalizeScopes(p.Scopes),
		Metadata:  maps.Clone(p.Metadata),
		CreatedAt: now,
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	if p.ExpiresAt != nil {
		t := p.ExpiresAt.UTC().Truncate(time.Microsecond)
		k.ExpiresAt = &t
	}
	if err := validate(k, now, true); err != nil {
		return nil, "", err
	}
	for attempt := 1; ; attempt++ {
		id, err := randomBase62(m.rand, IDLength)
		if err != nil {
			return nil, "", err
		}
		secret, err := randomBase62(m.rand, m.secretLen)
		if err != nil {
			return nil, "", err
		}
		k.ID = id
		token := formatToken(m.prefix, id, secret)
		ev := m.event(ctx, EventCreated, id, now)
		err = m.store.Insert(ctx, &Record{Key: *k, Hash: m.hasher.hash(token)}, m.ownerLimit(k.Owner), ev)
		switch {
		case err == nil:
			m.emit(ev)
			k.State = k.StateAt(now)
			return k, token, nil
		case errors.Is(err, ErrDuplicateID) && attempt < maxIDAttempts:
			continue
		case errors.Is(err, ErrTooManyKeys):
			lim := m.event(ctx, EventLimitReached, "", now)
			lim.Owner, lim.Reason = k.Owner, strconv.Itoa(m.maxKeys)
			m.emit(lim)
			return nil, "", fmt.Errorf("%w: owner %q already has %d active keys", ErrTooManyKeys, k.Owner, m.maxKeys)
		default:
			return nil, "", unavailable("insert", err)
		}
	}
}

func (m *Manager) ownerLimit(owner string) int {
	if owner == "" {
		return 0
	}
	return m.maxKeys
}

// Verify checks token and returns its key. The checks run in this order:
// shape and checksum (no store access), lookup by id, constant-time hash
// comparison, revocation, expiry at Now, and the Usable hook. Malformed
// tokens, unknown ids and wrong secrets all return ErrInvalidKey; ErrRevoked
// and ErrExpired are returned only after the secret matched; a store
// failure returns ErrUnavailable and never a key.
//
// The returned Key may share its Scopes and Metadata with the verification
// cache: treat them as read-only, or Clone the key before changing it.
func (m *Manager) Verify(ctx context.Context, token string) (*Key, error) {
	start := m.metrics.verifyStart()
	k, id, err := m.verify(ctx, token)
	m.metrics.verified(start, err)
	if err != nil && m.events != nil && !errors.Is(err, ErrUnavailable) {
		ev := m.event(ctx, EventVerifyRejected, id, m.clock())
		ev.Reason = Outcome(err)
		m.emit(ev)
	}
	return k, err
}

// verify does the work of Verify and also returns the id the token claimed.
func (m *Manager) verify(ctx context.Context, token string) (*Key, string, error) {
	t, err := ParseToken(token)
	if err != nil {
		return nil, "", err
	}
	e, err := m.lookup(ctx, t.ID)
	if err != nil {
		return nil, t.ID, unavailable("lookup", err)
	}
	if e == nil {
		m.hasher.burn(token)
		return nil, t.ID, ErrInvalidKey
	}
	ok, current := m.matchEntry(e, token)
	now := m.clock()
	if !ok || e.key.Prefix != t.Prefix {
		m.recordUsage(e, useInvalid, now)
		return nil, t.ID, ErrInvalidKey
	}
	if e.key.Revoked() {
		m.recordUsage(e, useRevoked, now)
		return nil, t.ID, ErrRevoked
	}
	if e.key.Expired(now) {
		m.recordUsage(e, useExpired, now)
		return nil, t.ID, ErrExpired
	}
	k := new(Key)
	*k = e.key // Scopes and Metadata are shared with the cache: see Verify
	k.State = StateActive
	if m.usable != nil {
		if err := m.usable(ctx, k); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return nil, t.ID, err
			}
			return nil, t.ID, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
	}
	if !current {
		// Upgrade to the current pepper. A failure only delays the upgrade
		// to the next verification; the key itself is valid. The write is
		// conditional on the digest that matched: if a Roll replaced it
		// meanwhile, the store changes nothing, rather than bring the
		// rolled-away secret back.
		if m.store.SetHash(ctx, k.ID, e.hash, m.hasher.hash(token), nil) == nil {
			m.Invalidate(k.ID)
		}
	}
	m.recordUsage(e, useValid, now)
	return k, t.ID, nil
}

func (m *Manager) recordUsage(e *CacheEntry, outcome int, now time.Time) {
	if e.usage != nil {
		m.usage.record(e.usage, outcome, now)
	}
}

// matchEntry compares the digest of token with the entry's in constant
// time and reports whether the entry uses the current hashing scheme.
func (m *Manager) matchEntry(e *CacheEntry, token string) (ok, current bool) {
	if !e.ok {
		// Unknown scheme or pepper: fall back to the general matcher, which
		// spends the same time and never matches what it cannot check.
		return m.hasher.match(e.hash, token)
	}
	if e.plain {
		sum := sha256.Sum256(stringBytes(token))
		ok = subtle.ConstantTimeCompare(sum[:], e.digest[:]) == 1
		return ok, ok && m.hasher.current == nil
	}
	pool := &e.pepper.pool
	current = e.pepper == m.hasher.current
	d := pool.Get().(*digestState)
	d.h.Reset()
	d.h.Write(stringBytes(token))
	d.h.Sum(d.sum[:0])
	ok = subtle.ConstantTimeCompare(d.sum[:], e.digest[:]) == 1
	pool.Put(d)
	return ok, ok && current
}

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
	k.State = k.StateAt(m.clock())
	return k, nil
}

// KeyFilter selects keys for Manager.List. Zero fields do not filter.
type KeyFilter struct {
	// Owner keeps the keys of that owner.
	Owner string
	// State keeps keys in that state now.
	State State
	// Search keeps keys whose name, id or owner contains it, ignoring case.
	Search string
	// CreatedFrom keeps keys created at or after it; zero means no bound.
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
		return nil, invalid("state", "must be active, expired or revoked")
	}
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return nil, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if len(f.Search) > 200 {
		return nil, invalid("search", "longer than 200 bytes")
	}
	if len(f.Owner) > 200 {
		return nil, invalid("owner", "longer than 200 bytes")
	}
	now := m.clock()
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedFrom.Before(f.CreatedTo) {
		return nil, invalid("created_to", "must be after created_from")
	}
	q := Query{Owner: f.Owner, State: f.State, Search: f.Search, Now: now, Limit: cmpOr(f.Limit, DefaultPageSize) + 1,
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
		return nil, unavailable("list", err)
	}
	page := &Page{Keys: keys}
	if len(keys) == q.Limit {
		page.Keys = keys[:q.Limit-1]
		last := page.Keys[len(page.Keys)-1]
		page.NextCursor = Cursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
	}
	for _, k := range page.Keys {
		k.State = k.StateAt(now)
	}
	return page, nil
}

// Update changes the name, scopes, metadata or expiry of a key and returns
// the result. A revoked key is frozen: Update returns ErrRevoked.
func (m *Manager) Update(ctx context.Context, id string, u KeyUpdate) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if u.Empty() {
		return m.Get(ctx, id)
	}
	if u.ExpiresAt != nil && u.ClearExpiry {
		return nil, invalid("expires_at", "cannot both set and clear the expiry")
	}
	now := m.clock()
	probe := &Key{Name: "-"}
	if u.Name != nil {
		probe.Name = *u.Name
	}
	if u.Scopes != nil {
		s := normalizeScopes(*u.Scopes)
		u.Scopes = &s
		probe.Scopes = s
	}
	if u.Metadata != nil {
		md := maps.Clone(*u.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		u.Metadata = &md
		probe.Metadata = md
	}
	if u.ExpiresAt != nil {
		t := u.ExpiresAt.UTC().Truncate(time.Microsecond)
		u.ExpiresAt = &t
		probe.ExpiresAt = &t
	}
	if err := validate(probe, now, u.ExpiresAt != nil); err != nil {
		return nil, err
	}
	ev := m.event(ctx, EventUpdated, id, now)
	k, err := m.store.Update(ctx, id, u, ev)
	m.Invalidate(id)
	if err != nil {
		if errors.Is(err, ErrRevoked) {
			return nil, fmt.Errorf("%w: a revoked key cannot be changed", ErrRevoked)
		}
		return nil, m.storeErr("update", err)
	}
	m.emit(ev)
	k.State = k.StateAt(now)
	return k, nil
}

// Revoke revokes a key for ever and returns it. Revoking a revoked key is
// not an error and keeps the first revocation time. No code path un-revokes
// a key.
func (m *Manager) Revoke(ctx context.Context, id string) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	now := m.clock()
	ev := m.event(ctx, EventRevoked, id, now)
	k, err := m.store.Revoke(ctx, id, now, ev)
	m.Invalidate(id)
	if err != nil {
		return nil, m.storeErr("revoke", err)
	}
	if ev.ID != 0 {
		m.emit(ev) // only when this call revoked it (the store wrote the entry)
	}
	k.State = k.StateAt(now)
	return k, nil
}

// Delete removes a key for good. Unlike Revoke it leaves no record; a
// deleted key verifies as an unknown one.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	ev := m.event(ctx, EventDeleted, id, m.clock())
	err := m.store.Delete(ctx, id, ev)
	m.Invalidate(id)
	if err != nil {
		return m.storeErr("delete", err)
	}
	m.emit(ev)
	return nil
}

// storeErr passes the answers a store may give through and wraps every
// other failure in ErrUnavailable.
func (m *Manager) storeErr(op string, err error) error {
	if isStoreError(err) {
		return unavailable(op, err)
	}
	return err
}

// validate checks the fields of k that callers set. checkExpiry requires a
// future ExpiresAt.
func validate(k *Key, now time.Time, checkExpiry bool) error {
	if strings.TrimSpace(k.Name) == "" {
		return invalid("name", "is required")
	}
	if err := checkText(k.Name, 200); err != nil {
		return invalid("name", "%v", err)
	}
	if err := checkText(k.Owner, 200); err != nil {
		return invalid("owner", "%v", err)
	}
	if len(k.Scopes) > 100 {
		return invalid("scopes", "at most 100 scopes")
	}
	for _, s := range k.Scopes {
		if !ValidScope(s) {
			return invalid("scopes", "%q is not a valid scope (1 to 100 characters of A-Z a-z 0-9 : . _ - /, optionally ending in \":*\", or \"*\")", s)
		}
	}
	if len(k.Metadata) > 50 {
		return invalid("metadata", "at most 50 entries")
	}
	for name, v := range k.Metadata {
		if !validMetadataName(name) {
			return invalid("metadata", "name %q must be 1 to 64 characters of A-Z a-z 0-9 _ . -", name)
		}
		if err := checkText(v, 512); err != nil {
			return invalid("metadata", "value of %q: %v", name, err)
		}
	}
	if checkExpiry && k.ExpiresAt != nil && !k.ExpiresAt.After(now) {
		return invalid("expires_at", "must be in the future")
	}
	return nil
}

func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// ValidScope reports whether s is a well-formed scope: 1 to 100 characters
// of A-Z a-z 0-9 : . _ - /, optionally ending in ":*" (a wildcard over
// everything after the colon), or the single "*" (every scope).
func ValidScope(s string) bool {
	if s == "*" {
		return true
	}
	body := strings.TrimSuffix(s, ":*")
	if len(s) > 100 || body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isBase62(c) && !strings.ContainsRune(":._-/", rune(c)) {
			return false
		}
	}
	return true
}

func validMetadataName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isBase62(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// normalizeScopes returns the scopes sorted and without duplicates, never
// nil.
func normalizeScopes(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// Roll replaces the secret of a key and returns the key with the new
// plaintext token, shown once like at creation. The id, name, scopes and
// every other field stay; the old token stops verifying at once. A revoked
// key cannot be rolled (ErrRevoked).
func (m *Manager) Roll(ctx context.Context, id string) (*Key, string, error) {
	k, err := m.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if k.Revoked() {
		return nil, "", fmt.Errorf("%w: a revoked key cannot be rolled", ErrRevoked)
	}
	secret, err := randomBase62(m.rand, m.secretLen)
	if err != nil {
		return nil, "", err
	}
	token := formatToken(k.Prefix, k.ID, secret)
	ev := m.event(ctx, EventRolled, k.ID, m.clock())
	err = m.store.SetHash(ctx, k.ID, "", m.hasher.hash(token), ev)
	m.Invalidate(k.ID)
	if err != nil {
		return nil, "", m.storeErr("set hash", err)
	}
	m.emit(ev)
	return k, token, nil
}

// EventFilter selects audit log entries for Manager.Events. Zero fields do
// not filter.
type EventFilter struct {
	KeyID string
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
	if f.Type != "" && !slices.Contains([]EventType{EventCreated, EventUpdated, EventRevoked, EventDeleted, EventRolled}, f.Type) {
		return nil, invalid("type", "must be one of key.created, key.updated, key.revoked, key.deleted, key.rolled")
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
		return nil, unavailable("list events", err)
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

// MaxKeysPerOwner returns the configured per-owner limit; zero means
// unlimited.
func (m *Manager) MaxKeysPerOwner() int { return m.maxKeys }
