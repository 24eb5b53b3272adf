package redislimit_test

import (
	"context"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/redislimit"
	"github.com/redis/go-redis/v9"
)

// Every instance that shares the store is given a Limiter on the same
// Redis: a limit then admits its burst between all of them, not each.
func Example() {
	var store apikey.Store // a *sqlite.Store or *postgres.Store shared by the instances
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // so that Config.Timeout bounds every decision
	})
	defer client.Close()
	limiter, err := redislimit.New(client, redislimit.Config{Prefix: "myapp:", Timeout: 100 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	m, err := apikey.NewManager(store, apikey.Config{Limiter: limiter})
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	// m.Check and the apikeyhttp middleware now count the rate limits of
	// keys and owners in Redis. With Redis down, a limit refuses
	// (apikey.ErrUnavailable) unless it is FailOpen.
}
