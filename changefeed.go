package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// ChangeFeed is the log of the changes made to the keys of a store, in the
// order they were committed: every insert, update (other than of the last
// use alone) and delete of a key appends the key's id under a new,
// higher sequence number. The sqlite and postgres stores fill it with
// database triggers, so that every writer (this package, the command line,
// plain SQL) is recorded; memstore keeps it in memory.
//
// A Manager with a Cache polls the feed of its store (see
// Config.ChangeFeed and Config.ChangePollInterval) and evicts the keys it
// finds: a complete invalidation channel by itself, and the bound on how
// long an instance cut off from the store may trust its cache
// (Config.StaleAfter). Implementations must be safe for concurrent use.
type ChangeFeed interface {
	// ChangesAfter returns at most limit changes whose sequence number is
	// above seq, in increasing order of sequence number. Sequence numbers
	// follow commit order: once a change has been returned, no change
	// with a lower number may appear later. limit is always positive.
	ChangesAfter(ctx context.Context, seq int64, limit int) ([]KeyChange, error)

	// LastChange returns the highest sequence number recorded so far, or
	// 0 when there is none. It never decreases, pruning included.
	LastChange(ctx context.Context) (int64, error)

	// PruneChanges removes the changes recorded more than olderThan ago by
	// the store's clock, always keeping the last one. The Manager calls it
	// now and then with an hour.
	PruneChanges(ctx context.Context, olderThan time.Duration) error
}

// KeyChange is one entry of a ChangeFeed.
type KeyChange struct {
	// Seq is the entry's sequence number, positive.
	Seq int64
	// Op says what changed.
	Op ChangeOp
	// KeyID is the id of the key that changed; empty for ChangeTruncate.
	KeyID string
	// At is when the change was recorded, by the store's clock.
	At time.Time
}

// ChangeOp is the kind of a KeyChange.
type ChangeOp string

// The kinds of change.
const (
	// ChangeInsert records a new key. A cache holds nothing of it but,
	// at most, an entry that says the id is unknown.
	ChangeInsert ChangeOp = "insert"
	// ChangeUpdate records a change of a key's fields (a revocation, a
	// roll or a hash upgrade included).
	ChangeUpdate ChangeOp = "update"
	// ChangeDelete records a deleted key.
	ChangeDelete ChangeOp = "delete"
	// ChangeTruncate records that every key may have changed (a TRUNCATE
	// of the table); its KeyID is empty.
	ChangeTruncate ChangeOp = "truncate"
)

// InstanceRegistry records the Managers that cache keys over a store, and
// how far each has applied its ChangeFeed, so that a strict revocation can
// wait for every one of them (see Config.StrictRevocation). Stores that
// implement ChangeFeed implement it too (sqlite, postgres, memstore).
// Implementations must be safe for concurrent use and judge liveness by
// their own clock.
type InstanceRegistry interface {
	// PutInstance records in, by in.ID: its Name and AckedSeq, with
	// HeartbeatAt set to the store's current time and LiveUntil to that
	// time plus ttl. StartedAt is set by the first put of an id and kept
	// by later ones.
	PutInstance(ctx context.Context, in Instance, ttl time.Duration) error

	// Instances returns the live instances (LiveUntil later than the
	// store's current time), ordered by Name then ID.
	Instances(ctx context.Context) ([]Instance, error)

	// RemoveInstance forgets the instance id; an unknown id is not an
	// error.
	RemoveInstance(ctx context.Context, id string) error

	// PruneInstances forgets the instances whose LiveUntil passed more
	// than expiredFor ago.
	PruneInstances(ctx context.Context, expiredFor time.Duration) error
}

// Instance is one Manager recorded in an InstanceRegistry.
type Instance struct {
	// ID identifies the Manager; random, chosen by NewManager.
	ID string
	// Name is Config.InstanceName: what errors and logs call it.
	Name string
	// StartedAt is the time of its first heartbeat.
	StartedAt time.Time
	// HeartbeatAt is the time of its last heartbeat.
	HeartbeatAt time.Time
	// LiveUntil is the time after which it is no longer counted as live
	// unless it beats again.
	LiveUntil time.Time
	// AckedSeq is the highest sequence number of the ChangeFeed that it
	// has applied to its cache: every change up to it is evicted.
	AckedSeq int64
}

// Defaults of the change feed settings of Config.
const (
	// DefaultChangePollInterval is how often a Manager with a Cache reads
	// its ChangeFeed.
	DefaultChangePollInterval = 250 * time.Millisecond
	// DefaultStaleAfter is how long a Manager trusts its cache after the
	// start of its last complete read of the ChangeFeed.
	DefaultStaleAfter = time.Second
	// DefaultStrictTimeout bounds the wait of a strict revocation.
	DefaultStrictTimeout = 3 * time.Second
)

// Retention of the change feed and of the instance registry: entries older
// than changeRetention are pruned every pruneEvery; a Manager whose last
// complete read is older than resyncAfter may have missed pruned entries
// and empties its cache instead of catching up.
const (
	changeRetention = time.Hour
	pruneEvery      = time.Minute
	resyncAfter     = changeRetention / 2
	// changeBatch is the most changes read in one call of ChangesAfter.
	changeBatch = 1000
	// kickGap is the least time between two reads of the feed prompted by
	// an Invalidator's message.
	kickGap = 5 * time.Millisecond
)

// ErrChangeFeed wraps a failure to read the change feed or to record the
// instance's heartbeat, given to Config.OnInvalidationError once per run of
// failures. The cache is bypassed from StaleAfter after the start of the
// last read that completed, until one completes again.
var ErrChangeFeed = errors.New("apikey: change feed not read; the cache is trusted only StaleAfter past the last complete read")

// ErrStrictUnsupported is returned by a strict Revoke or Delete, before
// anything is changed, and by WaitApplied, when the Manager's ChangeFeed is
// not also an InstanceRegistry or there is no ChangeFeed.
var ErrStrictUnsupported = errors.New("apikey: strict revocation needs a store that is a ChangeFeed and an InstanceRegistry")

// ErrNotAcknowledged is matched by the *NotAcknowledgedError of a strict
// Revoke or Delete whose change was applied but not acknowledged in time
// by every live instance.
var ErrNotAcknowledged = errors.New("apikey: change not acknowledged by every instance")

// NotAcknowledgedError reports the live instances that had not applied a
// change when the wait of a strict revocation ended. The change itself is
// applied. Those instances, if their StaleAfter is below the writer's
// StrictTimeout (as NewManager requires of a single configuration), no
// longer trust their caches by then.
type NotAcknowledgedError struct {
	// Seq is the sequence number of the ChangeFeed that was waited for.
	Seq int64
	// Instances names the live instances that had not acknowledged it;
	// empty when the registry could not be read.
	Instances []string
	// Timeout is the StrictTimeout the wait was bounded by.
	Timeout time.Duration
	// Err is why the wait ended: context.DeadlineExceeded at the
	// StrictTimeout, the caller's context error, or a store failure.
	Err error
}

// Error implements error.
func (e *NotAcknowledgedError) Error() string {
	msg := "apikey: change applied, but not acknowledged within " + e.Timeout.String()
	switch len(e.Instances) {
	case 0:
	case 1:
		msg += " by instance " + e.Instances[0]
	default:
		msg += fmt.Sprintf(" by %d instances: %s", len(e.Instances), joinNames(e.Instances))
	}
	if e.Err != nil && !errors.Is(e.Err, context.DeadlineExceeded) {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrNotAcknowledged.
func (e *NotAcknowledgedError) Is(target error) bool { return target == ErrNotAcknowledged }

// Unwrap returns the reason the wait ended.
func (e *NotAcknowledgedError) Unwrap() error { return e.Err }

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// Acknowledgement is the outcome of a wait that succeeded: every live
// instance had applied the change.
type Acknowledgement struct {
	// Seq is the sequence number of the ChangeFeed that was waited for.
	Seq int64
	// Instances names the live instances that had applied it, this
	// Manager included when it is one.
	Instances []string
	// Waited is how long the wait lasted.
	Waited time.Duration
}

type strictKey struct{}

// WithStrict returns a copy of ctx that makes the Revoke and Delete called
// with it strict (or not), whatever Config.StrictRevocation says.
func WithStrict(ctx context.Context, strict bool) context.Context {
	return context.WithValue(ctx, strictKey{}, strict)
}

// Strict reports whether a Revoke or Delete called with ctx waits for the
// other instances: the value of WithStrict, else Config.StrictRevocation.
func (m *Manager) Strict(ctx context.Context) bool {
	if v, ok := ctx.Value(strictKey{}).(bool); ok {
		return v
	}
	return m.strict
}

// StrictSupported reports whether strict calls can wait: whether the
// Manager's ChangeFeed is also an InstanceRegistry.
func (m *Manager) StrictSupported() bool { return m.feed != nil && m.registry != nil }

// WaitApplied waits until every live instance recorded in the
// InstanceRegistry (other than this Manager, whose own changes are evicted
// at once) has applied every change the ChangeFeed holds when it is
// called, for at most Config.StrictTimeout or until ctx is done. It
// returns who applied it, or a *NotAcknowledgedError naming who did not.
// A strict Revoke or Delete calls it after the store has answered.
func (m *Manager) WaitApplied(ctx context.Context) (*Acknowledgement, error) {
	if !m.StrictSupported() {
		return nil, ErrStrictUnsupported
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, m.strictTimeout)
	defer cancel()
	notAcked := func(seq int64, pending []string, err error) error {
		return &NotAcknowledgedError{Seq: seq, Instances: pending, Timeout: m.strictTimeout, Err: err}
	}
	seq, err := m.feed.LastChange(wctx)
	if err != nil {
		return nil, notAcked(0, nil, err)
	}
	self := ""
	if m.poller != nil {
		self = m.poller.id
	}
	var pending []string
	for {
		ins, err := m.registry.Instances(wctx)
		if err == nil {
			pending = pending[:0]
			var acked []string
			for _, in := range ins {
				switch {
				case in.ID == self:
					acked = append(acked, in.Name)
				case in.AckedSeq < seq:
					pending = append(pending, in.Name)
				default:
					acked = append(acked, in.Name)
				}
			}
			if len(pending) == 0 {
				return &Acknowledgement{Seq: seq, Instances: acked, Waited: time.Since(start)}, nil
			}
		}
		t := time.NewTimer(m.ackPoll)
		select {
		case <-wctx.Done():
			t.Stop()
			if err == nil {
				err = wctx.Err()
			}
			return nil, notAcked(seq, pending, err)
		case <-t.C:
		}
	}
}

// strictCheck returns ErrStrictUnsupported when a call with ctx is strict
// and cannot be.
func (m *Manager) strictCheck(ctx context.Context) (strict bool, err error) {
	if !m.Strict(ctx) {
		return false, nil
	}
	if !m.StrictSupported() {
		return true, ErrStrictUnsupported
	}
	return true, nil
}

// feedPoller reads a Manager's ChangeFeed, evicts what changed, records
// the Manager in the InstanceRegistry, and keeps the cache's trust
// deadline: the start of the last complete read plus StaleAfter.
type feedPoller struct {
	m     *Manager
	feed  ChangeFeed
	reg   InstanceRegistry // nil when the feed keeps no registry
	every time.Duration
	stale time.Duration
	ttl   time.Duration
	id    string
	name  string
	onErr func(error)
	kick  chan struct{}

	// Owned by the run goroutine (and by NewManager's first sync, before
	// it starts).
	cursor    int64
	synced    bool
	lastOK    time.Time // start of the last complete read
	lastPrune time.Time
	failing   bool

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newFeedPoller(m *Manager, feed ChangeFeed, cfg Config, every, stale time.Duration) *feedPoller {
	p := &feedPoller{
		m:     m,
		feed:  feed,
		every: every,
		stale: stale,
		ttl:   stale + every,
		id:    rand.Text()[:16],
		name:  cfg.InstanceName,
		onErr: cfg.OnInvalidationError,
		kick:  make(chan struct{}, 1),
	}
	p.reg, _ = feed.(InstanceRegistry)
	if p.name == "" {
		p.name = defaultInstanceName()
	}
	return p
}

// defaultInstanceName is HOST:PID.
func defaultInstanceName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// start makes the first read, bounded by StaleAfter, so that the cache is
// trusted from the start when the store answers, then polls in the
// background until stop.
func (p *feedPoller) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	p.step(ctx)
	go p.run(ctx)
}

func (p *feedPoller) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTimer(p.every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
			if wait := kickGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		last = time.Now()
		p.step(ctx)
		if ctx.Err() != nil {
			return
		}
		t.Reset(p.every)
	}
}

// nudgeFeed has the poller, if any, read the feed now.
func (m *Manager) nudgeFeed() {
	if m.poller != nil {
		m.poller.nudge()
	}
}

// nudge asks for a read now: an Invalidator has just reported a change.
func (p *feedPoller) nudge() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// step makes one read and reports the first failure of a run of them.
func (p *feedPoller) step(ctx context.Context) {
	err := p.read(ctx)
	switch {
	case err == nil:
		p.failing = false
		p.prune(ctx)
	case ctx.Err() != nil:
	case !p.failing:
		p.failing = true
		if p.onErr != nil {
			p.onErr(fmt.Errorf("%w: %w", ErrChangeFeed, err))
		}
	}
}

// read applies the changes recorded since the last read, records the
// heartbeat, and on success moves the trust deadline.
func (p *feedPoller) read(ctx context.Context) error {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, p.stale)
	defer cancel()
	if !p.synced || start.Sub(p.lastOK) > resyncAfter {
		// Nothing read yet, or so long ago that pruned changes may be
		// missing: start from the last change with an empty cache.
		last, err := p.feed.LastChange(rctx)
		if err != nil {
			return fmt.Errorf("last change: %w", err)
		}
		if p.synced {
			p.m.clearCache()
		}
		p.cursor, p.synced = last, true
	} else {
		for {
			changes, err := p.feed.ChangesAfter(rctx, p.cursor, changeBatch)
			if err != nil {
				return fmt.Errorf("changes after %d: %w", p.cursor, err)
			}
			for _, c := range changes {
				switch {
				case c.Op == ChangeTruncate || c.KeyID == "":
					p.m.clearCache()
				case c.Op == ChangeInsert:
					// Nothing cached but perhaps "unknown id"; evicting
					// more would only cost the fills in flight.
					p.m.forgetUnknown(c.KeyID)
				default:
					p.m.Invalidate(c.KeyID)
				}
				p.cursor = max(p.cursor, c.Seq)
			}
			if len(changes) < changeBatch {
				break
			}
		}
	}
	if p.reg != nil {
		in := Instance{ID: p.id, Name: p.name, AckedSeq: p.cursor}
		if err := p.reg.PutInstance(rctx, in, p.ttl); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
	p.lastOK = start
	p.m.cache.trustUntil(start.Add(p.stale))
	return nil
}

// prune removes old changes and long-gone instances, every pruneEvery.
func (p *feedPoller) prune(ctx context.Context) {
	if !p.lastPrune.IsZero() && time.Since(p.lastPrune) < pruneEvery {
		return
	}
	p.lastPrune = time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.stale)
	defer cancel()
	err := p.feed.PruneChanges(pctx, changeRetention)
	if p.reg != nil {
		err = errors.Join(err, p.reg.PruneInstances(pctx, changeRetention))
	}
	if err != nil && ctx.Err() == nil && p.onErr != nil {
		p.onErr(fmt.Errorf("%w: prune: %w", ErrChangeFeed, err))
	}
}

// stop ends the poller, waiting for it at most until ctx is done, then
// removes the instance from the registry. The cache is left untrusted.
func (p *feedPoller) stop(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.cancel()
		p.m.cache.trustUntil(time.Time{})
		select {
		case <-p.done:
			p.m.cache.trustUntil(time.Time{}) // whatever its last read did
		case <-ctx.Done():
			err = fmt.Errorf("apikey: change feed poller still running: %w", ctx.Err())
			return
		}
		if p.reg != nil {
			if rerr := p.reg.RemoveInstance(ctx, p.id); rerr != nil {
				err = fmt.Errorf("apikey: remove instance %s: %w", p.name, rerr)
			}
		}
	})
	return err
}
