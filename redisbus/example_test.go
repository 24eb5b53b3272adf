package redisbus_test

import (
	"context"
	"log/slog"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/redisbus"
	"github.com/redis/go-redis/v9"
)

// Every instance that shares the store is given the same Bus: each
// publishes the keys it changes and evicts those the others change.
func Example() {
	var store apikey.Store // a *sqlite.Store or *postgres.Store shared by the instances
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	bus, err := redisbus.New(client, "apikey:invalidate")
	if err != nil {
		panic(err)
	}
	cache, err := ottercache.New(ottercache.Config{})
	if err != nil {
		panic(err)
	}
	m, err := apikey.NewManager(store, apikey.Config{
		Cache:               cache,
		Invalidator:         bus,
		OnInvalidationError: func(err error) { slog.Warn("apikey invalidation", "err", err) },
	})
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	// m.Verify answers from the cache only while the Bus is subscribed.
}
