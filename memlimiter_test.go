package apikey_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

var limitEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func allow(t *testing.T, l *apikey.MemoryLimiter, rl apikey.RateLimit, cost int64) apikey.LimitResult {
	t.Helper()
	r, err := l.Allow(context.Background(), "b", rl, cost)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMemoryLimiterBurstThenSteady checks GCRA's smoothness: a full burst
// at once, then one request per emission interval, never more.
func TestMemoryLimiterBurstThenSteady(t *testing.T) {
	clock := apikeytest.NewClock(limitEpoch)
	l := apikey.NewMemoryLimiter(clock.Now)
	rl := apikey.RateLimit{Name: "requests", Limit: 10, Period: time.Second, Burst: 5} // one per 100ms
	for i := 0; i < 5; i++ {
		r := allow(t, l, rl, 1)
		if !r.Allowed || r.Remaining != int64(4-i) {
			t.Fatalf("burst request %d: %+v, want allowed with %d remaining", i, r, 4-i)
		}
	}
	r := allow(t, l, rl, 1)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond || r.Remaining != 0 {
		t.Fatalf("request past the burst: %+v, want refused, retry after 100ms", r)
	}
	if r.Reset != 500*time.Millisecond {
		t.Errorf("Reset = %v, want 500ms (five emission intervals)", r.Reset)
	}
	clock.Add(99 * time.Millisecond)
	if r := allow(t, l, rl, 1); r.Allowed || r.RetryAfter != time.Millisecond {
		t.Fatalf("1ms early: %+v, want refused, retry after 1ms", r)
	}
	for i := 0; i < 20; i++ { // the steady rate: exactly one per interval
		clock.Add(time.Millisecond)
		if r := allow(t, l, rl, 1); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("steady request %d: %+v, want allowed with 0 remaining", i, r)
		}
		if r := allow(t, l, rl, 1); r.Allowed {
			t.Fatalf("second request in interval %d allowed: %+v", i, r)
		}
		clock.Add(99 * time.Millisecond)
	}
	clock.Add(time.Hour) // idle: the bucket is full again, not fuller
	for i := 0; i < 5; i++ {
		if r := allow(t, l, rl, 1); !r.Allowed {
			t.Fatalf("burst after idle, request %d refused: %+v", i, r)
		}
	}
	if r := allow(t, l, rl, 1); r.Allowed {
		t.Fatalf("idle time accumulated past the burst: %+v", r)
	}
}

// TestMemoryLimiterCost checks weighted requests and their Retry-After.
func TestMemoryLimiterCost(t *testing.T) {
	clock := apikeytest.NewClock(limitEpoch)
	l := apikey.NewMemoryLimiter(clock.Now)
	rl := apikey.RateLimit{Name: "search", Limit: 60, Period: time.Minute} // burst 0 = 60, one per second
	if r := allow(t, l, rl, 50); !r.Allowed || r.Remaining != 10 || r.Reset != 50*time.Second {
		t.Fatalf("cost 50: %+v, want allowed, 10 remaining, reset 50s", r)
	}
	r := allow(t, l, rl, 15)
	if r.Allowed || r.RetryAfter != 5*time.Second {
		t.Fatalf("cost 15 with 10 left: %+v, want refused, retry after 5s", r)
	}
	if r := allow(t, l, rl, 10); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("cost 10 with 10 left: %+v, want allowed, 0 remaining", r)
	}
	clock.Add(5 * time.Second)
	if r := allow(t, l, rl, 0); !r.Allowed || r.Remaining != 5 {
		t.Fatalf("peek after 5s: %+v, want 5 remaining", r)
	}
	if r := allow(t, l, rl, 61); r.Allowed {
		t.Fatalf("cost above the burst allowed: %+v", r)
	}
}

// TestMemoryLimiterBuckets checks that buckets are independent and that
// full ones are evicted.
func TestMemoryLimiterBuckets(t *testing.T) {
	clock := apikeytest.NewClock(limitEpoch)
	l := apikey.NewMemoryLimiter(clock.Now)
	rl := apikey.RateLimit{Name: "requests", Limit: 1, Period: time.Second, Burst: 1}
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if r, _ := l.Allow(ctx, fmt.Sprint("key:", i), rl, 1); !r.Allowed {
			t.Fatalf("bucket %d refused its first request", i)
		}
	}
	if r, _ := l.Allow(ctx, "key:0", rl, 1); r.Allowed {
		t.Fatal("bucket 0 allowed a second request")
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	clock.Add(time.Second)
	l.Sweep()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len after the buckets filled up = %d, want 0", n)
	}
}

// TestMemoryLimiterConcurrent checks that concurrent requests never pass
// more than the burst.
func TestMemoryLimiterConcurrent(t *testing.T) {
	clock := apikeytest.NewClock(limitEpoch)
	l := apikey.NewMemoryLimiter(clock.Now)
	rl := apikey.RateLimit{Name: "requests", Limit: 100, Period: time.Hour, Burst: 37}
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if r, _ := l.Allow(context.Background(), "shared", rl, 1); r.Allowed {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if passed != 37 {
		t.Fatalf("%d requests passed, want the burst, 37", passed)
	}
}

// BenchmarkMemoryLimiter measures one Allow on a warm bucket, among 1000.
func BenchmarkMemoryLimiter(b *testing.B) {
	l := apikey.NewMemoryLimiter(nil)
	rl := apikey.RateLimit{Name: "requests", Limit: 1e12, Period: time.Second}
	buckets := make([]string, 1000)
	for i := range buckets {
		buckets[i] = fmt.Sprintf("key:AbC123xyz%03d:requests", i)
	}
	ctx := context.Background()
	b.Run("TimeNow", func(b *testing.B) { // the floor: the clock read of every Allow
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("Allow", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if r, _ := l.Allow(ctx, buckets[i%len(buckets)], rl, 1); !r.Allowed {
				b.Fatal("refused")
			}
			i++
		}
	})
}
