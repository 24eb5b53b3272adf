package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

var (
	_ apikey.Invalidator     = (*Store)(nil)
	_ apikey.HeartbeatSender = (*Store)(nil)
)

// channel is the notification channel on which migration 0002's trigger
// sends the id of every key whose cached fields change or that is deleted.
const channel = "apikey_keys"

// heartbeatPrefix marks the payload of a heartbeat on channel. Key ids are
// letters and digits only, so no id starts with it.
const heartbeatPrefix = "heartbeat:"

// Listen implements apikey.Invalidator over PostgreSQL LISTEN/NOTIFY. It
// is not called directly: give the Store to the Manager, which runs it,
// retries it, checks it with heartbeats and stops it on Close:
//
//	m, err := apikey.NewManager(store, apikey.Config{Cache: cache, Invalidator: store})
//
// The Manager's cache then stays consistent with every change made to
// apikey_keys, by this process, by other instances or by plain SQL.
//
// Listen takes one connection out of the pool for itself (it does not go
// back) and runs LISTEN apikey_keys, then calls h.Subscribed. A trigger
// installed by Migrate sends a key's id on that channel when a transaction
// that changed or deleted the key commits (but not for writes of
// last_used_at alone, which usage flushes make all the time); Listen passes
// each id to h.Invalidate. An empty payload, sent by TRUNCATE, goes to
// h.InvalidateAll; a heartbeat (see SendHeartbeat) to h.Heartbeat. Listen
// returns when ctx is done or the connection fails, closing it.
//
// A notification reaches Listen after the changing transaction commits,
// typically within a millisecond on a local network. NOTIFY is
// database-wide: stores in other schemas of the same database share the
// channel, which costs at most a few needless evictions.
func (s *Store) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
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
		return err
	}
	h.Subscribed()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		switch {
		case n.Payload == "":
			h.InvalidateAll()
		case strings.HasPrefix(n.Payload, heartbeatPrefix):
			h.Heartbeat(n.Payload[len(heartbeatPrefix):])
		default:
			h.Invalidate(n.Payload)
		}
	}
}

// SendHeartbeat implements apikey.HeartbeatSender: it sends token on the
// channel of Listen with pg_notify, on a connection of the pool, so that
// every Listen on the database delivers it to its handler's Heartbeat.
func (s *Store) SendHeartbeat(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, heartbeatPrefix+token)
	return err
}
