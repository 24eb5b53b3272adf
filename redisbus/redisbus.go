// Package redisbus carries cache invalidations between processes over
// Redis pub/sub, for deployments whose instances share a store but where
// PostgreSQL LISTEN/NOTIFY is not available or not wanted.
//
// A Bus is an apikey.Invalidator: give it to every Manager that shares the
// store, and each publishes the ids of the keys it changes and evicts the
// ids the others publish:
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	bus, err := redisbus.New(client, "apikey:invalidate")
//	...
//	cache, _ := ottercache.New(ottercache.Config{})
//	m, err := apikey.NewManager(store, apikey.Config{Cache: cache, Invalidator: bus})
//
// The Manager runs the subscription and fails safe: until Redis has
// confirmed it, whenever it is lost and whenever a heartbeat published on
// the channel does not come back in time, the Manager bypasses its cache;
// once subscribed again it empties the cache and trusts it anew, so that
// no invalidation missed meanwhile can survive. A Manager without a cache
// (a command-line tool) only publishes.
//
// Publishing is synchronous but can fail: Redis pub/sub keeps no message,
// so a publish that fails (Redis down while a key is revoked) is lost, and
// the other instances then keep the old entry until the cache's TTL ends
// it; the Manager reports it to Config.OnInvalidationError
// (apikey.ErrNotPublished). Where the store is PostgreSQL, its own
// invalidations, which are sent in the transaction of the change, have no
// such gap.
package redisbus

import (
	"context"
	"errors"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/redis/go-redis/v9"
)

// heartbeatPrefix marks a heartbeat on the channel. Key ids are letters and
// digits only, so no id starts with it.
const heartbeatPrefix = "heartbeat:"

// Bus is an apikey.Invalidator over one Redis pub/sub channel. It is safe
// for concurrent use.
type Bus struct {
	client  redis.UniversalClient
	channel string
}

var (
	_ apikey.Invalidator           = (*Bus)(nil)
	_ apikey.InvalidationPublisher = (*Bus)(nil)
	_ apikey.HeartbeatSender       = (*Bus)(nil)
)

// New returns a Bus on channel. client may be shared with other uses:
// every subscription takes a connection of its own.
func New(client redis.UniversalClient, channel string) (*Bus, error) {
	if client == nil {
		return nil, errors.New("redisbus: New needs a client")
	}
	if channel == "" {
		return nil, errors.New("redisbus: New needs a channel")
	}
	return &Bus{client: client, channel: channel}, nil
}

// Channel returns the channel of the Bus.
func (b *Bus) Channel() string { return b.channel }

// Listen implements apikey.Invalidator: it subscribes to the channel on a
// new connection, calls h.Subscribed once Redis has confirmed the
// subscription, and passes on every message: an id to h.Invalidate, an
// empty payload to h.InvalidateAll (so that `PUBLISH apikey:invalidate ""`
// empties every cache), a heartbeat to h.Heartbeat. It returns when ctx is
// done or the connection fails. go-redis may reconnect a subscription by
// itself; Listen reports a second confirmation as a failure, since
// messages may have been missed in between.
func (b *Bus) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	ps := b.client.Subscribe(ctx, b.channel) // errors surface in Receive
	// Receive does not watch ctx: closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	subscribed := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Message:
			switch p := m.Payload; {
			case p == "":
				h.InvalidateAll()
			case strings.HasPrefix(p, heartbeatPrefix):
				h.Heartbeat(p[len(heartbeatPrefix):])
			default:
				h.Invalidate(p)
			}
		case *redis.Subscription:
			if m.Kind != "subscribe" || m.Channel != b.channel {
				continue
			}
			if subscribed {
				return errors.New("redisbus: resubscribed after a silent reconnection; messages may have been missed")
			}
			subscribed = true
			h.Subscribed()
		}
	}
}

// Publish implements apikey.InvalidationPublisher: it publishes id on the
// channel.
func (b *Bus) Publish(ctx context.Context, id string) error {
	return b.client.Publish(ctx, b.channel, id).Err()
}

// SendHeartbeat implements apikey.HeartbeatSender: it publishes token on
// the channel, marked so that Listen delivers it to h.Heartbeat.
func (b *Bus) SendHeartbeat(ctx context.Context, token string) error {
	return b.client.Publish(ctx, b.channel, heartbeatPrefix+token).Err()
}
