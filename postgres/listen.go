package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Invalidator is what Listen drives: a verification cache's owner.
// *apikey.Manager satisfies it.
type Invalidator interface {
	// Invalidate evicts one key.
	Invalidate(id string)
	// SuspendCache stops trusting the cache: invalidations may be missed.
	SuspendCache()
	// ResumeCache empties the cache and trusts it again.
	ResumeCache()
}

// channel is the notification channel on which migration 0002's trigger
// sends the id of every key whose cached fields change or that is deleted.
const channel = "apikey_keys"

// Retry delays of Listen after a failure: the first, doubling up to the
// last.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 2 * time.Second
)

// listenPing is how long Listen waits for a notification before checking
// that its connection still answers, so that a connection lost without a
// word (a network partition) is noticed within about that time rather than
// at the next TCP keepalive failure.
var listenPing = 15 * time.Second

// Listen keeps inv's verification cache consistent with every change made to
// apikey_keys, by this process, by other instances or by plain SQL, until
// ctx is done; it then returns ctx.Err(). Run it in its own goroutine for
// each Manager that has a Cache and shares the database with other writers:
//
//	m, _ := apikey.NewManager(store, apikey.Config{Cache: cache})
//	go store.Listen(ctx, m)
//
// Listen takes one connection out of the pool for itself (it does not go
// back) and runs LISTEN apikey_keys. A trigger installed by Migrate sends a
// key's id on that channel when a transaction that changed or deleted the
// key commits (but not for writes of last_used_at alone, which usage
// flushes make all the time); Listen passes each id to inv.Invalidate. An
// empty payload, sent by TRUNCATE, empties the cache (inv.ResumeCache).
//
// The cache fails safe, never open:
//
//   - Listen calls inv.SuspendCache before anything else, so the cache is
//     not trusted before the listener is up;
//   - once LISTEN has succeeded, it calls inv.ResumeCache, which empties the
//     cache and trusts it again: anything changed before LISTEN is gone
//     from the cache, and anything changed after it will be notified;
//   - on any failure (lost connection, failed health check), it calls
//     inv.SuspendCache at once, so that Verify reads the store while
//     notifications may be missed, drops the connection, and tries again
//     after 50ms, doubling to at most 2s, with LISTEN then ResumeCache
//     again on success;
//   - when ctx is done, it suspends the cache for good and returns
//     ctx.Err(): nothing evicts changed keys any more.
//
// While no notification arrives, Listen checks every 15 seconds that its
// connection still answers. A notification reaches Listen after the
// changing transaction commits, typically within a millisecond on a local
// network; a Manager also evicts the keys it changes itself at once.
//
// NOTIFY is database-wide: stores in other schemas of the same database
// share the channel, which costs at most a few needless evictions.
func (s *Store) Listen(ctx context.Context, inv Invalidator) error {
	inv.SuspendCache()
	// Once Listen returns, nothing evicts changed keys any more: a Manager
	// that goes on verifying must not trust its cache.
	defer inv.SuspendCache()
	backoff := listenMinBackoff
	for {
		listened := s.listen(ctx, inv)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			backoff = listenMinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen runs one connection's worth of Listen: it connects, listens,
// resumes the cache and forwards notifications until something fails or
// ctx is done, suspending the cache on failure. It reports whether LISTEN
// succeeded.
func (s *Store) listen(ctx context.Context, inv Invalidator) (listened bool) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false
	}
	// The connection never returns to the pool: after LISTEN, or after an
	// error, it is not fit for other work.
	conn := pc.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false
	}
	inv.ResumeCache()
	for {
		if err := s.wait(ctx, conn, inv); err != nil {
			if ctx.Err() == nil {
				inv.SuspendCache()
			}
			return true
		}
	}
}

// wait forwards the next notification to inv, or checks the connection
// when none came for listenPing.
func (s *Store) wait(ctx context.Context, conn *pgx.Conn, inv Invalidator) error {
	wctx, cancel := context.WithTimeout(ctx, listenPing)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	switch {
	case err == nil:
		if n.Payload == "" {
			inv.ResumeCache()
		} else {
			inv.Invalidate(n.Payload)
		}
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return conn.Ping(pctx)
	default:
		return err
	}
}
