package redislimit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/redislimit"
	"github.com/redis/go-redis/v9"
)

func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("APIKEY_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to run the tests against a real Redis")
	}
	return addr
}

// newClient returns a client of addr that honours context deadlines, closed
// with the test.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// uniquePrefix keeps the buckets of one test apart from every other run on
// the shared Redis.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("apikey-test:%s:%d:", t.Name(), time.Now().UnixNano())
}

func newLimiter(t testing.TB, c redis.UniversalClient, prefix string) *redislimit.Limiter {
	t.Helper()
	// A generous timeout: these tests are about decisions, and run beside
	// others on a loaded machine; TestRedisDown is about the timeout.
	l, err := redislimit.New(c, redislimit.Config{Prefix: prefix, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func allow(t *testing.T, l *redislimit.Limiter, bucket string, rl apikey.RateLimit, cost int64) apikey.LimitResult {
	t.Helper()
	res, err := l.Allow(context.Background(), bucket, rl, cost)
	if err != nil {
		t.Fatalf("Allow(%q, %+v, %d): %v", bucket, rl, cost, err)
	}
	return res
}

func TestBurstThenRate(t *testing.T) {
	l := newLimiter(t, newClient(t, redisAddr(t)), uniquePrefix(t))
	// Two per second (one every 500ms), three at once.
	rl := apikey.RateLimit{Name: "requests", Limit: 2, Period: time.Second, Burst: 3}
	for i, want := range []int64{2, 1, 0} {
		res := allow(t, l, "k", rl, 1)
		if !res.Allowed || res.Remaining != want || res.Name != "requests" || res.Limit != 2 || res.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed with %d remaining", i+1, res, want)
		}
		if wantReset := time.Duration(i+1) * 500 * time.Millisecond; res.Reset <= wantReset-100*time.Millisecond || res.Reset > wantReset {
			t.Errorf("request %d: Reset %v, want just under %v", i+1, res.Reset, wantReset)
		}
	}
	res := allow(t, l, "k", rl, 1)
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > 500*time.Millisecond {
		t.Fatalf("request 4: got %+v, want refused with a RetryAfter of at most 500ms", res)
	}
	// A refusal takes nothing: after RetryAfter exactly one more fits.
	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	if res := allow(t, l, "k", rl, 1); !res.Allowed {
		t.Fatalf("after RetryAfter: got %+v, want allowed", res)
	}
	if res := allow(t, l, "k", rl, 1); res.Allowed {
		t.Fatalf("right after: got %+v, want refused", res)
	}
}

func TestZeroBurstIsLimit(t *testing.T) {
	l := newLimiter(t, newClient(t, redisAddr(t)), uniquePrefix(t))
	rl := apikey.RateLimit{Name: "requests", Limit: 5, Period: time.Hour}
	for i := range 5 {
		if res := allow(t, l, "k", rl, 1); !res.Allowed {
			t.Fatalf("request %d: got %+v, want allowed", i+1, res)
		}
	}
	if res := allow(t, l, "k", rl, 1); res.Allowed {
		t.Fatalf("request 6: got %+v, want refused", res)
	}
}

func TestCost(t *testing.T) {
	l := newLimiter(t, newClient(t, redisAddr(t)), uniquePrefix(t))
	rl := apikey.RateLimit{Name: "tokens", Limit: 10, Period: time.Hour}
	steps := []struct {
		cost      int64
		allowed   bool
		remaining int64
	}{
		{4, true, 6},
		{0, true, 6}, // a look that takes nothing
		{4, true, 2},
		{4, false, 0}, // does not fit, takes nothing (and, like redis_rate, reports 0)
		{11, false, 0},
		{2, true, 0},
		{1, false, 0},
	}
	for i, s := range steps {
		res := allow(t, l, "k", rl, s.cost)
		if res.Allowed != s.allowed || res.Remaining != s.remaining {
			t.Fatalf("step %d (cost %d): got %+v, want allowed=%v remaining=%d", i+1, s.cost, res, s.allowed, s.remaining)
		}
		if !res.Allowed && res.RetryAfter <= 0 {
			t.Errorf("step %d: refused without a RetryAfter: %+v", i+1, res)
		}
	}
}

func TestBucketsAndPrefixesAreSeparate(t *testing.T) {
	c := newClient(t, redisAddr(t))
	p := uniquePrefix(t)
	a, b := newLimiter(t, c, p), newLimiter(t, c, p+"other:")
	rl := apikey.RateLimit{Name: "requests", Limit: 1, Period: time.Hour}
	for _, try := range []struct {
		l      *redislimit.Limiter
		bucket string
	}{{a, "x"}, {a, "y"}, {b, "x"}} {
		if res := allow(t, try.l, try.bucket, rl, 1); !res.Allowed {
			t.Fatalf("bucket %q: got %+v, want allowed (a bucket of its own)", try.bucket, res)
		}
	}
	if res := allow(t, a, "x", rl, 1); res.Allowed {
		t.Fatalf("bucket x again: got %+v, want refused", res)
	}
	if err := a.Reset(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if res := allow(t, a, "x", rl, 1); !res.Allowed {
		t.Fatalf("after Reset: got %+v, want allowed", res)
	}
}

// Two Limiters on two clients share a bucket exactly: under contention from
// both, the limit admits exactly its burst.
func TestTwoInstancesShareABucket(t *testing.T) {
	addr := redisAddr(t)
	p := uniquePrefix(t)
	limiters := []*redislimit.Limiter{newLimiter(t, newClient(t, addr), p), newLimiter(t, newClient(t, addr), p)}
	// 100 an hour: the test's own second refills 0.03 of a request.
	rl := apikey.RateLimit{Name: "requests", Limit: 100, Period: time.Hour}
	const workers, tries = 16, 25 // 400 attempts for 100 places
	var allowed [2]atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			l := limiters[w%2]
			for range tries {
				res, err := l.Allow(context.Background(), "shared", rl, 1)
				if err != nil {
					errs <- err
					return
				}
				if res.Allowed {
					allowed[w%2].Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a, b := allowed[0].Load(), allowed[1].Load()
	if a+b != 100 {
		t.Fatalf("allowed %d + %d = %d, want exactly 100", a, b, a+b)
	}
	if a == 0 || b == 0 {
		t.Errorf("allowed %d and %d: one instance got nothing, so the bucket was not contended", a, b)
	}
}

func TestBadInput(t *testing.T) {
	l := newLimiter(t, newClient(t, redisAddr(t)), uniquePrefix(t))
	good := apikey.RateLimit{Name: "r", Limit: 1, Period: time.Second}
	for _, c := range []struct {
		name string
		rl   apikey.RateLimit
		cost int64
	}{
		{"zero limit", apikey.RateLimit{Name: "r", Period: time.Second}, 1},
		{"negative limit", apikey.RateLimit{Name: "r", Limit: -1, Period: time.Second}, 1},
		{"huge limit", apikey.RateLimit{Name: "r", Limit: 1 << 60, Period: time.Second}, 1},
		{"zero period", apikey.RateLimit{Name: "r", Limit: 1}, 1},
		{"negative burst", apikey.RateLimit{Name: "r", Limit: 1, Period: time.Second, Burst: -1}, 1},
		{"negative cost", good, -1},
		{"huge cost", good, 1 << 60},
	} {
		if res, err := l.Allow(context.Background(), "k", c.rl, c.cost); err == nil {
			t.Errorf("%s: got %+v and no error", c.name, res)
		}
	}
	if _, err := redislimit.New(nil, redislimit.Config{}); err == nil {
		t.Error("New(nil): no error")
	}
	if _, err := redislimit.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), redislimit.Config{}); err == nil {
		t.Error("New with a client that ignores context deadlines: no error")
	}
	if _, err := redislimit.New(newClient(t, "127.0.0.1:1"), redislimit.Config{Timeout: -time.Second}); err == nil {
		t.Error("New with a negative Timeout: no error")
	}
}

// ownRedis starts a redis-server of the test's own on a free port, so that
// it can be stopped without touching the shared one, and returns its
// address and process. It is killed when the test ends.
func ownRedis(t testing.TB) (string, *os.Process) {
	t.Helper()
	redisAddr(t) // the same switch as every Redis test
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd.Process
}

// When Redis stops answering or goes away, Allow fails within its Timeout
// (allowing for a loaded machine), never blocks for go-redis's read
// timeout and retries, and never admits.
func TestRedisDown(t *testing.T) {
	addr, proc := ownRedis(t)
	const timeout = 100 * time.Millisecond
	c := newClient(t, addr)
	l, err := redislimit.New(c, redislimit.Config{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	rl := apikey.RateLimit{Name: "requests", Limit: 1000, Period: time.Second}
	if res := allow(t, l, "k", rl, 1); !res.Allowed {
		t.Fatalf("Redis up: got %+v, want allowed", res)
	}
	failsFast := func(when string) {
		t.Helper()
		start := time.Now()
		res, err := l.Allow(context.Background(), "k", rl, 1)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s: got %+v and no error", when, res)
		}
		if took > 10*timeout {
			t.Errorf("%s: the error took %v, want about the Timeout (%v)", when, took, timeout)
		}
	}
	// Hung: the process is there and holds the connection but answers
	// nothing.
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	failsFast("Redis stopped")
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := l.Allow(context.Background(), "k", rl, 1); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis continued: Allow still fails after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Gone: connections are refused.
	proc.Kill()
	proc.Wait()
	failsFast("Redis killed")
	failsFast("Redis still down")
}

// Concurrent decisions are sent to Redis together; each caller must still
// get the answer for its own bucket and cost. 64 goroutines, each on a
// bucket of its own with a limit of its own, spend it exactly.
func TestConcurrentDecisionsKeepTheirAnswers(t *testing.T) {
	l := newLimiter(t, newClient(t, redisAddr(t)), uniquePrefix(t))
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			rl := apikey.RateLimit{Name: "r", Limit: int64(g + 1), Period: time.Hour}
			bucket := fmt.Sprintf("b%d", g)
			allowed := int64(0)
			for i := range g + 5 {
				res, err := l.Allow(context.Background(), bucket, rl, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Limit != rl.Limit || res.Allowed != (i <= g) {
					t.Errorf("bucket %s, request %d: %+v", bucket, i+1, res)
					return
				}
				if res.Allowed {
					allowed++
					if res.Remaining != rl.Limit-allowed {
						t.Errorf("bucket %s, request %d: %d remaining, want %d", bucket, i+1, res.Remaining, rl.Limit-allowed)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
