package apikey

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Record is what a Store persists for one key: the record and the
// algorithm-tagged digest of the token. The plaintext never reaches a store.
// Its JSON form is its Key's (Key.MarshalJSON): the digest is never
// encoded.
type Record struct {
	Key
	// Hash is the tagged digest, e.g. "sha256$<hex>" or
	// "hmac-sha256$1$<hex>".
	Hash string
	// PreviousHash is the digest of the previous secret while the key has
	// a PreviousSecret (see Rollover), else empty.
	PreviousHash string
}

// Store persists key records. It holds no policy: the Manager generates,
// hashes and checks; a Store only keeps what it is given and applies the
// few rules that must be atomic with the write. Implementations must be safe
// for concurrent use, return times in UTC, and map their own "no rows" and
// unique-violation errors to ErrNotFound and ErrDuplicateID. An error in
// which the database refuses a value (a check, not-null or other constraint
// violation, a value out of range, text it cannot encode) is bad input,
// not an outage: stores wrap it with ErrInvalidInput, and the Manager
// passes it on as such. Any other error means the store failed; the
// Manager reports it as ErrUnavailable.
//
// apikeytest.TestStore checks every rule below against a real backend.
type Store interface {
	// Insert stores rec. If limit > 0 and rec.Owner already has limit or
	// more keys that are not revoked, Insert stores nothing and returns
	// ErrTooManyKeys; the count and the insert are atomic with respect to
	// concurrent Inserts. An existing id yields ErrDuplicateID.
	Insert(ctx context.Context, rec *Record, limit int, ev *Event) error

	// Lookup returns the record with the given id, hash included, or
	// ErrNotFound.
	Lookup(ctx context.Context, id string) (*Record, error)

	// List returns at most q.Limit keys matching q, newest first (by
	// CreatedAt, then by ID, both descending), starting after q.After when
	// it is set.
	List(ctx context.Context, q Query) ([]*Key, error)

	// Update applies the fields set in u and returns the updated key. It
	// returns ErrNotFound for an unknown id and ErrFrozen, changing
	// nothing, when the key is revoked.
	Update(ctx context.Context, id string, u KeyUpdate, ev *Event) (*Key, error)

	// Revoke sets RevokedAt to at unless the key is already revoked, in
	// which case it keeps the first instant, changes nothing and records no
	// event. It returns the key, or ErrNotFound. The store must also refuse,
	// at the database level, any write that clears or changes a RevokedAt
	// once set.
	Revoke(ctx context.Context, id string, at time.Time, ev *Event) (*Key, error)

	// Delete removes the key for good, or returns ErrNotFound.
	Delete(ctx context.Context, id string, ev *Event) error

	// SetHash replaces the stored digest of a key with newHash (after a
	// roll or a pepper change), or returns ErrNotFound for an unknown id.
	// A revoked key is frozen: SetHash returns ErrFrozen, changes nothing
	// and records no event, and it decides so in the same atomic statement
	// as the write (UPDATE ... WHERE id = ? AND revoked_at IS NULL), never
	// in an earlier read, so that a Roll racing a Revoke can never write
	// its digest, or a key.rolled entry, after the revocation.
	//
	// When oldHash is not empty the replacement is conditional: the store
	// changes the digest only if the stored one still equals oldHash, in
	// one atomic statement (UPDATE ... WHERE id = ? AND hash = ?). If it no
	// longer does, the key was rolled (or upgraded) concurrently: the
	// upgrade lost a race; nothing to do, so SetHash changes nothing,
	// records no event and returns nil. The Manager's hash upgrade during
	// Verify passes the digest it matched, so that it can never write back
	// the digest of a secret a concurrent Roll replaced. An empty oldHash
	// replaces the digest unconditionally (Roll).
	SetHash(ctx context.Context, id, oldHash, newHash string, ev *Event) error

	// Roll replaces the stored digest of a key with r.Hash and returns the
	// key, or ErrNotFound. Like SetHash, it refuses a revoked key with
	// ErrFrozen in the same atomic statement as the write, changing
	// nothing and recording no event. In the same statement it sets the
	// previous secret: with r.Previous, PreviousHash becomes the digest it
	// replaces and PreviousSecret r.Previous, its LastUsedAt the key's
	// LastUsedAt, which it clears (the new secret is unused); without, it
	// clears PreviousHash and PreviousSecret. Any older previous secret is
	// dropped. The event's Changes are Diff(before, after).
	Roll(ctx context.Context, id string, r Rollover, ev *Event) (*Key, error)

	// StartGrace records that the grace window of the key's previous
	// secret started at at, and reports whether it did: only if the key
	// is not revoked, its stored digest still equals hash (the secret
	// whose first use starts the window), it has a PreviousSecret and the
	// window has not started, all decided in the statement that writes
	// (UPDATE ... WHERE ... AND grace_started_at IS NULL), so that
	// concurrent callers record one start. It writes no audit entry; the
	// change reaches the caches as any other change of the key. An
	// unknown id is ErrNotFound or false.
	StartGrace(ctx context.Context, id, hash string, at time.Time) (bool, error)

	// SetDisabled disables the key (DisabledAt set to at, unless already
	// set) or enables it (DisabledAt cleared), and returns it. It returns
	// ErrNotFound for an unknown id and ErrFrozen, changing nothing, for a
	// revoked key, decided in the writing statement. When nothing changes
	// it records no event (ev.ID stays 0).
	SetDisabled(ctx context.Context, id string, disabled bool, at time.Time, ev *Event) (*Key, error)

	// ListEvents returns audit log entries matching q, newest (highest ID)
	// first.
	ListEvents(ctx context.Context, q EventQuery) ([]*Event, error)

	// RecordUsage adds counts to the per-minute usage counters (creating
	// rows as needed) and sets each key's LastUsedAt to the given time
	// unless it already holds a later one; an entry of lastUsed under
	// PreviousSubject(id) sets the LastUsedAt of the key's PreviousSecret
	// likewise, if it has one. Ids that no longer exist are ignored. It is called in batches, never once per request.
	RecordUsage(ctx context.Context, counts []UsageCount, lastUsed map[string]time.Time) error

	// Usage returns the per-minute counters of a key with from <= Bucket <
	// to, oldest first, then by outcome.
	Usage(ctx context.Context, id string, from, to time.Time) ([]UsageCount, error)
}

// Every mutating Store method takes an *Event. When it is not nil, the store
// writes it to its audit log in the same transaction as the change, after
// filling ev.Owner from the row and ev.Changes with Diff(before, after), and
// sets ev.ID to the entry's sequence number. The Manager fills Type, At,
// Actor and KeyID; a store refuses an event without a Type or KeyID as bad
// input (ErrInvalidInput) that changes nothing. A nil event records nothing (hash
// upgrades).

// EventQuery selects audit log entries for Store.ListEvents. Zero fields do
// not filter.
type EventQuery struct {
	KeyID string
	Actor string
	Type  EventType
	// Before keeps entries whose ID is lower (the next page).
	Before int64
	// Limit is the most entries to return; it is always positive.
	Limit int
}

// Query selects keys for Store.List. Zero fields do not filter.
type Query struct {
	// Owner keeps keys whose Owner equals it.
	Owner string
	// State keeps keys in that state at Now.
	State State
	// Search keeps keys whose name, id or owner contains it, ignoring case.
	Search string
	// CreatedFrom keeps keys created at or after it; zero means no bound.
	CreatedFrom time.Time
	// CreatedTo keeps keys created before it; zero means no bound.
	CreatedTo time.Time
	// Now is the instant against which State is evaluated.
	Now time.Time
	// InactivityExpiry is the default inactivity expiry against which
	// State is evaluated (Key.StateWith); zero means none.
	InactivityExpiry time.Duration
	// Environment keeps keys of that environment; records made before
	// environments existed are live.
	Environment Environment
	// After, when set, keeps keys that sort after it in the list order.
	After *Cursor
	// Limit is the most keys to return; it is always positive.
	Limit int
}

// Cursor is a position in the list order (newest first).
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes the cursor as an opaque, URL-safe string.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.ID))
}

// ParseCursor decodes a string made by Cursor.String. A malformed cursor is
// a *ValidationError for the field "cursor".
func ParseCursor(s string) (Cursor, error) {
	bad := invalid("cursor", "not a cursor returned by a previous list call")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	micros, id, ok := strings.Cut(string(b), ".")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !ValidID(id) || !ValidTime(time.UnixMicro(us)) {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// KeyUpdate is a patch for Manager.Update and Store.Update; nil fields are
// left unchanged. RevokedAt is deliberately absent: only Revoke sets it, and
// nothing clears it.
type KeyUpdate struct {
	Name     *string
	Scopes   *[]string
	Metadata *map[string]string
	// ExpiresAt sets a new expiry.
	ExpiresAt *time.Time
	// ClearExpiry removes the expiry; it cannot be combined with ExpiresAt.
	ClearExpiry bool
	// RateLimits replaces the key's rate limits; an empty slice removes
	// them.
	RateLimits *[]RateLimit
	// Credits replaces the key's balance and refill schedule (the Manager
	// sets NextRefillAt); ClearCredits removes them. They cannot be
	// combined.
	Credits      *Credits
	ClearCredits bool
	// AllowedCIDRs replaces the key's network allowlist; an empty slice
	// removes it. The Manager normalises it (NormalizeCIDRs).
	AllowedCIDRs *[]netip.Prefix
	// InactivityExpiry replaces the key's inactivity expiry: zero for the
	// service's default, NoInactivityExpiry for none. A key's Environment
	// never changes: its tokens carry it.
	InactivityExpiry *time.Duration
}

// Empty reports whether u changes nothing.
func (u KeyUpdate) Empty() bool {
	return u.Name == nil && u.Scopes == nil && u.Metadata == nil && u.ExpiresAt == nil && !u.ClearExpiry &&
		u.RateLimits == nil && u.Credits == nil && !u.ClearCredits && u.AllowedCIDRs == nil && u.InactivityExpiry == nil
}

// isStoreError reports whether err is a store failure rather than one of the
// answers a store is allowed to give.
func isStoreError(err error) bool {
	return err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFrozen) &&
		!errors.Is(err, ErrTooManyKeys) && !errors.Is(err, ErrDuplicateID) && !errors.Is(err, ErrInvalidInput)
}

// Importer is the optional interface of the stores that can import keys
// made by another system, which Manager.Import needs; sqlite.Store,
// postgres.Store and memstore.Store implement it, and
// apikeytest.TestImporter checks it. It never changes a key that exists:
// an import that runs again imports nothing twice.
type Importer interface {
	// Import stores a batch in one transaction. It skips, storing nothing
	// for it, every entry whose record's id is taken (see Taken), or that
	// appears earlier in the batch. For every other entry it inserts the
	// record, without its RevokedAt, with the audit entry Imported (filled
	// as Insert fills its event, Changes being Diff(nil, key)); then, when
	// the record has a RevokedAt, it revokes the key at that instant as
	// Revoke does, with the audit entry Revoked, in the same transaction:
	// no reader ever sees the key unrevoked, and the revocation leaves its
	// tombstone. It checks no owner limit. It sets the ID of each event it
	// writes, so an entry whose Imported.ID is still 0 was skipped. Any
	// failure stores nothing of the batch. Every field of the record is
	// kept (the lifecycle ones too: DisabledAt, LastUsedAt, Environment,
	// AllowedCIDRs, InactivityExpiry, RateLimits, Credits), except a
	// previous secret: a record with a PreviousSecret or a PreviousHash
	// fails the batch with ErrInvalidInput (see Manager.Import).
	Import(ctx context.Context, batch []ImportEntry) error

	// Taken reports, for each of ids, whether a key, a revoked key's
	// tombstone or an audit entry already holds it, in which case Import
	// skips it: an id that was ever imported is never imported again, not
	// even after its key was deleted.
	Taken(ctx context.Context, ids []string) ([]bool, error)
}

// ImportEntry is one record for Importer.Import, with its audit entries.
type ImportEntry struct {
	// Record is the key to store; when its RevokedAt is set, the key is
	// revoked at that instant right after its insertion.
	Record *Record
	// Imported is the audit entry of the insertion (EventImported).
	Imported *Event
	// Revoked is the audit entry of the revocation (EventRevoked); it is
	// set exactly when Record.RevokedAt is.
	Revoked *Event
}
