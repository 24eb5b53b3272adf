package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cache holds verified records in memory so that Verify can skip the store.
// Implementations (see package ottercache) must be safe for concurrent use
// and bounded; they decide how long entries live. A nil *CacheEntry is a
// negative entry: the id is known not to exist, and should be kept only
// briefly.
type Cache interface {
	Get(id string) (e *CacheEntry, ok bool)
	Set(id string, e *CacheEntry)
	Delete(id string)
	Clear()
}

// CacheEntry is what the Manager caches for one key: the record and its
// decoded digest, never the plaintext. Its fields are private; caches only
// store and return it.
type CacheEntry struct {
	// The fields that every verification of the key reads come first,
	// the key after them, so that a cache hit touches few cache lines of
	// the entry.

	// tokenPrefix is key.TokenPrefix(), which the token's prefix must
	// equal.
	tokenPrefix string
	pepper      *pepperState
	usage       *usageCell // nil when usage tracking is off
	// prev holds the decoded digest of the key's previous secret (its
	// digest fields only), and previous its window, when the key has one.
	// The entry's key carries no PreviousSecret: what Verify returns
	// describes the key, not the window of another secret, whose Active
	// would go stale in the cache.
	prev *CacheEntry
	// expiresAt is *key.ExpiresAt when expires is set; revoked and
	// disabled report key.RevokedAt and key.DisabledAt: the key's state
	// without following its pointers.
	expiresAt time.Time
	// inactiveAt, when inactive is set, is the instant from which the
	// record says the key is inactive (InactiveAt plus the Manager's
	// leeway): Verify then reads the store again before it refuses.
	inactiveAt time.Time
	plain      bool // digest is SHA-256 (else HMAC-SHA256 with pepper, or SHA-512)
	sha512     bool // digest is SHA-512 (an imported DRF API Key key)
	ok         bool // digest was decodable under the current configuration
	expires    bool
	revoked    bool
	disabled   bool
	inactive   bool
	// awaitStart is set when the key's previous secret waits for the
	// first use of the new one to start its grace window; starting is
	// set by the one verification that records the start.
	awaitStart bool
	starting   atomic.Bool
	digest     [sha512.Size]byte // SHA-256 and HMAC-SHA256 use the first 32 bytes

	hash string
	// memo, for a SHA-512 entry, is the SHA-256 of the one token that
	// matched it, set on the first match: later checks of the cached entry
	// cost a SHA-256, as those of a native key do. It lives and dies with
	// the entry, in memory only.
	memo atomic.Pointer[[sha256.Size]byte]
	// owner, set on the entries cached under OwnerSubject ids, is an
	// owner's record; such entries hold no key.
	owner    *ownerEntry
	previous *PreviousSecret
	// allow is the compiled allowlist of key, which key.allow points to.
	allow allowIndex
	// buckets are the limiter buckets of key.RateLimits, and ownerID the
	// cache id of the key's owner (OwnerSubject), made once per entry so
	// that Check does not build them on every request. They come just
	// before the key, which Check copies, and the bucket of a key's one
	// limit just after it (see newEntry).
	buckets []bucketRef
	ownerID string
	key     Key
}

// Negative reports whether the entry records an unknown id.
func (e *CacheEntry) Negative() bool { return e == nil }

func (m *Manager) newEntry(rec *Record) *CacheEntry {
	var e *CacheEntry
	if len(rec.RateLimits) == 1 {
		// The common case of one limit: the entry and its bucket in one
		// allocation, read together by every Check.
		w := &struct {
			CacheEntry
			b [1]bucketRef
		}{CacheEntry: CacheEntry{key: rec.Key, hash: rec.Hash}}
		e = &w.CacheEntry
		e.buckets = w.b[:]
		fillBucketRefs(e.buckets, "key:"+rec.ID+":", rec.RateLimits)
	} else {
		e = &CacheEntry{key: rec.Key, hash: rec.Hash, buckets: keyBuckets(&rec.Key)}
	}
	e.tokenPrefix = rec.Key.TokenPrefix()
	if at, ok := rec.Key.InactiveAt(m.inactivity); ok {
		e.inactive, e.inactiveAt = true, at.Add(m.leeway)
	}
	if rec.Owner != "" {
		e.ownerID = OwnerSubject(rec.Owner)
	}
	// The state of every key Verify returns: VerifyShared hands out the
	// entry's own key.
	e.key.State = StateActive
	if m.usage != nil {
		e.usage = m.usage.cell(rec.ID)
	}
	e.key.PreviousSecret = nil
	if t := e.key.ExpiresAt; t != nil {
		e.expires, e.expiresAt = true, *t
	}
	e.revoked, e.disabled = e.key.RevokedAt != nil, e.key.DisabledAt != nil
	if len(e.key.AllowedCIDRs) > 0 {
		e.allow.compile(e.key.AllowedCIDRs)
		e.key.allow = &e.allow
	}
	if p := rec.PreviousSecret; p != nil && rec.PreviousHash != "" {
		e.previous = p
		e.prev = &CacheEntry{hash: rec.PreviousHash}
		m.decodeDigest(e.prev, rec.PreviousHash)
		e.awaitStart = p.GraceStartedAt == nil && p.GraceStarts == GraceFirstUse
	}
	m.decodeDigest(e, rec.Hash)
	return e
}

// decodeDigest sets the digest fields of e from the stored digest hash.
func (m *Manager) decodeDigest(e *CacheEntry, hash string) {
	var hexDigest string
	switch {
	case strings.HasPrefix(hash, tagSHA512):
		e.sha512 = true
		e.ok = decodeHex(e.digest[:], hash[len(tagSHA512):])
		return
	case strings.HasPrefix(hash, tagSHA256):
		e.plain, hexDigest = true, hash[len(tagSHA256):]
	case strings.HasPrefix(hash, tagHMACSHA256):
		rest := hash[len(tagHMACSHA256):]
		for _, ps := range m.hasher.peppers {
			if strings.HasPrefix(rest, ps.prefix[len(tagHMACSHA256):]) {
				e.pepper, hexDigest = ps, hash[len(ps.prefix):]
			}
		}
	}
	e.ok = decodeHex(e.digest[:sha256.Size], hexDigest)
}

// cacheState is the Manager's view of its cache: whether it may be trusted,
// and the lookups in flight, which an invalidation of their id marks stale
// so that they do not fill the cache with a row read before the change.
type cacheState struct {
	c       Cache
	trusted atomic.Bool
	flight  flight

	// With a change feed, trust is also bounded in time: the cache is
	// trusted only before until, in nanoseconds since epoch on the
	// monotonic clock, which each complete read of the feed moves to its
	// start plus StaleAfter. The check is made on every lookup, so that a
	// poller that is stuck (not only one that fails) ends the trust on
	// time, whatever the scheduler does.
	deadline bool
	epoch    time.Time
	until    atomic.Int64
}

// isTrusted reports whether the cache may answer now.
func (cs *cacheState) isTrusted() bool { return cs.isTrustedAt(time.Time{}) }

// isTrustedAt is isTrusted with the current time read by the caller, a
// reading of time.Now with its monotonic clock; the zero time means read
// it here.
func (cs *cacheState) isTrustedAt(now time.Time) bool {
	if !cs.trusted.Load() {
		return false
	}
	if !cs.deadline {
		return true
	}
	if now.IsZero() {
		return int64(time.Since(cs.epoch)) < cs.until.Load()
	}
	return int64(now.Sub(cs.epoch)) < cs.until.Load()
}

// trustUntil sets the end of the trust given by the change feed; a zero t
// ends it now.
func (cs *cacheState) trustUntil(t time.Time) {
	if t.IsZero() {
		cs.until.Store(0)
		return
	}
	cs.until.Store(int64(t.Sub(cs.epoch)))
}

// Invalidate evicts a key from the verification cache. The Manager calls
// it itself on its own changes, and for the changes its Invalidator
// (Config.Invalidator) reports; call it after changing a key behind the
// Manager's back in a process without an Invalidator.
func (m *Manager) Invalidate(id string) {
	m.invalidateLeases(id)
	if cs := m.cache; cs != nil {
		// First mark the lookup in flight, if any, stale: it may have read
		// the row before the change, so it must not fill the cache, and
		// callers arriving from now on must not join it. Then delete: an
		// entry that lookup set before seeing the mark goes too. Lookups
		// of other ids are left alone.
		cs.flight.forget(id)
		cs.c.Delete(id)
		m.metrics.invalidated()
	}
}

// forgetUnknown evicts the entry of id if it says that the id is unknown:
// the key has just been created.
func (m *Manager) forgetUnknown(id string) {
	if cs := m.cache; cs != nil {
		if e, ok := cs.c.Get(id); ok && e == nil {
			m.Invalidate(id)
		}
	}
}

// suspendCache makes Verify bypass the cache until resumeCache is called:
// the invalidation listener calls it whenever invalidations may be missed
// (not yet subscribed, connection lost, heartbeat lost), so that the
// Manager fails safe, not open.
func (m *Manager) suspendCache() {
	if cs := m.cache; cs != nil {
		cs.trusted.Store(false) // lookups in flight check it before they fill
	}
}

// resumeCache empties the cache and trusts it again. The invalidation
// listener calls it once subscribed again, so that nothing missed meanwhile
// can survive.
func (m *Manager) resumeCache() {
	if m.leases != nil {
		m.leases.voidAll()
	}
	if cs := m.cache; cs != nil {
		cs.flight.forgetAll()
		cs.c.Clear()
		cs.trusted.Store(true)
	}
}

// clearCache empties the cache without changing whether it is trusted.
func (m *Manager) clearCache() {
	if m.leases != nil {
		m.leases.voidAll()
	}
	if cs := m.cache; cs != nil {
		cs.flight.forgetAll()
		cs.c.Clear()
		m.metrics.invalidated()
	}
}

// lookup returns the cache entry for id, from the cache when it is trusted,
// else from the store; concurrent misses of one id share one store call.
// A nil entry with a nil error means the id does not exist. now is the
// caller's reading of time.Now (see isTrustedAt); hit reports an answer
// from the cache.
func (m *Manager) lookup(ctx context.Context, id string, now time.Time) (_ *CacheEntry, hit bool, _ error) {
	cs := m.cache
	if cs == nil {
		e, err := m.fetch(ctx, id)
		return e, false, err
	}
	trusted := cs.isTrustedAt(now)
	if trusted {
		if e, ok := cs.c.Get(id); ok {
			m.metrics.cacheHit()
			return e, true, nil
		}
	}
	m.metrics.cacheMiss()
	e, err := cs.flight.do(ctx, id, func(call *flightCall) (*CacheEntry, error) {
		// The lookup serves every caller waiting on this id, so the
		// leader's cancellation must not fail the others: it runs on its
		// own clock, bounded.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		e, err := m.fetch(fctx, id)
		// Fill only if the id was not invalidated while we read, nor the
		// cache suspended: otherwise the row we read may already be stale.
		if err == nil && trusted && cs.isTrusted() && !call.stale.Load() {
			cs.c.Set(id, e)
			// An invalidation may have landed between the check and the
			// Set: then the entry may be stale, so take it out again.
			if call.stale.Load() || !cs.isTrusted() {
				cs.c.Delete(id)
			}
		}
		return e, err
	})
	return e, false, err
}

func (m *Manager) fetch(ctx context.Context, id string) (*CacheEntry, error) {
	start := m.metrics.storeStart()
	rec, err := m.store.Lookup(ctx, id)
	m.metrics.storeDone(start, err)
	switch {
	case err == nil:
		return m.newEntry(rec), nil
	case isNotFound(err):
		return nil, nil
	default:
		return nil, err
	}
}

// flightTimeout bounds a lookup shared by concurrent verifications.
const flightTimeout = 10 * time.Second

// flight collapses concurrent calls for one id into one.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done  chan struct{}
	e     *CacheEntry
	err   error
	stale atomic.Bool // set by forget: the id was invalidated meanwhile
}

func (f *flight) do(ctx context.Context, id string, fn func(*flightCall) (*CacheEntry, error)) (*CacheEntry, error) {
	f.mu.Lock()
	if c, ok := f.calls[id]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.e, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	c := &flightCall{done: make(chan struct{}), err: errFlightPanicked}
	f.calls[id] = c
	f.mu.Unlock()
	defer func() { // also when fn panics, so that waiters are released
		f.mu.Lock()
		if f.calls[id] == c {
			delete(f.calls, id)
		}
		f.mu.Unlock()
		close(c.done)
	}()
	c.e, c.err = fn(c)
	return c.e, c.err
}

// errFlightPanicked is what waiters get when the shared lookup panicked.
var errFlightPanicked = errors.New("apikey: lookup panicked")

// forget marks the lookup in flight for id, if any, stale and detaches it:
// its waiters still get its answer, but it fills no cache, and new callers
// start a fresh one.
func (f *flight) forget(id string) {
	f.mu.Lock()
	if c, ok := f.calls[id]; ok {
		c.stale.Store(true)
		delete(f.calls, id)
	}
	f.mu.Unlock()
}

// forgetAll marks every lookup in flight stale and detaches it.
func (f *flight) forgetAll() {
	f.mu.Lock()
	for _, c := range f.calls {
		c.stale.Store(true)
	}
	clear(f.calls)
	f.mu.Unlock()
}
