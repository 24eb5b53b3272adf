package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Invalidator carries cache invalidations between the processes that share
// a store. Give one to the Manager (Config.Invalidator) and the Manager runs
// it: it keeps Listen running, trusts its cache only while Listen is
// subscribed and its heartbeats come back, publishes its own changes when
// the Invalidator is an InvalidationPublisher, and stops it on Close.
// Implementations only connect, subscribe, deliver and report: (*postgres.Store)
// over LISTEN/NOTIFY and redisbus.Bus over Redis pub/sub are two.
type Invalidator interface {
	// Listen subscribes to invalidations and delivers them to h until ctx
	// is done, then returns ctx.Err(), or until the subscription is lost,
	// then returns the error that ended it, never nil. It calls
	// h.Subscribed once subscribed, that is, once every change made from
	// then on will reach h; it must not call h after it has returned.
	// Listen takes its own connection and gives it up before returning;
	// the Manager calls it again, after a back-off, when it returns.
	Listen(ctx context.Context, h InvalidationHandler) error
}

// InvalidationHandler is what an Invalidator's Listen reports to. The
// Manager gives each call of Listen a handler of its own. Its methods are
// safe for concurrent use and return at once.
type InvalidationHandler interface {
	// Subscribed reports that the subscription is in place: the Manager
	// empties its cache, so that nothing changed before survives, and
	// trusts it again. Calling it again, after a reconnection that may
	// have missed messages, empties the cache again.
	Subscribed()

	// Invalidate reports that the key id changed or was deleted.
	Invalidate(id string)

	// InvalidateAll reports that any key may have changed, for example
	// after a TRUNCATE or when the Invalidator finds that it missed
	// messages (a gap in a sequence): the Manager empties its cache and
	// keeps trusting it.
	InvalidateAll()

	// Heartbeat reports a token sent with HeartbeatSender.SendHeartbeat
	// that came back through the subscription. Tokens the handler did not
	// send (those of other processes on the same channel) are ignored.
	Heartbeat(token string)
}

// InvalidationPublisher is implemented by an Invalidator over a bus that
// carries only what writers publish (Redis pub/sub), as opposed to a
// database that notifies from the transaction of every change. The Manager
// publishes the id of every key it changes (Update, Revoke, Delete, Roll,
// and the hash upgrade of a verification) once the store has answered and
// before the method returns, bounded by Config.InvalidationTimeout; a
// failure goes to Config.OnInvalidationError wrapped in ErrNotPublished.
// A Manager without a cache (a command-line tool) still publishes.
type InvalidationPublisher interface {
	Publish(ctx context.Context, id string) error
}

// HeartbeatSender is implemented by an Invalidator that can send a token
// through its own channel, so that Listen delivers it to
// InvalidationHandler.Heartbeat (NOTIFY or PUBLISH to itself). While
// subscribed, the Manager sends one every Config.InvalidationHeartbeat and
// expects it back within Config.InvalidationTimeout; otherwise it stops
// trusting its cache and starts a new subscription, since a connection
// that is open but silent loses invalidations without any error. Tokens are
// at most 64 letters, digits and '-'; an Invalidator must carry them
// unchanged and keep them apart from key ids.
type HeartbeatSender interface {
	SendHeartbeat(ctx context.Context, token string) error
}

// Defaults of the invalidation settings of Config.
const (
	// DefaultInvalidationHeartbeat is how often a subscribed Manager
	// sends a heartbeat through its Invalidator.
	DefaultInvalidationHeartbeat = time.Second
	// DefaultInvalidationTimeout bounds a heartbeat's round trip and a
	// publish. A subscription gone silent is noticed within the sum of
	// the two defaults, 3 seconds.
	DefaultInvalidationTimeout = 2 * time.Second
)

// Errors given to Config.OnInvalidationError.
var (
	// ErrUnsubscribed wraps the error that ended (or prevented) the
	// subscription of an Invalidator: until the Manager is subscribed
	// again, Verify reads the store.
	ErrUnsubscribed = errors.New("apikey: not subscribed to invalidations; verifying against the store")
	// ErrHeartbeatLost is wrapped in ErrUnsubscribed when a heartbeat did
	// not come back within the timeout (or could not be sent).
	ErrHeartbeatLost = errors.New("apikey: invalidation heartbeat lost")
	// ErrNotPublished wraps the failure to publish the invalidation of a
	// key: other processes keep the key cached until their cache's TTL
	// ends it.
	ErrNotPublished = errors.New("apikey: invalidation not published")
)

// Back-off of the invalidation listener after its subscription ended: the
// first retry after listenMinBackoff, doubling up to listenMaxBackoff, and
// back to the first after a subscription that succeeded.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 2 * time.Second
)

// subscribeTimeout bounds how long a call of Listen may take to subscribe
// before the Manager gives up on it and starts another: a connection made
// during a network partition may otherwise hang for good.
var subscribeTimeout = 10 * time.Second

// invalidation runs a Manager's Invalidator.
type invalidation struct {
	m       *Manager
	inv     Invalidator
	pub     InvalidationPublisher // nil when the Invalidator does not publish
	hb      HeartbeatSender       // nil when heartbeats are off or unsupported
	every   time.Duration
	timeout time.Duration
	late    time.Duration // subscribeTimeout
	onErr   func(error)

	nonce string
	seq   atomic.Uint64

	// mu orders the trust changes of sessions: a session that has ended
	// can no longer resume the cache.
	mu sync.Mutex

	cancel context.CancelFunc
	done   chan struct{} // closed when run returns; nil when not running
}

func newInvalidation(m *Manager, cfg Config) (*invalidation, error) {
	r := &invalidation{
		m:       m,
		inv:     cfg.Invalidator,
		every:   cmpOr(cfg.InvalidationHeartbeat, DefaultInvalidationHeartbeat),
		timeout: cmpOr(cfg.InvalidationTimeout, DefaultInvalidationTimeout),
		late:    subscribeTimeout,
		onErr:   cfg.OnInvalidationError,
		nonce:   rand.Text()[:12],
	}
	if r.timeout < 0 {
		return nil, fmt.Errorf("apikey: InvalidationTimeout must not be negative, got %v", r.timeout)
	}
	r.pub, _ = cfg.Invalidator.(InvalidationPublisher)
	if hb, ok := cfg.Invalidator.(HeartbeatSender); ok && r.every > 0 {
		r.hb = hb
	}
	return r, nil
}

// start runs the listener until stop, the cache untrusted until the first
// subscription.
func (r *invalidation) start() {
	r.m.suspendCache()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx)
}

// stop ends the listener, waiting for it at most until ctx is done. The
// cache is left suspended.
func (r *invalidation) stop(ctx context.Context) error {
	if r.done == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.m.suspendCache()
		return fmt.Errorf("apikey: invalidation listener still running: %w", ctx.Err())
	}
}

func (r *invalidation) run(ctx context.Context) {
	defer close(r.done)
	backoff := listenMinBackoff
	for {
		subscribed, err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.report(fmt.Errorf("%w: %w", ErrUnsubscribed, err))
		if subscribed {
			backoff = listenMinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// session runs one call of Listen, with heartbeats once it is subscribed,
// and returns when it has ended, the cache suspended. It reports whether
// the call subscribed and why it ended.
func (r *invalidation) session(ctx context.Context) (subscribed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{r: r, ready: make(chan struct{}), ended: make(chan struct{})}
	listened := make(chan error, 1)
	go func() {
		err := r.inv.Listen(sctx, s)
		r.end(s) // suspend at once, whatever the loop below is doing
		if err == nil {
			err = errors.New("the Invalidator's Listen returned nil")
		}
		listened <- err
	}()
	var tick <-chan time.Time
	ready := s.ready
	late := time.NewTimer(r.late)
	defer late.Stop()
	for {
		select {
		case err := <-listened:
			return s.wasSubscribed(), err
		case <-late.C:
			r.end(s)
			cancel()
			<-listened
			return false, fmt.Errorf("not subscribed within %v", r.late)
		case <-ready:
			ready = nil
			late.Stop()
			if r.hb != nil {
				t := time.NewTicker(r.every)
				defer t.Stop()
				tick = t.C
			}
		case <-tick:
			if err := r.beat(sctx, s); err != nil {
				r.end(s)
				cancel()
				<-listened
				return true, err
			}
		}
	}
}

// beat sends one heartbeat and waits for it to come back, for the session
// to end, or for the timeout.
func (r *invalidation) beat(ctx context.Context, s *session) error {
	token := r.nonce + "-" + strconv.FormatUint(r.seq.Add(1), 36)
	back := s.expect(token)
	bctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- r.hb.SendHeartbeat(bctx, token) }()
	for {
		select {
		case <-back:
			return nil
		case <-s.ended:
			return nil // the session loop sees why
		case err := <-sent:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: not sent: %w", ErrHeartbeatLost, err)
			}
			sent = nil
		case <-bctx.Done():
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: no answer within %v", ErrHeartbeatLost, r.timeout)
		}
	}
}

// end marks s ended and suspends the cache, once.
func (r *invalidation) end(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.isEnded {
		s.isEnded = true
		r.m.suspendCache()
		close(s.ended)
	}
}

// publish tells the other processes that the key id changed, when the
// Invalidator publishes. It runs after the store call, whose caller may
// have given up meanwhile: the publish has a clock of its own.
func (r *invalidation) publish(ctx context.Context, id string) {
	if r == nil || r.pub == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	if err := r.pub.Publish(pctx, id); err != nil {
		r.report(fmt.Errorf("%w: key %s: %w", ErrNotPublished, id, err))
	}
}

func (r *invalidation) report(err error) {
	if r.onErr != nil {
		r.onErr(err)
	}
}

// session is the InvalidationHandler of one call of Listen.
type session struct {
	r     *invalidation
	ready chan struct{} // closed by the first Subscribed
	ended chan struct{} // closed by end

	// Guarded by r.mu.
	isEnded, subscribed bool

	hbMu sync.Mutex
	want string
	back chan struct{}
}

var _ InvalidationHandler = (*session)(nil)

func (s *session) Subscribed() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.isEnded {
		return // too late: a new session will subscribe again
	}
	s.r.m.resumeCache()
	if !s.subscribed {
		s.subscribed = true
		close(s.ready)
	}
}

func (s *session) Invalidate(id string) {
	s.r.m.Invalidate(id)
	s.r.m.nudgeFeed()
}

func (s *session) InvalidateAll() {
	s.r.m.clearCache()
	s.r.m.nudgeFeed()
}

func (s *session) Heartbeat(token string) {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.back != nil && token == s.want {
		close(s.back)
		s.back = nil
	}
}

// expect arms the session for token and returns the channel closed when it
// comes back.
func (s *session) expect(token string) <-chan struct{} {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	s.want, s.back = token, make(chan struct{})
	return s.back
}

func (s *session) wasSubscribed() bool {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.subscribed
}
