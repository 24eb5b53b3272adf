// Package redisbus carries cache invalidations between processes over
// Redis pub/sub, for deployments whose instances share a store but where
// PostgreSQL LISTEN/NOTIFY is not available or not wanted.
//
// Every instance publishes the ids of the keys it changes and listens for
// the ids the others publish:
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	cache, _ := ottercache.New(ottercache.Config{})
//	m, err := apikey.NewManager(store, apikey.Config{
//		Cache:   cache,
//		OnEvent: redisbus.Publisher(client, "apikey:invalidate"),
//	})
//	...
//	go redisbus.Listen(ctx, client, "apikey:invalidate", m)
//
// Listen fails safe: until its subscription is confirmed, and whenever it
// loses it, the Manager bypasses its cache (SuspendCache); once subscribed
// again it empties the cache and trusts it anew (ResumeCache), so that no
// invalidation missed meanwhile can survive.
//
// Publishing is best effort. Redis pub/sub keeps no message for a
// subscriber that is away, which Listen covers by emptying the cache on
// every resubscription; but a publish that fails (Redis down while a key
// is revoked) is lost, and the other instances then keep the old entry
// until the cache's TTL ends it. The Manager's events also pass through a
// bounded buffer that drops events when the subscriber falls behind. Where
// the store is PostgreSQL, postgres.Listen, whose notifications are sent
// in the transaction of the change, has neither gap.
package redisbus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/redis/go-redis/v9"
)

// PublishTimeout bounds one publish. The publisher runs on the Manager's
// event goroutine, which it must not hold up for long.
const PublishTimeout = 500 * time.Millisecond

// Publisher returns an apikey.Config.OnEvent function that publishes, on
// channel, the id of every key updated, revoked, deleted or rolled. Other
// events are ignored: a new key cannot be cached anywhere yet. A failed
// publish is logged with log/slog, with the number of failures so far, and
// not retried. The function is safe for concurrent use.
func Publisher(client redis.UniversalClient, channel string) func(apikey.Event) {
	var failures atomic.Int64
	return func(e apikey.Event) {
		switch e.Type {
		case apikey.EventUpdated, apikey.EventRevoked, apikey.EventDeleted, apikey.EventRolled:
		default:
			return
		}
		if e.KeyID == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), PublishTimeout)
		defer cancel()
		if err := client.Publish(ctx, channel, e.KeyID).Err(); err != nil {
			slog.Warn("redisbus: invalidation not published: other instances keep the key cached until its TTL ends",
				"channel", channel, "key_id", e.KeyID, "event", string(e.Type), "err", err, "failures", failures.Add(1))
		}
	}
}

// Invalidator is what Listen drives. *apikey.Manager implements it.
type Invalidator interface {
	// Invalidate evicts one key from the cache.
	Invalidate(id string)
	// SuspendCache stops trusting the cache.
	SuspendCache()
	// ResumeCache empties the cache and trusts it again.
	ResumeCache()
}

var _ Invalidator = (*apikey.Manager)(nil)

// HealthCheckInterval is how long the subscription may stay silent before
// Listen pings Redis; a ping unanswered for as long again counts as a lost
// connection. It bounds how long a silently dead connection (a peer gone
// without closing it) goes unnoticed to about twice its value.
const HealthCheckInterval = time.Second

// Backoff bounds of Listen's resubscriptions: the first attempt after a
// loss is immediate, the next ones wait from minBackoff, doubling up to
// maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Listen subscribes to channel and calls inv.Invalidate with the payload of
// every message, until ctx ends; it then returns ctx.Err().
//
// It calls inv.SuspendCache first, and inv.ResumeCache once Redis has
// confirmed the subscription. When the subscription is lost (an error, an
// unanswered ping), it calls SuspendCache, subscribes again on a new
// connection after a backoff, and calls ResumeCache after the new
// confirmation. go-redis reconnects a PubSub by itself and resubscribes
// silently; Listen treats any confirmation that arrives while it is
// subscribed as such a reconnection and calls SuspendCache and ResumeCache
// at once, since messages may have been missed in between.
//
// client may be shared with other uses: the subscription takes a
// connection of its own.
func Listen(ctx context.Context, client redis.UniversalClient, channel string, inv Invalidator) error {
	if channel == "" {
		return errors.New("redisbus: Listen needs a channel")
	}
	inv.SuspendCache()
	var backoff time.Duration
	for {
		confirmed, err := session(ctx, client, channel, inv)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// session suspended the cache if it had resumed it.
		if confirmed {
			backoff = 0
		}
		slog.Warn("redisbus: invalidation subscription lost; verifying against the store until it is back",
			"channel", channel, "err", err, "retry_in", backoff)
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
	}
}

// session subscribes on a new PubSub and receives until the subscription
// is lost or ctx ends. It reports whether the subscription was confirmed,
// and leaves the cache suspended.
func session(ctx context.Context, client redis.UniversalClient, channel string, inv Invalidator) (confirmed bool, err error) {
	ps := client.Subscribe(ctx, channel) // errors surface in Receive
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()

	trusted := false
	defer func() {
		if trusted {
			inv.SuspendCache()
		}
	}()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, HealthCheckInterval)
		if err != nil {
			if ctx.Err() != nil {
				return confirmed, ctx.Err()
			}
			if !isTimeout(err) {
				return confirmed, err
			}
			if pinged {
				return confirmed, errors.New("redisbus: ping unanswered")
			}
			if err := ps.Ping(ctx); err != nil {
				return confirmed, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			inv.Invalidate(m.Payload)
		case *redis.Subscription:
			if m.Kind != "subscribe" || m.Channel != channel {
				continue
			}
			if trusted {
				// go-redis reconnected on its own: messages may have been
				// missed, so empty the cache as after any loss.
				inv.SuspendCache()
			}
			inv.ResumeCache()
			trusted, confirmed = true, true
		case *redis.Pong:
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
