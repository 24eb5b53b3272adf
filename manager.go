package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

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

	// LegacyHashers check the legacy digests that keys imported from DRF
	// API Key may carry (see LegacyHasher and Import), besides the built-in
	// pbkdf2_sha256 and pbkdf2_sha1 and DRF API Key's own sha512$$, which
	// need no configuration. NewManager refuses two hashers of one
	// algorithm. Nil means the built-in ones only: a key whose digest
	// names another algorithm never verifies.
	LegacyHashers []LegacyHasher

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
	// changes itself; when several processes share a store, set
	// Invalidator too, so that changes made elsewhere evict them as well.
	// Nil means no cache: every Verify reads the store.
	Cache Cache

	// Invalidator, when set, carries invalidations between the processes
	// that share the store: a *postgres.Store (LISTEN/NOTIFY) or a
	// *redisbus.Bus (Redis pub/sub). With a Cache, the Manager listens
	// from NewManager to Close, and fails safe: it does not trust its cache
	// before the Invalidator reports being subscribed, nor from the moment
	// the subscription is lost or a heartbeat does not come back, until it
	// is subscribed again (which empties the cache); meanwhile Verify reads
	// the store. Lost subscriptions are retried after 50ms, doubling up to
	// 2s, and a Listen that has not subscribed within 10s is abandoned for
	// a new one. When the Invalidator is an InvalidationPublisher, the Manager
	// publishes the keys it changes, with or without a Cache. Nil means
	// none: the cache only knows this Manager's own changes.
	Invalidator Invalidator

	// InvalidationHeartbeat is how often a subscribed Manager checks, when
	// its Invalidator is a HeartbeatSender, that the subscription still
	// delivers, by sending a heartbeat through it. Zero means
	// DefaultInvalidationHeartbeat (1s); a negative value turns heartbeats
	// off, which leaves a silent connection unnoticed.
	InvalidationHeartbeat time.Duration

	// InvalidationTimeout bounds a heartbeat's round trip and one publish
	// of an invalidation. Zero means DefaultInvalidationTimeout (2s).
	InvalidationTimeout time.Duration

	// OnInvalidationError, when set, is told of every invalidation failure:
	// a subscription lost or that could not be made (ErrUnsubscribed,
	// which wraps ErrHeartbeatLost for a lost heartbeat), a publish
	// that failed (ErrNotPublished), and the first of a run of failed
	// reads of the ChangeFeed (ErrChangeFeed). It is called on the goroutine that
	// saw the failure, the listener's or a mutating call's, and must not
	// block. Nil means the failures are not reported; the cache fails safe
	// all the same.
	OnInvalidationError func(error)

	// ChangeFeed is the log of key changes that a Manager with a Cache
	// polls, evicting the keys it finds. Nil means the store itself when
	// it implements ChangeFeed, as the sqlite, postgres and memstore
	// stores do; set it when the store is wrapped (for tracing, say).
	// Where the ChangeFeed is also an InstanceRegistry, the Manager
	// records itself there with the highest change it has applied, which
	// strict revocations wait for.
	//
	// The feed is a complete invalidation channel by itself: over SQLite
	// it carries the changes of every process (the command line
	// included) within ChangePollInterval, and over PostgreSQL it backs
	// up LISTEN/NOTIFY (each notification also prompts a read, so that the
	// acknowledgement follows within milliseconds). NewManager makes the
	// first read, waiting at most StaleAfter; until one completes, Verify
	// reads the store.
	ChangeFeed ChangeFeed

	// ChangePollInterval is how often a Manager with a Cache reads its
	// ChangeFeed and records its heartbeat. Zero means
	// DefaultChangePollInterval (250ms), or StaleAfter/4 when that is
	// shorter; a negative value turns polling off (and with it the bound
	// of StaleAfter and the registration that strict revocations wait
	// for). It must be below StaleAfter.
	ChangePollInterval time.Duration

	// StaleAfter bounds how long the cache is trusted after the start of
	// the last complete read of the ChangeFeed (changes applied and
	// heartbeat recorded): a Manager whose reads fail or hang, cut off
	// from its store, stops answering from its cache that long after the
	// last read began, and trusts it again once a read completes. Zero
	// means DefaultStaleAfter (1s). It must be below StrictTimeout, and
	// the StaleAfter of every instance below the StrictTimeout of every
	// Manager that revokes strictly: that is what makes an instance that
	// did not acknowledge a strict revocation in time stop trusting its
	// cache by then.
	StaleAfter time.Duration

	// StrictRevocation makes every Revoke and Delete strict unless its
	// context says otherwise (WithStrict): after the store has answered,
	// the call waits until every live instance of the InstanceRegistry
	// has applied the change (see WaitApplied), so that when it returns
	// no instance grants the key any more. If the wait ends first, the
	// change is applied all the same and the call returns a
	// *NotAcknowledgedError (ErrNotAcknowledged) naming the instances
	// that had not applied it. An instance is live while its last
	// heartbeat is less than its StaleAfter plus its ChangePollInterval
	// old, by the store's clock. False means the calls return once the
	// store has answered.
	StrictRevocation bool

	// StrictTimeout bounds the wait of a strict Revoke or Delete. Zero
	// means DefaultStrictTimeout (3s).
	StrictTimeout time.Duration

	// InstanceName is what the InstanceRegistry, and the errors of strict
	// revocations, call this Manager. Empty means HOST:PID.
	InstanceName string

	// Metrics, when set, receives verification, cache and store
	// measurements, and, when it is a LimitMetrics too, the rate-limit
	// decisions and the spends of credits of Check and Enforce. Nil means
	// none.
	Metrics Metrics

	// OnEvent, when set, receives every event (mutations, owner limit
	// reached, rejected verifications) on a separate goroutine, in order.
	// A slow subscriber never blocks the Manager: past EventBuffer pending
	// events, new ones are dropped. A panic in OnEvent is recovered.
	OnEvent func(Event)

	// EventBuffer is the number of events that may wait for OnEvent. Zero
	// means 1024.
	EventBuffer int

	// Limiter counts the rate limits of keys and owners (see RateLimit and
	// Check). Nil means a MemoryLimiter on the Manager's clock: exact in
	// one process, but each instance of a service then counts its own
	// requests only; share a Limiter (the service's Redis limiter) between
	// instances that must share limits.
	Limiter Limiter

	// LimitStore keeps owners and balances of credits. Nil means the store
	// itself when it implements LimitStore, as the sqlite, postgres and
	// memstore stores do; set it when the store is wrapped (for tracing,
	// say), or owners and credits are unavailable.
	LimitStore LimitStore

	// CreditLease, when positive, lets the Manager lease credits: a
	// spend (CheckOptions.Credits) without an idempotency key also takes
	// from the store, in its transaction, up to CreditLease credits more,
	// never more than a LeaseShare of what the balances hold, and the
	// next spends of the key on this Manager take from that lease in
	// memory, without a store call. The store decides every lease as it
	// decides a spend, so that no balance is ever spent beyond what it
	// holds, across instances too. A lease is spent from until
	// CreditLeaseTTL has passed, until the next refill of its balances,
	// or until the key or its owner changes (an invalidation), whichever
	// comes first; what is left of it is then given back, at the key's
	// next spend or within a quarter of the TTL, to the balance it came
	// from only: a balance set, cleared or refilled meanwhile keeps its
	// new value (Balance.Epoch). Close gives back every lease.
	//
	// Meanwhile the balance the store shows lacks what is leased, and an
	// instance may refuse a spend that credits leased to another would
	// have covered; a process that dies without Close forfeits what it
	// held (never more than CreditLease, nor a LeaseShare of a balance,
	// per key). Idempotent spends, and refunds, always go to the store.
	// Zero means no leases: every spend is a store transaction.
	CreditLease int64

	// CreditLeaseTTL is how long a lease of credits is spent from. Zero
	// means DefaultCreditLeaseTTL (1s).
	CreditLeaseTTL time.Duration

	// UsageFlushInterval is how often usage counters and last-used times
	// are written to the store; LastUsedAt is accurate to it. Zero means
	// DefaultUsageFlushInterval (10s); a negative value turns usage
	// tracking off. Close flushes what is pending.
	UsageFlushInterval time.Duration

	// Environment, when set, is the only environment whose keys this
	// Manager accepts: Verify and Check refuse a key of the other one,
	// once its secret matched, with ErrWrongEnvironment. Empty means both
	// (see Environment).
	Environment Environment

	// InactivityExpiry is the service's default inactivity expiry: a key
	// whose own InactivityExpiry is zero expires when it has not been
	// used for that long (see Key.InactiveAt). It must lie within
	// MinInactivityExpiry..MaxInactivityExpiry and needs usage tracking.
	// Zero means none: only keys with a policy of their own expire for
	// want of use.
	//
	// A key in use is never refused for a last use that has not reached
	// the store yet: Verify first judges from the record it holds (which
	// may be old, so it can only err towards "inactive"); only then does
	// it read the record again from the store, bypassing the cache, and
	// take the later of its LastUsedAt and this process's own last use not
	// yet written; and it refuses only when that is past InactiveAt by
	// more than twice UsageFlushInterval, the most another instance's
	// last use can lag in the store. Only a key about to be refused pays
	// the store read.
	InactivityExpiry time.Duration
}

// Manager applies every rule of the key lifecycle on top of a Store:
// generation, hashing, verification, expiry, revocation, limits and
// validation. It is safe for concurrent use.
type Manager struct {
	store         Store
	prefix        string
	secretLen     int
	maxKeys       int
	usable        func(context.Context, *Key) error
	now           func() time.Time
	systemClock   bool // now is time.Now: Verify may reuse its one reading
	rand          io.Reader
	hasher        *hasher
	cache         *cacheState
	metrics       metricsHook
	events        *dispatcher
	usage         *usageTracker
	limiter       Limiter
	memLimiter    *MemoryLimiter   // limiter, when it is one: called directly
	ownLimiter    bool             // limiter is the default one, on the Manager's clock
	limitStore    LimitStore       // nil unless the store is one
	inval         *invalidation    // nil without an Invalidator
	feed          ChangeFeed       // nil without one
	registry      InstanceRegistry // nil unless feed is one
	poller        *feedPoller      // nil unless the cache follows feed
	strict        bool
	strictTimeout time.Duration
	ackPoll       time.Duration // how often WaitApplied reads the registry
	env           Environment   // Config.Environment
	inactivity    time.Duration // Config.InactivityExpiry
	leeway        time.Duration // how late a last use may reach the store
	leases        *leaseTable   // nil without Config.CreditLease
	leasesDone    chan struct{} // closed when leaseLoop returns
	stop          chan struct{}
	stopped       chan struct{}
	closeOnce     sync.Once
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
	if cfg.Environment != "" && !cfg.Environment.Valid() {
		return nil, fmt.Errorf("apikey: Environment must be live, test or empty (both), got %q", cfg.Environment)
	}
	if err := checkDefaultInactivity(cfg.InactivityExpiry, cfg.UsageFlushInterval < 0); err != nil {
		return nil, err
	}
	m.env, m.inactivity = cfg.Environment, cfg.InactivityExpiry
	m.leeway = max(0, 2*cmpOr(cfg.UsageFlushInterval, DefaultUsageFlushInterval))
	if m.now == nil {
		m.now = time.Now
		m.systemClock = true
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	h, err := newHasher(cfg.Peppers, cfg.LegacyHashers)
	if err != nil {
		return nil, err
	}
	m.hasher = h
	m.metrics = newMetricsHook(cfg.Metrics)
	m.limiter = cfg.Limiter
	if m.limiter == nil {
		m.limiter, m.ownLimiter = NewMemoryLimiter(m.now), true
	}
	m.memLimiter, _ = m.limiter.(*MemoryLimiter) // called directly
	m.limitStore = cfg.LimitStore
	if m.limitStore == nil {
		m.limitStore, _ = store.(LimitStore)
	}
	switch {
	case cfg.CreditLease < 0:
		return nil, fmt.Errorf("apikey: CreditLease must not be negative, got %d", cfg.CreditLease)
	case cfg.CreditLeaseTTL < 0:
		return nil, fmt.Errorf("apikey: CreditLeaseTTL must not be negative, got %v", cfg.CreditLeaseTTL)
	case cfg.CreditLease > 0 && m.limitStore != nil:
		m.leases = newLeaseTable(cfg.CreditLease, cmpOr(cfg.CreditLeaseTTL, DefaultCreditLeaseTTL))
		m.leasesDone = make(chan struct{}) // leaseLoop starts with the other background work
	}
	if cfg.Cache != nil {
		m.cache = &cacheState{c: cfg.Cache}
		m.cache.trusted.Store(true)
	}
	if cfg.Invalidator != nil {
		if m.inval, err = newInvalidation(m, cfg); err != nil {
			return nil, err
		}
	}
	if err := m.setFeed(store, cfg); err != nil {
		return nil, err
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
	if m.leases != nil {
		go m.leaseLoop()
	}
	if m.inval != nil && m.cache != nil {
		m.inval.start() // the cache is not trusted before the first request
	}
	if m.poller != nil {
		m.poller.start() // the first read, then in the background
	}
	return m, nil
}

// setFeed checks the change feed settings and prepares the poller.
func (m *Manager) setFeed(store Store, cfg Config) error {
	stale := cmpOr(cfg.StaleAfter, DefaultStaleAfter)
	every := cmpOr(cfg.ChangePollInterval, min(DefaultChangePollInterval, stale/4))
	m.strict = cfg.StrictRevocation
	m.strictTimeout = cmpOr(cfg.StrictTimeout, DefaultStrictTimeout)
	switch {
	case stale < 0:
		return fmt.Errorf("apikey: StaleAfter must not be negative, got %v", stale)
	case m.strictTimeout < 0:
		return fmt.Errorf("apikey: StrictTimeout must not be negative, got %v", m.strictTimeout)
	case stale >= m.strictTimeout:
		return fmt.Errorf("apikey: StaleAfter (%v) must be below StrictTimeout (%v): an instance that misses a strict revocation must stop trusting its cache before the revoking call gives up on it", stale, m.strictTimeout)
	case every > 0 && every >= stale:
		return fmt.Errorf("apikey: ChangePollInterval (%v) must be below StaleAfter (%v), or the cache would never be trusted", every, stale)
	}
	m.feed = cfg.ChangeFeed
	if m.feed == nil {
		m.feed, _ = store.(ChangeFeed)
	}
	if m.feed == nil {
		return nil
	}
	m.registry, _ = m.feed.(InstanceRegistry)
	m.ackPoll = 25 * time.Millisecond
	if every > 0 {
		m.ackPoll = min(max(every/10, 2*time.Millisecond), m.ackPoll)
	}
	if m.cache != nil && every > 0 {
		m.cache.deadline, m.cache.epoch = true, time.Now()
		m.poller = newFeedPoller(m, m.feed, cfg, every, stale)
	}
	return nil
}

func (m *Manager) flushLoop(every time.Duration) {
	defer close(m.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time // the spends' records are pruned from the first tick on
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = m.FlushUsage(ctx) // kept for the next flush on failure
			if now.Sub(pruned) >= SpendPruneInterval {
				pruned = now
				_, _ = m.PruneSpends(ctx) // retried at the next interval
			}
			cancel()
		}
	}
}

// Close stops the Manager's background work (its invalidation listener
// and change feed poller included; the Manager leaves the InstanceRegistry),
// writes pending usage and delivers pending events, giving up
// when ctx is done. The Manager must not
// be used afterwards; the store is not closed.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		if m.poller != nil {
			err = m.poller.stop(ctx)
		}
		if m.inval != nil {
			err = errors.Join(err, m.inval.stop(ctx))
		}
		close(m.stop)
		select { // a flush in progress may run on; do not wait past ctx
		case <-m.stopped:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("apikey: usage flush still running: %w", ctx.Err()))
			return
		}
		err = errors.Join(err, m.FlushUsage(ctx))
		if m.leases != nil {
			<-m.leasesDone // returns once a sweep in progress is done
			err = errors.Join(err, m.sweepLeases(ctx, true))
		}
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

// Now returns the current time by the Manager's clock (Config.Now), in UTC
// at the microsecond precision that stores keep. Code that turns a relative
// expiry into an instant (ParseExpiry) reads this clock, so that "30d from
// now" and the expiry checks of Create, Update and Verify agree.
func (m *Manager) Now() time.Time { return m.clock() }

// storeErr passes the answers a store may give through (bad input among
// them) and wraps every other failure in ErrUnavailable.
func (m *Manager) storeErr(op string, err error) error {
	if isStoreError(err) {
		return unavailable(op, err)
	}
	return err
}

// stateOf is k's state at now as the Manager sees it: Key.StateWith with
// its default inactivity expiry. It shows an inactive key as expired from
// InactiveAt on, while Verify may still grant it for the leeway of
// Config.InactivityExpiry.
func (m *Manager) stateOf(k *Key, now time.Time) State { return k.StateWith(now, m.inactivity) }

// InactivityExpiry returns the default inactivity expiry (Config.InactivityExpiry);
// zero means none.
func (m *Manager) InactivityExpiry() time.Duration { return m.inactivity }

// Environment returns the only environment the Manager accepts
// (Config.Environment); empty means both.
func (m *Manager) Environment() Environment { return m.env }

// MaxKeysPerOwner returns the configured per-owner limit; zero means
// unlimited.
func (m *Manager) MaxKeysPerOwner() int { return m.maxKeys }
