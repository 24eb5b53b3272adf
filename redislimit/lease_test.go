package redislimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/redislimit"
	"github.com/redis/go-redis/v9"
)

// scriptCounter counts the script calls a client sends, alone or in
// pipelines: the decisions made in Redis.
type scriptCounter struct{ n atomic.Int64 }

func (h *scriptCounter) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if name := c.Name(); name == "evalsha" || name == "eval" {
			h.n.Add(1)
		}
	}
}

func (h *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.count(cmds...)
		return next(ctx, cmds)
	}
}

// leasing returns a Limiter that leases for hold, on a client of its own
// whose script calls the returned counter counts.
func leasing(t *testing.T, prefix string, hold time.Duration) (*redislimit.Limiter, *scriptCounter) {
	t.Helper()
	c := newClient(t, redisAddr(t))
	h := &scriptCounter{}
	c.AddHook(h)
	l, err := redislimit.New(c, redislimit.Config{Prefix: prefix, Timeout: 10 * time.Second, Lease: hold})
	if err != nil {
		t.Fatal(err)
	}
	return l, h
}

// A busy bucket with room to spare is decided in memory, from leases,
// nearly always; without Lease every decision is a script call.
func TestLeaseSkipsRedis(t *testing.T) {
	rl := apikey.RateLimit{Name: "requests", Limit: 1_000_000, Period: time.Second}
	const n = 3000
	for _, c := range []struct {
		hold     time.Duration
		min, max int64
	}{{0, n, n + 1}, {50 * time.Millisecond, 1, n / 20}} {
		l, calls := leasing(t, uniquePrefix(t), c.hold)
		last := rl.Limit + 1
		for i := range n {
			res := allow(t, l, "hot", rl, 1)
			if !res.Allowed || res.Remaining > rl.Limit || res.Reset < 0 || res.Reset > time.Second {
				t.Fatalf("Lease %v, request %d: got %+v", c.hold, i, res)
			}
			last = res.Remaining
		}
		if got := calls.n.Load(); got < c.min || got > c.max {
			t.Errorf("Lease %v: %d requests made %d script calls, want %d to %d", c.hold, n, got, c.min, c.max)
		}
		// Every request not decided from a lease made a script call.
		if local := l.LeasedDecisions(); local > n || local < n-calls.n.Load() || (c.hold == 0) != (local == 0) {
			t.Errorf("Lease %v: LeasedDecisions %d of %d requests, with %d script calls", c.hold, local, n, calls.n.Load())
		}
		if last >= rl.Limit {
			t.Errorf("Lease %v: %d remaining after %d requests, want fewer than %d", c.hold, last, n, rl.Limit)
		}
	}
}

// Leased cells are counted in Redis as if they arrived when the lease
// ends: another instance sees the bucket busy for at least the lease's
// duration, however few cells were leased. That is what keeps every
// window of the limit within its bound when the cells are taken late.
func TestLeaseHoldsTheBucket(t *testing.T) {
	p := uniquePrefix(t)
	const hold = 300 * time.Millisecond
	a, _ := leasing(t, p, hold)
	b := newLimiter(t, newClient(t, redisAddr(t)), p)
	// One cell every microsecond: a lease of a few thousand is a few ms.
	rl := apikey.RateLimit{Name: "requests", Limit: 1_000_000, Period: time.Second}
	for range 3 { // the first decides alone, the next lease
		allow(t, a, "held", rl, 1)
	}
	res := allow(t, b, "held", rl, 0)
	if res.Reset < hold-50*time.Millisecond {
		t.Fatalf("after a lease of %v, the other instance sees the bucket full in %v, want at least about %v", hold, res.Reset, hold)
	}
	// Without a lease the bucket is full again within microseconds.
	res = allow(t, b, "plain", rl, 1)
	if res.Reset > 10*time.Millisecond {
		t.Fatalf("a plain decision: Reset %v, want about 1µs", res.Reset)
	}
}

// What a lease holds ends with it: after the lease's duration, after a
// change of the limit and after Reset, the next decision is made in Redis.
func TestLeaseEnds(t *testing.T) {
	const hold = 100 * time.Millisecond
	l, calls := leasing(t, uniquePrefix(t), hold)
	rl := apikey.RateLimit{Name: "requests", Limit: 1_000_000, Period: time.Second}
	// warm sends requests until one is decided from a lease, then lets any
	// top-up on its way land, so that the next script call counted is the
	// next request's.
	warm := func(bucket string, limit apikey.RateLimit) {
		t.Helper()
		for range 1000 {
			before := calls.n.Load()
			allow(t, l, bucket, limit, 1)
			if calls.n.Load() == before {
				time.Sleep(10 * time.Millisecond)
				return
			}
		}
		t.Fatalf("%s: 1000 requests, each with a script call: never leased", bucket)
	}
	inRedis := func(what, bucket string, limit apikey.RateLimit) {
		t.Helper()
		before := calls.n.Load()
		allow(t, l, bucket, limit, 1)
		if calls.n.Load() == before {
			t.Errorf("%s: decided without Redis", what)
		}
	}

	if buckets, cells := l.Leased(); buckets != 0 || cells != 0 {
		t.Fatalf("Leased before any request = %d buckets, %d cells; want none", buckets, cells)
	}
	warm("expires", rl)
	if buckets, cells := l.Leased(); buckets != 1 || cells <= 0 {
		t.Errorf("Leased after a lease was used = %d buckets, %d cells; want 1 bucket and some cells", buckets, cells)
	}
	time.Sleep(hold + 20*time.Millisecond)
	if buckets, cells := l.Leased(); buckets != 0 || cells != 0 {
		t.Errorf("Leased once the lease ended = %d buckets, %d cells; want none", buckets, cells)
	}
	inRedis("after the lease's duration", "expires", rl)

	warm("changed", rl)
	changed := rl
	changed.Limit = 500_000
	inRedis("after a change of the limit", "changed", changed)

	warm("reset", rl)
	if err := l.Reset(context.Background(), "reset"); err != nil {
		t.Fatal(err)
	}
	inRedis("after Reset", "reset", rl)

	// A slow limit is never leased: 100 an hour refills nothing in 100ms.
	slow := apikey.RateLimit{Name: "requests", Limit: 100, Period: time.Hour}
	before := calls.n.Load()
	for i := range 20 {
		if res := allow(t, l, "slow", slow, 1); res.Remaining != int64(99-i) {
			t.Fatalf("slow limit, request %d: %d remaining, want %d", i, res.Remaining, 99-i)
		}
	}
	if got := calls.n.Load() - before; got != 20 {
		t.Errorf("a slow limit: 20 requests made %d script calls, want 20 (never leased)", got)
	}
}

// Two leasing instances, 16 clients each hammering one bucket, never let
// through more than the limit allows over the run, and the leases do not
// starve the bucket: most of what it allows is let through.
func TestLeasesNeverExceed(t *testing.T) {
	p := uniquePrefix(t)
	const hold = 20 * time.Millisecond
	a, ca := leasing(t, p, hold)
	b, cb := leasing(t, p, hold)
	// One cell every 0.5ms, 2000 at once: 40 cells refill in a lease.
	rl := apikey.RateLimit{Name: "requests", Limit: 2000, Period: time.Second, Burst: 2000}
	const workers = 16
	var allowed, attempts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	start := time.Now()
	stop := start.Add(1500 * time.Millisecond)
	for w := range 2 * workers {
		l := a
		if w%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for time.Now().Before(stop) {
				res, err := l.Allow(context.Background(), "shared", rl, 1)
				if err != nil {
					errs <- err
					return
				}
				attempts.Add(1)
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	emission := rl.Period / time.Duration(rl.Limit)
	bound := rl.Burst + int64(elapsed/emission) + 1
	got := allowed.Load()
	calls := ca.n.Load() + cb.n.Load()
	tries := attempts.Load()
	t.Logf("%d of %d allowed in %v (bound %d), %d script calls", got, tries, elapsed, bound, calls)
	if got > bound {
		t.Fatalf("%d allowed in %v: more than the burst plus one every %v (%d)", got, elapsed, emission, bound)
	}
	if want := min(bound, tries) * 3 / 4; got < want {
		t.Errorf("%d of %d allowed in %v: the leases starved the bucket (bound %d)", got, tries, elapsed, bound)
	}
	// Every refusal is a script call; while the burst lasted, most
	// admissions were not.
	if local := tries - calls; local < got/16 {
		t.Errorf("%d script calls for %d attempts, %d allowed: only %d decided from leases", calls, tries, got, local)
	}
	// No lease ever took the bucket past its burst: another instance sees
	// it full again within Burst emissions.
	res := allow(t, newLimiter(t, newClient(t, redisAddr(t)), p), "shared", rl, 0)
	if limit := time.Duration(rl.Burst)*emission + time.Millisecond; res.Reset > limit {
		t.Errorf("after the run the bucket is full again in %v, more than the burst's %v", res.Reset, limit)
	}
}

func TestLeaseNegative(t *testing.T) {
	c := newClient(t, redisAddr(t))
	if _, err := redislimit.New(c, redislimit.Config{Lease: -time.Second}); err == nil || err.Error() != "redislimit: negative Lease -1s" {
		t.Fatalf("New with a negative Lease: %v, want redislimit: negative Lease -1s", err)
	}
}
