package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/redisbus"
	"github.com/go-apikey/apikey/redislimit"
)

// redisChannel is the pub/sub channel of invalidations with --redis.
const redisChannel = "apikey:invalidate"

// redisBus returns the invalidation bus of --redis (else APIKEY_REDIS_ADDR),
// or nil when neither is set. The client is made once per invocation, does
// not connect before its first use, and is closed by closeDB.
func (a *app) redisBus() (*redisbus.Bus, error) {
	addr := a.redisFlag // the flag, APIKEY_REDIS_ADDR or the config file
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usagef("invalid Redis address %q (%s): want HOST:PORT, such as 127.0.0.1:6379", addr, a.setting("redis"))
	}
	if a.rdb == nil {
		// One dial attempt per command attempt: a Redis that is down is
		// reported within the publish timeout rather than retried. Context
		// deadlines bound every call, which the rate limiter needs (see
		// redislimit.New).
		a.rdb = redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, ContextTimeoutEnabled: true})
	}
	return redisbus.New(a.rdb, redisChannel)
}

// redisLimitPrefix starts the Redis keys of the rate limits of serve.
const redisLimitPrefix = "apikey:limit:"

// redisLimiter returns the rate limiter of serve: in Redis with --redis,
// so that every instance counts against the same buckets; nil (the
// Manager's in-process limiter) without.
func (a *app) redisLimiter(timeout, lease time.Duration) (apikey.Limiter, error) {
	if a.rdb == nil {
		return nil, nil
	}
	return redislimit.New(a.rdb, redislimit.Config{Prefix: redisLimitPrefix, Timeout: timeout, Lease: lease})
}

// warnNotPublished prints, on stderr, that a change made by the command did
// not reach the other instances, which is not a failure of the command.
func (a *app) warnNotPublished(err error) {
	if errors.Is(err, apikey.ErrNotPublished) {
		msg := strings.TrimPrefix(errorLine(err), "apikey: ")
		fmt.Fprintf(a.stderr, "apikey: warning: %s (servers may accept the key as it was until their cache TTL ends)\n", msg)
	}
}
