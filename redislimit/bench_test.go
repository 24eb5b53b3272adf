package redislimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/redislimit"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// BenchmarkAllow compares one Allow with one PING on the same client, in
// the same run: the limiter's cost beyond a Redis round trip is the Lua
// script. Compare with benchstat or by the ratio of ns/op. Two floors
// show where the difference lies: "evalsha-empty" runs a script that does
// nothing (a round trip plus Redis's script call), and "redis_rate" the
// library's AllowN on the plain client, without this package (its
// batching, key prefix and conversions). "allow-leased" is Allow with
// Config.Lease on one busy bucket with room: most decisions are taken from
// a lease, in memory.
func BenchmarkAllow(b *testing.B) {
	c := newClient(b, redisAddr(b))
	l := newLimiter(b, c, uniquePrefix(b))
	ctx := context.Background()
	rl := apikey.RateLimit{Name: "requests", Limit: 1 << 30, Period: time.Second}
	if _, err := l.Allow(ctx, "warm", rl, 1); err != nil { // loads the script
		b.Fatal(err)
	}
	b.Run("ping", func(b *testing.B) {
		for b.Loop() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("allow", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, "bench", rl, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	empty := redis.NewScript("return 1")
	if err := empty.Load(ctx, c).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("evalsha-empty", func(b *testing.B) {
		for b.Loop() {
			if err := empty.EvalSha(ctx, c, nil).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	lib := redis_rate.NewLimiter(c)
	libKey := uniquePrefix(b) + "lib"
	b.Run("redis_rate", func(b *testing.B) {
		for b.Loop() {
			if _, err := lib.AllowN(ctx, libKey, redis_rate.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Second}, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ping-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Ping(ctx).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("allow-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Allow(ctx, "bench", rl, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	leased, err := redislimit.New(c, redislimit.Config{Prefix: uniquePrefix(b), Lease: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("allow-leased", func(b *testing.B) {
		for b.Loop() {
			if _, err := leased.Allow(ctx, "bench", rl, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("allow-leased-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := leased.Allow(ctx, "bench", rl, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
